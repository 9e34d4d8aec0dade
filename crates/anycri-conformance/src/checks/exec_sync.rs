//! ExecSync: output and exit codes, timeouts (the timed-out process must be gone), errors on
//! containers that are not running or do not exist, large output.

use super::prelude::*;

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(
            "container::exec_sync::output_and_exit_code",
            "ExecSync returns stdout, stderr and the exit code separately",
            output
        )
        .critest("[k8s.io] Container runtime should support basic operations on container runtime should support execSync [Conformance]"),
        check!(
            "container::exec_sync::timeout",
            "ExecSync of a command outliving its timeout fails with DeadlineExceeded",
            timeout
        )
        .critest("[k8s.io] Container runtime should support basic operations on container runtime should support execSync with timeout [Conformance]"),
        check!(
            "container::exec_sync::timeout_kills_process",
            "the process of a timed-out ExecSync is gone afterwards (ps in the container)",
            timeout_kills
        )
        .needs(&[Need::Processes]),
        check!(
            "container::exec_sync::not_running_fails",
            "ExecSync in an exited container fails",
            not_running
        ),
        check!(
            "container::exec_sync::unknown_container_not_found",
            "ExecSync in an unknown container is NotFound",
            unknown
        ),
        check!(
            "container::exec_sync::large_output",
            "ExecSync returns 1 MiB of output intact",
            large_output
        )
        .needs(&[Need::Processes]),
    ]
}

async fn output(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let out = t
        .exec(
            &r.container,
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
        )
        .await?;
    ensure_eq!(out.stdout_str(), "out\n", "stdout");
    ensure_eq!(out.stderr_str(), "err\n", "stderr");
    ensure_eq!(out.exit_code, 3, "exit code");
    let out = t.exec(&r.container, &["echo", "hello"]).await?;
    ensure_eq!(
        (out.stdout_str().as_str(), out.exit_code),
        ("hello\n", 0),
        "echo hello"
    );
    Ok(())
}

async fn exec_with_timeout(
    t: &TestContext,
    id: &str,
    cmd: &[&str],
    secs: i64,
) -> Result<Error, Failure> {
    let res = t
        .rt()
        .exec_sync(ExecSyncRequest {
            container_id: id.to_owned(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: secs,
        })
        .await;
    expect_err(res, &format!("ExecSync {cmd:?} with a {secs} s timeout"))
}

async fn timeout(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let e = exec_with_timeout(&t, &r.container, &["sleep", "60"], 1).await?;
    ensure_eq!(
        e.kind(),
        ErrorKind::DeadlineExceeded,
        "error category ({e})"
    );
    Ok(())
}

async fn timeout_kills(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    // A distinctive argument, so `ps` finds exactly this process.
    exec_with_timeout(&t, &r.container, &["sh", "-c", "sleep 4242"], 1).await?;
    poll(
        Duration::from_secs(10),
        "`sleep 4242` still runs after its ExecSync timed out",
        || async {
            let ps = t.sh(&r.container, "ps -o pid,args").await?;
            Ok((!ps.contains("sleep 4242")).then_some(()))
        },
    )
    .await
}

async fn not_running(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    t.stop(&r.container).await?;
    expect_err(
        t.rt()
            .exec_collect(&r.container, &["echo", "x"], Duration::from_secs(10))
            .await,
        "ExecSync in an exited container",
    )?;
    Ok(())
}

async fn unknown(t: TestContext) -> CheckResult {
    let e = expect_err(
        t.rt()
            .exec_collect(
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                &["true"],
                Duration::from_secs(5),
            )
            .await,
        "ExecSync in an unknown container",
    )?;
    ensure!(e.is_not_found(), "expected NotFound, got {e}");
    Ok(())
}

async fn large_output(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let out = t
        .exec(
            &r.container,
            &["sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' a"],
        )
        .await?;
    ensure_eq!(
        out.exit_code,
        0,
        "exit code (stderr {:?})",
        out.stderr_str()
    );
    ensure_eq!(out.stdout.len(), 1 << 20, "stdout length");
    ensure!(out.stdout.iter().all(|&b| b == b'a'), "stdout corrupted");
    Ok(())
}
