//! How the fake "runs" commands. There are no processes: an [`ExecHandler`] turns a command
//! into output and an exit code. The default, [`ShellExec`], understands the handful of
//! commands tests use (`echo`, `true`, `false`, `sleep`, `exit`, `sh -c "a; b"`, `>&2`), so
//! the same test code runs against the fake and a real runtime.

use std::time::Duration;

use async_trait::async_trait;

/// The outcome of running a command in the fake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecResult {
    /// What it wrote to stdout.
    pub stdout: Vec<u8>,
    /// What it wrote to stderr.
    pub stderr: Vec<u8>,
    /// Its exit code (meaningless while `still_running`).
    pub exit_code: i32,
    /// The command did not finish: it sleeps (or blocks) for `sleeping`.
    pub sleeping: Option<Duration>,
}

/// Runs commands for the fake, both ExecSync and a container's main process.
///
/// Return [`ExecResult::sleeping`] for a command that keeps running: as a container's main
/// process it stays running, under ExecSync it takes that long (or hits the exec timeout).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
/// use std::time::Duration;
/// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeServiceExt, api::ContainerState};
/// use anycri_fake::{ExecHandler, ExecResult, FakeRuntime};
///
/// /// A web server that runs until stopped, whatever its command line.
/// struct Server;
/// #[async_trait::async_trait]
/// impl ExecHandler for Server {
///     async fn run(&self, _container_id: &str, _cmd: &[String]) -> ExecResult {
///         ExecResult { sleeping: Some(Duration::MAX), ..Default::default() }
///     }
/// }
///
/// let fake = FakeRuntime::with_exec_handler(Server);
/// fake.add_image("nginx:1.27")?;
/// let pod = PodSandboxConfigBuilder::new("web", "default").build();
/// let app = ContainerConfigBuilder::new("nginx", "nginx:1.27").command(["nginx", "-g", "daemon off;"]);
/// let ids = fake.run_pod_and_container(pod, app.build()).await?;
/// assert_eq!(fake.get_container_status(&ids.container_id).await?.state(), ContainerState::ContainerRunning);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait ExecHandler: Send + Sync {
    /// Run `cmd` in the container `container_id`.
    async fn run(&self, container_id: &str, cmd: &[String]) -> ExecResult;
}

/// A tiny shell: `echo [-n] WORDS`, `true`, `false`, `sleep N`, `exit N`, `sh -c "S1; S2"`
/// (statements separated by `;`, `&&` treated as `;`), `>&2` redirects to stderr. Anything
/// else exits 127 with "not found" on stderr, as a shell would.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use anycri_fake::{ExecHandler, ShellExec};
/// let argv = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
/// let out = ShellExec.run("any", &argv(&["sh", "-c", "echo hi; echo oops >&2; exit 4"])).await;
/// assert_eq!((out.stdout.as_slice(), out.stderr.as_slice(), out.exit_code), (&b"hi\n"[..], &b"oops\n"[..], 4));
/// let missing = ShellExec.run("any", &argv(&["curl", "localhost"])).await;
/// assert_eq!(missing.exit_code, 127);
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ShellExec;

#[async_trait]
impl ExecHandler for ShellExec {
    async fn run(&self, _container_id: &str, cmd: &[String]) -> ExecResult {
        run_argv(cmd)
    }
}

fn run_argv(cmd: &[String]) -> ExecResult {
    match cmd {
        [sh, flag, script, ..] if (sh == "sh" || sh.ends_with("/sh")) && flag == "-c" => {
            run_script(script)
        }
        _ => {
            let mut out = ExecResult::default();
            statement(
                &cmd.iter().map(String::as_str).collect::<Vec<_>>(),
                &mut out,
            );
            out
        }
    }
}

fn run_script(script: &str) -> ExecResult {
    let mut out = ExecResult::default();
    for stmt in script.split([';', '\n']).flat_map(|s| s.split("&&")) {
        let words = split_words(stmt);
        if words.is_empty() {
            continue;
        }
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        if statement(&words, &mut out) {
            break;
        }
    }
    out
}

/// Runs one statement; returns true when the script must stop (exit, or a blocking sleep).
fn statement(words: &[&str], out: &mut ExecResult) -> bool {
    let (words, to_stderr) = match words.split_last() {
        Some((&">&2", rest)) | Some((&"1>&2", rest)) => (rest, true),
        _ => (words, false),
    };
    let Some((&name, args)) = words.split_first() else {
        return false;
    };
    let name = name.rsplit('/').next().unwrap_or(name);
    match name {
        "echo" => {
            let (newline, args) = match args.first() {
                Some(&"-n") => (false, &args[1..]),
                _ => (true, args),
            };
            let mut text = args.join(" ");
            if newline {
                text.push('\n');
            }
            let sink = if to_stderr {
                &mut out.stderr
            } else {
                &mut out.stdout
            };
            sink.extend_from_slice(text.as_bytes());
            out.exit_code = 0;
            false
        }
        "true" | ":" => {
            out.exit_code = 0;
            false
        }
        "false" => {
            out.exit_code = 1;
            false
        }
        "exit" => {
            out.exit_code = args.first().and_then(|a| a.parse().ok()).unwrap_or(0);
            true
        }
        "sleep" => {
            let secs: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0.0);
            if secs > 0.0 {
                out.sleeping = Some(Duration::from_secs_f64(secs.min(1e9)));
                true
            } else {
                false
            }
        }
        other => {
            out.stderr
                .extend_from_slice(format!("sh: {other}: not found\n").as_bytes());
            out.exit_code = 127;
            false
        }
    }
}

/// Split on whitespace, honouring single and double quotes.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn echo_and_exit_codes() {
        let r = run_argv(&argv(&["echo", "hello", "world"]));
        assert_eq!(
            (r.stdout.as_slice(), r.exit_code),
            (&b"hello world\n"[..], 0)
        );
        assert_eq!(run_argv(&argv(&["false"])).exit_code, 1);
        assert_eq!(run_argv(&argv(&["nope"])).exit_code, 127);
    }

    #[test]
    fn scripts() {
        let r = run_argv(&argv(&[
            "sh",
            "-c",
            "echo out; echo 'to err' >&2; exit 3; echo never",
        ]));
        assert_eq!(r.stdout, b"out\n");
        assert_eq!(r.stderr, b"to err\n");
        assert_eq!(r.exit_code, 3);
        let r = run_argv(&argv(&["/bin/sh", "-c", "echo hi && sleep 3600"]));
        assert_eq!(r.sleeping, Some(Duration::from_secs(3600)));
        assert_eq!(r.stdout, b"hi\n");
    }
}
