//! Docker's view of a container back in the CRI's words: its state (from a list entry or an
//! inspect) and the `ContainerStatus` of one inspect. Pure: what an inspect does not hold
//! (whether Docker's event log has an OOM kill, the image's reference, the process's
//! `/proc` status) comes in [`StatusFacts`], gathered by `container_status_impl`.

use std::collections::HashMap;

use anycri_core::{Error, ErrorKind, Result, api::*};
use bollard::models::{ContainerInspectResponse, ContainerSummaryStateEnum};

use crate::{labels, sandbox::rfc3339_nanos};

/// The CRI state of a container from its Docker list entry.
pub(crate) fn summary_state(s: Option<&ContainerSummaryStateEnum>) -> ContainerState {
    match s {
        Some(ContainerSummaryStateEnum::CREATED) => ContainerState::ContainerCreated,
        Some(
            ContainerSummaryStateEnum::RUNNING
            | ContainerSummaryStateEnum::PAUSED
            | ContainerSummaryStateEnum::RESTARTING
            | ContainerSummaryStateEnum::STOPPING,
        ) => ContainerState::ContainerRunning,
        Some(
            ContainerSummaryStateEnum::EXITED
            | ContainerSummaryStateEnum::DEAD
            | ContainerSummaryStateEnum::REMOVING,
        ) => ContainerState::ContainerExited,
        _ => ContainerState::ContainerUnknown,
    }
}

/// The CRI state of a container from its inspect.
pub(crate) fn inspect_state(inspect: &ContainerInspectResponse) -> ContainerState {
    use bollard::models::ContainerStateStatusEnum as S;
    match inspect.state.as_ref().and_then(|s| s.status.as_ref()) {
        Some(S::CREATED) => ContainerState::ContainerCreated,
        Some(S::RUNNING | S::PAUSED | S::RESTARTING | S::STOPPING) => {
            ContainerState::ContainerRunning
        }
        Some(S::EXITED | S::DEAD | S::REMOVING) => ContainerState::ContainerExited,
        _ => ContainerState::ContainerUnknown,
    }
}

/// Whether only Docker's event log can tell if the container was OOM-killed: it exited of
/// SIGKILL (137) without Docker's `OOMKilled` flag, which Docker 20.10 can lose.
pub(crate) fn needs_oom_event(inspect: &ContainerInspectResponse) -> bool {
    let ds = inspect.state.clone().unwrap_or_default();
    inspect_state(inspect) == ContainerState::ContainerExited
        && ds.oom_killed != Some(true)
        && ds.exit_code.unwrap_or(0) as i32 == 137
}

/// The PID of the container's first process while it runs, whose `/proc/<pid>/status` gives
/// the status's user.
pub(crate) fn running_pid(inspect: &ContainerInspectResponse) -> Option<i64> {
    match inspect.state.as_ref().and_then(|s| s.pid) {
        Some(pid) if pid > 0 && inspect_state(inspect) == ContainerState::ContainerRunning => {
            Some(pid)
        }
        _ => None,
    }
}

/// What a container's status needs besides its inspect.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusFacts {
    /// Docker's event log has an `oom` event of the container's last run (asked only when
    /// [`needs_oom_event`]).
    pub oom_event_seen: bool,
    /// The image's reference (`image_ref`).
    pub image_ref: String,
    /// The text of `/proc/<pid>/status` of the process at [`running_pid`], if read.
    pub proc_status: Option<String>,
    /// The caller asked for the verbose `info` map.
    pub verbose: bool,
}

/// The CRI status of a shim container from its inspect. Internal when its Docker name is
/// not one of the shim's.
pub(crate) fn container_status(
    inspect: &ContainerInspectResponse,
    facts: &StatusFacts,
) -> Result<ContainerStatusResponse> {
    let id = inspect.id.clone().unwrap_or_default();
    let (metadata, _) = labels::parse_container_name(inspect.name.as_deref().unwrap_or_default())
        .map_err(|e| {
        Error::with_source(
            ErrorKind::Internal,
            format!("container {id} has a foreign name"),
            e,
        )
    })?;
    let state = inspect_state(inspect);
    let ds = inspect.state.clone().unwrap_or_default();
    let exit_code = ds.exit_code.unwrap_or(0) as i32;
    let reason = if state != ContainerState::ContainerExited {
        String::new()
    } else if ds.oom_killed == Some(true) || (exit_code == 137 && facts.oom_event_seen) {
        "OOMKilled".into()
    } else if exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    let config = inspect.config.clone().unwrap_or_default();
    let docker_labels = config.labels.clone().unwrap_or_default();
    let image = docker_labels
        .get(labels::IMAGE_LABEL)
        .cloned()
        .or(config.image.clone())
        .unwrap_or_default();
    let image_id = inspect.image.clone().unwrap_or_default();
    let mounts = inspect
        .mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|m| Mount {
            container_path: m.destination.unwrap_or_default(),
            host_path: m.source.unwrap_or_default(),
            readonly: m.rw == Some(false),
            propagation: match m.propagation.as_deref() {
                Some("rslave" | "slave") => MountPropagation::PropagationHostToContainer,
                Some("rshared" | "shared") => MountPropagation::PropagationBidirectional,
                _ => MountPropagation::PropagationPrivate,
            } as i32,
            ..Default::default()
        })
        .collect();
    let host = inspect.host_config.clone().unwrap_or_default();
    let resources = ContainerResources {
        linux: Some(LinuxContainerResources {
            cpu_period: host.cpu_period.unwrap_or(0),
            cpu_quota: host.cpu_quota.unwrap_or(0),
            cpu_shares: host.cpu_shares.unwrap_or(0),
            memory_limit_in_bytes: host.memory.unwrap_or(0),
            oom_score_adj: host.oom_score_adj.unwrap_or(0),
            cpuset_cpus: host.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: host.cpuset_mems.clone().unwrap_or_default(),
            memory_swap_limit_in_bytes: host.memory_swap.unwrap_or(0),
            ..Default::default()
        }),
        windows: None,
    };
    let (labels, annotations) = labels::split_labels(&docker_labels);
    let mut info = HashMap::new();
    if facts.verbose {
        info.insert(
            "info".to_owned(),
            serde_json::json!({
                "pid": ds.pid,
                "sandboxID": docker_labels.get(labels::SANDBOX_ID_LABEL),
                "dockerLogPath": inspect.log_path,
                "privileged": host.privileged,
                "error": ds.error,
            })
            .to_string(),
        );
    }
    // The identity of the container's first process, from the host's /proc while it runs
    // (the shim and Docker share the host).
    let user = running_pid(inspect)
        .and(facts.proc_status.as_deref())
        .and_then(process_user);
    let started_at = ds.started_at.as_deref().map(rfc3339_nanos).unwrap_or(0);
    let finished_at = if state == ContainerState::ContainerExited {
        ds.finished_at.as_deref().map(rfc3339_nanos).unwrap_or(0)
    } else {
        0
    };
    Ok(ContainerStatusResponse {
        status: Some(ContainerStatus {
            id,
            metadata: Some(metadata),
            state: state as i32,
            created_at: inspect.created.as_deref().map(rfc3339_nanos).unwrap_or(0),
            started_at,
            finished_at: exit_time(started_at, finished_at),
            exit_code,
            image: Some(ImageSpec {
                image,
                ..Default::default()
            }),
            image_ref: facts.image_ref.clone(),
            reason,
            message: ds.error.clone().unwrap_or_default(),
            labels,
            annotations,
            mounts,
            log_path: docker_labels
                .get(labels::LOG_PATH_LABEL)
                .cloned()
                .unwrap_or_default(),
            resources: Some(resources),
            image_id,
            user: user.map(|linux| ContainerUser { linux: Some(linux) }),
            ..Default::default()
        }),
        info,
    })
}

/// A process's real uid, gid and supplementary groups from its `/proc/<pid>/status` text.
fn process_user(status: &str) -> Option<LinuxContainerUser> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::split_whitespace)
    };
    let first = |name: &str| field(name)?.next()?.parse::<i64>().ok();
    let mut supplemental_groups: Vec<i64> =
        field("Groups")?.filter_map(|g| g.parse().ok()).collect();
    supplemental_groups.sort_unstable();
    Some(LinuxContainerUser {
        uid: first("Uid")?,
        gid: first("Gid")?,
        supplemental_groups,
    })
}

/// The finish time to report: Docker 20.10 can record a container that it took down with a
/// dockerd restart as finished a fraction of a millisecond before its start (seen in CI:
/// 484 µs); a CRI client computing a run time must not get a negative one, so such a finish
/// is reported as the start. 0 (unknown) stays 0.
fn exit_time(started_at: i64, finished_at: i64) -> i64 {
    if finished_at != 0 && finished_at < started_at {
        started_at
    } else {
        finished_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finish_before_the_start_is_reported_as_the_start() {
        assert_eq!(exit_time(1_000, 999), 1_000);
        assert_eq!(exit_time(1_000, 2_000), 2_000);
        assert_eq!(exit_time(1_000, 0), 0);
        assert_eq!(exit_time(0, 0), 0);
    }

    #[test]
    fn process_identity_from_proc_status() {
        let status = "Name:\tsleep\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t50000 1000 1234 \n";
        let user = process_user(status).unwrap();
        assert_eq!((user.uid, user.gid), (1000, 1000));
        assert_eq!(user.supplemental_groups, vec![1000, 1234, 50000]);
        let none = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n";
        assert!(process_user(none).unwrap().supplemental_groups.is_empty());
        assert_eq!(process_user("Name:\tx\n"), None);
    }
}
