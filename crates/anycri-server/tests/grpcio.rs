//! A grpc-core client against `serve_unix`: Python's grpcio with its default channel options
//! (`grpcio_client.py` beside this file). Since grpc-core 1.57 such a client sends the socket
//! path, percent-encoded, as `:authority`, which h2 alone refuses with a reset of every call;
//! the server answers it as containerd does (`anycri_server::AuthorityFix`).
//!
//! Needs python3 with grpcio (`python3 -m pip install grpcio`; .ci/run installs it): skips with
//! the reason without them, fails under `ANYCRI_REQUIRE_LIVE=1` (CI).

use std::{process::Stdio, sync::Arc, time::Duration};

use anycri_server::{CriServer, ServeOptions, serve_unix};

mod common;
use common::wait_for;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpcio_client.py");

/// grpcio's version, or why it cannot be used.
async fn grpcio() -> Result<String, String> {
    let probe = tokio::process::Command::new("python3")
        .args(["-c", "import grpc; print(grpc.__version__)"])
        .output()
        .await
        .map_err(|e| format!("python3 cannot be run: {e}"))?;
    if !probe.status.success() {
        return Err(format!(
            "python3 has no grpcio (`python3 -m pip install grpcio`): {}",
            String::from_utf8_lossy(&probe.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ));
    }
    Ok(String::from_utf8_lossy(&probe.stdout).trim().to_owned())
}

#[tokio::test]
async fn python_grpcio_with_default_options() {
    let version = match grpcio().await {
        Ok(version) => version,
        Err(why) => {
            assert!(
                !anycri_testenv::live_required(),
                "ANYCRI_REQUIRE_LIVE=1 but {why}"
            );
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    eprintln!("grpcio {version}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/cri.sock");
    let fake = Arc::new(anycri_fake::FakeRuntime::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_unix(
        CriServer::new(fake.clone(), fake),
        path.clone(),
        ServeOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    wait_for(&path).await;

    let run = tokio::process::Command::new("python3")
        .arg(SCRIPT)
        .arg(&path)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the grpcio client finished within a minute")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the grpcio client failed ({}):\n{stderr}\n{stdout}",
        output.status
    );
    eprintln!("{stdout}");

    let id = "docker.io/library/busybox:1.36";
    for want in [
        r#""version": [{"runtime_name": "anycri-fake", "api": "v1"}, {"runtime_name": "anycri-fake", "api": "v1"}]"#,
        r#""unknown_container": "NOT_FOUND""#,
        id,
    ] {
        assert!(stdout.contains(want), "{want} not in {stdout}");
    }
    let pulled = stdout
        .split(r#""image_ref": ""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| panic!("no image_ref in {stdout}"));
    assert!(
        stdout.contains(&format!(r#""id": "{pulled}""#)),
        "ListImages lists the pulled {pulled}: {stdout}"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
