//! critest-compatible benchmark output: cri-tools writes one `LifecycleBenchmarksResultsSet`
//! per benchmark (`operationsNames`, `numParallel`, `datapoints` with `sampleIndex`,
//! `startTime`, `endTime`, `operationsDurationsNs`, `metaInfo`) into
//! `container_benchmark_data.json`, `pod_benchmark_data.json`, `image_benchmark_data.json`,
//! and so on. Tools that read critest's output read ours, one directory per target.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::result::BenchResult;

/// cri-tools' `LifecycleBenchmarksResultsSet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultsSet {
    /// Names of the operations of one lifecycle, in order.
    pub operations_names: Vec<String>,
    /// Lifecycles run in parallel (<= 1: sequential).
    pub num_parallel: u32,
    /// One per lifecycle.
    pub datapoints: Vec<Datapoint>,
}

/// cri-tools' `LifecycleBenchmarkDatapoint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Datapoint {
    /// Index of the sample.
    pub sample_index: usize,
    /// Start, nanoseconds since the epoch.
    pub start_time: i64,
    /// End, nanoseconds since the epoch.
    pub end_time: i64,
    /// Each operation's duration, nanoseconds.
    pub operations_durations_ns: Vec<i64>,
    /// Free-form meta information.
    pub meta_info: HashMap<String, String>,
}

/// Scenario name, critest file name, operation names.
const FILES: &[(&str, &str, &[&str])] = &[
    (
        "container-lifecycle",
        "container_benchmark_data.json",
        &[
            "CreateContainer",
            "StartContainer",
            "StatusContainer",
            "StopContainer",
            "RemoveContainer",
        ],
    ),
    (
        "pod-lifecycle",
        "pod_benchmark_data.json",
        &["CreatePod", "StatusPod", "StopPod", "RemovePod"],
    ),
    (
        "image-lifecycle",
        "image_benchmark_data.json",
        &["PullImage", "StatusImage", "RemoveImage"],
    ),
    (
        "image-list",
        "image_listing_benchmark_data.json",
        &["ListImages", "StatusImage"],
    ),
    (
        "pod-container",
        "pod_container_benchmark_data.json",
        &[
            "CreatePod",
            "CreateContainer",
            "StartContainer",
            "StopPod",
            "RemovePod",
        ],
    ),
];

/// Write the critest-format files of every target under `dir/<target>/`.
pub fn write(result: &BenchResult, dir: &Path) -> anycri::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for (scenario, file, ops) in FILES {
        let Some(s) = result.scenario(scenario) else {
            continue;
        };
        let parallel = match *scenario {
            "container-lifecycle" => result.config.container_lifecycle.parallel,
            "pod-lifecycle" => result.config.pod_lifecycle.parallel,
            "image-lifecycle" => result.config.image_lifecycle.parallel,
            "image-list" => result.config.image_list.parallel,
            _ => result.config.pod_container.parallel,
        };
        for t in &s.targets {
            if t.skipped.is_some() {
                continue;
            }
            let set = ResultsSet {
                operations_names: ops.iter().map(|s| s.to_string()).collect(),
                num_parallel: parallel,
                datapoints: t
                    .lifecycles
                    .iter()
                    .enumerate()
                    .map(|(i, d)| Datapoint {
                        sample_index: i,
                        start_time: d.start_ns,
                        end_time: d.end_ns,
                        operations_durations_ns: d.durations_ns.clone(),
                        meta_info: HashMap::from([
                            ("runtime".to_string(), t.target.clone()),
                            ("runId".to_string(), result.run_id.clone()),
                        ]),
                    })
                    .collect(),
            };
            let path = dir.join(&t.target).join(file);
            let text = serde_json::to_vec_pretty(&set).map_err(|e| {
                anycri::Error::with_source(anycri::ErrorKind::Internal, "encoding critest JSON", e)
            })?;
            super::write(&path, &text)?;
            paths.push(path);
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critest_files_parse_with_critest_field_names() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write(&crate::report::sample::result(), dir.path()).unwrap();
        assert_eq!(paths.len(), 2, "{paths:?}");
        let text = std::fs::read_to_string(
            dir.path()
                .join("docker-shim/pod_container_benchmark_data.json"),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["operationsNames"][0], "CreatePod");
        assert_eq!(v["numParallel"], 1);
        assert_eq!(v["datapoints"].as_array().unwrap().len(), 10);
        assert_eq!(v["datapoints"][3]["sampleIndex"], 3);
        assert_eq!(v["datapoints"][0]["operationsDurationsNs"][4], 5);
        assert_eq!(v["datapoints"][0]["metaInfo"]["runtime"], "docker-shim");
        let set: ResultsSet = serde_json::from_str(&text).unwrap();
        assert_eq!(set.datapoints[0].start_time, 1000);
    }
}
