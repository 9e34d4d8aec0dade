//! Container lifecycle and attributes: create, start, stop and remove in every state, exit
//! codes and reasons, list filters, environment and working directory.

use super::prelude::*;

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!("container::create_start_stop_remove", "a container is CREATED, RUNNING, EXITED in turn and gone after RemoveContainer", lifecycle)
            .critest("[k8s.io] Container runtime should support basic operations on container runtime should support removing stopped container [Conformance]"),
        check!("container::status_attributes", "ContainerStatus echoes metadata, image, labels, annotations and the log path, with image_ref and timestamps", status_attributes)
            .critest("[k8s.io] Container runtime should support basic operations on container runtime should support preserving container attributes [Conformance]"),
        check!("container::list_filters", "ListContainers filters by ID, pod, state and label selector", list_filters)
            .critest("[k8s.io] Container runtime should support basic operations on container runtime should support creating container [Conformance]"),
        check!("container::exit_code_and_reason", "a command exiting 0 is Completed, one exiting 3 is Error with exit code 3", exit_codes)
            .critest("[k8s.io] Container runtime should support basic operations on container runtime should support starting container [Conformance]"),
        check!("container::remove_running", "RemoveContainer removes a running container", remove_running)
            .critest("[k8s.io] Container runtime should support basic operations on container runtime should support removing running container [Conformance]"),
        check!("container::remove_created", "RemoveContainer removes a container that never started", remove_created)
            .critest("[k8s.io] Container runtime should support basic operations on container runtime should support removing created container [Conformance]"),
        // The CRI says nothing of a second start (the kubelet never sends one); cri-dockerd
        // accepts it.
        check!("container::start_running_fails", "StartContainer of a running container fails", start_running_fails)
            .informational(),
        // containerd 2.x creates it; the CRI says nothing either way.
        check!("container::create_in_stopped_pod_fails", "CreateContainer in a stopped pod fails", create_in_stopped_pod)
            .informational(),
        // Every runtime refuses it, but the CRI does not say so (the kubelet pulls first).
        check!("container::missing_image_fails", "CreateContainer with an image that is not present fails and leaves nothing", missing_image)
            .informational(),
        check!("container::env_and_working_dir", "the container sees its environment variables and starts in its working directory", env_and_workdir)
            .needs(&[Need::Processes]),
        check!("container::command_and_args", "command and args replace the image's entrypoint and cmd, args appended to the command", command_and_args),
    ]
}

async fn lifecycle(t: TestContext) -> CheckResult {
    let pod = t.pod().build();
    let pod_id = t.run_pod(&pod).await?;
    let id = t.create(&pod_id, &pod, t.container().build()).await?;
    ensure_eq!(
        t.status(&id).await?.state,
        ContainerState::ContainerCreated as i32,
        "state after create"
    );
    t.start(&id).await?;
    ensure_eq!(
        t.status(&id).await?.state,
        ContainerState::ContainerRunning as i32,
        "state after start"
    );
    t.stop(&id).await?;
    let s = t.status(&id).await?;
    ensure_eq!(
        s.state,
        ContainerState::ContainerExited as i32,
        "state after stop"
    );
    ensure!(
        s.finished_at >= s.started_at && s.finished_at > 0,
        "finished_at {} before started_at {}",
        s.finished_at,
        s.started_at
    );
    t.rt()
        .remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .step("RemoveContainer")?;
    let e = expect_err(
        t.rt().get_container_status(&id).await,
        "ContainerStatus after removal",
    )?;
    ensure!(e.is_not_found(), "expected NotFound after removal, got {e}");
    Ok(())
}

async fn status_attributes(t: TestContext) -> CheckResult {
    let pod = t.pod().build();
    let config = t
        .container()
        .label("conformance-key", "v")
        .annotation("conformance.anycri/a", "b")
        .build();
    let r = t.run(pod, config.clone()).await?;
    let s = t.status(&r.container).await?;
    ensure_eq!(s.id, r.container, "id");
    ensure_eq!(s.metadata, config.metadata, "metadata");
    ensure_eq!(
        s.image.as_ref().map(|i| i.image.as_str()),
        Some(t.busybox()),
        "image"
    );
    ensure!(!s.image_ref.is_empty(), "image_ref is empty");
    ensure_eq!(
        s.labels.get("conformance-key").map(String::as_str),
        Some("v"),
        "label"
    );
    ensure_eq!(
        s.annotations
            .get("conformance.anycri/a")
            .map(String::as_str),
        Some("b"),
        "annotation"
    );
    ensure!(
        s.created_at > 0 && s.started_at >= s.created_at,
        "created_at {} started_at {}",
        s.created_at,
        s.started_at
    );
    let expected_log = std::path::Path::new(&r.pod_config.log_directory).join(&config.log_path);
    ensure_eq!(
        std::path::Path::new(&s.log_path),
        expected_log.as_path(),
        "log_path"
    );
    let listed = t
        .rt()
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                id: r.container.clone(),
                ..Default::default()
            }),
        })
        .await
        .step("ListContainers")?
        .containers;
    ensure_eq!(listed.len(), 1, "containers listed by ID");
    ensure_eq!(
        listed[0].pod_sandbox_id,
        r.pod,
        "pod_sandbox_id in the list"
    );
    ensure_eq!(listed[0].metadata, config.metadata, "metadata in the list");
    Ok(())
}

async fn list_filters(t: TestContext) -> CheckResult {
    let pod = t.pod().build();
    let pod_id = t.run_pod(&pod).await?;
    let other_pod = t.pod().build();
    let other_id = t.run_pod(&other_pod).await?;
    let a = t
        .create_start(&pod_id, &pod, t.container().label("pick", "a").build())
        .await?;
    let b = t
        .create(&pod_id, &pod, t.container().label("pick", "b").build())
        .await?;
    let c = t
        .create_start(
            &other_id,
            &other_pod,
            t.container().label("pick", "c").build(),
        )
        .await?;
    let list = |filter: ContainerFilter| async {
        let mut f = filter;
        f.label_selector.extend(t.labels());
        t.rt()
            .list_containers(ListContainersRequest { filter: Some(f) })
            .await
            .map(|r| {
                let mut ids: Vec<String> = r.containers.into_iter().map(|c| c.id).collect();
                ids.sort();
                ids
            })
            .step("ListContainers")
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    ensure_eq!(
        list(ContainerFilter::default()).await?,
        sorted(vec![a.clone(), b.clone(), c.clone()]),
        "by the run's labels"
    );
    ensure_eq!(
        list(ContainerFilter {
            id: a.clone(),
            ..Default::default()
        })
        .await?,
        vec![a.clone()],
        "by ID"
    );
    ensure_eq!(
        list(ContainerFilter {
            pod_sandbox_id: pod_id.clone(),
            ..Default::default()
        })
        .await?,
        sorted(vec![a.clone(), b.clone()]),
        "by pod"
    );
    ensure_eq!(
        list(ContainerFilter {
            state: Some(ContainerStateValue {
                state: ContainerState::ContainerCreated as i32
            }),
            ..Default::default()
        })
        .await?,
        vec![b.clone()],
        "by state CREATED"
    );
    ensure_eq!(
        list(ContainerFilter {
            pod_sandbox_id: pod_id,
            state: Some(ContainerStateValue {
                state: ContainerState::ContainerRunning as i32
            }),
            ..Default::default()
        })
        .await?,
        vec![a],
        "by pod and state RUNNING"
    );
    let mut f = ContainerFilter::default();
    f.label_selector.insert("pick".into(), "c".into());
    ensure_eq!(list(f).await?, vec![c], "by label");
    Ok(())
}

async fn exit_codes(t: TestContext) -> CheckResult {
    let pod = t.pod().build();
    let pod_id = t.run_pod(&pod).await?;
    for (script, code, reason) in [("exit 0", 0, "Completed"), ("exit 3", 3, "Error")] {
        let id = t
            .create_start(
                &pod_id,
                &pod,
                t.container().command(["sh", "-c", script]).build(),
            )
            .await?;
        let s = t.wait_state(&id, ContainerState::ContainerExited).await?;
        ensure_eq!(s.exit_code, code, "exit code of `{script}`");
        ensure_eq!(s.reason.as_str(), reason, "reason of `{script}`");
        ensure!(s.finished_at > 0, "finished_at not set for `{script}`");
    }
    Ok(())
}

async fn remove_running(t: TestContext) -> CheckResult {
    let r = t.run_term_sleeper().await?;
    t.rt()
        .remove_container(RemoveContainerRequest {
            container_id: r.container.clone(),
        })
        .await
        .step("RemoveContainer of a running container")?;
    let e = expect_err(
        t.rt().get_container_status(&r.container).await,
        "ContainerStatus after removal",
    )?;
    ensure!(e.is_not_found(), "expected NotFound, got {e}");
    Ok(())
}

async fn remove_created(t: TestContext) -> CheckResult {
    let pod = t.pod().build();
    let pod_id = t.run_pod(&pod).await?;
    let id = t.create(&pod_id, &pod, t.container().build()).await?;
    t.rt()
        .remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .step("RemoveContainer of a created container")?;
    let e = expect_err(
        t.rt().get_container_status(&id).await,
        "ContainerStatus after removal",
    )?;
    ensure!(e.is_not_found(), "expected NotFound, got {e}");
    Ok(())
}

async fn start_running_fails(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let res = t
        .rt()
        .start_container(StartContainerRequest {
            container_id: r.container.clone(),
        })
        .await;
    expect_err(res, "StartContainer of a running container")?;
    ensure_eq!(
        t.status(&r.container).await?.state,
        ContainerState::ContainerRunning as i32,
        "state after the refused start"
    );
    Ok(())
}

async fn create_in_stopped_pod(t: TestContext) -> CheckResult {
    let pod = t.pod().build();
    let pod_id = t.run_pod(&pod).await?;
    t.rt()
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .step("StopPodSandbox")?;
    let res = t
        .rt()
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id,
            config: Some(t.container().build()),
            sandbox_config: Some(pod),
        })
        .await;
    expect_err(res, "CreateContainer in a stopped pod")?;
    Ok(())
}

async fn missing_image(t: TestContext) -> CheckResult {
    let pod = t.pod().build();
    let pod_id = t.run_pod(&pod).await?;
    let image = format!(
        "{}-anycri-absent:never",
        t.busybox().split(':').next().unwrap_or("absent")
    );
    let res = t
        .rt()
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(t.container_on(&image).build()),
            sandbox_config: Some(pod),
        })
        .await;
    expect_err(res, &format!("CreateContainer with absent image {image}"))?;
    let left = t
        .rt()
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                pod_sandbox_id: pod_id,
                ..Default::default()
            }),
        })
        .await
        .step("ListContainers")?;
    ensure!(
        left.containers.is_empty(),
        "a failed CreateContainer left {:?}",
        left.containers
    );
    Ok(())
}

async fn env_and_workdir(t: TestContext) -> CheckResult {
    let config = t
        .container()
        .env("CONFORMANCE_VAR", "some value")
        .working_dir("/etc")
        .command(["sh", "-c", "pwd > /tmp/pwd; exec sleep 3600"])
        .build();
    let r = t.run(t.pod().build(), config).await?;
    let env = t.sh(&r.container, "echo \"$CONFORMANCE_VAR\"").await?;
    ensure_eq!(env.trim_end(), "some value", "CONFORMANCE_VAR seen by exec");
    let pwd = poll(
        Duration::from_secs(10),
        "the main process never wrote /tmp/pwd",
        || async {
            let out = t.exec(&r.container, &["cat", "/tmp/pwd"]).await?;
            Ok(out.success().then(|| out.stdout_str()))
        },
    )
    .await?;
    ensure_eq!(
        pwd.trim_end(),
        "/etc",
        "working directory of the main process"
    );
    Ok(())
}

async fn command_and_args(t: TestContext) -> CheckResult {
    let config = t
        .container()
        .command(["echo", "from-command"])
        .args(["and", "args"])
        .build();
    let r = t.run(t.pod().build(), config).await?;
    t.wait_state(&r.container, ContainerState::ContainerExited)
        .await?;
    let lines = poll(
        Duration::from_secs(10),
        "the container's output never reached its log",
        || async {
            let lines = t
                .rt()
                .read_container_log(&r.container)
                .await
                .step("reading the container log")?;
            Ok((!lines.is_empty()).then_some(lines))
        },
    )
    .await?;
    let text: Vec<&str> = lines.iter().map(|l| l.content.as_str()).collect();
    ensure_eq!(
        text,
        vec!["from-command and args"],
        "log of `echo from-command` + args"
    );
    Ok(())
}
