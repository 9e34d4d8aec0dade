//! The command-line entries: building and pushing the conformance test images
//! (`anycri conformance images --push 127.0.0.1:5000`, or `anycri-images test-images`), with a
//! `run` that pushes, prints one line per image and writes the references file; and building
//! one image from a busybox or a host binary ([`BuildArgs`], `anycri-images build`, what
//! `scripts/runtime-env` makes its test and pause images with), written as an OCI layout, an
//! OCI archive or a docker-archive and pushed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anycri_core::{Error, ErrorKind, Result};

use crate::catalog::PATH_ENV;
use crate::{
    Busybox, HostBinary, Image, ImageConfig, ManifestFormat, NamedImage, RegistryClient,
    TestImages, build_images, image::host_architecture, push_images,
};

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

/// Build one image and write or push it (`anycri-images build`).
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    /// The image's name without a tag, registry host first when pushing:
    /// `127.0.0.1:5000/anycri/busybox`.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// A tag (repeat for more; default `latest`). The first is the image's main reference.
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    pub tags: Vec<String>,
    /// Build a busybox userland from this binary: static, or dynamically linked (Debian's
    /// glibc `busybox`) with the shared libraries it loads.
    #[arg(long, value_name = "PATH", required_unless_present = "binary")]
    pub busybox: Option<PathBuf>,
    /// With `--busybox`: applets as hard links to `/bin/busybox` instead of symlinks.
    #[arg(long)]
    pub hard_links: bool,
    /// Build an image of this host executable alone (at its host path, with its libraries),
    /// e.g. a pause image from `/usr/bin/catatonit`.
    #[arg(long, value_name = "PATH", conflicts_with = "busybox")]
    pub binary: Option<PathBuf>,
    /// The config's `Entrypoint`, split on whitespace (`"/usr/bin/catatonit -P"`).
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// The config's `Cmd`, split on whitespace (default with `--busybox`: `sh`).
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub cmd: Option<String>,
    /// An `Env` entry `KEY=value` (repeat; default: the usual `PATH`).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// A label `KEY=value` (repeat).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Manifest media types: OCI, or Docker v2 schema 2.
    #[arg(long, value_enum, default_value_t = ManifestFormat::Oci)]
    pub format: ManifestFormat,
    /// Write an OCI image layout into DIR (replaced if it exists).
    #[arg(long, value_name = "DIR")]
    pub oci_layout: Option<PathBuf>,
    /// Write an OCI archive (the layout as one tar, for `ctr images import`) to FILE.
    #[arg(long, value_name = "FILE")]
    pub oci_archive: Option<PathBuf>,
    /// Write a docker-archive (for `docker load`) to FILE.
    #[arg(long, value_name = "FILE")]
    pub docker_archive: Option<PathBuf>,
    /// Write the manifest digest to FILE.
    #[arg(long, value_name = "FILE")]
    pub digest_file: Option<PathBuf>,
    /// Write the image ID (the config digest, what Docker and containerd report) to FILE.
    #[arg(long, value_name = "FILE")]
    pub id_file: Option<PathBuf>,
    /// Push to the registry NAME starts with (plain HTTP). Tags that already serve this
    /// manifest are left alone; for the others the registry must store this very manifest.
    #[arg(long)]
    pub push: bool,
}

/// What [`run_build`] made.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The image.
    pub image: Image,
    /// The tags pushed (empty without `--push`, or when the registry had them all).
    pub pushed: Vec<String>,
}

impl BuildArgs {
    fn tags(&self) -> Vec<String> {
        if self.tags.is_empty() {
            vec!["latest".to_owned()]
        } else {
            self.tags.clone()
        }
    }

    fn config(&self) -> Result<ImageConfig> {
        let words = |s: &Option<String>| -> Vec<String> {
            s.as_deref()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        let mut cmd = words(&self.cmd);
        if self.cmd.is_none() && self.busybox.is_some() && self.entrypoint.is_none() {
            cmd = vec!["sh".to_owned()];
        }
        let env = if self.env.is_empty() {
            vec![PATH_ENV.to_owned()]
        } else {
            self.env.clone()
        };
        for e in &env {
            key_value("--env", e)?;
        }
        let labels = self
            .labels
            .iter()
            .map(|l| key_value("--label", l).map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect::<Result<BTreeMap<_, _>>>()?;
        Ok(ImageConfig {
            env,
            entrypoint: words(&self.entrypoint),
            cmd,
            working_dir: Some("/".to_owned()),
            labels,
            ..Default::default()
        })
    }

    /// The registry host and repository of NAME, for `--push`.
    fn registry_and_repository(&self) -> Result<(&str, &str)> {
        match self.name.split_once('/') {
            Some((host, repo)) if crate::looks_like_host(host) => {
                crate::registry::validate_repository(repo)?;
                Ok((host, repo))
            }
            _ => Err(Error::invalid_argument(format!(
                "--push: the name {:?} does not start with a registry host (`host:port/repo`)",
                self.name
            ))),
        }
    }

    /// Check everything that can be checked before building; returns the image config.
    fn checked_config(&self) -> Result<ImageConfig> {
        if self.name.is_empty()
            || self.name.contains(char::is_whitespace)
            || self.name.contains(['@'])
        {
            return Err(Error::invalid_argument(format!(
                "invalid image name {:?} (a name without tag or digest)",
                self.name
            )));
        }
        for tag in self.tags() {
            crate::registry::validate_tag(&tag)?;
        }
        if self.push {
            self.registry_and_repository()?;
        }
        if self.busybox.is_none() && self.binary.is_none() {
            return Err(Error::invalid_argument("give --busybox or --binary"));
        }
        if self.hard_links && self.busybox.is_none() {
            return Err(Error::invalid_argument("--hard-links goes with --busybox"));
        }
        if self.binary.is_some() && self.entrypoint.is_none() && self.cmd.is_none() {
            return Err(Error::invalid_argument(
                "--binary needs --entrypoint or --cmd: the image has no shell",
            ));
        }
        self.config()
    }

    /// Build the image (on the calling thread: reading and gzipping take a moment).
    pub fn build(&self) -> Result<Image> {
        let config = self.checked_config()?;
        let rootfs = match (&self.busybox, &self.binary) {
            (Some(path), _) => {
                let mut busybox = Busybox::with_libraries(path)?;
                if self.hard_links {
                    busybox = busybox.hard_links();
                }
                busybox.rootfs()?
            }
            (None, Some(path)) => HostBinary::read(path)?.rootfs()?,
            (None, None) => unreachable!("checked_config() checked"),
        };
        Image::assemble(
            &[rootfs.finish()?],
            &config,
            host_architecture(),
            self.format,
        )
    }
}

fn key_value<'a>(flag: &str, s: &'a str) -> Result<(&'a str, &'a str)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(Error::invalid_argument(format!(
            "{flag} {s:?}: expected KEY=value"
        ))),
    }
}

/// Write `data` to `path` through a temporary file and a rename: never half-written.
fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let err = |e| {
        Error::with_source(
            ErrorKind::FailedPrecondition,
            format!("writing {}", path.display()),
            e,
        )
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, data).map_err(err)?;
    std::fs::rename(&partial, path).map_err(err)
}

/// Build the image `args` describe, write the files it asks for, push it if asked; prints
/// the manifest digest on stdout.
pub async fn run_build(args: BuildArgs) -> Result<BuildOutcome> {
    let started = Instant::now();
    // (build() checks every argument before it reads anything)
    let image = {
        let args = args.clone();
        tokio::task::spawn_blocking(move || args.build())
            .await
            .map_err(|e| Error::with_source(ErrorKind::Internal, "building the image", e))??
    };
    let tags = args.tags();
    let named = NamedImage {
        image: &image,
        name: &args.name,
        tags: &tags,
    };
    if let Some(dir) = &args.oci_layout {
        named.write_oci_layout(dir)?;
    }
    if let Some(path) = &args.oci_archive {
        write_atomically(path, &named.oci_archive()?)?;
    }
    if let Some(path) = &args.docker_archive {
        write_atomically(path, &named.docker_archive()?)?;
    }
    let mut pushed = Vec::new();
    if args.push {
        let (host, repository) = args.registry_and_repository()?;
        let client = RegistryClient::new(host)?;
        for tag in &tags {
            if client.manifest_digest(repository, tag).await?.as_ref() != Some(image.digest()) {
                pushed.push(tag.clone());
            }
        }
        if !pushed.is_empty() {
            // (each manifest PUT checks the digest the registry stored: DataLoss otherwise)
            client.push_image(repository, &image, &pushed).await?;
        }
    }
    if let Some(path) = &args.digest_file {
        write_atomically(path, format!("{}\n", image.digest()).as_bytes())?;
    }
    if let Some(path) = &args.id_file {
        write_atomically(path, format!("{}\n", image.id()).as_bytes())?;
    }
    eprintln!(
        "built {}:{} ({}, id {}) in {:.2} s{}",
        args.name,
        tags.join(","),
        image.digest(),
        image.id(),
        started.elapsed().as_secs_f64(),
        if pushed.is_empty() {
            String::new()
        } else {
            format!("; pushed {}", pushed.join(","))
        }
    );
    println!("{}", image.digest());
    Ok(BuildOutcome { image, pushed })
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

    #[derive(Parser)]
    struct BuildCli {
        #[command(flatten)]
        args: BuildArgs,
    }

    fn build_args(argv: &[&str]) -> std::result::Result<BuildArgs, clap::Error> {
        BuildCli::try_parse_from(std::iter::once("x").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn build_arguments_and_config() {
        let args = build_args(&[
            "127.0.0.1:5000/anycri/pause",
            "--binary",
            "/usr/bin/catatonit",
            "--entrypoint",
            "/usr/bin/catatonit -P",
            "-t",
            "1.0",
            "--label",
            "a=b=c",
        ])
        .unwrap();
        let config = args.config().unwrap();
        assert_eq!(config.entrypoint, ["/usr/bin/catatonit", "-P"]);
        assert!(config.cmd.is_empty());
        assert_eq!(config.env, [PATH_ENV]);
        assert_eq!(config.labels["a"], "b=c");
        assert_eq!(args.tags(), ["1.0"]);
        assert_eq!(
            args.registry_and_repository().unwrap(),
            ("127.0.0.1:5000", "anycri/pause")
        );

        let args =
            build_args(&["r.example/bb", "--busybox", "/bin/busybox", "--hard-links"]).unwrap();
        assert_eq!(args.config().unwrap().cmd, ["sh"]);
        assert_eq!(args.tags(), ["latest"]);

        // a source is required, and only one
        assert!(build_args(&["r/x"]).is_err());
        assert!(build_args(&["r/x", "--busybox", "a", "--binary", "b"]).is_err());
    }

    #[test]
    fn bad_build_requests_are_invalid_arguments_before_anything_is_read() {
        for argv in [
            // nothing to run in an image of one binary
            &["r:1/x", "--binary", "/nonexistent"][..],
            &["r:1/x", "--binary", "/x", "--cmd", "/x", "--hard-links"],
            &["r:1/x", "--busybox", "/nonexistent", "--label", "novalue"],
            &["r:1/x", "--busybox", "/nonexistent", "--env", "=x"],
            &["r:1/x", "--busybox", "/nonexistent", "-t", "bad tag"],
            &["r:1/x@sha256:00", "--busybox", "/nonexistent"],
            // --push needs a registry host first
            &["anycri/x", "--busybox", "/nonexistent", "--push"],
            &["r:1/Upper", "--busybox", "/nonexistent", "--push"],
        ] {
            let err = build_args(argv).unwrap().build().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{argv:?}: {err}");
        }
        // valid arguments, missing binary: NotFound, nothing written
        let dir = std::env::temp_dir().join(format!("anycri-build-{}", std::process::id()));
        let archive = dir.join("x.tar");
        let args = build_args(&[
            "r:1/x",
            "--busybox",
            "/nonexistent",
            "--docker-archive",
            archive.to_str().unwrap(),
        ])
        .unwrap();
        let err = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(run_build(args))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(!archive.exists());
    }

    /// A whole build from this host's busybox into the three file formats (the registry push
    /// is exercised by scripts/runtime-env, which builds every live test's images this way).
    #[test]
    fn builds_the_three_file_formats_from_the_host_busybox() {
        if !std::path::Path::new(crate::busybox::DEFAULT_BUSYBOX).exists() {
            assert_ne!(
                std::env::var("ANYCRI_REQUIRE_LIVE").as_deref(),
                Ok("1"),
                "no {} (install busybox-static)",
                crate::busybox::DEFAULT_BUSYBOX
            );
            eprintln!("SKIPPED: no {}", crate::busybox::DEFAULT_BUSYBOX);
            return;
        }
        let dir = std::env::temp_dir().join(format!("anycri-build3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let args = build_args(&[
            "127.0.0.1:5000/anycri/bb",
            "--busybox",
            crate::busybox::DEFAULT_BUSYBOX,
            "--hard-links",
            "-t",
            "1.0",
            "-t",
            "latest",
            "--oci-layout",
            &path("oci"),
            "--oci-archive",
            &path("bb.oci.tar"),
            "--docker-archive",
            &path("bb.docker.tar"),
            "--digest-file",
            &path("digest"),
            "--id-file",
            &path("id"),
        ])
        .unwrap();
        let outcome = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(run_build(args.clone()))
            .unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read("digest").trim(), outcome.image.digest().as_str());
        assert_eq!(read("id").trim(), outcome.image.id().as_str());
        assert!(read("oci/index.json").contains("127.0.0.1:5000/anycri/bb:latest"));
        assert!(dir.join("bb.oci.tar").exists() && dir.join("bb.docker.tar").exists());
        assert!(outcome.pushed.is_empty());
        // deterministic: the same inputs give the same image
        assert_eq!(args.build().unwrap().digest(), outcome.image.digest());
        std::fs::remove_dir_all(&dir).unwrap();
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
