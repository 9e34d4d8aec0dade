//! anycri-bench: the same benchmark scenarios on every CRI runtime, side by side.
//!
//! `anycri bench -r URI [-r URI ...] --output-dir DIR` runs critest's five benchmark
//! scenarios (container, pod and image lifecycles, image listing, a pod with a container from
//! scratch) and more (listing at scale, ExecSync, container stats, churn under concurrency)
//! against each endpoint, interleaved so that drift of the machine hits all alike. It
//! measures each operation's latency distribution and what the runtime's daemons spend (CPU
//! seconds, peak resident memory), compares every target with a baseline, and writes JSON,
//! critest-compatible JSON, Markdown and an HTML report with SVG plots. A
//! `docker-floor:///path/to/docker.sock` endpoint does the same pod and container work with
//! plain Docker API calls, the floor the Docker shim is measured against.
//!
//! Modules: [`config`] (parameters and parameter files), [`target`] (the endpoints),
//! [`runner`] (the scenarios), [`procstat`] (daemon cost from `/proc`), [`stats`]
//! (latency summaries), [`result`] (the data), [`report`] (the writers), [`cli`] (the
//! `anycri bench` command).

pub mod cli;
pub mod config;
mod events;
pub mod procstat;
pub mod report;
pub mod result;
pub mod runner;
pub mod stats;
pub mod target;

pub use config::{BenchConfig, ParamsFile, Scenario};
pub use result::BenchResult;
