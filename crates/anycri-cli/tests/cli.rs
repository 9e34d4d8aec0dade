//! The `anycri` binary end to end: against the fake (stateless commands and errors) and
//! against the live containerd from `scripts/runtime-env` (exec, logs, ps, rmp). The live part
//! skips with a reason without containerd, and fails under ANYCRI_REQUIRE_LIVE=1.

use anycri_testenv::env_value;
use std::{process::Command, time::Duration};

use anycri::{
    ContainerConfigBuilder, ImageServiceExt, PodSandboxConfigBuilder, RuntimeServiceExt,
    api::ContainerState,
};

fn anycri(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_anycri"))
        .args(args)
        .env_remove("CONTAINER_RUNTIME_ENDPOINT")
        .env_remove("IMAGE_SERVICE_ENDPOINT")
        .output()
        .expect("run anycri");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn info_and_lists_on_the_fake() {
    let (code, out, _) = anycri(&["-r", "fake://", "info"]);
    assert_eq!(code, 0);
    assert!(out.contains("anycri-fake"), "{out}");
    let (code, out, _) = anycri(&["-r", "fake://", "-o", "json", "ps", "-a"]);
    assert_eq!((code, out.trim()), (0, "[]"));
    let (code, out, _) = anycri(&["-r", "fake://", "pods"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("POD ID"), "{out}");
}

#[test]
fn errors_are_one_line_with_a_non_zero_exit() {
    for (args, needle) in [
        (vec!["-r", "bogus://x", "ps"], "invalid argument"),
        (vec!["-r", "unix://relative.sock", "ps"], "invalid argument"),
        (
            vec!["-r", "unix:///nonexistent/anycri.sock", "ps"],
            "unavailable",
        ),
        (
            vec!["-r", "fake://", "inspect", "nothing-here"],
            "not found",
        ),
        (vec!["-r", "fake://", "pods", "-l", "novalue"], "key=value"),
        (
            vec!["-r", "fake://", "exec", "--sync", "nope", "--", "true"],
            "not found",
        ),
    ] {
        let (code, out, err) = anycri(&args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("anycri: error: ") && err.contains(needle),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_containerd() {
    let Some(endpoint) = env_value("CONTAINERD_ENDPOINT") else {
        assert!(
            std::env::var("ANYCRI_REQUIRE_LIVE").as_deref() != Ok("1"),
            "live runtime required but CONTAINERD_ENDPOINT is unknown"
        );
        eprintln!("SKIPPED: no containerd (start it with `scripts/runtime-env up`)");
        return;
    };
    let image = env_value("ANYCRI_TEST_IMAGE").unwrap();
    // A directory of its own: the log path inside it is the same on every run.
    let log_dir = format!(
        "{}/cli-{}",
        env_value("ANYCRI_LOG_DIR").unwrap(),
        anycri::builders::new_uid()
    );
    let conn = anycri::connect(&endpoint).await.unwrap();
    conn.image.pull_image_if_absent(&image, None).await.unwrap();
    let pod = PodSandboxConfigBuilder::new("cli", "anycri-test")
        .log_directory(&log_dir)
        .build();
    let ctr = ContainerConfigBuilder::new("cli", &image)
        .command(["sh", "-c", "echo line-one; sleep 3600"])
        .build();
    let ids = conn.runtime.run_pod_and_container(pod, ctr).await.unwrap();
    let cid = ids.container_id.clone();
    let rt = conn.runtime.clone();
    let pod_id = ids.pod_sandbox_id.clone();
    let check = {
        let (rt, cid, endpoint, pod_id) =
            (rt.clone(), cid.clone(), endpoint.clone(), pod_id.clone());
        async move {
            rt.wait_for_container_state(
                &cid,
                ContainerState::ContainerRunning,
                Duration::from_secs(30),
            )
            .await
            .unwrap();
            let (code, out, _) = tokio::task::spawn_blocking({
                let (e, p) = (endpoint.clone(), pod_id.clone());
                move || anycri(&["-r", &e, "ps", "-p", &p])
            })
            .await
            .unwrap();
            assert_eq!(code, 0);
            assert!(out.contains(&cid[..13]), "{out}");
            let (code, out, err) = tokio::task::spawn_blocking({
                let (e, c) = (endpoint.clone(), cid.clone());
                move || {
                    anycri(&[
                        "-r",
                        &e,
                        "exec",
                        "--sync",
                        &c,
                        "--",
                        "sh",
                        "-c",
                        "echo hi; echo there >&2; exit 3",
                    ])
                }
            })
            .await
            .unwrap();
            assert_eq!((code, out.as_str(), err.as_str()), (3, "hi\n", "there\n"));
            let mut logged = String::new();
            for _ in 0..50 {
                let (code, out, _) = tokio::task::spawn_blocking({
                    let (e, c) = (endpoint.clone(), cid.clone());
                    move || anycri(&["-r", &e, "logs", &c])
                })
                .await
                .unwrap();
                assert_eq!(code, 0);
                logged = out;
                if logged.contains("line-one") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(logged, "line-one\n");

            // logs -f prints what is there, waits, and ends when the container stops.
            let mut follower = Command::new(env!("CARGO_BIN_EXE_anycri"))
                .args(["-r", &endpoint, "logs", "-f", "--tail", "5", &cid])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("run anycri logs -f");
            let mut reader = std::io::BufReader::new(follower.stdout.take().unwrap());
            let (first, reader) = tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
                (line, reader)
            })
            .await
            .unwrap();
            assert_eq!(first, "line-one\n");
            assert!(
                follower.try_wait().unwrap().is_none(),
                "logs -f ended while the container runs"
            );
            rt.stop_container(anycri::api::StopContainerRequest {
                container_id: cid.clone(),
                timeout: 0,
            })
            .await
            .unwrap();
            // A hang guard, not a timing check: a follower that never ends fails the test.
            let mut status = None;
            for _ in 0..600 {
                status = follower.try_wait().unwrap();
                if status.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let Some(status) = status else {
                follower.kill().ok();
                panic!("logs -f did not end after the container stopped");
            };
            assert!(status.success(), "{status}");
            let rest = std::io::read_to_string(reader).unwrap();
            assert_eq!(rest, "", "nothing more was logged");
            let (code, out, _) = tokio::task::spawn_blocking({
                let (e, p) = (endpoint.clone(), pod_id.clone());
                move || anycri(&["-r", &e, "rmp", &p])
            })
            .await
            .unwrap();
            assert_eq!(code, 0, "{out}");
        }
    };
    let outcome = tokio::spawn(check).await;
    let _ = rt.remove_pod_with_containers(&ids.pod_sandbox_id).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    let gone = rt.get_pod_status(&ids.pod_sandbox_id).await.unwrap_err();
    assert!(gone.is_not_found());
}

#[test]
fn auto_detection_names_every_place_tried() {
    let out = Command::new(env!("CARGO_BIN_EXE_anycri"))
        .arg("ps")
        .env_remove("CONTAINER_RUNTIME_ENDPOINT")
        .env_remove("IMAGE_SERVICE_ENDPOINT")
        .output()
        .unwrap();
    if out.status.success() {
        // This machine has a runtime at one of the usual sockets; nothing to check.
        return;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    for place in [
        "/run/containerd/containerd.sock",
        "/run/crio/crio.sock",
        "/var/run/cri-dockerd.sock",
    ] {
        assert!(err.contains(place), "{err}");
    }
    assert!(err.contains("CONTAINER_RUNTIME_ENDPOINT"), "{err}");
}

#[test]
fn auto_detection_honours_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_anycri"))
        .arg("info")
        .env("CONTAINER_RUNTIME_ENDPOINT", "fake://")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("anycri-fake"));
}

/// `anycri events` and `anycri watch` (events and relisting) against containerd, each a
/// process of its own, while this test runs a pod and a container through their lifecycle:
/// JSON lines with the container's four steps in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_watch_on_containerd() {
    let Some(endpoint) = env_value("CONTAINERD_ENDPOINT") else {
        assert!(
            std::env::var("ANYCRI_REQUIRE_LIVE").as_deref() != Ok("1"),
            "live runtime required but CONTAINERD_ENDPOINT is unknown"
        );
        eprintln!("SKIPPED: no containerd (start it with `scripts/runtime-env up`)");
        return;
    };
    let image = env_value("ANYCRI_TEST_IMAGE").unwrap();
    let conn = anycri::connect(&endpoint).await.unwrap();
    conn.image.pull_image_if_absent(&image, None).await.unwrap();
    let spawn = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_anycri"))
            .args(["-r", &endpoint, "-o", "json"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run anycri")
    };
    // They run until stopped (a runtime may still deliver an earlier test's events: only
    // this test's container counts). Their lines are collected as they come.
    let collect = |what: &'static str, mut child: std::process::Child| {
        let lines: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let stdout = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push(line);
            }
        });
        (what, child, lines)
    };
    let watchers = [
        collect("events", spawn(&["events"])),
        collect("watch", spawn(&["watch"])),
        collect(
            "watch --relist-only",
            spawn(&["watch", "--relist-only", "--relist-period", "100ms"]),
        ),
    ];
    // Let them subscribe and list.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log_dir = format!(
        "{}/cli-events-{}",
        env_value("ANYCRI_LOG_DIR").unwrap(),
        anycri::builders::new_uid()
    );
    let pod = PodSandboxConfigBuilder::new("cli-events", "anycri-test")
        .log_directory(&log_dir)
        .build();
    let ctr = ContainerConfigBuilder::new("cli", &image)
        .command(["sh", "-c", "sleep 3600"])
        .build();
    let ids = conn.runtime.run_pod_and_container(pod, ctr).await.unwrap();
    // Give the relisting watcher a period to see each state.
    tokio::time::sleep(Duration::from_millis(500)).await;
    conn.runtime
        .remove_pod_with_containers(&ids.pod_sandbox_id)
        .await
        .unwrap();
    // Each watcher reports this container's DELETED (within a generous bound).
    let deleted = |lines: &[String]| {
        lines.iter().any(|l| {
            l.contains(&ids.container_id)
                && l.contains("\"container_event_type\":\"CONTAINER_DELETED_EVENT\"")
        })
    };
    for _ in 0..200 {
        if watchers
            .iter()
            .all(|(_, _, lines)| deleted(&lines.lock().unwrap()))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (what, mut child, lines) in watchers {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{what} ended on its own"
        );
        child.kill().unwrap();
        let _ = child.wait();
        let stdout = lines.lock().unwrap().join("\n");
        let kinds: Vec<String> = stdout
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .unwrap_or_else(|e| panic!("{what}: {e}: {l}"))
            })
            .filter(|v| v["container_id"] == ids.container_id.as_str())
            .map(|v| v["container_event_type"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            kinds,
            [
                "CONTAINER_CREATED_EVENT",
                "CONTAINER_STARTED_EVENT",
                "CONTAINER_STOPPED_EVENT",
                "CONTAINER_DELETED_EVENT"
            ],
            "{what}: {stdout}"
        );
    }
}
