//! Live: the `anycri-images build` command, run as a process the way `scripts/runtime-env`
//! runs it, checked with tools nobody here wrote. A glibc busybox userland with hard-linked
//! applets is built, written as an OCI archive and a docker-archive, and pushed; a second run
//! pushes nothing. `docker load` of the docker-archive gives the image ID the builder reported,
//! and a container of it runs applets that are one 0755 inode. `ctr images import` of the OCI
//! archive names the tag. The registry serves the digest the builder reported. Needs
//! `scripts/runtime-env up`; skips with a reason without it, fails under
//! `ANYCRI_REQUIRE_LIVE=1`. What is loaded or imported here is removed again.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anycri_images::RegistryClient;
use anycri_testenv::live_values;

const REPOSITORY: &str = "anycri-images-build/userland";
const CTR_NAMESPACE: &str = "anycri-images-build";

fn run(command: &mut Command) -> Output {
    let shown = format!("{command:?}");
    let out = command.output().unwrap_or_else(|e| panic!("{shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn glibc_busybox(env_dir: &str) -> PathBuf {
    let cached = Path::new(env_dir).join("cache/busybox-glibc/bin/busybox");
    if cached.exists() {
        cached
    } else {
        // the installed glibc package, when runtime-env found one
        PathBuf::from("/bin/busybox")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_writes_archives_runtimes_load_and_pushes_once() {
    let Some([registry, env_dir, docker, ctr, containerd]) = live_values([
        "REGISTRY",
        "ANYCRI_ENV_DIR",
        "DOCKER_ENDPOINT",
        "CONTAINERD_CTR",
        "CONTAINERD_ADDRESS",
    ]) else {
        return;
    };
    let tag = format!("t{}", std::process::id());
    let name = format!("{registry}/{REPOSITORY}");
    let reference = format!("{name}:{tag}");
    let dir = std::env::temp_dir().join(format!("anycri-build-command-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let busybox = glibc_busybox(&env_dir);
    let build = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_anycri-images"));
        command.args(["build", &name, "--busybox"]);
        command.arg(&busybox);
        command.args(["--hard-links", "--label", "org.anycri.test=build-command"]);
        command.args(["-t", &tag, "--push"]);
        command.args(["--oci-archive", &file("oci.tar")]);
        command.args(["--docker-archive", &file("docker.tar")]);
        command.args(["--id-file", &file("id")]);
        run(&mut command)
    };

    // first run: pushes the new tag; prints the manifest digest
    let first = build();
    let digest = text(&first);
    assert!(
        String::from_utf8_lossy(&first.stderr).contains(&format!("pushed {tag}")),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let client = RegistryClient::new(&registry).unwrap();
    let served = client.manifest_digest(REPOSITORY, &tag).await.unwrap();
    assert_eq!(served.map(|d| d.to_string()), Some(digest.clone()));
    // second run: the same image, nothing to push
    let second = build();
    assert_eq!(text(&second), digest, "deterministic");
    assert!(
        !String::from_utf8_lossy(&second.stderr).contains("pushed"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let id = std::fs::read_to_string(dir.join("id"))
        .unwrap()
        .trim()
        .to_owned();

    // docker load: the image ID is the config digest; the applets are the binary, mode 0755
    let docker_cli = |args: &[&str]| {
        let mut command = Command::new("docker");
        command.args(["-H", &docker]).args(args);
        command
    };
    run(&mut docker_cli(&["load", "-q", "-i", &file("docker.tar")]));
    let loaded = text(&run(&mut docker_cli(&[
        "image", "inspect", "-f", "{{.Id}}", &reference,
    ])));
    let listed = run(&mut docker_cli(&[
        "run",
        "--rm",
        "--network",
        "none",
        &reference,
        "sh",
        "-c",
        "stat -c '%i %a' /bin/busybox /bin/sh /usr/bin/wc; id -un",
    ]));
    run(&mut docker_cli(&["rmi", &reference]));
    assert_eq!(loaded, id);
    let lines: Vec<String> = text(&listed).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[..3].iter().all(|l| *l == lines[0]), "{lines:?}");
    assert!(lines[0].ends_with(" 755"), "{lines:?}");
    assert_eq!(lines[3], "root");

    // ctr import of the OCI archive: the name and tag from the index's annotation
    let ctr_cli = |args: &[&str]| {
        let mut command = Command::new(&ctr);
        command
            .args(["-a", &containerd, "-n", CTR_NAMESPACE])
            .args(args);
        command
    };
    run(&mut ctr_cli(&["images", "import", &file("oci.tar")]));
    let images = text(&run(&mut ctr_cli(&["images", "ls", "-q"])));
    run(&mut ctr_cli(&["images", "rm", &reference]));
    assert!(images.lines().any(|l| l == reference), "{images}");
    std::fs::remove_dir_all(&dir).unwrap();
}
