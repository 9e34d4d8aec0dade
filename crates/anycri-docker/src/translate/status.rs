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

    // ---- Table tests: a Docker inspect in, the CRI status out. ----

    use bollard::models::{self as docker, ContainerStateStatusEnum as S};

    const START: &str = "2024-01-01T00:00:00.5Z";
    const START_NS: i64 = 1_704_067_200_500_000_000;
    const FINISH: &str = "2024-01-01T00:00:10Z";
    const FINISH_NS: i64 = 1_704_067_210_000_000_000;
    /// Docker's zero time, for a container that has not finished.
    const ZERO: &str = "0001-01-01T00:00:00Z";

    /// A running shim container as Docker 20.10 inspects it.
    fn base_inspect() -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some("c1".into()),
            name: Some("/k8s_app_web_shop_u1_2".into()),
            created: Some("2024-01-01T00:00:00Z".into()),
            image: Some("sha256:abc".into()),
            state: Some(docker::ContainerState {
                status: Some(S::RUNNING),
                running: Some(true),
                pid: Some(4242),
                exit_code: Some(0),
                oom_killed: Some(false),
                started_at: Some(START.into()),
                finished_at: Some(ZERO.into()),
                error: Some(String::new()),
                ..Default::default()
            }),
            config: Some(docker::ContainerConfig {
                image: Some("sha256:abc".into()),
                labels: Some(HashMap::from([
                    (
                        labels::TYPE_LABEL.to_owned(),
                        labels::TYPE_CONTAINER.to_owned(),
                    ),
                    (labels::IMAGE_LABEL.to_owned(), "busybox:1".to_owned()),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn exited(i: &mut ContainerInspectResponse, exit_code: i64) {
        let s = i.state.as_mut().unwrap();
        s.status = Some(S::EXITED);
        s.running = Some(false);
        s.pid = Some(0);
        s.exit_code = Some(exit_code);
        s.finished_at = Some(FINISH.into());
    }

    /// One row: the inspect's change, the facts, and the state, exit code, reason, start
    /// and finish the status must show.
    type Row = (
        &'static str,
        fn(&mut ContainerInspectResponse),
        bool,
        (ContainerState, i32, &'static str, i64, i64),
    );

    #[test]
    fn docker_states_exit_codes_and_times_become_cri_ones() {
        use ContainerState::*;
        let rows: [Row; 12] = [
            (
                "running",
                |_| {},
                false,
                (ContainerRunning, 0, "", START_NS, 0),
            ),
            (
                "created, never started",
                |i| {
                    let s = i.state.as_mut().unwrap();
                    s.status = Some(S::CREATED);
                    s.running = Some(false);
                    s.started_at = Some(ZERO.into());
                },
                false,
                (ContainerCreated, 0, "", 0, 0),
            ),
            (
                "paused counts as running",
                |i| i.state.as_mut().unwrap().status = Some(S::PAUSED),
                false,
                (ContainerRunning, 0, "", START_NS, 0),
            ),
            (
                "a finish time while running is not shown",
                |i| i.state.as_mut().unwrap().finished_at = Some(FINISH.into()),
                false,
                (ContainerRunning, 0, "", START_NS, 0),
            ),
            (
                "exited 0: Completed",
                |i| exited(i, 0),
                false,
                (ContainerExited, 0, "Completed", START_NS, FINISH_NS),
            ),
            (
                "exited 1: Error",
                |i| exited(i, 1),
                false,
                (ContainerExited, 1, "Error", START_NS, FINISH_NS),
            ),
            (
                "Docker's OOMKilled flag",
                |i| {
                    exited(i, 137);
                    i.state.as_mut().unwrap().oom_killed = Some(true);
                },
                false,
                (ContainerExited, 137, "OOMKilled", START_NS, FINISH_NS),
            ),
            (
                "137 with an oom event in Docker's log",
                |i| exited(i, 137),
                true,
                (ContainerExited, 137, "OOMKilled", START_NS, FINISH_NS),
            ),
            (
                "137 without one: killed",
                |i| exited(i, 137),
                false,
                (ContainerExited, 137, "Error", START_NS, FINISH_NS),
            ),
            (
                "dead counts as exited",
                |i| {
                    exited(i, 2);
                    i.state.as_mut().unwrap().status = Some(S::DEAD);
                },
                false,
                (ContainerExited, 2, "Error", START_NS, FINISH_NS),
            ),
            (
                "a finish recorded before the start is shown as the start",
                |i| {
                    exited(i, 0);
                    i.state.as_mut().unwrap().finished_at = Some("2024-01-01T00:00:00.4Z".into());
                },
                false,
                (ContainerExited, 0, "Completed", START_NS, START_NS),
            ),
            (
                "no state at all",
                |i| i.state = None,
                false,
                (ContainerUnknown, 0, "", 0, 0),
            ),
        ];
        for (name, change, oom_event_seen, want) in rows {
            let mut inspect = base_inspect();
            change(&mut inspect);
            let facts = StatusFacts {
                oom_event_seen,
                ..Default::default()
            };
            let status = container_status(&inspect, &facts).unwrap().status.unwrap();
            let got = (
                ContainerState::try_from(status.state).unwrap(),
                status.exit_code,
                status.reason.as_str(),
                status.started_at,
                status.finished_at,
            );
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn what_only_the_host_or_the_event_log_can_tell_is_asked_for_only_when_it_matters() {
        let running = base_inspect();
        assert_eq!(running_pid(&running), Some(4242));
        assert!(!needs_oom_event(&running));
        let mut killed = base_inspect();
        exited(&mut killed, 137);
        assert_eq!(running_pid(&killed), None);
        assert!(needs_oom_event(&killed));
        killed.state.as_mut().unwrap().oom_killed = Some(true);
        assert!(!needs_oom_event(&killed));
        let mut failed = base_inspect();
        exited(&mut failed, 1);
        assert!(!needs_oom_event(&failed));
        // A user from /proc is shown only while the container runs.
        let facts = StatusFacts {
            proc_status: Some("Uid:\t1000\t1000\t1000\t1000\nGid:\t0\t0\t0\t0\nGroups:\t\n".into()),
            ..Default::default()
        };
        let user = |i: &ContainerInspectResponse| {
            container_status(i, &facts).unwrap().status.unwrap().user
        };
        assert_eq!(
            user(&running).and_then(|u| u.linux).map(|l| (l.uid, l.gid)),
            Some((1000, 0))
        );
        assert_eq!(user(&failed), None);
    }

    #[test]
    fn list_states_become_cri_states() {
        use ContainerState::*;
        use ContainerSummaryStateEnum as L;
        for (docker, cri) in [
            (Some(L::CREATED), ContainerCreated),
            (Some(L::RUNNING), ContainerRunning),
            (Some(L::PAUSED), ContainerRunning),
            (Some(L::RESTARTING), ContainerRunning),
            (Some(L::EXITED), ContainerExited),
            (Some(L::DEAD), ContainerExited),
            (Some(L::REMOVING), ContainerExited),
            (None, ContainerUnknown),
        ] {
            assert_eq!(summary_state(docker.as_ref()), cri, "{docker:?}");
        }
    }

    #[test]
    fn an_inspect_becomes_a_whole_cri_status() {
        let mut inspect = base_inspect();
        let config = inspect.config.as_mut().unwrap();
        config.labels.as_mut().unwrap().extend([
            ("app".to_owned(), "web".to_owned()),
            ("annotation.seen".to_owned(), "yes".to_owned()),
            (labels::SANDBOX_ID_LABEL.to_owned(), "5b".to_owned()),
            (
                labels::LOG_PATH_LABEL.to_owned(),
                "/logs/app/2.log".to_owned(),
            ),
        ]);
        inspect.mounts = Some(vec![
            docker::MountPoint {
                destination: Some("/data".into()),
                source: Some("/h/data".into()),
                rw: Some(false),
                propagation: Some("rslave".into()),
                ..Default::default()
            },
            docker::MountPoint {
                destination: Some("/shared".into()),
                source: Some("/h/shared".into()),
                rw: Some(true),
                propagation: Some("rshared".into()),
                ..Default::default()
            },
            docker::MountPoint {
                destination: Some("/private".into()),
                source: Some("/h/private".into()),
                rw: Some(true),
                propagation: Some(String::new()),
                ..Default::default()
            },
        ]);
        inspect.host_config = Some(docker::HostConfig {
            cpu_shares: Some(512),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            memory: Some(256 << 20),
            memory_swap: Some(-1),
            oom_score_adj: Some(500),
            cpuset_cpus: Some("0-1".into()),
            cpuset_mems: Some("0".into()),
            privileged: Some(false),
            ..Default::default()
        });
        let facts = StatusFacts {
            image_ref: "busybox@sha256:abc".into(),
            proc_status: None,
            verbose: true,
            oom_event_seen: false,
        };
        let got = container_status(&inspect, &facts).unwrap();
        let mount = |container_path: &str,
                     host_path: &str,
                     readonly,
                     propagation: MountPropagation| Mount {
            container_path: container_path.into(),
            host_path: host_path.into(),
            readonly,
            propagation: propagation as i32,
            ..Default::default()
        };
        let want = ContainerStatus {
            id: "c1".into(),
            metadata: Some(ContainerMetadata {
                name: "app".into(),
                attempt: 2,
            }),
            state: ContainerState::ContainerRunning as i32,
            created_at: 1_704_067_200_000_000_000,
            started_at: START_NS,
            finished_at: 0,
            exit_code: 0,
            image: Some(ImageSpec {
                image: "busybox:1".into(),
                ..Default::default()
            }),
            image_ref: "busybox@sha256:abc".into(),
            image_id: "sha256:abc".into(),
            reason: String::new(),
            message: String::new(),
            labels: HashMap::from([("app".to_owned(), "web".to_owned())]),
            annotations: HashMap::from([("seen".to_owned(), "yes".to_owned())]),
            mounts: vec![
                mount(
                    "/data",
                    "/h/data",
                    true,
                    MountPropagation::PropagationHostToContainer,
                ),
                mount(
                    "/shared",
                    "/h/shared",
                    false,
                    MountPropagation::PropagationBidirectional,
                ),
                mount(
                    "/private",
                    "/h/private",
                    false,
                    MountPropagation::PropagationPrivate,
                ),
            ],
            log_path: "/logs/app/2.log".into(),
            resources: Some(ContainerResources {
                linux: Some(LinuxContainerResources {
                    cpu_period: 100_000,
                    cpu_quota: 50_000,
                    cpu_shares: 512,
                    memory_limit_in_bytes: 256 << 20,
                    oom_score_adj: 500,
                    cpuset_cpus: "0-1".into(),
                    cpuset_mems: "0".into(),
                    memory_swap_limit_in_bytes: -1,
                    ..Default::default()
                }),
                windows: None,
            }),
            user: None,
            ..Default::default()
        };
        assert_eq!(got.status, Some(want));
        let info: serde_json::Value = serde_json::from_str(&got.info["info"]).unwrap();
        assert_eq!(info["pid"], 4242);
        assert_eq!(info["sandboxID"], "5b");
        assert_eq!(info["privileged"], false);
        // Without verbose, no info.
        let quiet = StatusFacts {
            verbose: false,
            ..facts
        };
        assert!(container_status(&inspect, &quiet).unwrap().info.is_empty());
    }

    #[test]
    fn a_foreign_name_is_an_internal_error() {
        let mut inspect = base_inspect();
        inspect.name = Some("/my-nginx".into());
        let err = container_status(&inspect, &StatusFacts::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
    }
}
