//! anycri-bench as a library: the `anycri bench` run from Rust, with its arguments parsed
//! as the command parses them, and the results read from the returned data instead of the
//! reports.
//!
//! ```sh
//! cargo run --example bench_library                   # two in-memory fakes, side by side
//! cargo run --example bench_library -- unix:///run/containerd/containerd.sock fake://
//! ```
//!
//! Arguments: the endpoints to compare (default `fake://` twice); the first is the baseline.
//! Reports (HTML, Markdown, JSON) go to a directory under the temporary directory.

use anycri_bench::cli::{BenchArgs, run};
use clap::Parser;

/// `BenchArgs` is the `anycri bench` command's `clap::Args`: flatten it into a parser.
#[derive(Parser)]
struct Command {
    #[command(flatten)]
    bench: BenchArgs,
}

#[tokio::main]
async fn main() -> anycri::Result<()> {
    let mut endpoints: Vec<String> = std::env::args().skip(1).collect();
    if endpoints.is_empty() {
        endpoints = vec!["a=fake://".into(), "b=fake://".into()];
    }
    let out = std::env::temp_dir().join(format!("anycri-bench-example-{}", std::process::id()));
    let logs = out.join("logs");

    let mut argv: Vec<String> = vec!["bench".into()];
    for e in &endpoints {
        argv.extend(["-r".into(), e.clone()]);
    }
    argv.extend(
        [
            "--scenario",
            "pod-lifecycle,container-lifecycle",
            "--iterations",
            "10",
            "--rounds",
            "2",
            "--warmup",
            "1",
        ]
        .map(String::from),
    );
    argv.extend(["--output-dir".into(), out.display().to_string()]);
    argv.extend(["--log-dir".into(), logs.display().to_string()]);
    if let Ok(image) = std::env::var("ANYCRI_TEST_IMAGE") {
        argv.extend(["--image".into(), image]);
    }
    let command = Command::parse_from(argv);

    let result = run(command.bench).await?;

    // Everything the reports show is in the result: per scenario, target and operation.
    println!(
        "\n{:<22} {:<12} {:<18} {:>10} {:>10}",
        "scenario", "target", "operation", "p50 ms", "p99 ms"
    );
    for scenario in &result.scenarios {
        for target in &scenario.targets {
            if let Some(why) = &target.skipped {
                println!(
                    "{:<22} {:<12} skipped: {why}",
                    scenario.scenario, target.target
                );
            }
            for op in &target.operations {
                println!(
                    "{:<22} {:<12} {:<18} {:>10.3} {:>10.3}",
                    scenario.scenario, target.target, op.name, op.stats.p50_ms, op.stats.p99_ms
                );
            }
        }
    }
    println!("\nreports in {}", out.display());
    Ok(())
}
