//! ExecSync on Docker: run a command in a container, collect stdout and stderr (each capped at
//! 16 MiB, with a clear error past it) and the exit code. On timeout the call returns
//! DeadlineExceeded and the exec'd process is killed with everything it started — Docker
//! has no API for that, so the shim signals the process tree it finds under the exec's PID
//! (cri-dockerd leaves such processes running).

use std::time::Duration;

use anycri_core::{Error, ErrorKind, Result, api::*};
use bollard::{container::LogOutput, exec::StartExecResults, models::ExecConfig};
use futures::StreamExt;

use crate::{DockerRuntime, error::docker_error};

/// The most ExecSync collects per stream.
pub const MAX_EXEC_OUTPUT: usize = 16 * 1024 * 1024;

/// PIDs of `pid` and all its descendants, children first, read from /proc.
fn process_tree(pid: i32) -> Vec<i32> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // The parent PID is the second field after the parenthesised command name.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
            if let Some(ppid) = ppid {
                parents.push((p, ppid));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree.reverse();
    tree
}

/// The state letter of a process (`R`, `S`, `T` stopped, `Z` zombie, ...), None when gone.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Kill `pid` and everything it started, without missing a child forked meanwhile: the tree
/// is stopped first (SIGSTOP) and scanned again once every member has really stopped — a
/// parent in the middle of a fork stops only after the fork, so its new child shows up in
/// the next scan — until a scan finds nobody new; then all of it is killed.
fn kill_tree(pid: i32) {
    use nix::{
        sys::signal::{Signal, kill},
        unistd::Pid,
    };
    let mut stopped: Vec<i32> = Vec::new();
    for _ in 0..20 {
        let new: Vec<i32> = process_tree(pid)
            .into_iter()
            .filter(|p| !stopped.contains(p))
            .collect();
        if new.is_empty() {
            break;
        }
        for p in &new {
            let _ = kill(Pid::from_raw(*p), Signal::SIGSTOP);
        }
        // Wait (briefly) until each has stopped, died or gone.
        for _ in 0..50 {
            if new
                .iter()
                .all(|p| matches!(process_state(*p), None | Some('T' | 't' | 'Z' | 'X')))
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        stopped.extend(new);
    }
    for p in &stopped {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
}

fn push_capped(buf: &mut Vec<u8>, data: &[u8], stream: &str) -> Result<()> {
    if buf.len() + data.len() > MAX_EXEC_OUTPUT {
        return Err(Error::resource_exhausted(format!(
            "exec {stream} exceeded {} MiB; the command was killed",
            MAX_EXEC_OUTPUT / (1024 * 1024)
        )));
    }
    buf.extend_from_slice(data);
    Ok(())
}

impl DockerRuntime {
    pub(crate) async fn exec_sync_impl(
        &self,
        request: ExecSyncRequest,
    ) -> Result<ExecSyncResponse> {
        if request.cmd.is_empty() {
            return Err(Error::invalid_argument("cmd must not be empty"));
        }
        let inspect = self.inspect_container(&request.container_id).await?;
        let id = inspect.id.clone().unwrap_or_default();
        if !inspect
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false)
        {
            return Err(Error::failed_precondition(format!(
                "container {id} is not running"
            )));
        }
        let exec = self
            .docker()
            .create_exec(
                &id,
                ExecConfig {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(request.cmd.clone()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| docker_error(format!("creating an exec in container {id}"), e))?;
        let exec_id = exec.id;
        let StartExecResults::Attached { mut output, .. } = self
            .docker()
            .start_exec(&exec_id, None)
            .await
            .map_err(|e| docker_error(format!("starting exec in container {id}"), e))?
        else {
            return Err(Error::internal("Docker started the exec detached"));
        };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let collect = async {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(|e| docker_error("reading exec output", e))? {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        push_capped(&mut stdout, &message, "stdout")?
                    }
                    LogOutput::StdErr { message } => push_capped(&mut stderr, &message, "stderr")?,
                    LogOutput::StdIn { .. } => {}
                }
            }
            Ok::<_, Error>(())
        };
        let outcome = if request.timeout > 0 {
            match tokio::time::timeout(Duration::from_secs(request.timeout as u64), collect).await {
                Ok(r) => r,
                Err(_) => Err(Error::deadline_exceeded(format!(
                    "command {:?} timed out after {}s and was killed",
                    request.cmd, request.timeout
                ))),
            }
        } else {
            collect.await
        };
        if let Err(err) = outcome {
            if matches!(
                err.kind(),
                ErrorKind::DeadlineExceeded | ErrorKind::ResourceExhausted
            ) {
                self.kill_exec(&exec_id).await;
            }
            return Err(err);
        }
        let exit_code = self.exec_exit_code(&exec_id).await?;
        Ok(ExecSyncResponse {
            stdout,
            stderr,
            exit_code,
        })
    }

    /// The exit code of an exec whose output stream has ended.
    pub(crate) async fn exec_exit_code(&self, exec_id: &str) -> Result<i32> {
        // The stream ends when the process does; its exit code may take a moment to show.
        for _ in 0..50 {
            let info = self
                .docker()
                .inspect_exec(exec_id)
                .await
                .map_err(|e| docker_error("inspecting exec", e))?;
            if info.running != Some(true) {
                return Ok(info.exit_code.unwrap_or(-1) as i32);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(Error::internal(format!(
            "exec {exec_id} closed its output but is still running"
        )))
    }

    /// Kill an exec's process and everything it started. Docker marks an exec running a
    /// moment before it knows the process's PID; such an exec is asked again until the PID
    /// shows (or the exec ends), so a process that was just starting is not left behind.
    pub(crate) async fn kill_exec(&self, exec_id: &str) {
        for _ in 0..500 {
            let info = match self.docker().inspect_exec(exec_id).await {
                Ok(info) => info,
                Err(e) => {
                    tracing::warn!(exec_id, error = %e, "cannot find the exec to kill it");
                    return;
                }
            };
            if let Some(pid) = info.pid.filter(|p| *p > 0) {
                tracing::debug!(exec_id, pid, "killing the exec's process tree");
                // It waits for processes to stop: off the async workers.
                let _ = tokio::task::spawn_blocking(move || kill_tree(pid as i32)).await;
                return;
            }
            if info.running != Some(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::warn!(
            exec_id,
            "the exec never got a process ID; it was not killed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_of_this_process_contains_it() {
        let me = std::process::id() as i32;
        assert_eq!(process_tree(me).last(), Some(&me));
    }

    #[test]
    fn output_is_capped() {
        let mut buf = vec![0; MAX_EXEC_OUTPUT - 1];
        assert!(push_capped(&mut buf, b"x", "stdout").is_ok());
        let err = push_capped(&mut buf, b"y", "stdout").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceExhausted);
    }
}
