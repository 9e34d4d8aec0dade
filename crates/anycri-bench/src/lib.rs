//! anycri-bench: the same benchmark scenarios on every CRI runtime, side by side.
//!
//! `anycri bench -r URI [-r URI ...] --output-dir DIR` runs critest's five benchmark
//! scenarios (container, pod and image lifecycles, image listing, a pod with a container from
//! scratch) and more (listing at scale, ExecSync, container stats, churn under concurrency,
//! event latency) against each endpoint, interleaved so that drift of the machine hits all
//! alike; `--scenario soak` (opt-in) runs a fixed number of pod lifecycles on each target in
//! turn and accounts for leaks (objects, namespaces, IPs, iptables rules, daemons' fds). It
//! measures each operation's latency distribution and what the runtime's daemons spend (CPU
//! seconds, peak resident memory), compares every target with a baseline, and writes JSON,
//! critest-compatible JSON, Markdown and an HTML report with SVG plots. A
//! `docker-floor:///path/to/docker.sock` endpoint does the same pod and container work with
//! plain Docker API calls, the floor the Docker shim is measured against.
//!
//! Modules: [`config`] (parameters and parameter files), [`target`] (the endpoints),
//! [`runner`] (the scenarios), [`leaks`] (the soak's before/after counts),
//! [`procstat`] (daemon cost from `/proc`), [`stats`]
//! (latency summaries), [`result`] (the data), [`report`] (the writers), [`cli`] (the
//! `anycri bench` command).
//!
//! As a library: [`cli::run`] takes the command's arguments ([`cli::BenchArgs`], a
//! `clap::Args`) and returns the [`BenchResult`] after writing the reports. Here two
//! in-memory fakes stand in for real endpoints:
//!
//! ```
//! # #[tokio::main] async fn main() -> anycri::Result<()> {
//! use anycri_bench::cli::{BenchArgs, run};
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! struct Command {
//!     #[command(flatten)]
//!     bench: BenchArgs,
//! }
//!
//! let out = tempfile::tempdir().unwrap();
//! let dir = out.path().to_str().unwrap();
//! let logs = format!("{dir}/logs");
//! let command = Command::parse_from([
//!     "bench", "-r", "a=fake://", "-r", "b=fake://", "--scenario", "pod-lifecycle",
//!     "--iterations", "4", "--rounds", "2", "--warmup", "0", "--image", "busybox:1.36",
//!     "--output-dir", dir, "--log-dir", &logs,
//! ]);
//! let result = run(command.bench).await?;
//! let pods = &result.scenarios[0];
//! assert_eq!(pods.scenario, "pod-lifecycle");
//! for target in &pods.targets {
//!     for op in &target.operations {
//!         println!("{} {}: p50 {:.3} ms", target.target, op.name, op.stats.p50_ms);
//!     }
//! }
//! assert!(out.path().join("report.html").exists());
//! # Ok(()) }
//! ```

pub mod cli;
pub mod config;
mod events;
pub mod leaks;
pub mod procstat;
pub mod report;
pub mod result;
pub mod runner;
mod soak;
pub mod stats;
pub mod target;

pub use config::{BenchConfig, ParamsFile, Scenario};
pub use result::BenchResult;
