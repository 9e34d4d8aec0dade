//! Container logs: the CRI log format on disk (timestamp, stream, tag, content), and
//! ReopenContainerLog (log rotation).

use anycri::logs::{LogStream, parse_line};

use super::prelude::*;

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!("container::logs::cri_format", "the log file has one `<RFC 3339> <stream> <F|P> <content>` entry per line, stdout and stderr apart", cri_format)
            .critest("[k8s.io] Container runtime should support log runtime should support starting container with log [Conformance]"),
        check!("container::logs::reopen", "after the log file is renamed, ReopenContainerLog makes the runtime write to a new file at the log path", reopen)
            .critest("[k8s.io] Container runtime should support log runtime should support reopening container log [Conformance]")
            .needs(&[Need::Processes]),
        // api.proto lets a runtime either create a new log file and succeed or return an
        // error for a container that is not running.
        check!("container::logs::reopen_exited_fails", "ReopenContainerLog of an exited container fails", reopen_exited)
            .informational(),
    ]
}

async fn read_log(path: &str) -> Result<String, Failure> {
    match tokio::fs::read_to_string(path).await {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Failure::Fail(format!("reading {path}: {e}"))),
    }
}

async fn cri_format(t: TestContext) -> CheckResult {
    let config = t
        .container()
        .command(["sh", "-c", "echo hello; echo oops >&2"])
        .build();
    let r = t.run(t.pod().build(), config).await?;
    let s = t
        .wait_state(&r.container, ContainerState::ContainerExited)
        .await?;
    let text = poll(
        Duration::from_secs(10),
        "the log never got both lines",
        || async {
            let text = read_log(&s.log_path).await?;
            Ok((text.lines().count() >= 2).then_some(text))
        },
    )
    .await?;
    let mut seen = Vec::new();
    for line in text.lines() {
        let entry = parse_line(line).map_err(|e| Failure::Fail(format!("{e}")))?;
        entry.time().map_err(|e| Failure::Fail(format!("{e}")))?;
        ensure!(
            !entry.partial,
            "a whole line was logged as partial: {line:?}"
        );
        seen.push((entry.stream, entry.content.to_owned()));
    }
    seen.sort_by_key(|(s, _)| *s == LogStream::Stderr);
    ensure_eq!(
        seen,
        vec![
            (LogStream::Stdout, "hello".to_owned()),
            (LogStream::Stderr, "oops".to_owned())
        ],
        "log entries"
    );
    Ok(())
}

async fn reopen(t: TestContext) -> CheckResult {
    let config = t
        .container()
        .command([
            "sh",
            "-c",
            "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done",
        ])
        .build();
    let r = t.run(t.pod().build(), config).await?;
    let path = t.status(&r.container).await?.log_path;
    poll(
        Duration::from_secs(10),
        "the container never logged",
        || async { Ok((!read_log(&path).await?.is_empty()).then_some(())) },
    )
    .await?;
    let rotated = format!("{path}.rotated");
    std::fs::rename(&path, &rotated)
        .map_err(|e| Failure::Fail(format!("renaming the log: {e}")))?;
    t.rt()
        .reopen_container_log(ReopenContainerLogRequest {
            container_id: r.container.clone(),
        })
        .await
        .step("ReopenContainerLog")?;
    let text = poll(
        Duration::from_secs(10),
        "no new log file after ReopenContainerLog",
        || async {
            let text = read_log(&path).await?;
            Ok(text.lines().any(|l| l.contains("line")).then_some(text))
        },
    )
    .await?;
    for line in text.lines() {
        parse_line(line).map_err(|e| Failure::Fail(format!("new log file: {e}")))?;
    }
    Ok(())
}

async fn reopen_exited(t: TestContext) -> CheckResult {
    let r = t
        .run(t.pod().build(), t.container().command(["true"]).build())
        .await?;
    t.wait_state(&r.container, ContainerState::ContainerExited)
        .await?;
    expect_err(
        t.rt()
            .reopen_container_log(ReopenContainerLogRequest {
                container_id: r.container.clone(),
            })
            .await,
        "ReopenContainerLog of an exited container",
    )?;
    Ok(())
}
