//! One owner per node: the process that writes the CRI log files of the node's containers
//! (and so resumes and reopens them) holds an exclusive lock on `<state_dir>/owner.lock`.
//! `anycri shim docker` takes it when it starts ([`NodeRole::Manager`]); other in-process
//! users of the shim (the `anycri -r docker://…` commands, tools embedding the backend)
//! write nothing on connect and never copy a log another process is copying. By default
//! ([`NodeRole::Auto`]) a process takes the lock only when it starts a container and nobody
//! holds it — a tool on a node without the daemon still gets its containers' logs — and
//! [`NodeRole::ReadOnly`] never takes it. The owner follows Docker's events, so a container
//! another process starts gets its log writer from the owner, and resumes every running
//! container's writer when it takes the lock. A node here is one state directory: containers
//! carry their creator's state directory ([`crate::labels::STATE_DIR_LABEL`]), and an owner
//! writes only the logs of its own directory's containers, so two shims with different state
//! directories on one dockerd never both copy a log. Taking the lock also collects what a
//! crash left in the state directory (orphaned checkpoints, temporary files).

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use anycri_core::{Error, ErrorKind, Result};
use bollard::query_parameters::{EventsOptions, InspectContainerOptions};
use futures::StreamExt;
use nix::fcntl::{Flock, FlockArg};

use crate::labels;
use crate::runtime::{DockerRuntime, Inner};

/// What a shim process does with the node's host state (its containers' log files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NodeRole {
    /// Own the node: take the lock when connecting (failing if another process holds it),
    /// resume every running container's log writer, and write the logs of containers
    /// anyone starts. What `anycri shim docker` does.
    Manager,
    /// Write nothing on connect; become the owner at the first StartContainer if nobody
    /// holds the lock, else leave the logs to the owner. The default.
    #[default]
    Auto,
    /// Never write logs (a tool that only reads).
    ReadOnly,
}

impl NodeRole {
    /// Parses `manager`, `auto` or `read-only`.
    pub fn parse(text: &str) -> Result<NodeRole> {
        match text {
            "manager" => Ok(NodeRole::Manager),
            "auto" => Ok(NodeRole::Auto),
            "read-only" | "readonly" => Ok(NodeRole::ReadOnly),
            other => Err(Error::invalid_argument(format!(
                "node role {other:?}: want manager, auto or read-only"
            ))),
        }
    }
}

/// The lock, held for the life of the process's runtime.
pub(crate) struct OwnerLock {
    _lock: Flock<std::fs::File>,
    path: PathBuf,
}

impl std::fmt::Debug for OwnerLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerLock")
            .field("path", &self.path)
            .finish()
    }
}

/// The state of ownership of one `DockerRuntime`: the lock once taken. Until then every
/// StartContainer tries again (one `flock`), so a process becomes the owner when the
/// previous one goes away.
#[derive(Debug, Default)]
pub(crate) struct Ownership {
    lock: tokio::sync::Mutex<Option<OwnerLock>>,
}

/// Takes `<dir>/owner.lock` without waiting; `Ok(None)` when another process holds it.
pub(crate) fn try_lock(dir: &Path) -> Result<Option<OwnerLock>> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::with_source(
            ErrorKind::Internal,
            format!("creating the state directory {}", dir.display()),
            e,
        )
    })?;
    set_mode(dir, 0o700);
    let path = dir.join("owner.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| {
            Error::with_source(
                ErrorKind::Internal,
                format!("opening {}", path.display()),
                e,
            )
        })?;
    set_mode(&path, 0o600);
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            // Who holds it, for the error others get.
            let _ = lock.set_len(0);
            let _ = lock.rewind();
            let _ = writeln!(lock, "{}", std::process::id());
            Ok(Some(OwnerLock { _lock: lock, path }))
        }
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(Error::with_source(
            ErrorKind::Internal,
            format!("locking {}", path.display()),
            e,
        )),
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// The pid written in the lock file by its holder.
pub(crate) fn holder(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("owner.lock"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl DockerRuntime {
    /// Whether this process writes the node's logs, deciding it on first use per the role:
    /// takes the lock (and starts following the node) when it may.
    pub(crate) async fn owns_logs(&self) -> bool {
        let inner = &self.inner;
        if inner.role == NodeRole::ReadOnly {
            return false;
        }
        let mut slot = inner.ownership.lock.lock().await;
        if slot.is_some() {
            return true;
        }
        match try_lock(&inner.state_dir) {
            Ok(Some(lock)) => {
                *slot = Some(lock);
                drop(slot);
                self.become_owner().await;
                true
            }
            Ok(None) => {
                tracing::debug!(
                    state_dir = %inner.state_dir.display(),
                    holder = ?holder(&inner.state_dir),
                    "another process writes this node's container logs; this one leaves them alone"
                );
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the node's owner lock; not writing logs");
                false
            }
        }
    }

    /// Manage the node from now on, explicitly: take the state directory's owner lock (or
    /// fail with FailedPrecondition naming the process that holds it), resume the log
    /// writers of running containers and write the logs of every container that starts.
    /// What `anycri shim docker` does when it starts ([`NodeRole::Manager`] at connect); a
    /// tool that replaces such a daemon calls it. A read-only runtime cannot.
    pub async fn manage_node(&self) -> Result<()> {
        if self.inner.role == NodeRole::ReadOnly {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "this Docker runtime was built read-only (NodeRole::ReadOnly)",
            ));
        }
        self.claim_node().await
    }

    /// For [`NodeRole::Manager`]: take the lock now or fail.
    pub(crate) async fn claim_node(&self) -> Result<()> {
        if self.owns_logs().await {
            return Ok(());
        }
        let dir = &self.inner.state_dir;
        Err(Error::new(
            ErrorKind::FailedPrecondition,
            format!(
                "another process{} manages this node's containers with state directory {} (it holds {}); stop it, or give this one its own --state-dir",
                holder(dir)
                    .map(|p| format!(" (pid {p})"))
                    .unwrap_or_default(),
                dir.display(),
                dir.join("owner.lock").display()
            ),
        ))
    }

    /// Resumes the writers of running containers and follows Docker's events to give a
    /// writer to every CRI container that starts, whoever started it.
    async fn become_owner(&self) {
        self.collect_orphan_checkpoints().await;
        self.resume_logging().await;
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(follow_starts(weak));
    }
}

impl DockerRuntime {
    /// What a crash can leave in the state directory that no CRI call reaches any more: the
    /// checkpoint of a sandbox whose pause container is gone (killed between removing the
    /// container and its file; CNI DEL runs first if still due, releasing the pod's IP and
    /// port mappings) and temporary files of interrupted checkpoint writes. Run by the node's
    /// owner when it takes over; failures are logged, not fatal.
    async fn collect_orphan_checkpoints(&self) {
        let temporaries = self.inner.checkpoints.remove_stale_temporaries().await;
        let ids = match self.inner.checkpoints.ids().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the sandbox checkpoints");
                return;
            }
        };
        let mut orphans = 0;
        for id in ids {
            match self
                .docker()
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
            {
                Err(e) if crate::error::is_not_found(&e) => {
                    self.forget_sandbox_network(&id).await;
                    orphans += 1;
                }
                _ => {}
            }
        }
        if orphans + temporaries > 0 {
            tracing::info!(
                orphans,
                temporaries,
                "collected checkpoints left by an earlier crash"
            );
        }
    }
}

/// Gives a log writer to each CRI container Docker starts, for as long as the runtime
/// lives; resubscribes (and resumes every writer, covering the gap) when the stream breaks.
async fn follow_starts(weak: Weak<Inner>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let docker = inner.docker.clone();
        drop(inner);
        let filters = std::collections::HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("event".to_string(), vec!["start".to_string()]),
            (
                "label".to_string(),
                vec![format!("{}={}", labels::TYPE_LABEL, labels::TYPE_CONTAINER)],
            ),
        ]);
        let mut events = docker.events(Some(EventsOptions {
            since: None,
            until: None,
            filters: Some(filters),
        }));
        while let Some(item) = events.next().await {
            let Ok(message) = item else { break };
            backoff = Duration::from_millis(200);
            let Some(id) = message.actor.and_then(|a| a.id) else {
                continue;
            };
            let Some(inner) = weak.upgrade() else { return };
            // Its own StartContainer already gave it a writer: no second inspect.
            if inner.logs.is_writing(&id) {
                continue;
            }
            let runtime = DockerRuntime { inner };
            if let Ok(inspect) = runtime
                .docker()
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
            {
                runtime.start_log_writer(&inspect);
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        // The gap: containers started meanwhile.
        let Some(inner) = weak.upgrade() else { return };
        DockerRuntime { inner }.resume_logging().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = try_lock(&state).unwrap();
        assert!(first.is_some());
        assert_eq!(holder(&state), Some(std::process::id()));
        // A second open file description is refused while the first holds it.
        assert!(try_lock(&state).unwrap().is_none());
        drop(first);
        assert!(try_lock(&state).unwrap().is_some());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join("owner.lock"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn roles_parse() {
        assert_eq!(NodeRole::parse("manager").unwrap(), NodeRole::Manager);
        assert_eq!(NodeRole::parse("read-only").unwrap(), NodeRole::ReadOnly);
        assert_eq!(
            NodeRole::parse("boss").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}
