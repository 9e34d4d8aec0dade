//! Manifest files: the workloads (Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets,
//! Jobs, CronJobs, and `List`s of them) whose pod templates mount the Docker socket or
//! Docker's directories through a `hostPath` volume, with file and line — what
//! `kubectl dds -f` looks for, so CI can gate manifests before they deploy. YAML (several
//! documents per file) and JSON; folders are walked recursively.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::report::{Category, Finding, Severity};

/// How a host path relates to Docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DockerPath {
    /// The Docker socket, or Docker's own directories.
    Docker,
    /// A parent directory that holds the Docker socket on a Docker node (`/var/run`, `/run`).
    Parent,
}

/// Whether `path` (a host path a workload mounts) is Docker's.
pub(crate) fn docker_path(path: &str) -> Option<DockerPath> {
    let p = path.trim_end_matches('/');
    if p.ends_with("docker.sock")
        || ["/var/run/docker", "/run/docker", "/var/lib/docker"]
            .iter()
            .any(|d| p == *d || p.starts_with(&format!("{d}/")))
    {
        return Some(DockerPath::Docker);
    }
    if p == "/var/run" || p == "/run" {
        return Some(DockerPath::Parent);
    }
    None
}

/// The manifest files under `paths` (files as given; folders walked for `.yaml`, `.yml`,
/// `.json`), sorted.
pub fn manifest_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            for entry in walkdir::WalkDir::new(path)
                .follow_links(false)
                .into_iter()
                .filter_map(Result::ok)
            {
                let p = entry.path();
                let manifest = p
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
                if entry.file_type().is_file() && manifest {
                    files.push(p.to_path_buf());
                }
            }
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    files.dedup();
    files
}

/// Scans manifest files and folders; returns the findings and how many files were read.
pub fn scan_manifests(paths: &[PathBuf]) -> (Vec<Finding>, usize) {
    let files = manifest_files(paths);
    let mut findings = Vec::new();
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(text) => findings.extend(scan_text(&file.display().to_string(), &text)),
            Err(e) => findings.push(Finding::new(
                Category::Coverage,
                Severity::Info,
                file.display().to_string(),
                format!("could not read it: {e}"),
                "check the path and its permissions",
            )),
        }
    }
    (findings, files.len())
}

/// Scans the text of one manifest file named `name`.
pub fn scan_text(name: &str, text: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (start, doc) in documents(text) {
        if doc.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_yaml_ng::from_str(&doc) {
            Ok(v) => v,
            Err(e) => {
                findings.push(Finding::new(
                    Category::Coverage,
                    Severity::Info,
                    format!("{name}:{start}"),
                    format!("not a YAML or JSON document: {e}"),
                    "fix the document so it can be checked",
                ));
                continue;
            }
        };
        let mut objects = Vec::new();
        flatten(&value, &mut objects);
        for object in objects {
            findings.extend(scan_object(name, start, &doc, object));
        }
    }
    findings
}

/// The documents of a YAML stream with the line (1-based) each starts on.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") || line == "..." {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    docs
}

/// `kind: List` items, or the object itself.
fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    if value.get("kind").and_then(Value::as_str) == Some("List")
        && let Some(items) = value.get("items").and_then(Value::as_array)
    {
        for item in items {
            flatten(item, out);
        }
        return;
    }
    out.push(value);
}

/// The pod spec of a workload object, by kind.
fn pod_spec(object: &Value) -> Option<&Value> {
    let kind = object.get("kind")?.as_str()?;
    match kind {
        "Pod" => object.get("spec"),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => object.pointer("/spec/template/spec"),
        "CronJob" => object.pointer("/spec/jobTemplate/spec/template/spec"),
        "PodTemplate" => object.pointer("/template/spec"),
        _ => None,
    }
}

fn scan_object(name: &str, start: usize, doc: &str, object: &Value) -> Vec<Finding> {
    let Some(spec) = pod_spec(object) else {
        return Vec::new();
    };
    let kind = object["kind"].as_str().unwrap_or_default();
    let meta_name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(|ns| format!("{ns}/"))
        .unwrap_or_default();
    let mut findings = Vec::new();
    for volume in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(path) = volume.pointer("/hostPath/path").and_then(Value::as_str) else {
            continue;
        };
        let Some(how) = docker_path(path) else {
            continue;
        };
        let volume_name = volume.get("name").and_then(Value::as_str).unwrap_or("");
        let users = containers_mounting(spec, volume_name);
        let line = start + line_of(doc, path);
        let used_by = if users.is_empty() {
            "no container mounts it".to_string()
        } else {
            format!("mounted by {}", users.join(", "))
        };
        let (severity, what, fix) = match how {
            DockerPath::Docker => (
                Severity::Blocker,
                format!(
                    "{kind} {namespace}{meta_name}: volume {volume_name:?} is hostPath {path} ({used_by})"
                ),
                "talk to the CRI instead (crictl, the CRI socket, or anycri), or keep Docker Engine on the node for this workload and say so; images can be built with BuildKit, kaniko or buildah without the socket",
            ),
            DockerPath::Parent => (
                Severity::Warning,
                format!(
                    "{kind} {namespace}{meta_name}: volume {volume_name:?} is hostPath {path}, which holds docker.sock on a Docker node ({used_by})"
                ),
                "check whether the workload uses /var/run/docker.sock through it",
            ),
        };
        findings.push(Finding::new(
            Category::Manifest,
            severity,
            format!("{name}:{line}"),
            what,
            fix,
        ));
    }
    findings
}

/// `container "x" at /var/run/docker.sock` for each container (init ones too) mounting
/// the volume.
fn containers_mounting(spec: &Value, volume: &str) -> Vec<String> {
    let mut users = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for m in c
                .get("volumeMounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if m.get("name").and_then(Value::as_str) == Some(volume) {
                    users.push(format!(
                        "container {:?} at {}",
                        c.get("name").and_then(Value::as_str).unwrap_or(""),
                        m.get("mountPath").and_then(Value::as_str).unwrap_or("?")
                    ));
                }
            }
        }
    }
    users
}

/// The 0-based line of the document that names `path` as a path (else 0).
fn line_of(doc: &str, path: &str) -> usize {
    doc.lines()
        .position(|l| l.contains(path) && l.contains("path"))
        .or_else(|| doc.lines().position(|l| l.contains(path)))
        .unwrap_or(0)
}

/// Whether `path` looks like a manifest file.
pub fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFESTS: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: builder
  namespace: ci
spec:
  containers:
  - name: docker
    image: docker:cli
    volumeMounts:
    - name: sock
      mountPath: /var/run/docker.sock
  volumes:
  - name: sock
    hostPath:
      path: /var/run/docker.sock
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  template:
    spec:
      containers:
      - name: agent
        image: agent
        volumeMounts: [{name: run, mountPath: /host/run}]
      volumes:
      - name: run
        hostPath: {path: /var/run}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cleanup}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: c, image: x, volumeMounts: [{name: d, mountPath: /d}]}]
          volumes: [{name: d, hostPath: {path: /var/lib/docker/}}]
---
apiVersion: v1
kind: Pod
metadata: {name: clean}
spec:
  containers: [{name: c, image: x}]
  volumes: [{name: logs, hostPath: {path: /var/log}}]
";

    #[test]
    fn finds_docker_mounts_with_file_and_line() {
        let found = scan_text("m.yaml", MANIFESTS);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert_eq!(found[0].location, "m.yaml:16");
        assert_eq!(found[0].severity, Severity::Blocker);
        assert!(found[0].what.contains("Pod ci/builder"));
        assert!(
            found[0]
                .what
                .contains("container \"docker\" at /var/run/docker.sock")
        );
        assert_eq!(found[1].location, "m.yaml:31");
        assert_eq!(found[1].severity, Severity::Warning);
        assert!(found[2].what.starts_with("CronJob cleanup"));
        assert_eq!(found[2].location, "m.yaml:42");
    }

    #[test]
    fn lists_and_json_are_read() {
        let json = r#"{"kind":"List","items":[{"kind":"Deployment","metadata":{"name":"d"},
            "spec":{"template":{"spec":{"containers":[],"volumes":[{"name":"s","hostPath":{"path":"/run/docker.sock"}}]}}}}]}"#;
        let found = scan_text("l.json", json);
        assert_eq!(found.len(), 1);
        assert!(found[0].what.contains("Deployment d"));
    }

    #[test]
    fn broken_documents_are_reported_not_skipped() {
        let found = scan_text("bad.yaml", "kind: Pod\nspec: [\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].category, Category::Coverage);
    }

    #[test]
    fn docker_paths() {
        assert_eq!(
            docker_path("/var/run/docker.sock"),
            Some(DockerPath::Docker)
        );
        assert_eq!(docker_path("/custom/docker.sock"), Some(DockerPath::Docker));
        assert_eq!(
            docker_path("/var/lib/docker/containers"),
            Some(DockerPath::Docker)
        );
        assert_eq!(docker_path("/run/"), Some(DockerPath::Parent));
        assert_eq!(docker_path("/var/lib/dockerish"), None);
        assert_eq!(docker_path("/var/log"), None);
    }
}
