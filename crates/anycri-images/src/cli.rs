//! The command-line entry for building and pushing the test images
//! (`anycri conformance images --push 127.0.0.1:5000`): clap arguments and a `run` that
//! pushes, prints one line per image and writes the references file.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anycri_core::{Error, ErrorKind, Result};

use crate::{ManifestFormat, RegistryClient, TestImages, build_images, push_images};

/// Build the test images from busybox-static and push them to a registry.
#[derive(Debug, Clone, clap::Args)]
pub struct ImagesArgs {
    /// The registry to push to: `host:port` (plain HTTP, e.g. the local 127.0.0.1:5000).
    #[arg(long, value_name = "REGISTRY")]
    pub push: String,
    /// Where the images go, critest style: a namespace in the registry
    /// (`anycri-conformance`), or `host/namespace` to name them as another registry that
    /// serves the pushed one (a mirror).
    #[arg(long, value_name = "PREFIX", default_value = "anycri-conformance")]
    pub registry_prefix: String,
    /// Write the images' references (tags, digests, IDs) as JSON to FILE, for
    /// `--test-images-file`. (Not `--output`: that is `anycri`'s global output format.)
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Also write critest's `--test-images-file` YAML to FILE.
    #[arg(long, value_name = "FILE")]
    pub critest_output: Option<PathBuf>,
    /// The busybox binary to build from (default: busybox-static's /bin/busybox).
    #[arg(long, value_name = "PATH")]
    pub busybox: Option<PathBuf>,
    /// Manifest media types: OCI, or Docker v2 schema 2.
    #[arg(long, value_enum, default_value_t = ManifestFormat::Oci)]
    pub format: ManifestFormat,
}

/// Build, push, print a line per image to stdout, write the requested files.
pub async fn run(args: ImagesArgs) -> Result<TestImages> {
    let client = RegistryClient::new(&args.push)?;
    let started = Instant::now();
    let built = build_images(args.busybox.clone(), args.format).await?;
    let build_time = started.elapsed();
    let started = Instant::now();
    let (images, report) = push_images(&client, &args.registry_prefix, &built).await?;
    let push_time = started.elapsed();
    eprintln!(
        "built {} images in {:.2} s; pushed to {} in {:.2} s: {} blobs uploaded ({:.1} MiB), \
         {} mounted, {} already there",
        built.len(),
        build_time.as_secs_f64(),
        client.host(),
        push_time.as_secs_f64(),
        report.uploaded,
        report.bytes_uploaded as f64 / (1024.0 * 1024.0),
        report.mounted,
        report.existed
    );
    if let Some(path) = &args.output_file {
        images.write(path)?;
    }
    if let Some(path) = &args.critest_output {
        let yaml = images.to_critest().to_yaml()?;
        std::fs::write(path, yaml).map_err(|e| {
            Error::with_source(
                ErrorKind::FailedPrecondition,
                format!("writing {}", path.display()),
                e,
            )
        })?;
    }
    print!("{}", summary(&images));
    Ok(images)
}

/// One line per image: its name, default reference, manifest digest and configured user.
pub fn summary(images: &TestImages) -> String {
    let rows: Vec<(String, String, String, String)> = images
        .iter()
        .into_iter()
        .map(|(kind, r)| {
            let mut reference = r.reference();
            if r.tags.len() > 1 {
                reference.push_str(&format!(" (+{})", r.tags[1..].join(", ")));
            }
            (
                kind.name(),
                reference,
                r.digest
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                r.user.clone().unwrap_or_default(),
            )
        })
        .collect();
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(5);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(9);
    let w2 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max(6);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:w0$}  {:w1$}  {:w2$}  USER",
        "IMAGE", "REFERENCE", "DIGEST"
    );
    for (name, reference, digest, user) in rows {
        let _ = writeln!(out, "{name:w0$}  {reference:w1$}  {digest:w2$}  {user}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ImagesArgs,
    }

    /// `anycri` has a global `-o/--output FORMAT`; these arguments must fit under it.
    #[derive(Parser)]
    struct Nested {
        #[arg(short = 'o', long, global = true, default_value = "table")]
        output: String,
        #[command(subcommand)]
        command: NestedCommand,
    }

    #[derive(clap::Subcommand)]
    enum NestedCommand {
        Images(ImagesArgs),
    }

    #[test]
    fn fits_under_a_global_output_flag() {
        use clap::CommandFactory;
        Nested::command().debug_assert();
        let cli = Nested::try_parse_from([
            "anycri",
            "-o",
            "json",
            "images",
            "--push",
            "r:1",
            "--output-file",
            "f.json",
        ])
        .unwrap();
        assert_eq!(cli.output, "json");
        let NestedCommand::Images(args) = cli.command;
        assert_eq!(args.output_file, Some(PathBuf::from("f.json")));
        // the global format flag also works after the subcommand
        let cli =
            Nested::try_parse_from(["anycri", "images", "--push", "r:1", "-o", "json"]).unwrap();
        assert_eq!(cli.output, "json");
    }

    #[test]
    fn arguments() {
        let cli = Cli::try_parse_from(["x", "--push", "127.0.0.1:5000"]).unwrap();
        assert_eq!(cli.args.push, "127.0.0.1:5000");
        assert_eq!(cli.args.registry_prefix, "anycri-conformance");
        assert_eq!(cli.args.format, ManifestFormat::Oci);
        assert!(cli.args.output_file.is_none());
        let cli = Cli::try_parse_from([
            "x",
            "--push",
            "r:1",
            "--registry-prefix",
            "r:1/ns",
            "--output-file",
            "f.json",
            "--critest-output",
            "c.yaml",
            "--format",
            "docker",
        ])
        .unwrap();
        assert_eq!(cli.args.registry_prefix, "r:1/ns");
        assert_eq!(cli.args.output_file, Some(PathBuf::from("f.json")));
        assert_eq!(cli.args.format, ManifestFormat::Docker);
        assert!(Cli::try_parse_from(["x"]).is_err(), "--push is required");
    }

    #[test]
    fn summary_lists_every_image() {
        let bb = crate::Busybox::from_parts(&b"fake"[..], vec!["bin/sh".into()]).unwrap();
        let built = crate::build_all(&bb, ManifestFormat::Oci).unwrap();
        let images = TestImages::from_built("127.0.0.1:5000/x", &built).unwrap();
        let text = summary(&images);
        assert_eq!(text.lines().count(), 1 + crate::TestImageKind::all().len());
        assert!(text.contains("127.0.0.1:5000/x/tags:1 (+2, 3)"));
        assert!(text.contains("www-data:users"));
    }

    #[tokio::test]
    async fn bad_registry_fails_before_building() {
        let args = ImagesArgs {
            push: "https://r.example".into(),
            registry_prefix: "x".into(),
            output_file: None,
            critest_output: None,
            busybox: Some(PathBuf::from("/nonexistent")),
            format: ManifestFormat::Oci,
        };
        let err = run(args).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unimplemented);
    }
}
