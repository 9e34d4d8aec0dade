//! Out of memory: a container over its memory limit is killed and reported as OOMKilled
//! with exit code 137.

use super::prelude::*;

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(
            "container::oom_killed",
            "a container exceeding its memory limit exits 137 with reason OOMKilled",
            oom_killed
        )
        .critest("[k8s.io] Container OOM runtime should output OOMKilled reason should terminate with exitCode 137 and reason OOMKilled")
        .needs(&[Need::Processes]),
    ]
}

async fn oom_killed(t: TestContext) -> CheckResult {
    // The string doubles until the shell outgrows the limit.
    let config = t
        .container()
        .memory_limit(32 << 20)
        .command(["sh", "-c", "x=0123456789; while true; do x=$x$x; done"])
        .build();
    let r = t.run(t.pod().build(), config).await?;
    let s = t
        .wait_state(&r.container, ContainerState::ContainerExited)
        .await?;
    ensure_eq!(s.exit_code, 137, "exit code");
    ensure_eq!(s.reason.as_str(), "OOMKilled", "reason");
    Ok(())
}
