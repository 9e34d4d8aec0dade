//! The `anycri conformance` command: connect through `anycri::connect`, run the suite,
//! print progress and a summary table, write the reports, exit 0 only when nothing failed.

use std::{path::PathBuf, sync::Arc};

use clap::Args;
use regex::Regex;

use crate::{
    images::TestImages,
    registry::all_checks,
    runner::{Options, Progress, run, select},
};

/// Arguments of `anycri conformance`.
#[derive(Debug, Clone, Args)]
pub struct ConformanceArgs {
    /// Runtime endpoint (any URI `anycri::connect` takes: unix://, docker://, fake://); None
    /// finds the node's runtime. The `anycri` command fills it from its global
    /// `--runtime-endpoint`, so it is not a flag of its own here.
    #[arg(skip)]
    pub runtime_endpoint: Option<String>,
    /// Image endpoint, when images are served elsewhere (default: the runtime endpoint);
    /// filled from the `anycri` command's global `--image-endpoint`.
    #[arg(skip)]
    pub image_endpoint: Option<String>,
    /// Run only checks whose name matches this regex.
    #[arg(long)]
    pub focus: Option<Regex>,
    /// Skip checks whose name matches this regex.
    #[arg(long)]
    pub skip: Option<Regex>,
    /// How many checks run at once.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// List the selected checks (name, critest spec, needs) and exit; touches no runtime.
    #[arg(long)]
    pub list: bool,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write report.json, junit.xml and summary.md into this directory.
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// A YAML file of test images (critest's `defaultTestContainerImage` is accepted).
    #[arg(long)]
    pub test_images_file: Option<PathBuf>,
    /// Registry prefix of anycri's test images (e.g. 127.0.0.1:5000).
    #[arg(long)]
    pub registry_prefix: Option<String>,
    /// Multiply every check's timeout by this.
    #[arg(long, default_value_t = 1.0)]
    pub timeout_scale: f64,
}

/// The images the arguments ask for: the live environment's, or the registry prefix's,
/// with the file's entries on top.
pub fn images_from_args(args: &ConformanceArgs) -> anycri::Result<Option<TestImages>> {
    let mut images = match &args.registry_prefix {
        Some(p) => Some(TestImages::with_registry_prefix(p)),
        None => TestImages::from_environment(),
    };
    if let Some(file) = &args.test_images_file {
        let from_file = TestImages::from_file(file)?;
        match &mut images {
            Some(i) => i.merge(from_file),
            None => images = Some(from_file),
        }
    }
    Ok(images)
}

/// Run the command; returns the process exit code (0 only when nothing failed).
pub async fn run_cli(args: ConformanceArgs) -> anycri::Result<i32> {
    if args.list {
        for c in select(all_checks(), args.focus.as_ref(), args.skip.as_ref()) {
            let needs: Vec<String> = c.needs.iter().map(|n| format!("{n:?}")).collect();
            println!(
                "{}\t{}\t{}{}\n    {}",
                c.name,
                c.critest.unwrap_or("-"),
                needs.join(","),
                if c.exclusive { "\texclusive" } else { "" },
                c.doc
            );
        }
        return Ok(0);
    }
    let images = images_from_args(&args)?;
    let connected = match &args.runtime_endpoint {
        Some(uri) => anycri::connect(uri).await?,
        None => anycri::connect_auto().await?,
    };
    let image_service = match &args.image_endpoint {
        Some(uri) if Some(uri) != args.runtime_endpoint.as_ref() => {
            anycri::connect_image(uri).await?
        }
        _ => connected.image.clone(),
    };
    let options = Options {
        focus: args.focus.clone(),
        skip: args.skip.clone(),
        parallel: args.parallel.max(1),
        images,
        progress: Progress::Lines,
        handle_ctrl_c: true,
        timeout_scale: args.timeout_scale,
        ..Default::default()
    };
    eprintln!("anycri conformance against {}", connected.endpoint);
    let report = run(
        connected.runtime.clone(),
        Arc::clone(&image_service),
        options,
    )
    .await;
    print!("{}", report.summary_table());
    let io = |what: &str, p: &std::path::Path, e: std::io::Error| {
        anycri::Error::with_source(
            anycri::ErrorKind::Internal,
            format!("writing {what} {}", p.display()),
            e,
        )
    };
    if let Some(p) = &args.json {
        std::fs::write(p, report.to_json()).map_err(|e| io("the JSON report", p, e))?;
    }
    if let Some(p) = &args.junit {
        std::fs::write(p, report.to_junit()).map_err(|e| io("the JUnit report", p, e))?;
    }
    if let Some(d) = &args.report_dir {
        report
            .write_dir(d)
            .map_err(|e| io("the reports to", d, e))?;
    }
    Ok(if report.success() { 0 } else { 1 })
}
