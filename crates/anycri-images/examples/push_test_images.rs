//! Build the test images and push them, as `anycri conformance images` does:
//! `cargo run -p anycri-images --example push_test_images -- --push 127.0.0.1:5000 --output-file images.json`.

use clap::Parser;

/// Build the test images from busybox-static and push them to a registry.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: anycri_images::cli::ImagesArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = anycri_images::cli::run(cli.args).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
