//! What critest does not check: GetContainerEvents, UpdateContainerResources,
//! PodSandboxStats/ListPodSandboxStats, ImageFsInfo, RuntimeConfig, the `Stream*` list RPCs,
//! CheckpointContainer, UpdatePodSandboxResources and the pod metrics RPCs.

use std::collections::BTreeSet;

use futures::StreamExt;

use super::prelude::*;

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!("events::container_lifecycle", "GetContainerEvents reports CREATED, STARTED, STOPPED and DELETED for a container, in order", events)
            .needs(&[Need::ContainerEvents]),
        check!("events::statuses", "A container's STARTED event carries its pod sandbox's status and the running container's own status, as the kubelet's evented PLEG reads them", events_statuses)
            .needs(&[Need::ContainerEvents]),
        check!("container::update_resources", "UpdateContainerResources changes a running container's memory limit", update_resources),
        check!("stats::pod_sandbox", "PodSandboxStats and ListPodSandboxStats report the pod with CPU, memory and its container", pod_stats)
            .needs(&[Need::PodSandboxStats]),
        check!("image::fs_info", "ImageFsInfo reports the image filesystem with its usage", image_fs_info),
        check!("runtime::runtime_config", "RuntimeConfig reports the cgroup driver", runtime_config)
            .needs(&[Need::RuntimeConfig]),
        check!("list::stream_rpcs", "StreamPodSandboxes, StreamContainers, StreamContainerStats and StreamImages return what the unary lists return", stream_lists)
            .needs(&[Need::ListStreaming]),
        check!("container::checkpoint", "CheckpointContainer writes a checkpoint archive of a running container", checkpoint)
            .needs(&[Need::Processes, Need::Checkpoint]),
        check!("pod::update_resources", "UpdatePodSandboxResources accepts new pod-level resources for a ready pod", update_pod_resources)
            .needs(&[Need::UpdatePodSandboxResources]),
        check!("stats::pod_sandbox_metrics", "ListMetricDescriptors and ListPodSandboxMetrics answer, the pod's metrics named by the descriptors", pod_metrics)
            .needs(&[Need::PodSandboxMetrics]),
    ]
}

async fn events(t: TestContext) -> CheckResult {
    let mut stream = t
        .rt()
        .get_container_events(GetEventsRequest {})
        .await
        .step("GetContainerEvents")?;
    let r = t.run_sleeper().await?;
    t.stop(&r.container).await?;
    t.rt()
        .remove_container(RemoveContainerRequest {
            container_id: r.container.clone(),
        })
        .await
        .step("RemoveContainer")?;
    let want = [
        ContainerEventType::ContainerCreatedEvent,
        ContainerEventType::ContainerStartedEvent,
        ContainerEventType::ContainerStoppedEvent,
        ContainerEventType::ContainerDeletedEvent,
    ];
    let mut seen = Vec::new();
    let collect = async {
        while let Some(ev) = stream.next().await {
            let ev = ev.step("the event stream")?;
            if ev.container_id == r.container {
                seen.push(ev.container_event_type);
                if ev.container_event_type == ContainerEventType::ContainerDeletedEvent as i32 {
                    break;
                }
            }
        }
        Ok::<_, Failure>(())
    };
    if tokio::time::timeout(Duration::from_secs(30), collect)
        .await
        .is_err()
    {
        fail!("no DELETED event within 30 s; events seen: {seen:?}");
    }
    ensure_eq!(
        seen,
        want.iter().map(|e| *e as i32).collect::<Vec<_>>(),
        "event types of the container"
    );
    Ok(())
}

async fn events_statuses(t: TestContext) -> CheckResult {
    let mut stream = t
        .rt()
        .get_container_events(GetEventsRequest {})
        .await
        .step("GetContainerEvents")?;
    let r = t.run_sleeper().await?;
    let started = async {
        while let Some(ev) = stream.next().await {
            let ev = ev.step("the event stream")?;
            if ev.container_id == r.container
                && ev.container_event_type == ContainerEventType::ContainerStartedEvent as i32
            {
                return Ok::<_, Failure>(Some(ev));
            }
        }
        Ok(None)
    };
    let Ok(found) = tokio::time::timeout(Duration::from_secs(30), started).await else {
        fail!("no STARTED event for the container within 30 s");
    };
    let Some(ev) = found? else {
        fail!("the event stream ended before the container's STARTED event");
    };
    let Some(pod) = ev.pod_sandbox_status.as_ref() else {
        fail!("the STARTED event has no pod sandbox status");
    };
    ensure_eq!(pod.id, r.pod, "pod sandbox ID in the event");
    let Some(own) = ev.containers_statuses.iter().find(|s| s.id == r.container) else {
        fail!(
            "the STARTED event's container statuses do not include the container ({} others)",
            ev.containers_statuses.len()
        );
    };
    ensure_eq!(
        own.state,
        ContainerState::ContainerRunning as i32,
        "the container's state in its STARTED event"
    );
    Ok(())
}

async fn update_resources(t: TestContext) -> CheckResult {
    let r = t
        .run(
            t.pod().build(),
            t.container().memory_limit(256 << 20).build(),
        )
        .await?;
    let new = LinuxContainerResources {
        memory_limit_in_bytes: 128 << 20,
        ..Default::default()
    };
    t.rt()
        .update_container_resources(UpdateContainerResourcesRequest {
            container_id: r.container.clone(),
            linux: Some(new),
            ..Default::default()
        })
        .await
        .step("UpdateContainerResources")?;
    if t.features().processes {
        let limit = if t.features().host.cgroup_v2 {
            t.sh(&r.container, "cat /sys/fs/cgroup/memory.max").await?
        } else {
            t.sh(
                &r.container,
                "cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
            )
            .await?
        };
        ensure_eq!(
            limit.trim(),
            (128u64 << 20).to_string(),
            "memory limit seen in the container's cgroup"
        );
    }
    let reported = t
        .status(&r.container)
        .await?
        .resources
        .and_then(|r| r.linux)
        .map(|l| l.memory_limit_in_bytes);
    if let Some(m) = reported {
        ensure_eq!(m, 128 << 20, "memory limit in ContainerStatus.resources");
    }
    Ok(())
}

async fn pod_stats(t: TestContext) -> CheckResult {
    let r = t
        .run(t.pod_with_cgroup_parent().build(), t.container().build())
        .await?;
    let s = t
        .rt()
        .pod_sandbox_stats(PodSandboxStatsRequest {
            pod_sandbox_id: r.pod.clone(),
        })
        .await
        .step("PodSandboxStats")?
        .stats
        .ok_or_else(|| Failure::Fail("PodSandboxStats without stats".into()))?;
    ensure_eq!(
        s.attributes.as_ref().map(|a| a.id.as_str()),
        Some(r.pod.as_str()),
        "stats attributes id"
    );
    let linux = s
        .linux
        .as_ref()
        .ok_or_else(|| Failure::Fail("no linux stats".into()))?;
    ensure!(
        linux.cpu.as_ref().is_some_and(|c| c.timestamp > 0),
        "no CPU usage"
    );
    ensure!(
        linux.memory.as_ref().is_some_and(|m| m.timestamp > 0),
        "no memory usage"
    );
    let ids: Vec<_> = linux
        .containers
        .iter()
        .filter_map(|c| c.attributes.as_ref().map(|a| a.id.clone()))
        .collect();
    ensure_eq!(
        ids,
        vec![r.container.clone()],
        "containers in the pod stats"
    );
    let listed = t
        .rt()
        .list_pod_sandbox_stats(ListPodSandboxStatsRequest {
            filter: Some(PodSandboxStatsFilter {
                label_selector: t.labels(),
                ..Default::default()
            }),
        })
        .await
        .step("ListPodSandboxStats")?
        .stats;
    let ids: Vec<_> = listed
        .iter()
        .filter_map(|s| s.attributes.as_ref().map(|a| a.id.clone()))
        .collect();
    ensure_eq!(ids, vec![r.pod], "pods in ListPodSandboxStats by label");
    Ok(())
}

async fn image_fs_info(t: TestContext) -> CheckResult {
    let info = t
        .img()
        .image_fs_info(ImageFsInfoRequest {})
        .await
        .step("ImageFsInfo")?;
    ensure!(!info.image_filesystems.is_empty(), "no image filesystems");
    for fs in &info.image_filesystems {
        ensure!(fs.timestamp > 0, "timestamp is {}", fs.timestamp);
        ensure!(
            fs.fs_id.as_ref().is_some_and(|f| !f.mountpoint.is_empty()),
            "no mountpoint: {fs:?}"
        );
        ensure!(
            fs.used_bytes.is_some_and(|u| u.value > 0),
            "used_bytes is {:?}",
            fs.used_bytes
        );
    }
    Ok(())
}

async fn runtime_config(t: TestContext) -> CheckResult {
    let rc = t
        .rt()
        .runtime_config(RuntimeConfigRequest {})
        .await
        .step("RuntimeConfig")?;
    let linux = rc
        .linux
        .ok_or_else(|| Failure::Fail("RuntimeConfig without linux".into()))?;
    ensure!(
        CgroupDriver::try_from(linux.cgroup_driver).is_ok(),
        "unknown cgroup driver {}",
        linux.cgroup_driver
    );
    Ok(())
}

async fn collect<T>(
    s: anycri::Result<anycri::CriStream<T>>,
    what: &str,
) -> Result<Vec<T>, Failure> {
    let mut s = s.step(what)?;
    let mut out = Vec::new();
    while let Some(item) = s.next().await {
        out.push(item.step(what)?);
    }
    Ok(out)
}

async fn stream_lists(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let pods: BTreeSet<String> = collect(
        t.rt()
            .stream_pod_sandboxes(StreamPodSandboxesRequest {
                filter: Some(PodSandboxFilter {
                    label_selector: t.labels(),
                    ..Default::default()
                }),
            })
            .await,
        "StreamPodSandboxes",
    )
    .await?
    .into_iter()
    .flat_map(|b| b.pod_sandboxes.into_iter().map(|p| p.id))
    .collect();
    ensure_eq!(
        pods,
        BTreeSet::from([r.pod.clone()]),
        "StreamPodSandboxes by label"
    );
    let ctrs: BTreeSet<String> = collect(
        t.rt()
            .stream_containers(StreamContainersRequest {
                filter: Some(ContainerFilter {
                    label_selector: t.labels(),
                    ..Default::default()
                }),
            })
            .await,
        "StreamContainers",
    )
    .await?
    .into_iter()
    .flat_map(|b| b.containers.into_iter().map(|c| c.id))
    .collect();
    ensure_eq!(
        ctrs,
        BTreeSet::from([r.container.clone()]),
        "StreamContainers by label"
    );
    let stats: BTreeSet<String> = collect(
        t.rt()
            .stream_container_stats(StreamContainerStatsRequest {
                filter: Some(ContainerStatsFilter {
                    id: r.container.clone(),
                    ..Default::default()
                }),
            })
            .await,
        "StreamContainerStats",
    )
    .await?
    .into_iter()
    .flat_map(|b| {
        b.container_stats
            .into_iter()
            .filter_map(|s| s.attributes.map(|a| a.id))
    })
    .collect();
    ensure_eq!(
        stats,
        BTreeSet::from([r.container.clone()]),
        "StreamContainerStats by ID"
    );
    let unary: BTreeSet<String> = t
        .img()
        .list_images(ListImagesRequest::default())
        .await
        .step("ListImages")?
        .images
        .into_iter()
        .map(|i| i.id)
        .collect();
    let streamed: BTreeSet<String> = collect(
        t.img().stream_images(StreamImagesRequest::default()).await,
        "StreamImages",
    )
    .await?
    .into_iter()
    .flat_map(|b| b.images.into_iter().map(|i| i.id))
    .collect();
    ensure!(
        streamed.contains(
            t.img()
                .find_image(t.busybox())
                .await
                .step("ImageStatus")?
                .map(|i| i.id)
                .unwrap_or_default()
                .as_str()
        ),
        "StreamImages lacks the busybox image"
    );
    ensure!(
        streamed.is_subset(&unary) || unary.is_subset(&streamed),
        "StreamImages {streamed:?} and ListImages {unary:?} disagree"
    );
    Ok(())
}

async fn checkpoint(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let dir = t.host_dir()?;
    let location = dir.join("checkpoint.tar");
    t.rt()
        .checkpoint_container(CheckpointContainerRequest {
            container_id: r.container,
            location: location.to_string_lossy().into_owned(),
            timeout: 60,
        })
        .await
        .step("CheckpointContainer")?;
    let len = std::fs::metadata(&location).map(|m| m.len()).unwrap_or(0);
    ensure!(len > 0, "no checkpoint archive at {}", location.display());
    Ok(())
}

async fn update_pod_resources(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    t.rt()
        .update_pod_sandbox_resources(UpdatePodSandboxResourcesRequest {
            pod_sandbox_id: r.pod,
            overhead: None,
            resources: Some(LinuxContainerResources {
                memory_limit_in_bytes: 512 << 20,
                ..Default::default()
            }),
        })
        .await
        .step("UpdatePodSandboxResources")?;
    Ok(())
}

async fn pod_metrics(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let descriptors = t
        .rt()
        .list_metric_descriptors(ListMetricDescriptorsRequest {})
        .await
        .step("ListMetricDescriptors")?
        .descriptors;
    let names: BTreeSet<String> = descriptors.into_iter().map(|d| d.name).collect();
    let metrics = t
        .rt()
        .list_pod_sandbox_metrics(ListPodSandboxMetricsRequest {})
        .await
        .step("ListPodSandboxMetrics")?
        .pod_metrics;
    let mine = metrics
        .iter()
        .find(|m| m.pod_sandbox_id == r.pod)
        .ok_or_else(|| Failure::Fail("no metrics for the pod".into()))?;
    for m in mine
        .metrics
        .iter()
        .chain(mine.container_metrics.iter().flat_map(|c| c.metrics.iter()))
    {
        ensure!(
            names.contains(&m.name),
            "metric {} has no descriptor",
            m.name
        );
    }
    Ok(())
}
