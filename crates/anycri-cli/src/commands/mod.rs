//! The `anycri` verbs that talk to a runtime, one module each with crictl's flag names and
//! output (a verb and its pod counterpart may share one: `stop`/`stopp`, `rm`/`rmp`): info,
//! version, pods, runp, stopp, rmp, statsp, ps, create, start, run, update, stop, rm, stats,
//! images, pull, rmi, imagefsinfo, inspect, exec, attach, port-forward, logs and completion
//! (`runp`, `create` and `run` read crictl's JSON/YAML config files and first do what the
//! kubelet does: log directories, `user_specified_image`). Each module has its clap arguments
//! and a `run` function over the connected [`Ctx`](crate::Ctx); this one holds what several
//! share: the image pull flags of `create` and `run`, registry credentials and
//! `--cancel-timeout` (the sampling and watch loop of `stats` and `statsp` is `sample`).

pub mod attach;
pub mod completion;
pub mod config;
pub mod create;
pub mod exec;
pub mod imagefsinfo;
pub mod images;
pub mod info;
pub mod inspect;
pub mod logs;
pub mod pods;
pub mod port_forward;
pub mod ps;
pub mod pull;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod runp;
pub mod sample;
pub mod start;
pub mod stats;
pub mod statsp;
pub mod stop;
pub mod update;
pub mod version;

use std::{sync::Arc, time::Duration};

use anycri::{
    Error, ErrorKind, ImageService, Layered, Result, RuntimeService, TimeoutLayer, api::*,
};
use clap::Args;

/// The flags `create` and `run` share with crictl: whether and how to pull the image first,
/// and the time each runtime call may take.
#[derive(Debug, Args)]
pub struct ContainerFlags {
    /// Do not pull the image first (create's default; run pulls unless told not to).
    #[arg(long, conflicts_with = "with_pull")]
    pub no_pull: bool,
    /// Pull the image first, with the pod's config (run's default).
    #[arg(long)]
    pub with_pull: bool,
    /// Registry credentials `USERNAME[:PASSWORD]` for the pull; never logged.
    #[arg(long, env = "CRICTL_CREDS", hide_env_values = true, conflicts_with_all = ["auth", "username"])]
    pub creds: Option<String>,
    /// Registry credentials as base64 `USERNAME:PASSWORD` for the pull; never logged.
    #[arg(
        long,
        env = "CRICTL_AUTH",
        hide_env_values = true,
        conflicts_with = "username"
    )]
    pub auth: Option<String>,
    /// Registry user for the pull; the password is read from the terminal (or a line of stdin).
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Give up the pull after this long (e.g. 5m; 0s: no limit).
    #[arg(long = "pull-timeout", visible_alias = "pt", env = "CRICTL_PULL_TIMEOUT",
          value_parser = humantime::parse_duration)]
    pub pull_timeout: Option<Duration>,
    /// Deadline of each runtime call (the kubelet's rule: twice this for RunPodSandbox);
    /// default: the global --timeout.
    #[arg(short = 'T', long = "cancel-timeout", value_parser = humantime::parse_duration)]
    pub cancel_timeout: Option<Duration>,
}

impl ContainerFlags {
    /// Whether to pull, given the command's default (crictl: `create` does not, `run` does).
    pub fn pull(&self, by_default: bool) -> bool {
        self.with_pull || (by_default && !self.no_pull)
    }
}

/// The runtime with `--cancel-timeout` as the base of every call's deadline, when given.
pub fn with_cancel_timeout(
    runtime: &Arc<dyn RuntimeService>,
    timeout: Option<Duration>,
) -> Arc<dyn RuntimeService> {
    match timeout.filter(|t| !t.is_zero()) {
        Some(t) => Arc::new(Layered::new(runtime.clone(), TimeoutLayer::new(t))),
        None => runtime.clone(),
    }
}

/// Registry credentials from crictl's `--creds`, `--auth` or `--username` (password prompted).
pub fn auth_config(
    creds: Option<&str>,
    auth: Option<&str>,
    username: Option<&str>,
) -> Result<Option<AuthConfig>> {
    if let Some(username) = username {
        let password = read_password()?;
        return Ok(Some(AuthConfig {
            username: username.to_owned(),
            password,
            ..Default::default()
        }));
    }
    Ok(match (creds, auth) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid_argument("both --creds and --auth are given"));
        }
        (Some(creds), None) => {
            let (username, password) = creds.split_once(':').unwrap_or((creds, ""));
            if username.is_empty() {
                return Err(Error::invalid_argument(
                    "--creds: the user name is empty (USERNAME[:PASSWORD])",
                ));
            }
            Some(AuthConfig {
                username: username.to_owned(),
                password: password.to_owned(),
                ..Default::default()
            })
        }
        (None, Some(auth)) => Some(AuthConfig {
            auth: auth.to_owned(),
            ..Default::default()
        }),
        (None, None) => None,
    })
}

/// A password from the terminal without echo ("Enter Password:" on stderr), or the first line
/// of stdin when it is not a terminal.
fn read_password() -> Result<String> {
    use rustix::termios::{self, LocalModes, OptionalActions};
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let saved = if stdin.is_terminal() {
        eprint!("Enter Password:");
        let _ = std::io::stderr().flush();
        termios::tcgetattr(&stdin).ok().inspect(|saved| {
            let mut quiet = saved.clone();
            quiet.local_modes.remove(LocalModes::ECHO);
            let _ = termios::tcsetattr(&stdin, OptionalActions::Now, &quiet);
        })
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = saved {
        let _ = termios::tcsetattr(&stdin, OptionalActions::Now, &saved);
        eprintln!();
    }
    read.map_err(|e| Error::with_source(ErrorKind::InvalidArgument, "reading the password", e))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Pull what a container needs before it is created, as crictl does with `--with-pull`: its
/// image (with the image's annotations) and the images of its image volume mounts, each with
/// the pod's config; `--pull-timeout` bounds each pull.
pub async fn pull_for_container(
    images: &dyn ImageService,
    config: &ContainerConfig,
    pod: &PodSandboxConfig,
    flags: &ContainerFlags,
) -> Result<()> {
    let auth = auth_config(
        flags.creds.as_deref(),
        flags.auth.as_deref(),
        flags.username.as_deref(),
    )?;
    let spec = config.image.clone().unwrap_or_default();
    let mut wanted = vec![ImageSpec {
        image: spec.image.clone(),
        annotations: spec.annotations.clone(),
        ..Default::default()
    }];
    for mount in &config.mounts {
        if let Some(image) = mount.image.as_ref().filter(|i| !i.image.is_empty()) {
            wanted.push(ImageSpec {
                image: image.image.clone(),
                annotations: spec.annotations.clone(),
                ..Default::default()
            });
        }
    }
    for image in wanted {
        let name = image.image.clone();
        tracing::info!(image = %name, "pulling");
        let pull = images.pull_image(PullImageRequest {
            image: Some(image),
            auth: auth.clone(),
            sandbox_config: Some(pod.clone()),
        });
        match flags.pull_timeout.filter(|t| !t.is_zero()) {
            Some(limit) => tokio::time::timeout(limit, pull).await.map_err(|_| {
                Error::deadline_exceeded(format!(
                    "pulling {name}: not done within {} (--pull-timeout)",
                    humantime::format_duration(limit)
                ))
            })??,
            None => pull.await?,
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_as_crictl_takes_them() {
        let a = auth_config(Some("robot:s3cret:x"), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.username.as_str(), a.password.as_str()),
            ("robot", "s3cret:x")
        );
        let a = auth_config(Some("robot"), None, None).unwrap().unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("robot", ""));
        let a = auth_config(None, Some("cm9ib3Q6cw=="), None)
            .unwrap()
            .unwrap();
        assert_eq!(a.auth, "cm9ib3Q6cw==");
        assert!(auth_config(None, None, None).unwrap().is_none());
        assert!(auth_config(Some("a:b"), Some("x"), None).is_err());
        assert!(auth_config(Some(":pw"), None, None).is_err());
    }
}
