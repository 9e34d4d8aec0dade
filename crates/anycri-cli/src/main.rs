//! `anycri`: inspect and drive any container runtime through anycri — the CRI's crictl
//! verbs (info, version, events, watch, pods, runp, stopp, rmp, statsp, ps, create, start,
//! run, update, stop, rm, stats, images, pull, rmi, imagefsinfo, inspect, exec, attach,
//! port-forward, logs, completion) against any endpoint `anycri::connect` accepts, or the
//! node's runtime found the way crictl finds it. This file holds the command line and the
//! dispatch; the verbs live in `commands/`, one module each, events and watch in `events.rs`,
//! the daemons in `daemon.rs`.

/// `println!` that ends the process quietly when stdout is closed (`anycri ps | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod commands;
mod daemon;
mod docker_compat;
mod events;
mod migrate;
mod output;
mod streaming;
mod systemd;

use std::{process::ExitCode, sync::Arc, time::Duration};

use anycri::{Connected, Error, ErrorKind, ImageService, Layered, RuntimeService, TimeoutLayer};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// Talk to any Kubernetes container runtime (containerd, CRI-O, Docker) through one API.
#[derive(Debug, Parser)]
#[command(name = "anycri", version, about)]
struct Cli {
    /// Runtime endpoint: unix:///path, fake:// or docker:///path. Without it:
    /// CONTAINER_RUNTIME_ENDPOINT, then the usual sockets (containerd, CRI-O, cri-dockerd).
    #[arg(short = 'r', long, global = true, env = "CONTAINER_RUNTIME_ENDPOINT")]
    runtime_endpoint: Option<String>,

    /// Image endpoint, when images are served elsewhere (default: the runtime endpoint).
    /// Before the command, as in crictl (`exec -i` and `attach -i` mean stdin).
    #[arg(short = 'i', long, env = "IMAGE_SERVICE_ENDPOINT")]
    image_endpoint: Option<String>,

    /// Request timeout (e.g. 10s, 2m); per-call deadlines derive from it as in the kubelet.
    #[arg(long, global = true, default_value = "2m", value_parser = humantime::parse_duration)]
    timeout: Duration,

    /// Output format (default: table; imagefsinfo's default is json, as in crictl).
    #[arg(short = 'o', long, global = true, value_enum)]
    output: Option<Format>,

    /// Log verbosity for anycri's own diagnostics (error, warn, info, debug, trace; daemons
    /// default to info).
    #[arg(long, global = true)]
    log_level: Option<String>,

    /// Log format: text for people, json for machines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `-o`: how results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// The CRI messages as JSON.
    Json,
    /// The CRI messages as YAML.
    Yaml,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runtime name, version, handlers, conditions and capabilities.
    Info,
    /// The runtime's version (crictl version); anycri's own is `anycri --version`.
    Version,
    /// Stream the runtime's container events (GetContainerEvents), like crictl events.
    Events {
        /// Exit after this many events.
        #[arg(long)]
        count: Option<usize>,
    },
    /// Follow container and pod state changes on any runtime: its events where it has them,
    /// relisting where not, and a relist after every gap.
    Watch(events::WatchArgs),
    /// List pod sandboxes.
    Pods(commands::pods::PodsArgs),
    /// List containers (running only, unless -a).
    Ps(commands::ps::PsArgs),
    /// List images.
    Images,
    /// Remove images by ID or reference (-a: all, -q: those no container uses).
    Rmi(commands::rmi::RmiArgs),
    /// The image filesystem's usage (JSON by default, as in crictl).
    Imagefsinfo,
    /// Pull an image.
    Pull(commands::pull::PullArgs),
    /// Show the full status of a container, pod or image (JSON).
    Inspect(commands::inspect::InspectArgs),
    /// Run a command in a container (streaming, like crictl exec; --sync for ExecSync).
    Exec(commands::exec::ExecArgs),
    /// Attach to a running container's main process.
    Attach(commands::attach::AttachArgs),
    /// Forward local ports to ports in a pod until interrupted (Ctrl-C).
    PortForward(commands::port_forward::PortForwardArgs),
    /// Print a container's log (read from its CRI log file on this host).
    Logs(commands::logs::LogsArgs),
    /// Stop containers.
    Stop(commands::stop::StopArgs),
    /// Remove containers (stopping them first with -f).
    Rm(commands::rm::RmArgs),
    /// Run a pod sandbox from a pod config file (JSON or YAML, crictl's format); prints its ID.
    Runp(commands::runp::RunpArgs),
    /// Create a container in a pod from crictl's config files; prints its ID.
    Create(commands::create::CreateArgs),
    /// Start created containers.
    Start(commands::start::StartArgs),
    /// Run a pod and a container in it from crictl's config files; prints the container's ID.
    Run(commands::run::RunArgs),
    /// Update running containers' resources (CPU, memory, cpusets, OOM score).
    Update(commands::update::UpdateArgs),
    /// Containers' resource use (CPU %, memory, disk, inodes, swap).
    Stats(commands::stats::StatsArgs),
    /// Pods' resource use (CPU %, memory).
    Statsp(commands::statsp::StatspArgs),
    /// Print the shell completion script (bash, zsh, fish).
    Completion(commands::completion::CompletionArgs),
    /// Stop pod sandboxes.
    Stopp(commands::stop::StoppArgs),
    /// Remove pod sandboxes with their containers.
    Rmp(commands::rm::RmpArgs),
    /// Serve a shim as a long-running CRI daemon.
    Shim {
        #[command(subcommand)]
        kind: ShimKind,
    },
    /// A transparent CRI proxy that records every call (tracing spans, optional Prometheus metrics).
    Proxy(daemon::ProxyArgs),
    /// Benchmark runtimes side by side: the same scenarios on every -r endpoint, reports
    /// (JSON, critest JSON, Markdown, HTML with plots) in --output-dir.
    Bench(anycri_bench::cli::BenchArgs),
    /// Run the conformance suite against the runtime (`--runtime-endpoint`, `--image-endpoint`).
    Conformance(anycri_conformance::cli::ConformanceArgs),
    /// Docker-compatible read-only commands over any CRI runtime (ps, images, inspect, logs,
    /// exec), for the scripts that outlive Docker on a node.
    Docker {
        #[command(subcommand)]
        command: docker_compat::DockerCommand,
    },
    /// Leave dockershim: find what depends on Docker (check), translate daemon.json (plan).
    Migrate {
        #[command(subcommand)]
        command: migrate::MigrateCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ShimKind {
    /// The Docker shim: CRI on Docker Engine (a cri-dockerd replacement).
    Docker(daemon::DockerShimArgs),
}

/// A connected runtime and how to print results: what every command gets.
pub struct Ctx {
    /// The runtime service (with the --timeout deadlines).
    pub runtime: Arc<dyn RuntimeService>,
    /// The image service (with the --timeout deadlines).
    pub images: Arc<dyn ImageService>,
    /// The output format (`-o`, table when not given).
    pub format: Format,
}

async fn connect(cli: &Cli) -> anycri::Result<Ctx> {
    let Connected { runtime, image, .. } = match &cli.runtime_endpoint {
        Some(uri) => anycri::connect(uri).await?,
        None => anycri::connect_auto().await?,
    };
    let image = match &cli.image_endpoint {
        Some(uri) if Some(uri) != cli.runtime_endpoint.as_ref() => {
            anycri::connect_image(uri).await?
        }
        _ => image,
    };
    let layer = TimeoutLayer::new(cli.timeout);
    Ok(Ctx {
        runtime: Arc::new(Layered::new(runtime, layer)),
        images: Arc::new(Layered::new(image, layer)),
        format: cli.output.unwrap_or(Format::Table),
    })
}

/// `key=value` label selectors.
pub fn parse_labels(
    labels: &[String],
) -> anycri::Result<std::collections::HashMap<String, String>> {
    labels
        .iter()
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| Error::invalid_argument(format!("label {l:?} must be key=value")))
        })
        .collect()
}

/// `anycri docker logs` and `anycri docker exec` as the CLI's own `logs` and `exec`; every
/// other command as it is.
fn docker_aliases(command: Command) -> anycri::Result<Command> {
    Ok(match command {
        Command::Docker {
            command:
                docker_compat::DockerCommand::Logs {
                    follow,
                    tail,
                    timestamps,
                    id,
                },
        } => {
            let tail = match tail.as_str() {
                "all" => None,
                n => Some(n.parse().map_err(|_| {
                    Error::invalid_argument(format!("--tail {n:?}: a number or \"all\""))
                })?),
            };
            Command::Logs(commands::logs::LogsArgs {
                timestamps,
                follow,
                tail,
                id,
            })
        }
        Command::Docker {
            command:
                docker_compat::DockerCommand::Exec {
                    interactive,
                    tty,
                    id,
                    cmd,
                },
        } => Command::Exec(commands::exec::ExecArgs {
            sync: false,
            interactive,
            tty,
            exec_timeout: Duration::ZERO,
            id,
            cmd,
        }),
        command => command,
    })
}

/// Dispatch: the commands that need no runtime connection first, then every other command
/// with the connected [`Ctx`].
async fn run(cli: Cli) -> anycri::Result<i32> {
    let cli = Cli {
        command: docker_aliases(cli.command)?,
        ..cli
    };
    if let Command::Migrate { command } = &cli.command {
        let json = cli.output == Some(Format::Json);
        let runtime = async { connect(&cli).await.map(|ctx| ctx.runtime) };
        return migrate::run(command.clone(), runtime, json).await;
    }
    match cli.command {
        Command::Shim {
            kind: ShimKind::Docker(args),
        } => return daemon::shim_docker(args).await.map(|_| 0),
        Command::Proxy(args) => return daemon::proxy(args).await.map(|_| 0),
        Command::Bench(args) => return anycri_bench::cli::run(args).await.map(|_| 0),
        Command::Completion(args) => return commands::completion::run(args, Cli::command()),
        Command::Conformance(mut args) => {
            args.runtime_endpoint = cli.runtime_endpoint.clone();
            args.image_endpoint = cli.image_endpoint.clone();
            return anycri_conformance::cli::run_cli(args).await;
        }
        _ => {}
    }
    if matches!(cli.command, Command::Runp(_) | Command::Run(_))
        && let Some(endpoint) = cli.runtime_endpoint.as_deref()
        && !endpoint.contains("://")
        && !endpoint.starts_with('/')
    {
        return Err(Error::invalid_argument(format!(
            "-r {endpoint:?} is not an endpoint: in anycri -r is the runtime endpoint; the \
             runtime handler (crictl's runp/run -r) is --runtime"
        )));
    }
    let explicit_format = cli.output;
    let endpoint = cli.runtime_endpoint.as_deref();
    let ctx = match connect(&cli).await {
        Ok(ctx) => ctx,
        // A containerd without its CRI (Docker's own): `info` still shows its namespaces.
        Err(e)
            if matches!(cli.command, Command::Info)
                && e.kind() == ErrorKind::FailedPrecondition =>
        {
            return commands::info::explain_without_cri(endpoint, explicit_format, e).await;
        }
        Err(e) => return Err(e),
    };
    match cli.command {
        Command::Info => commands::info::run(&ctx, endpoint).await,
        Command::Version => commands::version::run(&ctx).await,
        Command::Events { count } => events::events(&ctx.runtime, ctx.format, count)
            .await
            .map(|_| 0),
        Command::Watch(args) => events::watch(&ctx.runtime, ctx.format, args)
            .await
            .map(|_| 0),
        Command::Pods(args) => commands::pods::run(&ctx, args).await,
        Command::Runp(args) => commands::runp::run(&ctx, args).await,
        Command::Stopp(args) => commands::stop::stopp(&ctx, args).await,
        Command::Rmp(args) => commands::rm::rmp(&ctx, args).await,
        Command::Statsp(args) => commands::statsp::run(&ctx, args).await,
        Command::Ps(args) => commands::ps::run(&ctx, args).await,
        Command::Create(args) => commands::create::run(&ctx, args).await,
        Command::Start(args) => commands::start::run(&ctx, args).await,
        Command::Run(args) => commands::run::run(&ctx, args).await,
        Command::Update(args) => commands::update::run(&ctx, args).await,
        Command::Stop(args) => commands::stop::run(&ctx, args).await,
        Command::Rm(args) => commands::rm::run(&ctx, args).await,
        Command::Stats(args) => commands::stats::run(&ctx, args).await,
        Command::Images => commands::images::run(&ctx).await,
        Command::Pull(args) => commands::pull::run(&ctx, args).await,
        Command::Rmi(args) => commands::rmi::run(&ctx, args).await,
        Command::Imagefsinfo => commands::imagefsinfo::run(&ctx, explicit_format).await,
        Command::Inspect(args) => commands::inspect::run(&ctx, args).await,
        Command::Exec(args) => commands::exec::run(&ctx, args).await,
        Command::Attach(args) => commands::attach::run(&ctx, args).await,
        Command::PortForward(args) => commands::port_forward::run(&ctx, args).await,
        Command::Logs(args) => commands::logs::run(&ctx, args).await,
        Command::Docker { command } => docker_compat::run(command, &ctx.runtime, &ctx.images).await,
        Command::Shim { .. }
        | Command::Proxy(_)
        | Command::Conformance(_)
        | Command::Bench(_)
        | Command::Completion(_)
        | Command::Migrate { .. } => {
            unreachable!("served above")
        }
    }
}

/// A log level as tracing reads it, from anycri's names or cri-dockerd's (logrus: panic,
/// fatal, warning).
fn log_filter(level: &str) -> String {
    match level.to_ascii_lowercase().as_str() {
        "panic" | "fatal" => "error".into(),
        "warning" => "warn".into(),
        _ => level.to_owned(),
    }
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let daemon = matches!(cli.command, Command::Shim { .. } | Command::Proxy(_));
    let verbosity = match &cli.command {
        Command::Shim {
            kind: ShimKind::Docker(args),
        } => args.verbosity_level(),
        _ => None,
    };
    let level = cli
        .log_level
        .as_deref()
        .map(log_filter)
        .or(verbosity.map(String::from))
        .unwrap_or_else(|| if daemon { "info" } else { "warn" }.into());
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    // systemd's socket (fd://) is taken while this is the only thread: taking it clears
    // LISTEN_FDS/LISTEN_PID from the environment.
    if let Command::Shim {
        kind: ShimKind::Docker(args),
    } = &mut cli.command
        && let Err(e) = daemon::take_socket_activation(args)
    {
        eprintln!("anycri: error: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("anycri: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("anycri: error: {e}");
            ExitCode::FAILURE
        }
    }
}
