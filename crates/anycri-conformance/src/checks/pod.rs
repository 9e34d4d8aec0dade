//! Pod sandbox lifecycle and attributes: run, stop, remove, status, list filters.

use super::prelude::*;

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!("pod::run_stop_remove", "a pod is READY after RunPodSandbox, NOTREADY after StopPodSandbox, gone after RemovePodSandbox", run_stop_remove)
            .critest("[k8s.io] PodSandbox runtime should support basic operations on PodSandbox runtime should support removing PodSandbox [Conformance]"),
        check!("pod::status_attributes", "PodSandboxStatus echoes metadata, labels and annotations, has a creation time and a pod IP", status_attributes)
            .critest("[k8s.io] PodSandbox runtime should support basic operations on PodSandbox runtime should support preserving PodSandbox attributes [Conformance]"),
        check!("pod::list_filters", "ListPodSandbox filters by ID, state and label selector", list_filters)
            .critest("[k8s.io] PodSandbox runtime should support basic operations on PodSandbox runtime should support running PodSandbox [Conformance]"),
        check!("pod::remove_with_running_container", "RemovePodSandbox of a ready pod removes its running containers too", remove_running),
        check!("pod::unknown_runtime_handler_fails", "RunPodSandbox with an unknown runtime handler fails and leaves no pod", unknown_handler),
        check!("pod::unknown_id_not_found", "PodSandboxStatus of an unknown pod is NotFound", unknown_id),
    ]
}

async fn run_stop_remove(t: TestContext) -> CheckResult {
    let config = t.pod().build();
    let id = t.run_pod(&config).await?;
    let s = t.pod_status(&id).await?;
    ensure_eq!(
        s.state,
        PodSandboxState::SandboxReady as i32,
        "state after RunPodSandbox"
    );
    t.rt()
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .step("StopPodSandbox")?;
    let s = t.pod_status(&id).await?;
    ensure_eq!(
        s.state,
        PodSandboxState::SandboxNotready as i32,
        "state after StopPodSandbox"
    );
    t.rt()
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .step("RemovePodSandbox")?;
    let e = expect_err(
        t.rt().get_pod_status(&id).await,
        "PodSandboxStatus after removal",
    )?;
    ensure!(
        e.is_not_found(),
        "PodSandboxStatus after removal: expected NotFound, got {e}"
    );
    let listed = t
        .rt()
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                id: id.clone(),
                ..Default::default()
            }),
        })
        .await
        .step("ListPodSandbox")?;
    ensure!(listed.items.is_empty(), "the removed pod is still listed");
    Ok(())
}

async fn status_attributes(t: TestContext) -> CheckResult {
    let config = t
        .pod()
        .label("conformance-key", "value-1")
        .annotation("conformance.anycri/annotation", "a-value")
        .build();
    let id = t.run_pod(&config).await?;
    let s = t.pod_status(&id).await?;
    ensure_eq!(s.id, id, "status id");
    ensure_eq!(s.metadata, config.metadata, "metadata");
    ensure_eq!(
        s.labels.get("conformance-key").map(String::as_str),
        Some("value-1"),
        "label"
    );
    ensure_eq!(
        s.annotations
            .get("conformance.anycri/annotation")
            .map(String::as_str),
        Some("a-value"),
        "annotation"
    );
    ensure!(s.created_at > 0, "created_at is {}", s.created_at);
    let ip = s.network.map(|n| n.ip).unwrap_or_default();
    ensure!(
        ip.parse::<std::net::IpAddr>().is_ok(),
        "a pod on the pod network has no valid IP: {ip:?}"
    );
    Ok(())
}

async fn list_filters(t: TestContext) -> CheckResult {
    let a_cfg = t.pod().label("pick", "a").build();
    let b_cfg = t.pod().label("pick", "b").build();
    let a = t.run_pod(&a_cfg).await?;
    let b = t.run_pod(&b_cfg).await?;
    t.rt()
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: b.clone(),
        })
        .await
        .step("StopPodSandbox")?;
    let list = |filter: PodSandboxFilter| async {
        let mut f = filter;
        f.label_selector.extend(t.labels());
        t.rt()
            .list_pod_sandbox(ListPodSandboxRequest { filter: Some(f) })
            .await
            .map(|r| {
                let mut ids: Vec<String> = r.items.into_iter().map(|p| p.id).collect();
                ids.sort();
                ids
            })
            .step("ListPodSandbox")
    };
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    ensure_eq!(
        list(PodSandboxFilter::default()).await?,
        both,
        "by the run's labels"
    );
    ensure_eq!(
        list(PodSandboxFilter {
            id: a.clone(),
            ..Default::default()
        })
        .await?,
        vec![a.clone()],
        "by ID"
    );
    ensure_eq!(
        list(PodSandboxFilter {
            id: a[..12].to_owned(),
            ..Default::default()
        })
        .await?,
        vec![a.clone()],
        "by ID prefix"
    );
    ensure_eq!(
        list(PodSandboxFilter {
            state: Some(PodSandboxStateValue {
                state: PodSandboxState::SandboxReady as i32
            }),
            ..Default::default()
        })
        .await?,
        vec![a.clone()],
        "by state READY"
    );
    ensure_eq!(
        list(PodSandboxFilter {
            state: Some(PodSandboxStateValue {
                state: PodSandboxState::SandboxNotready as i32
            }),
            ..Default::default()
        })
        .await?,
        vec![b.clone()],
        "by state NOTREADY"
    );
    let mut sel = PodSandboxFilter::default();
    sel.label_selector.insert("pick".into(), "b".into());
    ensure_eq!(list(sel).await?, vec![b], "by label");
    Ok(())
}

async fn remove_running(t: TestContext) -> CheckResult {
    let r = t.run_term_sleeper().await?;
    t.rt()
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: r.pod.clone(),
        })
        .await
        .step("RemovePodSandbox of a ready pod")?;
    let e = expect_err(
        t.rt().get_container_status(&r.container).await,
        "ContainerStatus of a container of a removed pod",
    )?;
    ensure!(
        e.is_not_found(),
        "expected NotFound for the container, got {e}"
    );
    let e = expect_err(
        t.rt().get_pod_status(&r.pod).await,
        "PodSandboxStatus after removal",
    )?;
    ensure!(e.is_not_found(), "expected NotFound for the pod, got {e}");
    Ok(())
}

async fn unknown_handler(t: TestContext) -> CheckResult {
    let config = t.pod().build();
    let r = t
        .rt()
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: "anycri-no-such-handler".into(),
        })
        .await;
    expect_err(r, "RunPodSandbox with handler anycri-no-such-handler")?;
    let left = t
        .rt()
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: t.labels(),
                ..Default::default()
            }),
        })
        .await
        .step("ListPodSandbox")?;
    ensure!(
        left.items.is_empty(),
        "a failed RunPodSandbox left a pod: {:?}",
        left.items
    );
    Ok(())
}

async fn unknown_id(t: TestContext) -> CheckResult {
    let e = expect_err(
        t.rt()
            .get_pod_status("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
            .await,
        "PodSandboxStatus of an unknown ID",
    )?;
    ensure!(e.is_not_found(), "expected NotFound, got {e}");
    Ok(())
}
