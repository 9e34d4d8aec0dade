//! Registry credentials never reach a log: an authenticated pull from a real registry that
//! demands them (Debian's docker-registry with htpasswd auth, on a port of its own) through
//! `anycri shim docker` and `anycri pull --creds/--auth`, with both processes logging at
//! `trace`, then the same pulls with a wrong password and none, and a pull with credentials
//! from containerd through the CLI. The registry must refuse the pull without credentials
//! and accept it with them (so the credentials really travelled), and no password, no
//! base64 `auth` string appears in anything the processes printed. Needs
//! `scripts/runtime-env up` (dockerd, containerd, the local registry, skopeo); skips with a
//! reason without it and fails under ANYCRI_REQUIRE_LIVE=1.

use std::{
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use anycri_testenv::{Daemon, docker_raw, env_value, skip_or_fail};

const USER: &str = "anycri-robot";
const PASSWORD: &str = "Pw-7f3c9e1d-secret";
const WRONG_PASSWORD: &str = "Wrong-91ab5c2e-secret";

fn anycri(endpoint: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anycri"))
        .args(["--log-level", "trace", "-r", endpoint])
        .args(args)
        .output()
        .expect("run anycri")
}

fn printed(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The HTTP status of GET `url` (plain HTTP on loopback), or 0.
fn http_status(addr: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// An htpasswd line for USER:PASSWORD (bcrypt, the only scheme the registry takes), from the
/// system Python's crypt module.
fn htpasswd_line() -> Option<String> {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            PASSWORD,
        ])
        .output()
        .ok()?;
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && hash.starts_with("$2")).then(|| format!("{USER}:{hash}\n"))
}

fn start_registry(dir: &Path, addr: &str) -> Daemon {
    std::fs::write(dir.join("htpasswd"), htpasswd_line().unwrap()).unwrap();
    let config = format!(
        "version: 0.1\nlog:\n  level: debug\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: anycri-test\n    path: {}\n",
        dir.join("data").display(),
        dir.join("htpasswd").display()
    );
    std::fs::write(dir.join("config.yml"), config).unwrap();
    let registry = Daemon::spawn(
        Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("registry.log")).unwrap()),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_status(addr, "/v2/") != 401 {
        assert!(
            Instant::now() < deadline,
            "the registry on {addr} does not ask for credentials"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    registry
}

#[test]
fn registry_credentials_never_reach_a_log() {
    let mut values = std::collections::HashMap::new();
    for key in [
        "DOCKER_ENDPOINT",
        "CONTAINERD_ENDPOINT",
        "ANYCRI_PAUSE_IMAGE",
        "ANYCRI_TEST_IMAGE",
    ] {
        match env_value(key) {
            Some(v) => values.insert(key, v),
            None => return skip_or_fail(&format!("{key} unknown")),
        };
    }
    for tool in ["/usr/bin/docker-registry", "/usr/bin/skopeo"] {
        if !Path::new(tool).exists() {
            return skip_or_fail(&format!("{tool} is missing"));
        }
    }
    if htpasswd_line().is_none() {
        return skip_or_fail("/usr/bin/python3 cannot make a bcrypt hash");
    }
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let _registry = start_registry(dir.path(), &addr);
    let image = format!("{addr}/anycri/secret:1.0");

    // The test image into the authenticated registry.
    let copied = Command::new("/usr/bin/skopeo")
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("--dest-creds={USER}:{PASSWORD}"))
        .arg(format!("docker://{}", values["ANYCRI_TEST_IMAGE"]))
        .arg(format!("docker://{image}"))
        .output()
        .unwrap();
    assert!(copied.status.success(), "skopeo copy: {}", printed(&copied));

    // The shim, logging everything it does.
    let socket = dir.path().join("shim.sock");
    let shim_log = dir.path().join("shim.log");
    let _shim = Daemon::spawn(
        Command::new(env!("CARGO_BIN_EXE_anycri"))
            .args(["--log-level", "trace", "shim", "docker", "--listen"])
            .arg(format!("unix://{}", socket.display()))
            .args(["--docker-endpoint", &values["DOCKER_ENDPOINT"]])
            .args(["--pause-image", &values["ANYCRI_PAUSE_IMAGE"]])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&shim_log).unwrap()),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the shim does not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let shim = format!("unix://{}", socket.display());
    let docker = &values["DOCKER_ENDPOINT"];
    let rmi = || {
        let _ = docker_raw(docker, &["rmi", "-f", &image]);
    };
    rmi();

    let mut everything = String::new();
    // Refused without credentials and with a wrong password: the registry really asks.
    let none = anycri(&shim, &["pull", &image]);
    everything += &printed(&none);
    assert!(!none.status.success(), "pulled without credentials");
    let wrong = anycri(
        &shim,
        &[
            "pull",
            "--creds",
            &format!("{USER}:{WRONG_PASSWORD}"),
            &image,
        ],
    );
    everything += &printed(&wrong);
    assert!(!wrong.status.success(), "pulled with a wrong password");
    // Accepted with them, as --creds and as --auth.
    let good = anycri(
        &shim,
        &["pull", "--creds", &format!("{USER}:{PASSWORD}"), &image],
    );
    everything += &printed(&good);
    assert!(
        good.status.success(),
        "pull with --creds: {}",
        printed(&good)
    );
    rmi();
    let auth = base64(&format!("{USER}:{PASSWORD}"));
    let good = anycri(&shim, &["pull", "--auth", &auth, &image]);
    everything += &printed(&good);
    assert!(
        good.status.success(),
        "pull with --auth: {}",
        printed(&good)
    );
    rmi();
    // Through the gRPC client to containerd too (its registry needs none; the client's own
    // logging of the request is what is checked).
    let ctrd = anycri(
        &values["CONTAINERD_ENDPOINT"],
        &[
            "pull",
            "--creds",
            &format!("{USER}:{PASSWORD}"),
            &values["ANYCRI_TEST_IMAGE"],
        ],
    );
    everything += &printed(&ctrd);
    assert!(ctrd.status.success(), "containerd pull: {}", printed(&ctrd));

    everything += &std::fs::read_to_string(&shim_log).unwrap();
    assert!(
        everything.contains("PullImage"),
        "the logs at trace do not even show the pulls:\n{everything}"
    );
    let wrong_auth = base64(&format!("{USER}:{WRONG_PASSWORD}"));
    for secret in [PASSWORD, WRONG_PASSWORD, auth.as_str(), wrong_auth.as_str()] {
        if let Some(at) = everything.find(secret) {
            let from = everything[..at].rfind('\n').map_or(0, |i| i + 1);
            let to = everything[at..]
                .find('\n')
                .map_or(everything.len(), |i| at + i);
            panic!(
                "a credential appears in the output: {}",
                &everything[from..to]
            );
        }
    }
    eprintln!(
        "FIGURES credentials: {} bytes of trace-level output from the shim and 5 CLI pulls, no secret in them",
        everything.len()
    );
}
