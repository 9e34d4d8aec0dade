//! `anycri-images`: the image builder as a command. `build` makes one image from a busybox or
//! a host binary and writes it (OCI layout, OCI archive, docker-archive) or pushes it;
//! `test-images` builds and pushes the conformance test images. `scripts/runtime-env` makes
//! its test and pause images with `build`.

use clap::{Parser, Subcommand};

/// Build container images in memory, without a Docker engine.
#[derive(Parser)]
#[command(name = "anycri-images", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build one image from a busybox or a host binary; write it and/or push it.
    Build(anycri_images::cli::BuildArgs),
    /// Build the conformance test images and push them to a registry.
    TestImages(anycri_images::cli::ImagesArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("anycri-images: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Build(args) => anycri_images::cli::run_build(args).await.map(drop),
            Command::TestImages(args) => anycri_images::cli::run(args).await.map(drop),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("anycri-images: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
