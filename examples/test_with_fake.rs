//! Testing a tool with the in-memory fake runtime: the tool takes `&dyn RuntimeService`, so
//! its tests seed an `anycri::fake::FakeRuntime` and check what the tool did, with no
//! container runtime on the machine.
//!
//! The tool here is a health checker: it runs the probe command each running container
//! names in its `example.com/probe` label (ExecSync) and reports those whose probe fails or
//! hangs.
//!
//! ```sh
//! cargo test --example test_with_fake            # the tests at the bottom
//! cargo run --example test_with_fake             # the tool on a seeded fake
//! cargo run --example test_with_fake -- unix:///run/containerd/containerd.sock
//! ```

use std::time::Duration;

use anycri::{
    Result, RuntimeService, RuntimeServiceExt,
    api::{ContainerFilter, ContainerState, ContainerStateValue, ListContainersRequest},
};

/// The label that names a container's probe command (run with `sh -c`).
const PROBE_LABEL: &str = "example.com/probe";

/// A container whose probe failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    /// The container's name.
    pub name: String,
    /// Why: the probe's exit code and output, or its timeout.
    pub reason: String,
}

/// The tool: probe every running container that has a probe; the unhealthy ones, by name.
pub async fn unhealthy_containers(
    runtime: &dyn RuntimeService,
    probe_timeout: Duration,
) -> Result<Vec<Unhealthy>> {
    let running = ContainerFilter {
        state: Some(ContainerStateValue {
            state: ContainerState::ContainerRunning as i32,
        }),
        ..Default::default()
    };
    let containers = runtime
        .list_containers(ListContainersRequest {
            filter: Some(running),
        })
        .await?
        .containers;
    let mut unhealthy = Vec::new();
    for c in containers {
        let Some(probe) = c.labels.get(PROBE_LABEL) else {
            continue;
        };
        let name = c.metadata.map(|m| m.name).unwrap_or_default();
        let reason = match runtime
            .exec_collect(&c.id, &["sh", "-c", probe], probe_timeout)
            .await
        {
            Ok(out) if out.success() => continue,
            Ok(out) => format!(
                "exit {}: {}",
                out.exit_code,
                (out.stdout_str() + &out.stderr_str()).trim()
            ),
            Err(e) if e.kind() == anycri::ErrorKind::DeadlineExceeded => {
                format!("no answer within {probe_timeout:?}")
            }
            // The container went away meanwhile: nothing to report.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        unhealthy.push(Unhealthy { name, reason });
    }
    unhealthy.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(unhealthy)
}

#[tokio::main]
async fn main() -> Result<()> {
    let runtime = match std::env::args().nth(1) {
        Some(endpoint) => anycri::connect(&endpoint).await?.runtime,
        None => {
            // No endpoint: a fake with a few containers, as the tests seed it.
            let fake = anycri::fake::FakeRuntime::new();
            seed(
                &fake,
                &[("web", "true"), ("db", "echo disk full >&2; exit 1")],
            )
            .await?;
            std::sync::Arc::new(fake)
        }
    };
    let found = unhealthy_containers(&*runtime, Duration::from_secs(5)).await?;
    if found.is_empty() {
        println!("every probed container is healthy");
    }
    for u in found {
        println!("{}: {}", u.name, u.reason);
    }
    Ok(())
}

/// One pod with a running container per `(name, probe)`, as a test sets the scene.
async fn seed(fake: &anycri::fake::FakeRuntime, probes: &[(&str, &str)]) -> Result<()> {
    use anycri::{ContainerConfigBuilder, PodSandboxConfigBuilder};
    // Images the fake "has"; PullImage also works, for any reference.
    fake.add_image("busybox:1.36")?;
    let pod = PodSandboxConfigBuilder::new("probed", "default").build();
    let pod_id = fake.run_pod(pod.clone()).await?;
    for (name, probe) in probes {
        let mut container = ContainerConfigBuilder::new(*name, "busybox:1.36")
            // The fake runs no processes: `sleep` keeps the container running, `true` would
            // end it at once (its exec handler decides; see the hanging probe test below).
            .command(["sleep", "3600"]);
        if !probe.is_empty() {
            container = container.label(PROBE_LABEL, *probe);
        }
        fake.create_and_start_container(&pod_id, &pod, container.build())
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anycri::{
        ContainerConfigBuilder, PodSandboxConfigBuilder,
        fake::{ExecHandler, ExecResult, FakeRuntime, ShellExec},
    };

    const TIMEOUT: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn reports_failing_probes_with_their_output() {
        let fake = FakeRuntime::new();
        seed(
            &fake,
            &[
                ("web", "true"),
                ("db", "echo disk full >&2; exit 1"),
                ("cache", ""), // no probe: never probed
            ],
        )
        .await
        .unwrap();

        let found = unhealthy_containers(&fake, TIMEOUT).await.unwrap();
        assert_eq!(
            found,
            [Unhealthy {
                name: "db".into(),
                reason: "exit 1: disk full".into()
            }]
        );
    }

    #[tokio::test]
    async fn ignores_containers_that_are_not_running() {
        let fake = FakeRuntime::new();
        fake.add_image("busybox:1.36").unwrap();
        // A container whose main command ends at once has exited by the time we look.
        let pod = PodSandboxConfigBuilder::new("job", "default").build();
        let job = ContainerConfigBuilder::new("job", "busybox:1.36")
            .command(["true"])
            .label(PROBE_LABEL, "exit 1")
            .build();
        fake.run_pod_and_container(pod, job).await.unwrap();

        assert!(
            unhealthy_containers(&fake, TIMEOUT)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// The fake's exec handler decides what commands do: this one never answers the probe
    /// `hang`, as a deadlocked process would not.
    struct Hangs;

    #[async_trait::async_trait]
    impl ExecHandler for Hangs {
        async fn run(&self, container_id: &str, cmd: &[String]) -> ExecResult {
            if cmd.last().is_some_and(|c| c == "hang") {
                return ExecResult {
                    sleeping: Some(Duration::from_secs(3600)),
                    ..Default::default()
                };
            }
            ShellExec.run(container_id, cmd).await
        }
    }

    #[tokio::test]
    async fn reports_a_probe_that_hangs_as_unhealthy() {
        let fake = FakeRuntime::with_exec_handler(Hangs);
        seed(&fake, &[("api", "hang"), ("web", "true")])
            .await
            .unwrap();

        let found = unhealthy_containers(&fake, TIMEOUT).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "api");
        assert!(found[0].reason.starts_with("no answer"), "{found:?}");
    }
}
