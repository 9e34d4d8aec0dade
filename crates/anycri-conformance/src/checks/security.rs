//! Security context: host, pod and container namespaces (compared by their `/proc/*/ns`
//! links against the host's), users and groups, read-only rootfs, privileged, capabilities,
//! no_new_privs, seccomp, masked and read-only paths, sysctls, AppArmor, SELinux and user
//! namespaces where the host has them.

use super::prelude::*;

pub(crate) fn checks() -> Vec<Check> {
    let p = [Need::Processes];
    vec![
        check!("security::namespace::host_network", "a pod with host networking shares the host's network namespace", host_network)
            .critest("[k8s.io] Security Context NamespaceOption runtime should support HostNetwork is true").needs(&p),
        check!("security::namespace::host_pid", "a pod with host PID shares the host's PID namespace", host_pid)
            .critest("[k8s.io] Security Context NamespaceOption runtime should support HostPID").needs(&p),
        check!("security::namespace::host_ipc", "a pod with host IPC shares the host's IPC namespace", host_ipc)
            .critest("[k8s.io] Security Context NamespaceOption runtime should support HostIpc is true").needs(&p),
        check!("security::namespace::pod_network_and_ipc", "containers of a pod share a network and IPC namespace that is not the host's", pod_net_ipc)
            .critest("[k8s.io] Security Context NamespaceOption runtime should support HostNetwork is false").needs(&p),
        check!("security::namespace::pod_pid", "with pod-level PID, containers of a pod share one PID namespace and see each other's processes", pod_pid)
            .critest("[k8s.io] Security Context NamespaceOption runtime should support PodPID").needs(&p),
        check!("security::namespace::container_pid", "with container-level PID, each container has its own PID namespace with its command as PID 1", container_pid)
            .critest("[k8s.io] Security Context NamespaceOption runtime should support ContainerPID").needs(&p),
        check!("security::run_as_user", "run_as_user sets the process UID", run_as_user)
            .critest("[k8s.io] Security Context bucket runtime should support RunAsUser").needs(&p),
        check!("security::run_as_group", "run_as_group sets the primary GID", run_as_group)
            .critest("[k8s.io] Security Context bucket runtime should support RunAsGroup").needs(&p),
        check!("security::run_as_group_without_user_fails", "run_as_group without run_as_user or run_as_username is refused at CreateContainer", run_as_group_without_user)
            .critest("[k8s.io] Security Context bucket runtime should return error if RunAsGroup is set without RunAsUser"),
        check!("security::run_as_username", "run_as_username resolves the name in the image's /etc/passwd", run_as_username)
            .critest("[k8s.io] Security Context bucket runtime should support RunAsUserName").needs(&p),
        check!("security::supplemental_groups", "supplemental groups are added to the process", supplemental_groups)
            .critest("[k8s.io] Security Context bucket runtime should support SupplementalGroups").needs(&p),
        check!("security::status_user", "ContainerStatus.user reports the first process's uid, gid and supplementary groups (skipped where the runtime reports no user: the field is optional before CRI 1.31)", status_user)
            .needs(&p),
        check!("security::readonly_rootfs", "a read-only root filesystem refuses writes", readonly_rootfs)
            .critest("[k8s.io] Security Context bucket runtime should support that ReadOnlyRootfs is true").needs(&p),
        check!("security::privileged", "a privileged container may mount a filesystem", privileged)
            .critest("[k8s.io] Security Context bucket runtime should support Privileged is true").needs(&p),
        check!("security::unprivileged", "an unprivileged container may not mount a filesystem", unprivileged)
            .critest("[k8s.io] Security Context bucket runtime should support Privileged is false").needs(&p),
        check!("security::capabilities::add", "an added capability (NET_ADMIN) is in the effective set", cap_add)
            .critest("[k8s.io] Security Context bucket runtime should support adding capability").needs(&p),
        check!("security::capabilities::add_all", "adding ALL gives the container what the host can grant: it starts, with a non-empty bounding set", cap_add_all)
            .critest("[k8s.io] Security Context bucket runtime should support adding ALL capabilities").needs(&p),
        check!("security::capabilities::drop_all", "dropping ALL leaves the container an empty bounding set", cap_drop_all)
            .critest("[k8s.io] Security Context bucket runtime should support dropping ALL capabilities").needs(&p),
        check!("security::capabilities::drop", "a dropped capability (CHOWN) is not in the effective set, and chown fails", cap_drop)
            .critest("[k8s.io] Security Context bucket runtime should support dropping capability").needs(&p),
        check!("security::no_new_privs", "no_new_privs sets the process's NoNewPrivs flag", no_new_privs)
            .critest("[k8s.io] Security Context NoNewPrivs should not allow privilege escalation when true").needs(&p),
        check!("security::seccomp::runtime_default", "the RuntimeDefault seccomp profile puts a filter on the process", seccomp_default)
            .critest("[k8s.io] Security Context SeccompProfilePath should support seccomp default on the container")
            .needs(&[Need::Processes, Need::Seccomp]),
        check!("security::seccomp::unconfined", "the Unconfined seccomp profile leaves the process without a filter", seccomp_unconfined)
            .critest("[k8s.io] Security Context SeccompProfilePath should support seccomp unconfined on the container")
            .needs(&[Need::Processes, Need::Seccomp]),
        check!("security::seccomp::nil_is_unconfined", "a container without a seccomp profile runs unconfined (the kubelet asks for RuntimeDefault explicitly)", seccomp_nil)
            .critest("[k8s.io] Security Context SeccompProfilePath should support nil profile, which is unconfined")
            .needs(&[Need::Processes, Need::Seccomp]),
        check!("security::seccomp::privileged_ignores_profile", "a privileged container runs without seccomp, even with a Localhost profile that would block sethostname", seccomp_privileged)
            .critest("[k8s.io] Security Context SeccompProfilePath runtime should ignore a seccomp profile that blocks setting hostname when privileged")
            .needs(&[Need::Processes, Need::Seccomp]),
        check!("security::seccomp::localhost", "a Localhost seccomp profile from a host file blocks the syscalls it denies", seccomp_localhost)
            .critest("[k8s.io] Security Context SeccompProfilePath should support seccomp localhost profile on the container")
            .needs(&[Need::Processes, Need::Seccomp]),
        check!("security::masked_paths", "a masked path reads as empty", masked_paths)
            .critest("[k8s.io] Security Context bucket runtime should support MaskedPaths").needs(&p),
        check!("security::readonly_paths", "a read-only path refuses writes", readonly_paths)
            .critest("[k8s.io] Security Context bucket runtime should support ReadonlyPaths").needs(&p),
        check!("security::sysctls::safe", "a safe namespaced sysctl (kernel.shm_rmid_forced) is applied to the pod", sysctl_safe)
            .critest("[k8s.io] PodSandbox runtime should support sysctls should support safe sysctls").needs(&p),
        check!("security::sysctls::unsafe", "an unsafe namespaced sysctl (kernel.msgmax) is applied to the pod", sysctl_unsafe)
            .critest("[k8s.io] PodSandbox runtime should support sysctls should support unsafe sysctls").needs(&p),
        check!("security::apparmor::runtime_default", "the runtime's default AppArmor profile confines the process", apparmor)
            .critest("[k8s.io] AppArmor runtime should support apparmor field should enforce a apparmor_profile blocking writes")
            .needs(&[Need::Processes, Need::AppArmor]),
        check!("security::selinux::level", "the SELinux level of the pod is the process's level", selinux)
            .critest("[k8s.io] SELinux runtime should support selinux when single pod sandbox is not privileged should work with just selinux level set")
            .needs(&[Need::Processes, Need::SeLinux]),
        check!("security::user_namespace::pod", "a pod with a user namespace maps container root to the given host range", user_namespace)
            .critest("[k8s.io] Security Context UserNamespaces when Host idmap mount support is needed runtime should support NamespaceMode_POD")
            .needs(&[Need::Processes, Need::UserNamespaces]),
    ]
}

fn sc(c: &mut ContainerConfig) -> &mut LinuxContainerSecurityContext {
    c.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

fn pod_sc(p: &mut PodSandboxConfig) -> &mut LinuxSandboxSecurityContext {
    p.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

fn host_ns(kind: &str) -> Result<String, Failure> {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| Failure::Fail(format!("reading the host's {kind} namespace: {e}")))
}

async fn ns(t: &TestContext, id: &str, kind: &str) -> Result<String, Failure> {
    Ok(t.sh(id, &format!("readlink /proc/self/ns/{kind}"))
        .await?
        .trim()
        .to_owned())
}

async fn in_host_ns(t: TestContext, kind: &str, set: fn(&mut NamespaceOption)) -> CheckResult {
    let mut pod = t.pod().build();
    set(pod_sc(&mut pod)
        .namespace_options
        .get_or_insert_with(Default::default));
    // As the kubelet: no hostname for a pod on the host's network.
    if anycri::builders::is_host_network(&pod) {
        pod.hostname.clear();
    }
    let mut c = t.container().build();
    set(sc(&mut c)
        .namespace_options
        .get_or_insert_with(Default::default));
    let r = t.run(pod, c).await?;
    ensure_eq!(
        ns(&t, &r.container, kind).await?,
        host_ns(kind)?,
        "{kind} namespace of the container"
    );
    Ok(())
}

async fn host_network(t: TestContext) -> CheckResult {
    in_host_ns(t, "net", |n| n.network = NamespaceMode::Node as i32).await
}

async fn host_pid(t: TestContext) -> CheckResult {
    in_host_ns(t, "pid", |n| n.pid = NamespaceMode::Node as i32).await
}

async fn host_ipc(t: TestContext) -> CheckResult {
    in_host_ns(t, "ipc", |n| n.ipc = NamespaceMode::Node as i32).await
}

async fn two_in_pod(t: &TestContext, pid: NamespaceMode) -> Result<(String, String), Failure> {
    let mut pod = t.pod().build();
    pod_sc(&mut pod)
        .namespace_options
        .get_or_insert_with(Default::default)
        .pid = pid as i32;
    let pod_id = t.run_pod(&pod).await?;
    let mut ids = Vec::new();
    for arg in ["1111", "2222"] {
        let mut c = t.container().command(["sleep", &format!("3{arg}")]).build();
        sc(&mut c)
            .namespace_options
            .get_or_insert_with(Default::default)
            .pid = pid as i32;
        ids.push(t.create_start(&pod_id, &pod, c).await?);
    }
    Ok((ids[0].clone(), ids[1].clone()))
}

async fn pod_net_ipc(t: TestContext) -> CheckResult {
    let (a, b) = two_in_pod(&t, NamespaceMode::Container).await?;
    for kind in ["net", "ipc"] {
        let (na, nb) = (ns(&t, &a, kind).await?, ns(&t, &b, kind).await?);
        ensure_eq!(na, nb, "{kind} namespaces of two containers of a pod");
        ensure!(
            na != host_ns(kind)?,
            "the pod uses the host's {kind} namespace"
        );
    }
    Ok(())
}

async fn pod_pid(t: TestContext) -> CheckResult {
    let (a, b) = two_in_pod(&t, NamespaceMode::Pod).await?;
    ensure_eq!(
        ns(&t, &a, "pid").await?,
        ns(&t, &b, "pid").await?,
        "PID namespaces of two containers"
    );
    let ps = t.sh(&a, "ps -o args").await?;
    ensure!(
        ps.contains("sleep 32222"),
        "the other container's process is not visible: {ps:?}"
    );
    Ok(())
}

async fn container_pid(t: TestContext) -> CheckResult {
    let (a, b) = two_in_pod(&t, NamespaceMode::Container).await?;
    ensure!(
        ns(&t, &a, "pid").await? != ns(&t, &b, "pid").await?,
        "two containers share a PID namespace"
    );
    let init = t.sh(&a, "cat /proc/1/cmdline | tr '\\0' ' '").await?;
    ensure_eq!(init.trim(), "sleep 31111", "PID 1 of the container");
    Ok(())
}

async fn run_and_sh(
    t: &TestContext,
    pod: PodSandboxConfig,
    c: ContainerConfig,
    script: &str,
) -> Result<String, Failure> {
    let r = t.run(pod, c).await?;
    Ok(t.sh(&r.container, script).await?.trim().to_owned())
}

async fn run_as_user(t: TestContext) -> CheckResult {
    let out = run_and_sh(
        &t,
        t.pod().build(),
        t.container().run_as_user(1234).build(),
        "id -u",
    )
    .await?;
    ensure_eq!(out, "1234", "uid");
    Ok(())
}

async fn run_as_group(t: TestContext) -> CheckResult {
    let c = t.container().run_as_user(1234).run_as_group(5678).build();
    let out = run_and_sh(&t, t.pod().build(), c, "echo $(id -u) $(id -g)").await?;
    ensure_eq!(out, "1234 5678", "uid and gid");
    Ok(())
}

async fn run_as_group_without_user(t: TestContext) -> CheckResult {
    let pod = t.pod().build();
    let pod_id = t.run_pod(&pod).await?;
    let c = t.container().run_as_group(5678).build();
    match t
        .rt()
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id,
            config: Some(c),
            sandbox_config: Some(pod),
        })
        .await
    {
        Ok(created) => fail!(
            "CreateContainer accepted run_as_group without a user (container {})",
            created.container_id
        ),
        // critest requires a refusal, not its category (containerd 2.1 answers Unknown; the
        // Docker shim InvalidArgument).
        Err(_) => Ok(()),
    }
}

async fn run_as_username(t: TestContext) -> CheckResult {
    let mut c = t.container().build();
    sc(&mut c).run_as_username = "nobody".into();
    let out = run_and_sh(&t, t.pod().build(), c, "id -u").await?;
    ensure_eq!(out, "65534", "uid of nobody (from the image's /etc/passwd)");
    Ok(())
}

async fn supplemental_groups(t: TestContext) -> CheckResult {
    let mut c = t.container().run_as_user(1234).build();
    sc(&mut c).supplemental_groups = vec![4321, 8765];
    let out = run_and_sh(&t, t.pod().build(), c, "id -G").await?;
    for g in ["4321", "8765"] {
        ensure!(
            out.split_whitespace().any(|x| x == g),
            "group {g} missing from {out:?}"
        );
    }
    Ok(())
}

async fn status_user(t: TestContext) -> CheckResult {
    let mut c = t.container().run_as_user(1234).run_as_group(5678).build();
    sc(&mut c).supplemental_groups = vec![4321];
    let r = t.run(t.pod().build(), c).await?;
    let status = t
        .wait_state(&r.container, ContainerState::ContainerRunning)
        .await?;
    let Some(user) = status.user.and_then(|u| u.linux) else {
        return Err(Failure::Skip(
            "the runtime reports no ContainerStatus.user".into(),
        ));
    };
    ensure_eq!((user.uid, user.gid), (1234, 5678), "uid and gid");
    ensure!(
        user.supplemental_groups.contains(&4321),
        "supplemental group 4321 missing from {:?}",
        user.supplemental_groups
    );
    Ok(())
}

async fn readonly_rootfs(t: TestContext) -> CheckResult {
    let r = t
        .run(t.pod().build(), t.container().readonly_rootfs(true).build())
        .await?;
    let out = t
        .exec(&r.container, &["touch", "/conformance-file"])
        .await?;
    ensure!(
        !out.success(),
        "writing to a read-only root filesystem succeeded"
    );
    Ok(())
}

fn privileged_pod(t: &TestContext) -> PodSandboxConfig {
    let mut pod = t.pod().build();
    pod_sc(&mut pod).privileged = true;
    pod
}

async fn privileged(t: TestContext) -> CheckResult {
    let r = t
        .run(privileged_pod(&t), t.container().privileged(true).build())
        .await?;
    t.sh(
        &r.container,
        "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m",
    )
    .await?;
    Ok(())
}

async fn unprivileged(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let out = t
        .exec(
            &r.container,
            &["sh", "-c", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m"],
        )
        .await?;
    ensure!(!out.success(), "an unprivileged container mounted a tmpfs");
    Ok(())
}

async fn cap_eff(t: &TestContext, id: &str) -> Result<u64, Failure> {
    cap_set(t, id, "CapEff").await
}

/// A capability set (`CapEff`, `CapBnd`, ...) of the process of an exec in the container.
async fn cap_set(t: &TestContext, id: &str, set: &str) -> Result<u64, Failure> {
    let status = t.sh(id, "cat /proc/self/status").await?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(set)?.strip_prefix(':'))
        .ok_or_else(|| Failure::Fail(format!("no {set} in /proc/self/status")))?;
    u64::from_str_radix(hex.trim(), 16).map_err(|e| Failure::Fail(format!("{set} {hex:?}: {e}")))
}

async fn cap_add_all(t: TestContext) -> CheckResult {
    let r = t.run(t.pod().build(), with_caps(&t, &["ALL"], &[])).await?;
    ensure!(
        cap_set(&t, &r.container, "CapBnd").await? != 0,
        "the bounding set is empty although ALL was added"
    );
    Ok(())
}

async fn cap_drop_all(t: TestContext) -> CheckResult {
    let r = t.run(t.pod().build(), with_caps(&t, &[], &["ALL"])).await?;
    ensure_eq!(
        cap_set(&t, &r.container, "CapBnd").await?,
        0,
        "the bounding set after dropping ALL"
    );
    Ok(())
}

fn with_caps(t: &TestContext, add: &[&str], drop: &[&str]) -> ContainerConfig {
    let mut c = t.container().build();
    sc(&mut c).capabilities = Some(Capability {
        add_capabilities: add.iter().map(|s| s.to_string()).collect(),
        drop_capabilities: drop.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    });
    c
}

async fn cap_add(t: TestContext) -> CheckResult {
    let r = t
        .run(t.pod().build(), with_caps(&t, &["NET_ADMIN"], &[]))
        .await?;
    ensure!(
        cap_eff(&t, &r.container).await? & (1 << 12) != 0,
        "CAP_NET_ADMIN is not effective"
    );
    Ok(())
}

async fn cap_drop(t: TestContext) -> CheckResult {
    let r = t
        .run(t.pod().build(), with_caps(&t, &[], &["CHOWN"]))
        .await?;
    ensure!(
        cap_eff(&t, &r.container).await? & 1 == 0,
        "CAP_CHOWN is still effective"
    );
    let out = t
        .exec(
            &r.container,
            &["sh", "-c", "touch /tmp/f && chown 1234 /tmp/f"],
        )
        .await?;
    ensure!(!out.success(), "chown succeeded without CAP_CHOWN");
    Ok(())
}

async fn proc_status_field(t: &TestContext, id: &str, field: &str) -> Result<String, Failure> {
    let status = t.sh(id, "cat /proc/self/status").await?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| Failure::Fail(format!("no {field} in /proc/self/status")))
}

async fn no_new_privs(t: TestContext) -> CheckResult {
    let mut c = t.container().run_as_user(1234).build();
    sc(&mut c).no_new_privs = true;
    let r = t.run(t.pod().build(), c).await?;
    ensure_eq!(
        proc_status_field(&t, &r.container, "NoNewPrivs").await?,
        "1",
        "NoNewPrivs"
    );
    Ok(())
}

fn with_seccomp(t: &TestContext, profile: SecurityProfile) -> ContainerConfig {
    let mut c = t.container().build();
    sc(&mut c).seccomp = Some(profile);
    c
}

async fn seccomp_default(t: TestContext) -> CheckResult {
    let c = with_seccomp(
        &t,
        SecurityProfile {
            profile_type: security_profile::ProfileType::RuntimeDefault as i32,
            ..Default::default()
        },
    );
    let r = t.run(t.pod().build(), c).await?;
    ensure_eq!(
        proc_status_field(&t, &r.container, "Seccomp").await?,
        "2",
        "Seccomp mode (2 = filter)"
    );
    Ok(())
}

async fn seccomp_unconfined(t: TestContext) -> CheckResult {
    let c = with_seccomp(
        &t,
        SecurityProfile {
            profile_type: security_profile::ProfileType::Unconfined as i32,
            ..Default::default()
        },
    );
    let r = t.run(t.pod().build(), c).await?;
    ensure_eq!(
        proc_status_field(&t, &r.container, "Seccomp").await?,
        "0",
        "Seccomp mode (0 = none)"
    );
    Ok(())
}

async fn seccomp_nil(t: TestContext) -> CheckResult {
    let mut c = t.container().build();
    sc(&mut c).seccomp = None;
    let r = t.run(t.pod().build(), c).await?;
    ensure_eq!(
        proc_status_field(&t, &r.container, "Seccomp").await?,
        "0",
        "Seccomp mode without a profile (0 = none)"
    );
    Ok(())
}

async fn seccomp_localhost(t: TestContext) -> CheckResult {
    let dir = t.host_dir()?;
    let profile = dir.join("deny-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .map_err(|e| Failure::Fail(format!("writing the profile: {e}")))?;
    let c = with_seccomp(
        &t,
        SecurityProfile {
            profile_type: security_profile::ProfileType::Localhost as i32,
            localhost_ref: profile.to_string_lossy().into_owned(),
        },
    );
    let r = t.run(t.pod().build(), c).await?;
    let out = t.exec(&r.container, &["mkdir", "/tmp/denied"]).await?;
    ensure!(!out.success(), "mkdir succeeded under a profile denying it");
    ensure_eq!(
        proc_status_field(&t, &r.container, "Seccomp").await?,
        "2",
        "Seccomp mode"
    );
    Ok(())
}

async fn seccomp_privileged(t: TestContext) -> CheckResult {
    let dir = t.host_dir()?;
    let profile = dir.join("deny-sethostname.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["sethostname"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .map_err(|e| Failure::Fail(format!("writing the profile: {e}")))?;
    let mut c = with_seccomp(
        &t,
        SecurityProfile {
            profile_type: security_profile::ProfileType::Localhost as i32,
            localhost_ref: profile.to_string_lossy().into_owned(),
        },
    );
    sc(&mut c).privileged = true;
    let r = t.run(privileged_pod(&t), c).await?;
    t.sh(&r.container, "hostname anycri-renamed").await?;
    Ok(())
}

async fn masked_paths(t: TestContext) -> CheckResult {
    let mut c = t.container().build();
    sc(&mut c).masked_paths = vec!["/etc/passwd".into()];
    let r = t.run(t.pod().build(), c).await?;
    let out = t.exec(&r.container, &["cat", "/etc/passwd"]).await?;
    ensure!(
        out.stdout.is_empty(),
        "a masked path is readable: {:?}",
        out.stdout_str()
    );
    Ok(())
}

async fn readonly_paths(t: TestContext) -> CheckResult {
    let mut c = t.container().build();
    sc(&mut c).readonly_paths = vec!["/tmp".into()];
    let r = t.run(t.pod().build(), c).await?;
    let out = t.exec(&r.container, &["touch", "/tmp/x"]).await?;
    ensure!(!out.success(), "writing under a read-only path succeeded");
    Ok(())
}

async fn sysctl(t: TestContext, key: &str, value: &str) -> CheckResult {
    let mut pod = t.pod().build();
    pod.linux
        .get_or_insert_with(Default::default)
        .sysctls
        .insert(key.into(), value.into());
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let out = run_and_sh(&t, pod, t.container().build(), &format!("cat {path}")).await?;
    ensure_eq!(out, value, "{key} in the pod");
    Ok(())
}

async fn sysctl_safe(t: TestContext) -> CheckResult {
    sysctl(t, "kernel.shm_rmid_forced", "1").await
}

async fn sysctl_unsafe(t: TestContext) -> CheckResult {
    sysctl(t, "kernel.msgmax", "10000").await
}

async fn apparmor(t: TestContext) -> CheckResult {
    let mut c = t.container().build();
    sc(&mut c).apparmor = Some(SecurityProfile {
        profile_type: security_profile::ProfileType::RuntimeDefault as i32,
        ..Default::default()
    });
    let out = run_and_sh(&t, t.pod().build(), c, "cat /proc/self/attr/current").await?;
    ensure!(
        !out.starts_with("unconfined"),
        "the process is unconfined: {out:?}"
    );
    Ok(())
}

async fn selinux(t: TestContext) -> CheckResult {
    let mut pod = t.pod().build();
    pod_sc(&mut pod).selinux_options = Some(SeLinuxOption {
        level: "s0:c4,c5".into(),
        ..Default::default()
    });
    let out = run_and_sh(
        &t,
        pod,
        t.container().build(),
        "cat /proc/self/attr/current",
    )
    .await?;
    ensure!(
        out.contains("s0:c4,c5"),
        "the process's context {out:?} lacks the level s0:c4,c5"
    );
    Ok(())
}

async fn user_namespace(t: TestContext) -> CheckResult {
    let mapping = |host_id| IdMapping {
        host_id,
        container_id: 0,
        length: 65536,
    };
    let mut pod = t.pod().build();
    let userns = UserNamespace {
        mode: NamespaceMode::Pod as i32,
        uids: vec![mapping(100_000)],
        gids: vec![mapping(100_000)],
    };
    pod_sc(&mut pod)
        .namespace_options
        .get_or_insert_with(Default::default)
        .userns_options = Some(userns.clone());
    let mut c = t.container().build();
    sc(&mut c)
        .namespace_options
        .get_or_insert_with(Default::default)
        .userns_options = Some(userns);
    let out = run_and_sh(&t, pod, c, "cat /proc/self/uid_map").await?;
    let fields: Vec<&str> = out.split_whitespace().collect();
    ensure_eq!(fields, vec!["0", "100000", "65536"], "uid_map");
    Ok(())
}
