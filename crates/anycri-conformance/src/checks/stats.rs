//! Container stats: one container, the list with no filter, with a label filter, and several
//! containers of one pod.

use std::collections::BTreeSet;

use super::prelude::*;

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!("stats::container", "ContainerStats of a running container has its ID, CPU and memory usage with timestamps, and the writable layer", container_stats)
            .critest("[k8s.io] Container runtime should support basic operations on container runtime should support listing container stats [Conformance]"),
        check!("stats::list_nil_filter", "ListContainerStats without a filter includes the run's running containers", list_nil)
            .critest("[k8s.io] Container runtime should support basic operations on container runtime should support listing stats for started containers when filter is nil [Conformance]"),
        check!("stats::list_label_filter", "ListContainerStats with a label selector returns exactly the matching containers", list_label)
            .critest("[k8s.io] Container runtime should support basic operations on container runtime should support listing stats for containers filtered by labels [Conformance]"),
        check!("stats::list_several_in_pod", "ListContainerStats filtered by pod returns each of its three containers", list_pod)
            .critest("[k8s.io] Container runtime should support basic operations on container runtime should support listing stats for three created containers when filter is nil. [Conformance]"),
    ]
}

pub(crate) fn check_stats(s: &ContainerStats, id: &str) -> CheckResult {
    let attrs = s
        .attributes
        .as_ref()
        .ok_or_else(|| Failure::Fail("stats without attributes".into()))?;
    ensure_eq!(attrs.id, id, "stats attributes id");
    let cpu = s
        .cpu
        .as_ref()
        .ok_or_else(|| Failure::Fail("stats without cpu".into()))?;
    ensure!(cpu.timestamp > 0, "cpu timestamp is {}", cpu.timestamp);
    ensure!(
        cpu.usage_core_nano_seconds.is_some(),
        "no cpu usage_core_nano_seconds"
    );
    let mem = s
        .memory
        .as_ref()
        .ok_or_else(|| Failure::Fail("stats without memory".into()))?;
    ensure!(mem.timestamp > 0, "memory timestamp is {}", mem.timestamp);
    ensure!(
        mem.working_set_bytes.is_some_and(|w| w.value > 0),
        "memory working_set_bytes is {:?}",
        mem.working_set_bytes
    );
    Ok(())
}

async fn container_stats(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let s = t
        .rt()
        .container_stats(ContainerStatsRequest {
            container_id: r.container.clone(),
        })
        .await
        .step("ContainerStats")?
        .stats
        .ok_or_else(|| Failure::Fail("ContainerStats without stats".into()))?;
    check_stats(&s, &r.container)?;
    // Only its presence: runtimes refresh the writable layer's usage on their own schedule
    // (containerd every 10 s), so a fresh container may show zeros.
    let w = s
        .writable_layer
        .as_ref()
        .ok_or_else(|| Failure::Fail("no writable_layer".into()))?;
    ensure!(
        w.fs_id.as_ref().is_some_and(|f| !f.mountpoint.is_empty()),
        "writable layer without a filesystem: {w:?}"
    );
    Ok(())
}

fn ids(stats: &[ContainerStats]) -> BTreeSet<String> {
    stats
        .iter()
        .filter_map(|s| s.attributes.as_ref().map(|a| a.id.clone()))
        .collect()
}

async fn list_nil(t: TestContext) -> CheckResult {
    let a = t.run_sleeper().await?;
    let b = t.run_sleeper().await?;
    let stats = t
        .rt()
        .list_container_stats(ListContainerStatsRequest { filter: None })
        .await
        .step("ListContainerStats")?
        .stats;
    let found = ids(&stats);
    for id in [&a.container, &b.container] {
        ensure!(
            found.contains(id),
            "container {id} missing from the unfiltered stats"
        );
    }
    for s in stats
        .iter()
        .filter(|s| s.attributes.as_ref().is_some_and(|x| x.id == a.container))
    {
        check_stats(s, &a.container)?;
    }
    Ok(())
}

async fn list_label(t: TestContext) -> CheckResult {
    let pod = t.pod().build();
    let pod_id = t.run_pod(&pod).await?;
    let a = t
        .create_start(
            &pod_id,
            &pod,
            t.container().label("stats-pick", "yes").build(),
        )
        .await?;
    t.create_start(
        &pod_id,
        &pod,
        t.container().label("stats-pick", "no").build(),
    )
    .await?;
    let mut selector = t.labels();
    selector.insert("stats-pick".into(), "yes".into());
    let stats = t
        .rt()
        .list_container_stats(ListContainerStatsRequest {
            filter: Some(ContainerStatsFilter {
                label_selector: selector,
                ..Default::default()
            }),
        })
        .await
        .step("ListContainerStats")?
        .stats;
    ensure_eq!(
        ids(&stats),
        BTreeSet::from([a]),
        "containers in the label-filtered stats"
    );
    Ok(())
}

async fn list_pod(t: TestContext) -> CheckResult {
    let pod = t.pod().build();
    let pod_id = t.run_pod(&pod).await?;
    let mut want = BTreeSet::new();
    for _ in 0..3 {
        want.insert(t.create_start(&pod_id, &pod, t.container().build()).await?);
    }
    let stats = t
        .rt()
        .list_container_stats(ListContainerStatsRequest {
            filter: Some(ContainerStatsFilter {
                pod_sandbox_id: pod_id,
                ..Default::default()
            }),
        })
        .await
        .step("ListContainerStats")?
        .stats;
    ensure_eq!(ids(&stats), want, "containers in the pod-filtered stats");
    for s in &stats {
        let id = s
            .attributes
            .as_ref()
            .map(|a| a.id.clone())
            .unwrap_or_default();
        check_stats(s, &id)?;
    }
    Ok(())
}
