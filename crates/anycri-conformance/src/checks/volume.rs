//! Volumes: host-path bind mounts (read-write, read-only, through a symlink), read-only
//! recursion (a mount beneath a read-only mount stays writable unless the mount asks for
//! recursive read-only) and mount propagation (private, host-to-container, bidirectional),
//! checked from both sides.

use std::path::{Path, PathBuf};

use super::prelude::*;

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!("volume::host_path", "a host directory mounted into the container is shared both ways", host_path)
            .critest("[k8s.io] Container runtime should support adding volume and device runtime should support starting container with volume [Conformance]")
            .needs(&[Need::Processes]),
        check!("volume::host_path_symlink", "a host path that is a symlink to a directory mounts the directory", host_path_symlink)
            .critest("[k8s.io] Container runtime should support adding volume and device runtime should support starting container with volume when host path is a symlink [Conformance]")
            .needs(&[Need::Processes]),
        check!("volume::readonly", "a read-only mount refuses writes", readonly)
            .needs(&[Need::Processes]),
        check!("volume::readonly_non_recursive", "a read-only mount is not recursive unless asked: a mount beneath it stays writable", readonly_non_recursive)
            .critest("[k8s.io] Container Mount Readonly runtime should support readonly mounts should support non-recursive readonly mounts")
            .needs(&[Need::Processes]),
        check!("volume::readonly_recursive", "a recursive read-only mount makes the mounts beneath it read-only too", readonly_recursive)
            .critest("[k8s.io] Container Mount Readonly runtime should support readonly mounts should support recursive readonly mounts")
            .needs(&[Need::Processes, Need::RecursiveReadOnlyMounts]),
        check!("volume::readonly_recursive_needs_readonly_and_private", "recursive_read_only without readonly, or with a propagation other than private, is refused (api.proto: it needs readonly=true and PRIVATE propagation)", readonly_recursive_refused)
            .critest("[k8s.io] Container Mount Readonly runtime should support readonly mounts should reject a recursive readonly mount with ReadOnly: false")
            .needs(&[Need::RecursiveReadOnlyMounts]),
        check!("volume::propagation::private", "with private propagation, a mount made on the host after start is not seen in the container", propagation_private)
            .critest("[k8s.io] Container Mount Propagation runtime should support mount propagation mount with 'rprivate' should not support propagation")
            .needs(&[Need::Processes]),
        check!("volume::propagation::host_to_container", "with host-to-container propagation, a mount made on the host after start is seen in the container", propagation_rslave)
            .critest("[k8s.io] Container Mount Propagation runtime should support mount propagation mount with 'rslave' should support propagation from host to container")
            .needs(&[Need::Processes]),
        check!("volume::propagation::bidirectional", "with bidirectional propagation, a mount made in a privileged container is seen on the host", propagation_rshared)
            .critest("[k8s.io] Container Mount Propagation runtime should support mount propagation mount with 'rshared' should support propagation from host to container and vice versa")
            .needs(&[Need::Processes]),
    ]
}

fn io(what: &str) -> impl Fn(std::io::Error) -> Failure + '_ {
    move |e| Failure::Fail(format!("{what}: {e}"))
}

async fn host_path(t: TestContext) -> CheckResult {
    let dir = t.host_dir()?;
    std::fs::write(dir.join("from-host"), "host\n").map_err(io("writing on the host"))?;
    let config = t
        .container()
        .mount(dir.to_string_lossy(), "/vol", false)
        .build();
    let r = t.run(t.pod().build(), config).await?;
    ensure_eq!(
        t.sh(&r.container, "cat /vol/from-host").await?,
        "host\n",
        "host file seen in the container"
    );
    t.sh(&r.container, "echo ctr > /vol/from-container").await?;
    let back =
        std::fs::read_to_string(dir.join("from-container")).map_err(io("reading on the host"))?;
    ensure_eq!(back, "ctr\n", "container file seen on the host");
    Ok(())
}

async fn host_path_symlink(t: TestContext) -> CheckResult {
    let dir = t.host_dir()?;
    let target = dir.join("target");
    std::fs::create_dir(&target).map_err(io("creating the target"))?;
    std::fs::write(target.join("file"), "through the link\n").map_err(io("writing"))?;
    let link = dir.join("link");
    std::os::unix::fs::symlink(&target, &link).map_err(io("creating the symlink"))?;
    let config = t
        .container()
        .mount(link.to_string_lossy(), "/vol", false)
        .build();
    let r = t.run(t.pod().build(), config).await?;
    ensure_eq!(
        t.sh(&r.container, "cat /vol/file").await?,
        "through the link\n",
        "file behind the symlink"
    );
    Ok(())
}

async fn readonly(t: TestContext) -> CheckResult {
    let dir = t.host_dir()?;
    let config = t
        .container()
        .mount(dir.to_string_lossy(), "/vol", true)
        .build();
    let r = t.run(t.pod().build(), config).await?;
    let out = t.exec(&r.container, &["touch", "/vol/x"]).await?;
    ensure!(!out.success(), "writing to a read-only mount succeeded");
    ensure!(!dir.join("x").exists(), "the file appeared on the host");
    Ok(())
}

/// A container with `dir` mounted read-only at /vol (`recursive` as asked), where `dir/sub`
/// is a tmpfs mounted on the host before the container starts.
async fn readonly_over_submount(t: &TestContext, recursive: bool) -> Result<Running, Failure> {
    let dir = t.host_dir()?;
    mount_tmpfs_on_host(t, &dir.join("sub"))?;
    let mut config = t.container().build();
    config.mounts.push(Mount {
        host_path: dir.to_string_lossy().into_owned(),
        container_path: "/vol".into(),
        readonly: true,
        recursive_read_only: recursive,
        ..Default::default()
    });
    t.run(t.pod().build(), config).await
}

async fn readonly_non_recursive(t: TestContext) -> CheckResult {
    let r = readonly_over_submount(&t, false).await?;
    let out = t.exec(&r.container, &["touch", "/vol/sub/x"]).await?;
    ensure!(
        out.success(),
        "writing to a mount beneath a non-recursive read-only mount failed: {}",
        out.stderr_str().trim()
    );
    Ok(())
}

async fn readonly_recursive(t: TestContext) -> CheckResult {
    let r = readonly_over_submount(&t, true).await?;
    let out = t.exec(&r.container, &["touch", "/vol/sub/x"]).await?;
    ensure!(
        !out.success(),
        "writing to a mount beneath a recursive read-only mount succeeded"
    );
    Ok(())
}

async fn readonly_recursive_refused(t: TestContext) -> CheckResult {
    let pod = t.pod().build();
    let pod_id = t.run_pod(&pod).await?;
    let dir = t.host_dir()?;
    let bad = [
        (
            "readonly false",
            false,
            MountPropagation::PropagationPrivate,
        ),
        (
            "host-to-container propagation",
            true,
            MountPropagation::PropagationHostToContainer,
        ),
        (
            "bidirectional propagation",
            true,
            MountPropagation::PropagationBidirectional,
        ),
    ];
    for (what, readonly, propagation) in bad {
        let mut config = t.container().build();
        config.mounts.push(Mount {
            host_path: dir.to_string_lossy().into_owned(),
            container_path: "/vol".into(),
            readonly,
            recursive_read_only: true,
            propagation: propagation as i32,
            ..Default::default()
        });
        if let Ok(created) = t.rt().create_container_in(&pod_id, &pod, config).await {
            fail!("CreateContainer accepted recursive_read_only with {what} (container {created})");
        }
    }
    Ok(())
}

fn run_host(cmd: &str, args: &[&str]) -> CheckResult {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| Failure::Fail(format!("running {cmd} {args:?} on the host: {e}")))?;
    ensure!(
        out.status.success(),
        "{cmd} {args:?} on the host failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// A host directory that is its own shared mount point (as critest sets it up), so that the
/// runtime may give it any propagation.
fn shared_dir(t: &TestContext) -> Result<PathBuf, Failure> {
    let dir = t.host_dir()?;
    let d = dir.to_string_lossy().into_owned();
    run_host("mount", &["--bind", &d, &d])?;
    t.register_host_mount(&dir);
    run_host("mount", &["--make-rshared", &d])?;
    Ok(dir)
}

fn mount_tmpfs_on_host(t: &TestContext, at: &Path) -> CheckResult {
    std::fs::create_dir_all(at).map_err(io("creating the mount point"))?;
    run_host(
        "mount",
        &["-t", "tmpfs", "anycri-conformance", &at.to_string_lossy()],
    )?;
    t.register_host_mount(at);
    std::fs::write(at.join("marker"), "mounted\n").map_err(io("writing into the host mount"))
}

async fn propagation(
    t: &TestContext,
    mode: MountPropagation,
    privileged: bool,
) -> Result<(PathBuf, Running), Failure> {
    let dir = shared_dir(t)?;
    std::fs::create_dir_all(dir.join("sub")).map_err(io("creating sub"))?;
    let mut config = t.container().privileged(privileged).build();
    config.mounts.push(Mount {
        host_path: dir.to_string_lossy().into_owned(),
        container_path: "/vol".into(),
        propagation: mode as i32,
        ..Default::default()
    });
    let mut pod = t.pod().build();
    if privileged && let Some(sc) = pod.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.privileged = true;
    }
    let r = t.run(pod, config).await?;
    Ok((dir, r))
}

async fn propagation_private(t: TestContext) -> CheckResult {
    let (dir, r) = propagation(&t, MountPropagation::PropagationPrivate, false).await?;
    mount_tmpfs_on_host(&t, &dir.join("sub"))?;
    let out = t.exec(&r.container, &["cat", "/vol/sub/marker"]).await?;
    ensure!(
        !out.success(),
        "a host mount made after start propagated into a private mount"
    );
    Ok(())
}

async fn propagation_rslave(t: TestContext) -> CheckResult {
    let (dir, r) = propagation(&t, MountPropagation::PropagationHostToContainer, false).await?;
    mount_tmpfs_on_host(&t, &dir.join("sub"))?;
    ensure_eq!(
        t.sh(&r.container, "cat /vol/sub/marker").await?,
        "mounted\n",
        "host mount seen in the container"
    );
    Ok(())
}

async fn propagation_rshared(t: TestContext) -> CheckResult {
    let (dir, r) = propagation(&t, MountPropagation::PropagationBidirectional, true).await?;
    t.register_host_mount(&dir.join("sub"));
    t.sh(
        &r.container,
        "mount -t tmpfs from-container /vol/sub && echo inner > /vol/sub/marker",
    )
    .await?;
    let seen = std::fs::read_to_string(dir.join("sub/marker")).unwrap_or_default();
    ensure_eq!(seen, "inner\n", "container mount seen on the host");
    Ok(())
}
