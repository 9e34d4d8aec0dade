//! The processes live tests drive besides the code under test: daemons they start (stopped
//! when the test ends, however it ends), the docker CLI against the environment's dockerd,
//! and `scripts/runtime-env`.

use std::{
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

/// How long a daemon may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A process a test started (a shim, a proxy, a registry), stopped when dropped: SIGTERM, then
/// SIGKILL if it has not exited within 10 s. A test that panics leaves nothing running.
#[derive(Debug)]
pub struct Daemon(Child);

impl Daemon {
    /// Start `command`; a process that cannot start fails the test.
    pub fn spawn(command: &mut Command) -> Daemon {
        let program = command.get_program().to_string_lossy().into_owned();
        Daemon(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("starting {program}: {e}")),
        )
    }

    /// The process ID.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Send `signal` (a name `kill` knows: `TERM`, `HUP`, ...).
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([format!("-{signal}"), self.0.id().to_string()])
            .status();
    }

    /// How it exited, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.0.try_wait().ok().flatten()
    }

    /// SIGTERM, then SIGKILL after the grace period; how it exited.
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.exited() {
            return status;
        }
        self.signal("TERM");
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill()
    }

    /// SIGKILL at once (a crash, as the process sees it); how it exited.
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.0.kill();
        self.0.wait().expect("waiting for a killed process")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.stop();
        }
    }
}

/// Run the docker CLI against `endpoint` (with a configuration directory of its own, so the
/// user's credential helpers and contexts stay out): its standard output, or the command and
/// its standard error when it fails.
pub fn docker_raw(endpoint: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .env(
            "DOCKER_CONFIG",
            std::env::temp_dir().join("anycri-testenv-docker"),
        )
        .arg("-H")
        .arg(endpoint)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("docker {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "docker {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// [`docker_raw`]'s output without surrounding white space, `None` when the command fails (a
/// container already gone, a daemon that does not answer).
pub fn docker(endpoint: &str, args: &[&str]) -> Option<String> {
    docker_raw(endpoint, args).ok().map(|o| o.trim().to_owned())
}

/// Run `scripts/runtime-env ARG` (for example `restart-docker`); its failure fails the test.
pub fn runtime_env(arg: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/runtime-env");
    let status = Command::new(&script)
        .arg(arg)
        .stdout(Stdio::null())
        .status()
        .expect("run scripts/runtime-env");
    assert!(status.success(), "scripts/runtime-env {arg} failed");
}
