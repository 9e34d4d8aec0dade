//! The `anycri conformance` command: connect through `anycri::connect`, run the suite,
//! show progress (a bar on a terminal, one line per check otherwise) and a summary table,
//! write the reports, exit 0 only when nothing failed. `anycri conformance images` builds and
//! pushes the test images; `anycri conformance summary` compares reports in Markdown.

use std::{path::PathBuf, sync::Arc};

use anycri_images::cli::ImagesArgs;
use clap::{Args, Subcommand};
use regex::Regex;

use crate::{
    images::{self, TestImages},
    registry::all_checks,
    report::{Report, comparison_markdown},
    runner::{Options, Progress, run, select},
};

/// Arguments of `anycri conformance`.
#[derive(Debug, Clone, Args)]
pub struct ConformanceArgs {
    /// Build and push the test images, or summarise reports, instead of running the suite.
    #[command(subcommand)]
    pub command: Option<ConformanceCommand>,
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
    /// The test images: the JSON file `anycri conformance images --output-file` writes, or
    /// critest's YAML (`defaultTestContainerImage`, `webServerTestImage`: checks needing
    /// other images are then skipped). Over --push-images or --registry-prefix, critest's
    /// YAML replaces only its two images.
    #[arg(long)]
    pub test_images_file: Option<PathBuf>,
    /// Where the test images are (critest style, e.g. 127.0.0.1:5000/anycri-conformance: the
    /// catalogue's images by tag); with --push-images, the namespace pushed to.
    #[arg(long)]
    pub registry_prefix: Option<String>,
    /// Build the test images from busybox-static and push them to REGISTRY (host:port, plain
    /// HTTP) before the run, under --registry-prefix (default `anycri-conformance`).
    #[arg(long, value_name = "REGISTRY")]
    pub push_images: Option<String>,
    /// Multiply every check's timeout by this.
    #[arg(long, default_value_t = 1.0)]
    pub timeout_scale: f64,
    /// Progress display: a bar on a terminal, one line per check otherwise (auto), or
    /// always one of them.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
}

/// The `--progress` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// A bar when stderr is a terminal, else lines.
    Auto,
    /// A progress bar with the running checks' names.
    Bar,
    /// One line per finished check.
    Lines,
    /// Nothing until the summary.
    None,
}

impl ProgressArg {
    /// The display for this choice on this process's stderr.
    pub fn resolve(self) -> Progress {
        match self {
            ProgressArg::Auto if std::io::IsTerminal::is_terminal(&std::io::stderr()) => {
                Progress::Bar
            }
            ProgressArg::Auto | ProgressArg::Lines => Progress::Lines,
            ProgressArg::Bar => Progress::Bar,
            ProgressArg::None => Progress::Quiet,
        }
    }
}

/// The subcommands of `anycri conformance`.
#[derive(Debug, Clone, Subcommand)]
pub enum ConformanceCommand {
    /// Build the test images from busybox-static and push them to a registry
    /// (`anycri conformance images --push 127.0.0.1:5000`).
    Images(ImagesArgs),
    /// A Markdown table comparing runs: pass/skip/fail per area and runtime, and every
    /// failure with its known-limit reason; exits 1 when a failure is not a known limit.
    Summary(SummaryArgs),
}

/// Arguments of `anycri conformance summary`.
#[derive(Debug, Clone, Args)]
pub struct SummaryArgs {
    /// Reports to compare, as `NAME=PATH` (or `PATH`: the runtime the report names); PATH is
    /// a report.json or a --report-dir directory.
    #[arg(required = true, value_name = "NAME=PATH")]
    pub reports: Vec<String>,
}

/// The images the arguments ask for: pushed now (--push-images), named under a prefix
/// (--registry-prefix), read from --test-images-file (critest's YAML over the others), else
/// None (the runner then takes the live environment's).
pub async fn images_from_args(args: &ConformanceArgs) -> anycri::Result<Option<TestImages>> {
    let base = match (&args.push_images, &args.registry_prefix) {
        (Some(registry), prefix) => {
            let prefix = prefix.as_deref().unwrap_or("anycri-conformance");
            eprintln!("building the test images and pushing them to {registry}/{prefix}");
            Some(images::push_test_images(registry, prefix, None, Default::default()).await?)
        }
        (None, Some(prefix)) => Some(images::with_registry_prefix(prefix)),
        (None, None) => None,
    };
    match &args.test_images_file {
        Some(file) => images::read_file(file, base).map(Some),
        None => Ok(base),
    }
}

/// `anycri conformance images`: build, push, print one line per image, write the files.
pub async fn run_images(args: ImagesArgs) -> anycri::Result<TestImages> {
    let images = images::push_test_images(
        &args.push,
        &args.registry_prefix,
        args.busybox.clone(),
        args.format,
    )
    .await?;
    if let Some(path) = &args.output_file {
        images.write(path)?;
    }
    if let Some(path) = &args.critest_output {
        let yaml = images.to_critest().to_yaml()?;
        std::fs::write(path, yaml).map_err(|e| {
            anycri::Error::with_source(
                anycri::ErrorKind::FailedPrecondition,
                format!("writing {}", path.display()),
                e,
            )
        })?;
    }
    print!("{}", anycri_images::cli::summary(&images));
    Ok(images)
}

/// `anycri conformance summary`: read the reports and render the comparison; also returns
/// how many failures no known limit explains (the command exits 1 when there are any).
pub fn run_summary(args: &SummaryArgs) -> anycri::Result<(String, usize)> {
    let mut reports = Vec::new();
    for spec in &args.reports {
        let (name, path) = match spec.split_once('=') {
            Some((n, p)) => (Some(n.to_owned()), PathBuf::from(p)),
            None => (None, PathBuf::from(spec)),
        };
        let path = if path.is_dir() {
            path.join("report.json")
        } else {
            path
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anycri::Error::with_source(
                if e.kind() == std::io::ErrorKind::NotFound {
                    anycri::ErrorKind::NotFound
                } else {
                    anycri::ErrorKind::FailedPrecondition
                },
                format!("reading the report {}", path.display()),
                e,
            )
        })?;
        let report: Report = serde_json::from_str(&text).map_err(|e| {
            anycri::Error::with_source(
                anycri::ErrorKind::InvalidArgument,
                format!("{} is not a conformance report", path.display()),
                e,
            )
        })?;
        reports.push((name.unwrap_or_else(|| report.runtime.clone()), report));
    }
    let unexplained = reports
        .iter()
        .map(|(_, r)| r.unexplained_failures().count())
        .sum();
    Ok((comparison_markdown(&reports), unexplained))
}

/// Run the command; returns the process exit code (0 only when nothing failed).
pub async fn run_cli(args: ConformanceArgs) -> anycri::Result<i32> {
    match &args.command {
        Some(ConformanceCommand::Images(a)) => return run_images(a.clone()).await.map(|_| 0),
        Some(ConformanceCommand::Summary(a)) => {
            let (markdown, unexplained) = run_summary(a)?;
            print!("{markdown}");
            return Ok(if unexplained == 0 { 0 } else { 1 });
        }
        None => {}
    }
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
    let images = images_from_args(&args).await?;
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
        progress: args.progress.resolve(),
        handle_ctrl_c: true,
        timeout_scale: args.timeout_scale,
        streaming_client: true,
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
