//! What runs on the node: containers (through the node's CRI runtime and, where dockerd
//! runs, through Docker itself) that mount the Docker socket or Docker's directories,
//! containers Docker runs outside Kubernetes, and processes that run the Docker CLI (from
//! `/proc`, matched to their container through their cgroup).

use std::collections::HashMap;
use std::path::Path;

use anycri_core::RuntimeService;
use anycri_core::api::{ContainerStatusRequest, ListContainersRequest, ListPodSandboxRequest};
use bollard::Docker;
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptionsBuilder};

use crate::manifests::{DockerPath, docker_path};
use crate::report::{Category, Finding, Severity};

/// Container ID → how to name it, from everything listed.
pub type KnownContainers = HashMap<String, String>;

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

const SOCKET_FIX: &str = "give the workload the CRI socket (crictl, anycri) instead, or keep Docker Engine on the node for it and say so; build images with BuildKit, kaniko or buildah";

/// Containers of the CRI runtime `rt` that mount Docker's socket or directories.
pub async fn scan_runtime(
    rt: &dyn RuntimeService,
    known: &mut KnownContainers,
) -> anycri_core::Result<Vec<Finding>> {
    let pods: HashMap<String, String> = rt
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await?
        .items
        .into_iter()
        .map(|p| {
            let m = p.metadata.unwrap_or_default();
            (p.id, format!("{}/{}", m.namespace, m.name))
        })
        .collect();
    let containers = rt
        .list_containers(ListContainersRequest::default())
        .await?
        .containers;
    let mut findings = Vec::new();
    for c in containers {
        let name = c
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let pod = pods
            .get(&c.pod_sandbox_id)
            .cloned()
            .unwrap_or_else(|| c.pod_sandbox_id.clone());
        let label = format!("container {name} ({}) in pod {pod}", short(&c.id));
        known.insert(c.id.clone(), label.clone());
        let status = match rt
            .container_status(ContainerStatusRequest {
                container_id: c.id.clone(),
                verbose: false,
            })
            .await
        {
            Ok(s) => s.status.unwrap_or_default(),
            // Removed meanwhile.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        for m in &status.mounts {
            if let Some(f) = mount_finding(&label, &m.host_path, &m.container_path) {
                findings.push(f);
            }
        }
    }
    Ok(findings)
}

fn mount_finding(label: &str, host: &str, container: &str) -> Option<Finding> {
    match docker_path(host)? {
        DockerPath::Docker => Some(Finding::new(
            Category::Workload,
            Severity::Blocker,
            label,
            format!("mounts {host} at {container}"),
            SOCKET_FIX,
        )),
        DockerPath::Parent => Some(Finding::new(
            Category::Workload,
            Severity::Warning,
            label,
            format!("mounts {host} at {container}, which holds docker.sock on a Docker node"),
            "check whether it uses docker.sock through that mount",
        )),
    }
}

/// Containers Docker itself runs: those that mount Docker's socket or directories (and are
/// not already reported through the CRI), and those started outside Kubernetes.
pub async fn scan_docker(
    docker: &Docker,
    known: &mut KnownContainers,
) -> Result<Vec<Finding>, bollard::errors::Error> {
    let options = ListContainersOptionsBuilder::default().all(true).build();
    let containers = docker.list_containers(Some(options)).await?;
    let mut findings = Vec::new();
    for c in containers {
        let Some(id) = c.id.clone() else { continue };
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        let labels = c.labels.clone().unwrap_or_default();
        let kubernetes = labels.keys().any(|k| k.starts_with("io.kubernetes."));
        let via_cri = known.contains_key(&id);
        let label = known
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("Docker container {name} ({})", short(&id)));
        known.entry(id.clone()).or_insert_with(|| label.clone());
        if !via_cri {
            for m in c.mounts.iter().flatten() {
                let (Some(src), Some(dst)) = (&m.source, &m.destination) else {
                    continue;
                };
                if let Some(f) = mount_finding(&label, src, dst) {
                    findings.push(f);
                }
            }
        }
        let running = c.state.map(|s| s.to_string()).unwrap_or_default() == "running";
        if !kubernetes && running {
            let privileged = docker
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
                .ok()
                .and_then(|i| i.host_config)
                .and_then(|h| h.privileged)
                .unwrap_or(false);
            findings.push(Finding::new(
                Category::Workload,
                Severity::Warning,
                &label,
                format!(
                    "runs on Docker outside Kubernetes (image {}{})",
                    c.image.unwrap_or_default(),
                    if privileged { ", privileged" } else { "" }
                ),
                "run it as a Kubernetes workload (a DaemonSet for node agents) or keep Docker Engine on the node for it",
            ));
        }
    }
    Ok(findings)
}

/// Processes under `proc` (`/proc`) whose command is `docker` or `docker-compose`: in a
/// container (found through the container ID in their cgroup) a blocker, on the host a
/// warning.
pub fn scan_processes(proc: &Path, known: &KnownContainers) -> Vec<Finding> {
    let mut findings = Vec::new();
    let Ok(entries) = std::fs::read_dir(proc) else {
        return findings;
    };
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let comm = comm.trim();
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let argv0 = args
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
            .unwrap_or_default();
        let is_cli = |s: &str| s == "docker" || s == "docker-compose";
        if !is_cli(comm) && !is_cli(&argv0) {
            continue;
        }
        let cgroup = std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
        let command = args.join(" ");
        match container_of(&cgroup, known) {
            Some(container) => findings.push(Finding::new(
                Category::Process,
                Severity::Blocker,
                format!("pid {pid} in {container}"),
                format!("runs the Docker CLI: {command}"),
                SOCKET_FIX,
            )),
            None => findings.push(Finding::new(
                Category::Process,
                Severity::Warning,
                format!("pid {pid} on the host"),
                format!("runs the Docker CLI: {command}"),
                "find what starts it (a script, a unit, an agent) and move it to crictl or `anycri docker ...`",
            )),
        }
    }
    findings.sort_by(|a, b| a.location.cmp(&b.location));
    findings
}

/// The container a process belongs to: a 64-hex ID in its cgroup path that names a listed
/// container, else any 64-hex ID (`container <id12>`).
fn container_of(cgroup: &str, known: &KnownContainers) -> Option<String> {
    let ids = hex_ids(cgroup);
    for id in &ids {
        if let Some(label) = known.get(id) {
            return Some(label.clone());
        }
    }
    ids.first().map(|id| format!("container {}", short(id)))
}

fn hex_ids(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 64 <= bytes.len() {
        if bytes[i..i + 64].iter().all(u8::is_ascii_hexdigit)
            && (i == 0 || !bytes[i - 1].is_ascii_hexdigit())
            && bytes.get(i + 64).is_none_or(|b| !b.is_ascii_hexdigit())
        {
            out.push(text[i..i + 64].to_ascii_lowercase());
            i += 64;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_matched_to_containers_by_cgroup() {
        let dir = tempfile::tempdir().unwrap();
        let id = "a".repeat(64);
        let write = |pid: &str, comm: &str, cmd: &str, cgroup: &str| {
            let d = dir.path().join(pid);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("comm"), format!("{comm}\n")).unwrap();
            std::fs::write(d.join("cmdline"), cmd.replace(' ', "\0")).unwrap();
            std::fs::write(d.join("cgroup"), cgroup).unwrap();
        };
        write(
            "10",
            "docker",
            "docker ps -q",
            &format!("0::/kubepods/besteffort/pod1/{id}\n"),
        );
        write("11", "docker", "/usr/bin/docker info", "0::/user.slice\n");
        write(
            "12",
            "dockerd",
            "dockerd -H fd://",
            "0::/system.slice/docker.service\n",
        );
        write("13", "sh", "sh /tmp/x", "0::/\n");
        let known =
            KnownContainers::from([(id.clone(), "container builder (aaaa) in pod ci/b".into())]);
        let found = scan_processes(dir.path(), &known);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(
            found[0].location,
            "pid 10 in container builder (aaaa) in pod ci/b"
        );
        assert_eq!(found[0].severity, Severity::Blocker);
        assert_eq!(found[1].location, "pid 11 on the host");
    }

    #[test]
    fn hex_ids_in_cgroup_paths() {
        let id = "0123456789abcdef".repeat(4);
        assert_eq!(
            hex_ids(&format!("0::/system.slice/docker-{id}.scope")),
            vec![id.clone()]
        );
        assert!(hex_ids(&format!("0::/x/{id}0")).is_empty());
    }
}
