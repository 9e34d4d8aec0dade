//! Idempotence the kubelet relies on: stopping what is stopped or gone and removing what is
//! removed succeed and leave the state unchanged. The CRI says so for each of these RPCs
//! ("must not return an error if ... already been reclaimed / removed"), and critest checks
//! it; NotFound is a failure.

use super::prelude::*;

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(
            "idempotence::stop_container_twice",
            "StopContainer of an exited container succeeds and leaves it EXITED",
            stop_container_twice
        ),
        check!(
            "idempotence::stop_container_twice_keeps_finished_at",
            "a second StopContainer of an exited container leaves its finished_at as it was",
            stop_container_twice_keeps_finished_at
        )
        // CRI-O moves it; the CRI asks only for success.
        .informational(),
        check!(
            "idempotence::remove_container_twice",
            "RemoveContainer of a removed container succeeds",
            remove_container_twice
        ),
        check!(
            "idempotence::stop_pod_twice",
            "StopPodSandbox of a stopped pod succeeds",
            stop_pod_twice
        ),
        check!(
            "idempotence::remove_pod_twice",
            "RemovePodSandbox of a removed pod succeeds",
            remove_pod_twice
        ),
        check!(
            "idempotence::stop_removed_container",
            "StopContainer of a removed container succeeds",
            stop_removed_container
        ),
        check!(
            "idempotence::stop_removed_pod",
            "StopPodSandbox of a removed pod succeeds",
            stop_removed_pod
        ),
    ]
}

fn succeeds<T>(r: anycri::Result<T>, what: &str) -> CheckResult {
    match r {
        Ok(_) => Ok(()),
        Err(e) => Err(Failure::Fail(format!(
            "{what}: expected success (the CRI: nothing left to reclaim is not an error), got {} \
             error: {e}",
            e.kind().as_str()
        ))),
    }
}

/// Stop a sleeper, stop it again; its status before and after the second stop.
async fn stopped_twice(t: &TestContext) -> Result<(ContainerStatus, ContainerStatus), Failure> {
    let r = t.run_sleeper().await?;
    t.stop(&r.container).await?;
    let before = t.status(&r.container).await?;
    t.rt()
        .stop_container(StopContainerRequest {
            container_id: r.container.clone(),
            timeout: 0,
        })
        .await
        .step("second StopContainer")?;
    Ok((before, t.status(&r.container).await?))
}

async fn stop_container_twice(t: TestContext) -> CheckResult {
    let (_, after) = stopped_twice(&t).await?;
    ensure_eq!(after.state, ContainerState::ContainerExited as i32, "state");
    Ok(())
}

async fn stop_container_twice_keeps_finished_at(t: TestContext) -> CheckResult {
    let (before, after) = stopped_twice(&t).await?;
    ensure_eq!(
        after.finished_at,
        before.finished_at,
        "finished_at changed by the second stop"
    );
    Ok(())
}

async fn remove_container_twice(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    t.stop(&r.container).await?;
    for n in ["first", "second"] {
        t.rt()
            .remove_container(RemoveContainerRequest {
                container_id: r.container.clone(),
            })
            .await
            .step(&format!("{n} RemoveContainer"))?;
    }
    Ok(())
}

async fn stop_pod_twice(t: TestContext) -> CheckResult {
    let r = t.run_term_sleeper().await?;
    for n in ["first", "second"] {
        t.rt()
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: r.pod.clone(),
            })
            .await
            .step(&format!("{n} StopPodSandbox"))?;
    }
    ensure_eq!(
        t.pod_status(&r.pod).await?.state,
        PodSandboxState::SandboxNotready as i32,
        "pod state"
    );
    ensure_eq!(
        t.status(&r.container).await?.state,
        ContainerState::ContainerExited as i32,
        "container state after the pod stopped"
    );
    Ok(())
}

async fn remove_pod_twice(t: TestContext) -> CheckResult {
    let r = t.run_term_sleeper().await?;
    t.rt()
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: r.pod.clone(),
        })
        .await
        .step("StopPodSandbox")?;
    for n in ["first", "second"] {
        t.rt()
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: r.pod.clone(),
            })
            .await
            .step(&format!("{n} RemovePodSandbox"))?;
    }
    Ok(())
}

async fn stop_removed_container(t: TestContext) -> CheckResult {
    let r = t.run_term_sleeper().await?;
    t.rt()
        .remove_container(RemoveContainerRequest {
            container_id: r.container.clone(),
        })
        .await
        .step("RemoveContainer")?;
    succeeds(
        t.rt()
            .stop_container(StopContainerRequest {
                container_id: r.container.clone(),
                timeout: 0,
            })
            .await,
        "StopContainer of a removed container",
    )
}

async fn stop_removed_pod(t: TestContext) -> CheckResult {
    let config = t.pod().build();
    let id = t.run_pod(&config).await?;
    t.rt()
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .step("StopPodSandbox")?;
    t.rt()
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .step("RemovePodSandbox")?;
    succeeds(
        t.rt()
            .stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: id })
            .await,
        "StopPodSandbox of a removed pod",
    )
}
