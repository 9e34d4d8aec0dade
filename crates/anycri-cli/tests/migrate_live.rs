//! `anycri migrate` and `anycri docker` on real parts (the environment of
//! `scripts/runtime-env up`):
//! - a daemon.json naming the test registry as Docker Hub's mirror and as an insecure
//!   registry → `migrate plan --to containerd` → a containerd started with the generated
//!   files pulls `docker.io/...` through the mirror and the registry over plain HTTP, and
//!   without the generated mirror file the same pull fails;
//! - `migrate check` finds planted dependencies (a pod mounting the Docker socket on
//!   containerd and on the Docker shim, a process running a `docker` command in a container,
//!   a unit calling `docker`, kubelet settings naming dockershim, a cron job, a script, a
//!   log shipper reading Docker's JSON logs, a manifest) and nothing on a clean node;
//! - `anycri docker ps|inspect|logs` on the shim compared field by field with `docker`
//!   itself on the same containers.
//!
//! Skips with a reason without the environment; fails under ANYCRI_REQUIRE_LIVE=1.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anycri::api::*;
use anycri::{
    ContainerConfigBuilder, ImageServiceExt, PodSandboxConfigBuilder, RuntimeService,
    RuntimeServiceExt,
};
use anycri_testenv::{Daemon, docker_raw, env_value, grpc_client, skip_or_fail};
use serde_json::Value;

fn anycri(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_anycri"))
        .args(args)
        .env_remove("CONTAINER_RUNTIME_ENDPOINT")
        .output()
        .expect("run anycri");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn values(keys: &[&str]) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    for key in keys {
        match env_value(key) {
            Some(v) => {
                out.insert(key.to_string(), v);
            }
            None => {
                skip_or_fail(&format!("{key} unknown: run scripts/runtime-env up"));
                return None;
            }
        }
    }
    Some(out)
}

/// A containerd of the test's own, killed (with its shims' leftovers removed) on drop.
struct OwnContainerd {
    child: Daemon,
    dir: tempfile::TempDir,
}

impl Drop for OwnContainerd {
    fn drop(&mut self) {
        self.child.kill();
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path())
            .stderr(Stdio::null())
            .status();
    }
}

async fn start_containerd(config: &Path) -> (OwnContainerd, String) {
    let dir = tempfile::Builder::new()
        .prefix("anycri-migrate-ctrd-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let socket = dir.path().join("containerd.sock");
    let child = Daemon::spawn(
        Command::new("containerd")
            .arg("--config")
            .arg(config)
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--state")
            .arg(dir.path().join("state"))
            .arg("--address")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("containerd.log")).unwrap()),
    );
    for _ in 0..200 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let uri = format!("unix://{}", socket.display());
    (OwnContainerd { child, dir }, uri)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_for_containerd_pulls_through_the_generated_mirror() {
    let Some(v) = values(&["REGISTRY"]) else {
        return;
    };
    let registry = &v["REGISTRY"];
    let work = tempfile::tempdir().unwrap();
    let daemon_json = work.path().join("daemon.json");
    std::fs::write(
        &daemon_json,
        serde_json::json!({
            "registry-mirrors": [format!("http://{registry}")],
            "insecure-registries": [registry],
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "log-driver": "json-file",
            "log-opts": {"max-size": "10m", "max-file": "3"},
            "storage-driver": "overlay2",
            "live-restore": true
        })
        .to_string(),
    )
    .unwrap();
    let out = work.path().join("out");
    let certs = out.join("etc/containerd/certs.d");
    let (code, stdout, stderr) = anycri(&[
        "migrate",
        "plan",
        "--from",
        daemon_json.to_str().unwrap(),
        "--to",
        "containerd",
        "--out",
        out.to_str().unwrap(),
        "--certs-dir",
        certs.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("storage-driver"), "{stdout}");
    for f in [
        "etc/containerd/config.toml".to_string(),
        "etc/containerd/certs.d/docker.io/hosts.toml".to_string(),
        format!("etc/containerd/certs.d/{registry}/hosts.toml"),
        "var/lib/kubelet/config.migrated.yaml".to_string(),
    ] {
        assert!(out.join(&f).is_file(), "{f} not written:\n{stdout}");
    }
    // Written once; again without --overwrite is refused and changes nothing.
    let (code, _, stderr) = anycri(&[
        "migrate",
        "plan",
        "--from",
        daemon_json.to_str().unwrap(),
        "--to",
        "containerd",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--overwrite"), "{stderr}");

    let (_containerd, uri) = start_containerd(&out.join("etc/containerd/config.toml")).await;
    let rt: Arc<dyn RuntimeService> = Arc::new(grpc_client(&uri).await);
    let images = anycri::connect(&uri).await.unwrap().image;
    // Docker Hub's name, served by the mirror (there is no other way to it here).
    let hub = "docker.io/anycri/busybox:1.0";
    images
        .pull_image_if_absent(hub, None)
        .await
        .unwrap_or_else(|e| panic!("pulling {hub} through the generated mirror failed: {e}"));
    let found = images.find_image(hub).await.unwrap();
    assert!(found.is_some(), "{hub} is listed after the pull");
    // The insecure registry directly, over HTTP after HTTPS fails.
    let direct = format!("{registry}/anycri/pulltest:1.0");
    images.pull_image_if_absent(&direct, None).await.unwrap();
    // Without the mirror file, Docker Hub's name cannot be pulled here: the mirror did it.
    std::fs::remove_dir_all(certs.join("docker.io")).unwrap();
    let err = images
        .pull_image_if_absent("docker.io/anycri/pulltest:1.0", None)
        .await
        .unwrap_err();
    eprintln!("without the mirror: {err}");
    let v = rt.version(VersionRequest::default()).await.unwrap();
    assert_eq!(v.runtime_name, "containerd");
}

/// Plants a node's files under `root`: every kind of dependency `migrate check` knows.
fn plant(root: &Path) {
    let files: &[(&str, &str)] = &[
        (
            "etc/systemd/system/backup.service",
            "[Unit]\nDescription=nightly backup\nAfter=network.target docker.service\n\n[Service]\nExecStart=/usr/bin/docker run --rm backup:latest\n",
        ),
        (
            "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            "[Service]\nEnvironment=\"KUBELET_EXTRA_ARGS=--container-runtime=docker --docker-endpoint=unix:///var/run/docker.sock\"\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_EXTRA_ARGS\n",
        ),
        (
            "var/lib/kubelet/kubeadm-flags.env",
            "KUBELET_KUBEADM_ARGS=\"--network-plugin=cni --pod-infra-container-image=registry.k8s.io/pause:3.9\"\n",
        ),
        (
            "var/lib/kubelet/config.yaml",
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncontainerRuntimeEndpoint: unix:///var/run/dockershim.sock\n",
        ),
        (
            "etc/cron.d/cleanup",
            "# prune\n0 3 * * * root docker system prune -af\n",
        ),
        (
            "opt/scripts/deploy.sh",
            "#!/bin/sh\nset -e\nid=$(docker ps -q --filter label=app=web)\necho \"$id\"\n",
        ),
        (
            "etc/fluent-bit/fluent-bit.conf",
            "[INPUT]\n    Name tail\n    Path /var/lib/docker/containers/*/*-json.log\n",
        ),
    ];
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

const MANIFEST: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: builder
spec:
  template:
    spec:
      containers:
      - name: builder
        image: docker:cli
        volumeMounts:
        - {name: sock, mountPath: /var/run/docker.sock}
      volumes:
      - name: sock
        hostPath:
          path: /var/run/docker.sock
";

/// Runs a pod whose container mounts `socket` (Docker's) and runs a `docker` command (a
/// script of that name, so the process's command name is `docker`); returns the pod ID.
async fn run_planted_pod(
    rt: &Arc<dyn RuntimeService>,
    image: &str,
    socket: &str,
    log_root: &str,
) -> (String, String) {
    let uid = anycri::builders::new_uid();
    let pod_config = PodSandboxConfigBuilder::new(format!("uses-docker-{}", &uid[..8]), "migrate")
        .uid(uid.clone())
        .log_directory(format!("{log_root}/migrate-{uid}"))
        .build();
    let pod = rt.run_pod(pod_config.clone()).await.unwrap();
    let script = "printf '#!/bin/sh\\nwhile true; do sleep 1; done\\n' > /tmp/docker && chmod +x /tmp/docker && exec /tmp/docker";
    let c = rt
        .create_and_start_container(
            &pod,
            &pod_config,
            ContainerConfigBuilder::new("builder", image)
                .command(["sh", "-c", script])
                .mount(socket, "/var/run/docker.sock", false)
                .build(),
        )
        .await
        .unwrap();
    (pod, c)
}

fn findings(json: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v["findings"].as_array().cloned().unwrap_or_default()
}

fn has(findings: &[Value], category: &str, severity: &str, needle: &str) -> bool {
    findings.iter().any(|f| {
        f["category"] == category
            && f["severity"] == severity
            && (f["location"].as_str().unwrap_or("").contains(needle)
                || f["what"].as_str().unwrap_or("").contains(needle))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_finds_planted_dependencies_on_containerd_and_the_shim() {
    let Some(v) = values(&[
        "CONTAINERD_ENDPOINT",
        "ANYCRI_DOCKER_ENDPOINT",
        "DOCKER_ENDPOINT",
        "ANYCRI_TEST_IMAGE",
        "ANYCRI_PAUSE_IMAGE",
        "ANYCRI_LOG_DIR",
        "ANYCRI_ENV_DIR",
    ]) else {
        return;
    };
    let socket = v["DOCKER_ENDPOINT"]
        .trim_start_matches("unix://")
        .to_string();
    let shim = format!(
        "{}?pause_image={}&state_dir={}/anycri-docker",
        v["ANYCRI_DOCKER_ENDPOINT"], v["ANYCRI_PAUSE_IMAGE"], v["ANYCRI_ENV_DIR"]
    );

    // A clean node (an empty root, no pod) has nothing.
    let clean = tempfile::tempdir().unwrap();
    let (code, out, err) = anycri(&[
        "-r",
        &v["CONTAINERD_ENDPOINT"],
        "migrate",
        "check",
        "--root",
        clean.path().to_str().unwrap(),
        "--docker-endpoint",
        "none",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(findings(&out).is_empty(), "a clean node: {out}");

    // Planted files and manifests.
    let root = tempfile::tempdir().unwrap();
    plant(root.path());
    let manifests = root.path().join("manifests");
    std::fs::create_dir_all(manifests.join("apps")).unwrap();
    std::fs::write(manifests.join("apps/builder.yaml"), MANIFEST).unwrap();
    let (code, out, err) = anycri(&[
        "-r",
        &v["CONTAINERD_ENDPOINT"],
        "migrate",
        "check",
        "--node",
        "--root",
        root.path().to_str().unwrap(),
        "--scripts",
        "/opt/scripts",
        "-f",
        manifests.to_str().unwrap(),
        "--docker-endpoint",
        "none",
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "blockers found: exit 1\n{out}{err}");
    let f = findings(&out);
    for (category, severity, needle) in [
        (
            "systemd-unit",
            "warning",
            "/etc/systemd/system/backup.service:3",
        ),
        (
            "systemd-unit",
            "warning",
            "/etc/systemd/system/backup.service:6",
        ),
        ("kubelet", "blocker", "10-kubeadm.conf:2"),
        ("kubelet", "blocker", "--docker-endpoint"),
        ("kubelet", "blocker", "kubeadm-flags.env:1"),
        ("kubelet", "blocker", "/var/lib/kubelet/config.yaml:3"),
        ("cron", "warning", "/etc/cron.d/cleanup:2"),
        ("script", "warning", "/opt/scripts/deploy.sh:3"),
        ("log-reader", "warning", "fluent-bit.conf:3"),
        ("manifest", "blocker", "builder.yaml:16"),
    ] {
        assert!(
            has(&f, category, severity, needle),
            "no {severity} {category} at {needle}:\n{out}"
        );
    }
    // Manifests alone, as CI gates them (dds -f): only the manifest.
    let (code, out, _) = anycri(&[
        "migrate",
        "check",
        "-f",
        manifests.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 1);
    assert_eq!(findings(&out).len(), 1, "{out}");
    let (code, _, _) = anycri(&[
        "migrate",
        "check",
        "-f",
        manifests.to_str().unwrap(),
        "--no-fail",
    ]);
    assert_eq!(code, 0);

    // Workloads and processes: a pod using the Docker socket on containerd and on the shim.
    for endpoint in [v["CONTAINERD_ENDPOINT"].clone(), shim.clone()] {
        let rt = anycri::connect(&endpoint).await.unwrap();
        rt.image
            .pull_image_if_absent(&v["ANYCRI_TEST_IMAGE"], None)
            .await
            .unwrap();
        let (pod, container) = run_planted_pod(
            &rt.runtime,
            &v["ANYCRI_TEST_IMAGE"],
            &socket,
            &v["ANYCRI_LOG_DIR"],
        )
        .await;
        // Let the container's script start.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (code, out, err) = anycri(&[
            "-r",
            &endpoint,
            "migrate",
            "check",
            "--root",
            clean.path().to_str().unwrap(),
            "--docker-endpoint",
            &v["DOCKER_ENDPOINT"],
            "--format",
            "json",
        ]);
        // The processes are the host's: check them from the real /proc as well.
        let (_, procs, _) = anycri(&[
            "-r",
            &endpoint,
            "migrate",
            "check",
            "--root",
            "/",
            "--docker-endpoint",
            &v["DOCKER_ENDPOINT"],
            "--format",
            "json",
        ]);
        rt.runtime.remove_pod_with_containers(&pod).await.unwrap();
        assert_eq!(code, 1, "{endpoint}: {out}{err}");
        let f = findings(&out);
        let short = &container[..12];
        let workload: Vec<&Value> = f
            .iter()
            .filter(|x| {
                x["category"] == "workload" && x["location"].as_str().unwrap_or("").contains(short)
            })
            .collect();
        assert_eq!(
            workload.len(),
            1,
            "{endpoint}: one finding for the container, through the CRI or Docker, not both:\n{out}"
        );
        assert_eq!(workload[0]["severity"], "blocker");
        assert!(
            workload[0]["what"].as_str().unwrap().contains(&socket),
            "{out}"
        );
        let p = findings(&procs);
        assert!(
            p.iter().any(|x| x["category"] == "process"
                && x["severity"] == "blocker"
                && x["location"].as_str().unwrap_or("").contains(short)),
            "{endpoint}: the container's `docker` process:\n{procs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_compatible_commands_match_docker_on_the_shim() {
    let Some(v) = values(&[
        "ANYCRI_DOCKER_ENDPOINT",
        "DOCKER_ENDPOINT",
        "ANYCRI_TEST_IMAGE",
        "ANYCRI_PAUSE_IMAGE",
        "ANYCRI_LOG_DIR",
        "ANYCRI_ENV_DIR",
    ]) else {
        return;
    };
    let docker = &v["DOCKER_ENDPOINT"];
    let shim = format!(
        "{}?pause_image={}&state_dir={}/anycri-docker",
        v["ANYCRI_DOCKER_ENDPOINT"], v["ANYCRI_PAUSE_IMAGE"], v["ANYCRI_ENV_DIR"]
    );
    let connected = anycri::connect(&shim).await.unwrap();
    let rt = connected.runtime.clone();
    connected
        .image
        .pull_image_if_absent(&v["ANYCRI_TEST_IMAGE"], None)
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let uid = anycri::builders::new_uid();
    let pod_config = PodSandboxConfigBuilder::new(format!("compat-{}", &uid[..8]), "migrate")
        .uid(uid.clone())
        .label("app", "compat")
        .log_directory(format!("{}/compat-{uid}", v["ANYCRI_LOG_DIR"]))
        .build();
    let pod = rt.run_pod(pod_config.clone()).await.unwrap();
    let mut ids = Vec::new();
    for (name, cmd) in [
        ("web", "echo one; echo two; echo three; exec sleep 3600"),
        ("done", "echo bye; exit 3"),
    ] {
        let c = rt
            .create_and_start_container(
                &pod,
                &pod_config,
                ContainerConfigBuilder::new(name, &v["ANYCRI_TEST_IMAGE"])
                    .command(["sh", "-c", cmd])
                    .label("app", "compat")
                    .label("tier", name)
                    .mount(data.path().to_str().unwrap(), "/data", true)
                    .build(),
            )
            .await
            .unwrap();
        ids.push(c);
    }
    rt.wait_for_container_state(
        &ids[1],
        ContainerState::ContainerExited,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // ps with the flags scripts use: the same IDs as docker's.
    for filters in [
        vec!["--filter", "label=app=compat"],
        vec!["--filter", "label=app=compat", "--filter", "name=k8s_web_"],
        vec!["--filter", "label=tier"],
    ] {
        for all in [true, false] {
            let mut args = vec!["ps", "-q"];
            if all {
                args.push("-a");
            }
            args.extend(filters.iter().copied());
            let ours = anycri(&[&["-r", &shim, "docker"][..], &args[..]].concat()).1;
            let theirs = docker_raw(docker, &args).expect("docker");
            // Docker also lists the pause container for label filters the pod shares.
            let theirs: Vec<&str> = theirs.lines().filter(|id| !pod.starts_with(id)).collect();
            let mut ours: Vec<&str> = ours.lines().collect();
            let mut theirs = theirs;
            ours.sort();
            theirs.sort();
            assert_eq!(ours, theirs, "ps {args:?}");
        }
    }

    // inspect: the fields scripts read, field by field.
    for id in &ids {
        let (code, ours, err) = anycri(&["-r", &shim, "docker", "inspect", id]);
        assert_eq!(code, 0, "{err}");
        let ours: Value = serde_json::from_str::<Value>(&ours).unwrap()[0].clone();
        let theirs: Value =
            serde_json::from_str::<Value>(&docker_raw(docker, &["inspect", id]).expect("docker"))
                .unwrap()[0]
                .clone();
        for field in [
            "/Id",
            "/Name",
            "/State/Status",
            "/State/Running",
            "/State/Pid",
            "/State/ExitCode",
            "/Config/Image",
        ] {
            assert_eq!(ours.pointer(field), theirs.pointer(field), "{id} {field}");
        }
        for (k, val) in ours["Config"]["Labels"].as_object().unwrap() {
            assert_eq!(
                Some(val),
                theirs["Config"]["Labels"].get(k),
                "{id} label {k}"
            );
        }
        let mount = |m: &Value| {
            (
                m["Source"].as_str().unwrap_or("").to_string(),
                m["Destination"].as_str().unwrap_or("").to_string(),
                m["RW"].as_bool(),
            )
        };
        let data_mount = |v: &Value| {
            v["Mounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(mount)
                .find(|m| m.1 == "/data")
        };
        assert!(data_mount(&ours).is_some(), "{ours}");
        assert_eq!(
            data_mount(&ours),
            data_mount(&theirs),
            "{id} the /data mount"
        );
        // -f with a Go template, as scripts use it.
        let (_, pid, _) = anycri(&["-r", &shim, "docker", "inspect", "-f", "{{.State.Pid}}", id]);
        let docker_pid =
            docker_raw(docker, &["inspect", "-f", "{{.State.Pid}}", id]).expect("docker");
        assert_eq!(pid.trim(), docker_pid.trim());
    }

    // logs --tail, with and without timestamps' content.
    let (_, ours, _) = anycri(&["-r", &shim, "docker", "logs", "--tail", "2", &ids[0]]);
    let theirs = docker_raw(docker, &["logs", "--tail", "2", &ids[0]]).expect("docker");
    assert_eq!(ours, theirs);
    assert_eq!(ours, "two\nthree\n");
    rt.remove_pod_with_containers(&pod).await.unwrap();
}
