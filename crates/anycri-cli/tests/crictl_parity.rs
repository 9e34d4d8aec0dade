//! crictl's verbs in the `anycri` binary (runp, create, start, run, rmi, stats, statsp,
//! imagefsinfo, update, version, completion), each run as a process: their flags, output and
//! errors against `fake://` (a fake of its own per process); a whole round trip against one
//! fake served on a socket for the test (state shared by the processes); and the same round
//! trip on the live containerd from `scripts/runtime-env` (skips with a reason without it,
//! fails under ANYCRI_REQUIRE_LIVE=1).

use std::{path::Path, process::Command, sync::Arc};

use anycri::{RuntimeServiceExt, api::*, fake::FakeRuntime};
use anycri_testenv::{env_value, skip_or_fail};

/// Run `anycri ARGS`; (exit code, stdout, stderr).
fn anycri(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_anycri"))
        .args(args)
        .env_remove("CONTAINER_RUNTIME_ENDPOINT")
        .env_remove("IMAGE_SERVICE_ENDPOINT")
        .env_remove("CRICTL_CREDS")
        .env_remove("CRICTL_AUTH")
        .env_remove("CRICTL_PULL_TIMEOUT")
        .output()
        .expect("run anycri");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `anycri ARGS` that must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    let (code, out, err) = anycri(args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

/// `anycri ARGS` that must fail with one error line containing `needle`.
fn fails(args: &[&str], needle: &str) {
    let (code, out, err) = anycri(args);
    assert_ne!(code, 0, "{args:?} succeeded: {out}");
    assert!(err.contains(needle), "{args:?}: {err}");
}

/// Same as [`anycri`], off the async runtime's threads.
async fn anycri_async(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        anycri(&args)
    })
    .await
    .unwrap()
}

/// [`ok`] off the async runtime's threads.
async fn ok_async(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (code, out, err) = anycri_async(args.clone()).await;
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn version_in_crictl_lines_json_and_yaml() {
    let out = ok(&["-r", "fake://", "version"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[0], "Version:  0.1.0");
    assert_eq!(lines[1], "RuntimeName:  anycri-fake");
    assert!(lines[2].starts_with("RuntimeVersion:  "), "{out}");
    assert_eq!(lines[3], "RuntimeApiVersion:  v1");
    let v = json(&ok(&["-r", "fake://", "-o", "json", "version"]));
    assert_eq!(v["runtime_name"], "anycri-fake");
    let yaml = ok(&["-r", "fake://", "version", "-o", "yaml"]);
    assert!(yaml.contains("runtime_name: anycri-fake"), "{yaml}");
}

#[test]
fn imagefsinfo_json_by_default_table_and_yaml() {
    let v = json(&ok(&["-r", "fake://", "imagefsinfo"]));
    assert_eq!(
        v["status"]["image_filesystems"][0]["fs_id"]["mountpoint"],
        "/fake/images"
    );
    assert!(v["status"]["container_filesystems"].is_array());
    let table = ok(&["-r", "fake://", "-o", "table", "imagefsinfo"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "Container Filesystem");
    assert!(lines[1].starts_with("TimeStamp[0]: "), "{table}");
    assert_eq!(lines[2], "Disk[0]: 0B");
    assert_eq!(lines[3], "Inodes[0]: 0");
    assert_eq!(lines[4], "Mountpoint[0]: /fake/containers");
    assert_eq!(lines[5], "Image Filesystem");
    assert_eq!(lines[9], "Mountpoint[0]: /fake/images");
    let yaml = ok(&["-r", "fake://", "imagefsinfo", "-o", "yaml"]);
    assert!(yaml.starts_with("status:"), "{yaml}");
}

#[test]
fn stats_and_statsp_headers_and_empty_lists() {
    let out = ok(&["-r", "fake://", "stats", "-s", "0"]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        [
            "CONTAINER",
            "NAME",
            "CPU",
            "%",
            "MEM",
            "DISK",
            "INODES",
            "SWAP"
        ]
    );
    let out = ok(&["-r", "fake://", "statsp", "--seconds", "0"]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["POD", "POD", "ID", "CPU", "%", "MEM"]
    );
    for cmd in ["stats", "statsp"] {
        assert_eq!(
            json(&ok(&["-r", "fake://", "-o", "json", cmd]))["stats"],
            serde_json::json!([])
        );
        assert_eq!(
            ok(&["-r", "fake://", "-o", "yaml", cmd]).trim(),
            "stats: []"
        );
    }
    fails(
        &["-r", "fake://", "stats", "--label", "novalue"],
        "key=value",
    );
    fails(&["-r", "fake://", "stats", "a", "b"], "unexpected argument");
}

#[test]
fn runp_create_and_run_read_crictl_configs() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let pod_json = write(
        dir.path(),
        "pod.json",
        &format!(
            r#"{{"metadata": {{"name": "web", "namespace": "default", "attempt": 1}},
                "log_directory": "{}", "labels": {{"app": "web"}}}}"#,
            logs.join("pod").display()
        ),
    );
    let pod_yaml = write(
        dir.path(),
        "pod.yaml",
        &format!(
            "metadata:\n  name: web\n  namespace: default\n  uid: u-1\nlog_directory: {}\n",
            logs.join("pod-yaml").display()
        ),
    );
    let ctr = write(
        dir.path(),
        "ctr.yaml",
        "metadata: {name: app}\nimage: {image: 'busybox:1.36'}\nlog_path: app/0.log\n",
    );
    // runp: an ID, and the pod's log directory made first, as the kubelet makes it.
    for pod in [&pod_json, &pod_yaml] {
        let id = ok(&["-r", "fake://", "runp", pod]);
        assert_eq!(id.lines().count(), 1, "{id}");
        assert!(!id.trim().is_empty());
    }
    assert!(logs.join("pod").is_dir() && logs.join("pod-yaml").is_dir());
    ok(&[
        "-r",
        "fake://",
        "runp",
        "--runtime",
        "runc",
        "-T",
        "5s",
        &pod_json,
    ]);
    // run: pod, pull (run's default), container, start; the container's log directory made.
    let id = ok(&["-r", "fake://", "run", &ctr, &pod_yaml]);
    assert_eq!(id.lines().count(), 1, "{id}");
    assert!(logs.join("pod-yaml/app").is_dir());
    ok(&[
        "-r",
        "fake://",
        "run",
        "--runtime",
        "runc",
        "--creds",
        "robot:pw",
        "--pull-timeout",
        "1m",
        &ctr,
        &pod_json,
    ]);
    // create needs the pod to exist (this process's fake has none).
    fails(
        &[
            "-r",
            "fake://",
            "create",
            "--with-pull",
            "nopod",
            &ctr,
            &pod_json,
        ],
        "not found",
    );

    // crictl's checks of the files, and the runtime's answers, as one error line each.
    let no_meta = write(dir.path(), "nometa.json", "{}");
    let no_ns = write(dir.path(), "nons.yaml", "metadata: {name: x}");
    let no_image = write(dir.path(), "noimage.yaml", "metadata: {name: x}");
    let broken = write(dir.path(), "broken.json", "{\"metadata\": ");
    for (args, needle) in [
        (vec!["runp", no_meta.as_str()], "metadata is not set"),
        (vec!["runp", no_ns.as_str()], "a name and a namespace"),
        (vec!["runp", broken.as_str()], "broken.json"),
        (vec!["runp", "/nonexistent/pod.json"], "not found"),
        (
            vec!["run", no_image.as_str(), pod_json.as_str()],
            "image.image is not set",
        ),
        (vec!["runp", "--runtime", "nope", pod_json.as_str()], "nope"),
        (
            vec![
                "run",
                "--no-pull",
                "--with-pull",
                ctr.as_str(),
                pod_json.as_str(),
            ],
            "cannot be used with",
        ),
        (
            vec![
                "run",
                "--creds",
                "a:b",
                "--auth",
                "x",
                ctr.as_str(),
                pod_json.as_str(),
            ],
            "cannot be used with",
        ),
    ] {
        let mut full = vec!["-r", "fake://"];
        full.extend(args.iter().copied());
        fails(&full, needle);
    }
    // crictl's `runp -r HANDLER` habit: -r is the endpoint here, and the error says so.
    fails(&["-r", "runc", "runp", &pod_json], "--runtime");
    // run without pulling: the fake has no such image.
    fails(
        &["-r", "fake://", "run", "--no-pull", &ctr, &pod_json],
        "busybox",
    );
}

#[test]
fn start_update_rmi_errors_and_usage() {
    for (args, needle) in [
        (vec!["start", "nope"], "not found"),
        (vec!["update", "--memory", "1000000", "nope"], "not found"),
        (vec!["rmi", "nope:1"], "no such image"),
        (vec!["rmi"], "required"),
        (vec!["start"], "required"),
        (vec!["update", "--cpu-share", "x", "id"], "invalid value"),
    ] {
        let mut full = vec!["-r", "fake://"];
        full.extend(args.iter().copied());
        fails(&full, needle);
    }
    // Nothing to prune or remove on an empty runtime is fine.
    assert_eq!(ok(&["-r", "fake://", "rmi", "--prune"]), "");
    assert_eq!(ok(&["-r", "fake://", "rmi", "-a"]), "");
    // Windows-only flags are accepted, said to be ignored.
    let (_, _, err) = anycri(&["-r", "fake://", "update", "--cpu-count", "2", "nope"]);
    assert!(err.contains("--cpu-count applies to Windows"), "{err}");
}

#[test]
fn completion_scripts_cover_every_command() {
    let bash = ok(&["completion"]);
    assert_eq!(bash, ok(&["completion", "bash"]), "bash is the default");
    assert!(bash.contains("complete -F _anycri"), "{bash}");
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&["completion", shell]);
        for word in [
            "runp",
            "imagefsinfo",
            "statsp",
            "cancel-timeout",
            "container-runtime-endpoint",
        ] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    assert!(ok(&["completion", "zsh"]).starts_with("#compdef anycri"));
    fails(&["completion", "tcsh"], "invalid value");
}

/// One fake served on a unix socket for the whole test, so each `anycri` process sees what
/// the previous one did: the commands' round trip without a live runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_on_a_served_fake() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("fake.sock");
    let fake = Arc::new(FakeRuntime::new());
    let server = anycri_server::CriServer::new(fake.clone(), fake.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(anycri_server::serve_unix(
        server,
        socket.clone(),
        Default::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let endpoint = format!("unix://{}", socket.display());
    let e = endpoint.as_str();
    let logs = dir.path().join("logs");
    // No UID in the file: create takes the running pod's.
    let pod_cfg = write(
        dir.path(),
        "pod.yaml",
        &format!(
            "metadata: {{name: rt, namespace: anycri-test}}\nlog_directory: {}\n",
            logs.display()
        ),
    );
    let ctr_cfg = write(
        dir.path(),
        "ctr.json",
        r#"{"metadata": {"name": "app"}, "image": {"image": "registry.example/app:1"},
            "log_path": "app/0.log", "labels": {"tier": "front"}}"#,
    );

    let pod = ok_async(&["-r", e, "runp", &pod_cfg])
        .await
        .trim()
        .to_owned();
    // create does not pull unless asked (crictl's default): the image is missing.
    let (code, _, err) = anycri_async(
        ["-r", e, "create", &pod, &ctr_cfg, &pod_cfg]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert_ne!(code, 0, "created without the image");
    assert!(err.contains("registry.example/app:1"), "{err}");
    let ctr = ok_async(&["-r", e, "create", "--with-pull", &pod, &ctr_cfg, &pod_cfg])
        .await
        .trim()
        .to_owned();
    assert!(logs.join("app").is_dir(), "the container's log directory");
    let status = fake.get_container_status(&ctr).await.unwrap();
    assert_eq!(
        status.image.as_ref().unwrap().user_specified_image,
        "registry.example/app:1"
    );
    let pod_uid = fake
        .get_pod_status(&pod)
        .await
        .unwrap()
        .metadata
        .unwrap()
        .uid;
    assert_eq!(status.labels["io.kubernetes.pod.uid"], pod_uid);
    assert_eq!(status.labels["tier"], "front");
    assert_eq!(ok_async(&["-r", e, "start", &ctr]).await.trim(), ctr);

    // stats: the running container with its name, CPU % and memory; JSON and YAML answers.
    let table = ok_async(&["-r", e, "stats", "-s", "1"]).await;
    let row = table.lines().nth(1).unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], "app", "{table}");
    assert!(cells[2].parse::<f64>().is_ok(), "{table}");
    assert_eq!(cells[3], "1.049MB", "{table}");
    let v = json(&ok_async(&["-r", e, "-o", "json", "stats", "--id", &ctr]).await);
    assert_eq!(v["stats"][0]["attributes"]["id"], ctr.as_str());
    let v = json(
        &ok_async(&[
            "-r",
            e,
            "-o",
            "json",
            "stats",
            "-p",
            &pod,
            "--label",
            "tier=front",
        ])
        .await,
    );
    assert_eq!(v["stats"].as_array().unwrap().len(), 1);
    let v = json(&ok_async(&["-r", e, "-o", "json", "stats", "--label", "tier=back"]).await);
    assert_eq!(v["stats"], serde_json::json!([]));
    let table = ok_async(&["-r", e, "statsp", "-s", "1", &pod]).await;
    assert!(
        table.lines().nth(1).is_some_and(|l| l.starts_with("rt ")),
        "{table}"
    );
    let yaml = ok_async(&["-r", e, "-o", "yaml", "statsp"]).await;
    assert!(yaml.contains(&pod), "{yaml}");

    // update: the resources the runtime then reports.
    assert_eq!(
        ok_async(&[
            "-r",
            e,
            "update",
            "--memory",
            "67108864",
            "--cpu-quota",
            "50000",
            "--cpu-period",
            "100000",
            "--cpuset-cpus",
            "0",
            "--oom-score-adj",
            "-5",
            &ctr,
        ])
        .await
        .trim(),
        ctr
    );
    let linux = fake
        .get_container_status(&ctr)
        .await
        .unwrap()
        .resources
        .and_then(|r| r.linux)
        .expect("resources");
    assert_eq!(
        (
            linux.memory_limit_in_bytes,
            linux.cpu_quota,
            linux.cpu_period
        ),
        (67108864, 50000, 100000)
    );
    assert_eq!((linux.cpuset_cpus.as_str(), linux.oom_score_adj), ("0", -5));

    // imagefsinfo counts the pulled image; rmi --prune keeps it while a container uses it.
    let v = json(&ok_async(&["-r", e, "imagefsinfo"]).await);
    assert!(v["status"]["image_filesystems"][0]["used_bytes"]["value"].as_u64() > Some(0));
    assert_eq!(ok_async(&["-r", e, "rmi", "-q"]).await, "");
    ok_async(&["-r", e, "pull", "registry.example/spare:2"]).await;
    assert_eq!(
        ok_async(&["-r", e, "rmi", "--prune"]).await,
        "Deleted: registry.example/spare:2\n"
    );
    ok_async(&["-r", e, "rmp", &pod]).await;
    assert_eq!(
        ok_async(&["-r", e, "rmi", "registry.example/app:1"]).await,
        "Deleted: registry.example/app:1\n"
    );

    // run: pod and started container in one; the ID printed is the container's.
    let ctr = ok_async(&["-r", e, "run", &ctr_cfg, &pod_cfg])
        .await
        .trim()
        .to_owned();
    let status = fake.get_container_status(&ctr).await.unwrap();
    assert_eq!(status.state, ContainerState::ContainerRunning as i32);
    let _ = stop.send(());
    served.await.unwrap().unwrap();
}

/// The same round trip on the live containerd: runp, create --with-pull, start, stats,
/// statsp, update, imagefsinfo, rmi and run, each a process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_on_containerd() {
    let (Some(endpoint), Some(image), Some(pull_image), Some(log_root)) = (
        env_value("CONTAINERD_ENDPOINT"),
        env_value("ANYCRI_TEST_IMAGE"),
        env_value("ANYCRI_PULL_IMAGE"),
        env_value("ANYCRI_LOG_DIR"),
    ) else {
        return skip_or_fail("no containerd (CONTAINERD_ENDPOINT unknown)");
    };
    let conn = anycri::connect(&endpoint).await.unwrap();
    let e = endpoint.as_str();
    let dir = tempfile::tempdir().unwrap();
    let uid = anycri::builders::new_uid();
    let log_dir = format!("{log_root}/crictl-{uid}");
    // A cgroup parent of its own: containerd reports pod stats only with one (cgroupfs here;
    // a systemd slice where the runtime drives cgroups through systemd).
    let info = anycri::discover(conn.runtime.as_ref()).await.unwrap();
    let systemd = matches!(
        info.cgroup_driver,
        Some(anycri::capabilities::CgroupDriverKind::Systemd)
    );
    let parent = if systemd {
        format!("anycri_crictl-pod{}.slice", uid.replace('-', "_"))
    } else {
        format!("/anycri-crictl/pod{uid}")
    };
    let pod_cfg = write(
        dir.path(),
        "pod.json",
        &serde_json::json!({
            "metadata": {"name": "crictl", "namespace": "anycri-test", "uid": uid},
            "log_directory": log_dir,
            "linux": {"cgroup_parent": parent},
        })
        .to_string(),
    );
    let ctr_cfg = write(
        dir.path(),
        "ctr.yaml",
        &format!(
            "metadata:\n  name: app\nimage:\n  image: {image}\ncommand: [sh, -c, 'while :; do :; done']\nlog_path: app/0.log\n"
        ),
    );
    let pod = ok_async(&["-r", e, "runp", &pod_cfg])
        .await
        .trim()
        .to_owned();
    let outcome = tokio::spawn({
        let (endpoint, pod, pod_cfg, ctr_cfg, log_dir, pull_image) = (
            endpoint.clone(),
            pod.clone(),
            pod_cfg.clone(),
            ctr_cfg.clone(),
            log_dir.clone(),
            pull_image.clone(),
        );
        let runtime = conn.runtime.clone();
        async move {
            let e = endpoint.as_str();
            let ctr = ok_async(&["-r", e, "create", "--with-pull", &pod, &ctr_cfg, &pod_cfg])
                .await
                .trim()
                .to_owned();
            assert!(Path::new(&log_dir).join("app").is_dir());
            assert_eq!(ok_async(&["-r", e, "start", &ctr]).await.trim(), ctr);
            runtime
                .wait_for_container_state(
                    &ctr,
                    ContainerState::ContainerRunning,
                    std::time::Duration::from_secs(30),
                )
                .await
                .unwrap();
            // A busy loop: some CPU % over the sample, and memory.
            let table = ok_async(&["-r", e, "stats", "--id", &ctr]).await;
            let row: Vec<String> = table
                .lines()
                .nth(1)
                .unwrap_or_else(|| panic!("no row: {table}"))
                .split_whitespace()
                .map(String::from)
                .collect();
            assert_eq!(row[0], &ctr[..13], "{table}");
            assert_eq!(row[1], "app", "{table}");
            assert!(row[2].parse::<f64>().unwrap() > 0.0, "{table}");
            let v = json(&ok_async(&["-r", e, "-o", "json", "stats", "-p", &pod]).await);
            assert_eq!(v["stats"][0]["attributes"]["id"], ctr.as_str());
            let table = ok_async(&["-r", e, "statsp", &pod]).await;
            assert!(
                table
                    .lines()
                    .nth(1)
                    .is_some_and(|l| l.starts_with("crictl ")),
                "{table}"
            );
            assert_eq!(
                ok_async(&[
                    "-r",
                    e,
                    "update",
                    "--memory",
                    "134217728",
                    "--cpu-quota",
                    "20000",
                    "--cpu-period",
                    "100000",
                    &ctr,
                ])
                .await
                .trim(),
                ctr
            );
            let status = runtime
                .container_status(ContainerStatusRequest {
                    container_id: ctr.clone(),
                    verbose: false,
                })
                .await
                .unwrap()
                .status
                .unwrap();
            let linux = status.resources.and_then(|r| r.linux).expect("resources");
            assert_eq!(
                (linux.memory_limit_in_bytes, linux.cpu_quota),
                (134217728, 20000)
            );
            let v = json(&ok_async(&["-r", e, "imagefsinfo"]).await);
            assert!(
                v["status"]["image_filesystems"][0]["fs_id"]["mountpoint"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{v}"
            );
            ok_async(&["-r", e, "pull", &pull_image]).await;
            assert_eq!(
                ok_async(&["-r", e, "rmi", &pull_image]).await,
                format!("Deleted: {pull_image}\n")
            );
            let (code, _, err) = anycri_async(vec![
                "-r".into(),
                endpoint.clone(),
                "rmi".into(),
                pull_image,
            ])
            .await;
            assert!(code != 0 && err.contains("no such image"), "{err}");
        }
    })
    .await;
    let _ = conn.runtime.remove_pod_with_containers(&pod).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }

    // run: a second pod with its container, started; then rmp.
    let pod2_cfg = write(
        dir.path(),
        "pod2.yaml",
        &format!(
            "metadata: {{name: crictl-run, namespace: anycri-test}}\nlog_directory: {log_dir}-run\nlinux: {{cgroup_parent: '{parent}'}}\n"
        ),
    );
    let ctr = ok_async(&["-r", e, "run", &ctr_cfg, &pod2_cfg])
        .await
        .trim()
        .to_owned();
    let status = conn.runtime.get_container_status(&ctr).await.unwrap();
    let pod2 = conn
        .runtime
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                id: ctr.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .containers
        .first()
        .map(|c| c.pod_sandbox_id.clone())
        .unwrap();
    let removed = anycri_async(vec![
        "-r".into(),
        endpoint.clone(),
        "rmp".into(),
        pod2.clone(),
    ])
    .await;
    let _ = conn.runtime.remove_pod_with_containers(&pod2).await;
    assert_eq!(
        status.state,
        ContainerState::ContainerRunning as i32,
        "run did not start the container"
    );
    assert_eq!(removed.0, 0, "{removed:?}");
    assert!(
        conn.runtime
            .get_pod_status(&pod2)
            .await
            .unwrap_err()
            .is_not_found()
    );
    // The pods' cgroups under cgroupfs (containerd leaves the parent).
    if !systemd && let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for entry in entries.flatten() {
            let base = entry.path().join("anycri-crictl");
            let _ = std::fs::remove_dir(base.join(format!("pod{uid}")));
            let _ = std::fs::remove_dir(&base);
        }
        let _ = std::fs::remove_dir(
            Path::new("/sys/fs/cgroup/anycri-crictl").join(format!("pod{uid}")),
        );
    }
}
