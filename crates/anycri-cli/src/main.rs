//! `anycri`: inspect and drive any container runtime through anycri — the CRI's crictl
//! verbs (info, version, events, watch, pods, runp, stopp, rmp, statsp, ps, create, start,
//! run, update, stop, rm, stats, images, pull, rmi, imagefsinfo, inspect, exec, attach,
//! port-forward, logs, completion) against any endpoint `anycri::connect` accepts, or the
//! node's runtime found the way crictl finds it. The verbs added for crictl parity live in
//! `commands/`, one module each.

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

use anycri::{
    Connected, Error, ErrorKind, ImageService, Layered, RuntimeService, RuntimeServiceExt,
    TimeoutLayer, api::*,
};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use output::Table;

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
    Pods {
        /// Only pods whose ID starts with this.
        #[arg(long)]
        id: Option<String>,
        /// Only pods with this label (key=value); repeatable.
        #[arg(short = 'l', long = "label")]
        labels: Vec<String>,
    },
    /// List containers (running only, unless -a).
    Ps {
        /// Show all containers, not only running ones.
        #[arg(short, long)]
        all: bool,
        /// Only containers of this pod.
        #[arg(short = 'p', long)]
        pod: Option<String>,
        /// Only containers with this label (key=value); repeatable.
        #[arg(short = 'l', long = "label")]
        labels: Vec<String>,
    },
    /// List images.
    Images,
    /// Remove images by ID or reference (-a: all, -q: those no container uses).
    Rmi(commands::rmi::RmiArgs),
    /// The image filesystem's usage (JSON by default, as in crictl).
    Imagefsinfo,
    /// Pull an image.
    Pull {
        /// Image reference.
        image: String,
        /// Registry credentials `USERNAME[:PASSWORD]` (crictl's `--creds`); never logged.
        #[arg(long, conflicts_with = "auth")]
        creds: Option<String>,
        /// Registry credentials as base64 `USERNAME:PASSWORD` (crictl's `--auth`); never logged.
        #[arg(long)]
        auth: Option<String>,
    },
    /// Show the full status of a container, pod or image (JSON).
    Inspect {
        /// Container ID, pod ID or image reference.
        id: String,
    },
    /// Run a command in a container (streaming, like crictl exec; --sync for ExecSync).
    Exec {
        /// Run synchronously (ExecSync) and print the output when the command ends.
        #[arg(short, long)]
        sync: bool,
        /// Forward stdin to the command.
        #[arg(short = 'i', long, conflicts_with = "sync")]
        interactive: bool,
        /// Allocate a terminal: the local one goes raw and its size follows.
        #[arg(short, long, conflicts_with = "sync")]
        tty: bool,
        /// With --sync: kill the command after this long (0: no limit).
        #[arg(long = "exec-timeout", default_value = "0s", value_parser = humantime::parse_duration)]
        exec_timeout: Duration,
        /// Container ID.
        id: String,
        /// Command and arguments.
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Attach to a running container's main process.
    Attach {
        /// Forward stdin to the process (the container must keep stdin open).
        #[arg(short = 'i', long)]
        interactive: bool,
        /// The container has a terminal: the local one goes raw and its size follows.
        #[arg(short, long)]
        tty: bool,
        /// Container ID.
        id: String,
    },
    /// Forward local ports to ports in a pod until interrupted (Ctrl-C).
    PortForward {
        /// The local address to listen on (an IP, or localhost).
        #[arg(long, default_value = "127.0.0.1")]
        address: String,
        /// Pod ID.
        pod: String,
        /// Ports as [LOCAL:]REMOTE (`:REMOTE` picks a free local port).
        #[arg(required = true)]
        ports: Vec<String>,
    },
    /// Print a container's log (read from its CRI log file on this host).
    Logs {
        /// Show timestamps.
        #[arg(short = 't', long)]
        timestamps: bool,
        /// Keep printing new lines until the container exits (rotation is followed).
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only the last N lines already in the log.
        #[arg(long)]
        tail: Option<usize>,
        /// Container ID.
        id: String,
    },
    /// Stop containers.
    Stop {
        /// Grace period in seconds.
        #[arg(long, default_value_t = 10)]
        grace: i64,
        /// Container IDs.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Remove containers (stopping them first with -f).
    Rm {
        /// Stop running containers first.
        #[arg(short, long)]
        force: bool,
        /// Container IDs.
        #[arg(required = true)]
        ids: Vec<String>,
    },
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
    Stopp {
        /// Pod IDs.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Remove pod sandboxes with their containers.
    Rmp {
        /// Pod IDs.
        #[arg(required = true)]
        ids: Vec<String>,
    },
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

/// containerd's namespaces (the CRI's `k8s.io`, Docker's `moby`, ...) when the runtime is a
/// containerd on a unix socket; `None` otherwise or when they cannot be read.
async fn containerd_namespaces(cli: &Cli, info: &anycri::RuntimeInfo) -> Option<Vec<String>> {
    if info.flavour != anycri::RuntimeFlavour::Containerd {
        return None;
    }
    let endpoint = match &cli.runtime_endpoint {
        Some(uri) => uri.clone(),
        None => anycri::DEFAULT_ENDPOINTS
            .iter()
            .find(|e| {
                e.contains("containerd")
                    && std::path::Path::new(e.trim_start_matches("unix://")).exists()
            })?
            .to_string(),
    };
    if !endpoint.starts_with("unix://") {
        return None;
    }
    let client = anycri::grpc::anycri_containerd::ContainerdClient::connect(&endpoint)
        .await
        .ok()?;
    let namespaces = client.namespaces().await.ok()?;
    Some(namespaces.into_iter().map(|n| n.name).collect())
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

async fn run(cli: Cli) -> anycri::Result<i32> {
    // `docker logs` and `docker exec` are the CLI's own logs and exec.
    let cli = match cli.command {
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
            Cli {
                command: Command::Logs {
                    timestamps,
                    follow,
                    tail,
                    id,
                },
                ..cli
            }
        }
        Command::Docker {
            command:
                docker_compat::DockerCommand::Exec {
                    interactive,
                    tty,
                    id,
                    cmd,
                },
        } => Cli {
            command: Command::Exec {
                sync: false,
                interactive,
                tty,
                exec_timeout: Duration::ZERO,
                id,
                cmd,
            },
            ..cli
        },
        command => Cli { command, ..cli },
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
    let ctx = match connect(&cli).await {
        Ok(ctx) => ctx,
        // A containerd without its CRI (Docker's own): `info` still shows its namespaces.
        Err(e)
            if matches!(cli.command, Command::Info)
                && e.kind() == ErrorKind::FailedPrecondition =>
        {
            if let Some(uri) = cli
                .runtime_endpoint
                .as_deref()
                .filter(|u| u.starts_with("unix://"))
                && let Ok(client) =
                    anycri::grpc::anycri_containerd::ContainerdClient::connect(uri).await
                && let Ok(namespaces) = client.namespaces().await
            {
                let names: Vec<String> = namespaces.into_iter().map(|n| n.name).collect();
                if cli.output.is_some_and(|f| f != Format::Table) {
                    output::print_structured(
                        cli.output.unwrap_or(Format::Json),
                        &serde_json::json!({
                            "error": e.to_string(),
                            "containerdNamespaces": names,
                        }),
                    )?;
                } else {
                    out!("containerd namespaces: {}", names.join(", "));
                }
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let rt = &ctx.runtime;
    match cli.command {
        Command::Info => {
            let info = anycri::discover(rt.as_ref()).await?;
            let namespaces = containerd_namespaces(&cli, &info).await;
            if ctx.format != Format::Table {
                let caps: serde_json::Map<_, _> = info
                    .capabilities
                    .entries()
                    .iter()
                    .map(|(k, v)| (k.to_string(), serde_json::Value::Bool(*v)))
                    .collect();
                let mut value = serde_json::json!({
                    "runtimeName": info.runtime_name,
                    "runtimeVersion": info.runtime_version,
                    "runtimeApiVersion": info.runtime_api_version,
                    "flavour": format!("{:?}", info.flavour),
                    "cgroupDriver": info.cgroup_driver.map(|d| format!("{d:?}")),
                    "handlers": info.handlers.iter().map(|h| &h.name).collect::<Vec<_>>(),
                    "conditions": info.conditions.iter().map(|c| serde_json::json!({
                        "type": c.kind, "status": c.status, "reason": c.reason, "message": c.message
                    })).collect::<Vec<_>>(),
                    "capabilities": caps,
                    "capabilityReasons": info.capability_reasons,
                });
                if let Some(ns) = &namespaces {
                    value["containerdNamespaces"] = ns.clone().into();
                }
                output::print_structured(ctx.format, &value)?;
            } else {
                output::print_info(&info);
                if let Some(ns) = &namespaces {
                    out!("containerd namespaces: {}", ns.join(", "));
                }
            }
        }
        Command::Docker { command } => {
            return docker_compat::run(command, rt, &ctx.images).await;
        }
        Command::Version => return commands::version::run(&ctx).await,
        Command::Runp(args) => return commands::runp::run(&ctx, args).await,
        Command::Create(args) => return commands::create::run(&ctx, args).await,
        Command::Start(args) => return commands::start::run(&ctx, args).await,
        Command::Run(args) => return commands::run::run(&ctx, args).await,
        Command::Update(args) => return commands::update::run(&ctx, args).await,
        Command::Stats(args) => return commands::stats::run(&ctx, args).await,
        Command::Statsp(args) => return commands::statsp::run(&ctx, args).await,
        Command::Rmi(args) => return commands::rmi::run(&ctx, args).await,
        Command::Imagefsinfo => return commands::imagefsinfo::run(&ctx, explicit_format).await,
        Command::Events { count } => events::events(rt, ctx.format, count).await?,
        Command::Watch(args) => events::watch(rt, ctx.format, args).await?,
        Command::Pods { id, labels } => {
            let filter = PodSandboxFilter {
                id: id.unwrap_or_default(),
                label_selector: parse_labels(&labels)?,
                ..Default::default()
            };
            let items = rt
                .list_pod_sandbox(ListPodSandboxRequest {
                    filter: Some(filter),
                })
                .await?
                .items;
            if ctx.format != Format::Table {
                return output::print_structured(ctx.format, &items).map(|_| 0);
            }
            let mut t = Table::new([
                "POD ID",
                "CREATED",
                "STATE",
                "NAME",
                "NAMESPACE",
                "ATTEMPT",
                "RUNTIME",
            ]);
            for p in items {
                let m = p.metadata.unwrap_or_default();
                let state = PodSandboxState::try_from(p.state)
                    .map(|s| s.as_str_name())
                    .unwrap_or("UNKNOWN");
                t.row([
                    output::short_id(&p.id),
                    output::ago(p.created_at),
                    state.trim_start_matches("SANDBOX_").to_owned(),
                    m.name,
                    m.namespace,
                    m.attempt.to_string(),
                    if p.runtime_handler.is_empty() {
                        "(default)".into()
                    } else {
                        p.runtime_handler
                    },
                ]);
            }
            t.print();
        }
        Command::Ps { all, pod, labels } => {
            let filter = ContainerFilter {
                pod_sandbox_id: pod.unwrap_or_default(),
                label_selector: parse_labels(&labels)?,
                state: (!all).then_some(ContainerStateValue {
                    state: ContainerState::ContainerRunning as i32,
                }),
                ..Default::default()
            };
            let containers = rt
                .list_containers(ListContainersRequest {
                    filter: Some(filter),
                })
                .await?
                .containers;
            if ctx.format != Format::Table {
                return output::print_structured(ctx.format, &containers).map(|_| 0);
            }
            let mut t = Table::new([
                "CONTAINER",
                "IMAGE",
                "CREATED",
                "STATE",
                "NAME",
                "ATTEMPT",
                "POD ID",
            ]);
            for c in containers {
                let m = c.metadata.unwrap_or_default();
                let state = ContainerState::try_from(c.state)
                    .map(|s| s.as_str_name())
                    .unwrap_or("UNKNOWN");
                let image = c.image.map(|i| i.image).unwrap_or_default();
                t.row([
                    output::short_id(&c.id),
                    output::short_id(&image),
                    output::ago(c.created_at),
                    state.trim_start_matches("CONTAINER_").to_owned(),
                    m.name,
                    m.attempt.to_string(),
                    output::short_id(&c.pod_sandbox_id),
                ]);
            }
            t.print();
        }
        Command::Images => {
            let images = ctx
                .images
                .list_images(ListImagesRequest::default())
                .await?
                .images;
            if ctx.format != Format::Table {
                return output::print_structured(ctx.format, &images).map(|_| 0);
            }
            let mut t = Table::new(["IMAGE", "TAG", "IMAGE ID", "SIZE"]);
            for img in images {
                let id = output::short_id(&img.id);
                let size = output::size(img.size);
                if img.repo_tags.is_empty() {
                    let repo = img
                        .repo_digests
                        .first()
                        .and_then(|d| d.split('@').next())
                        .unwrap_or("<none>");
                    t.row([repo.to_owned(), "<none>".into(), id.clone(), size.clone()]);
                }
                for tag in &img.repo_tags {
                    let (repo, tag) = output::split_tag(tag);
                    t.row([repo.to_owned(), tag.to_owned(), id.clone(), size.clone()]);
                }
            }
            t.print();
        }
        Command::Pull { image, creds, auth } => {
            let auth = match (creds, auth) {
                (Some(creds), _) => {
                    let (username, password) = creds.split_once(':').unwrap_or((&creds, ""));
                    Some(AuthConfig {
                        username: username.to_owned(),
                        password: password.to_owned(),
                        ..Default::default()
                    })
                }
                (None, Some(auth)) => Some(AuthConfig {
                    auth,
                    ..Default::default()
                }),
                (None, None) => None,
            };
            let image_ref = ctx
                .images
                .pull_image(PullImageRequest {
                    image: Some(ImageSpec {
                        image: image.clone(),
                        ..Default::default()
                    }),
                    auth,
                    ..Default::default()
                })
                .await?
                .image_ref;
            out!("Image is up to date for {image_ref}");
        }
        Command::Inspect { id } => {
            let ctr = rt
                .container_status(ContainerStatusRequest {
                    container_id: id.clone(),
                    verbose: true,
                })
                .await;
            match ctr {
                Ok(status) => return output::print_structured(ctx.format, &status).map(|_| 0),
                Err(e) if !e.is_not_found() => return Err(e),
                Err(_) => {}
            }
            let pod = rt
                .pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: id.clone(),
                    verbose: true,
                })
                .await;
            match pod {
                Ok(status) => return output::print_structured(ctx.format, &status).map(|_| 0),
                Err(e) if !e.is_not_found() => return Err(e),
                Err(_) => {}
            }
            let image = ctx
                .images
                .image_status(ImageStatusRequest {
                    image: Some(ImageSpec {
                        image: id.clone(),
                        ..Default::default()
                    }),
                    verbose: true,
                })
                .await;
            match image {
                Ok(status) if status.image.is_some() => {
                    return output::print_structured(ctx.format, &status).map(|_| 0);
                }
                Ok(_) => {}
                Err(e) if !e.is_not_found() && e.kind() != anycri::ErrorKind::InvalidArgument => {
                    return Err(e);
                }
                Err(_) => {}
            }
            return Err(Error::not_found(format!(
                "no container, pod or image {id:?}"
            )));
        }
        Command::Exec {
            sync,
            interactive,
            tty,
            exec_timeout,
            id,
            cmd,
        } => {
            if !sync {
                return streaming::exec(rt.as_ref(), &id, &cmd, interactive, tty).await;
            }
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let out = rt.exec_collect(&id, &cmd, exec_timeout).await?;
            use std::io::Write;
            std::io::stdout().write_all(&out.stdout).ok();
            std::io::stderr().write_all(&out.stderr).ok();
            return Ok(out.exit_code);
        }
        Command::Attach {
            interactive,
            tty,
            id,
        } => return streaming::attach(rt.as_ref(), &id, interactive, tty).await,
        Command::PortForward {
            address,
            pod,
            ports,
        } => return streaming::port_forward(rt.clone(), &pod, &ports, &address).await,
        Command::Logs {
            timestamps,
            follow,
            tail,
            id,
        } => {
            use futures::StreamExt as _;
            let options = anycri::FollowOptions {
                tail,
                follow,
                ..Default::default()
            };
            let mut lines = anycri::follow_container_log(rt.as_ref(), &id, options).await?;
            while let Some(line) = lines.next().await {
                let line = line?;
                let text = if timestamps {
                    format!("{} {}", line.timestamp, line.content)
                } else {
                    line.content
                };
                match line.stream {
                    anycri::logs::LogStream::Stdout => out!("{text}"),
                    anycri::logs::LogStream::Stderr => eprintln!("{text}"),
                }
            }
        }
        Command::Stop { grace, ids } => {
            for id in ids {
                rt.stop_container(StopContainerRequest {
                    container_id: id.clone(),
                    timeout: grace,
                })
                .await?;
                out!("{id}");
            }
        }
        Command::Rm { force, ids } => {
            for id in ids {
                if !force {
                    let status = rt.get_container_status(&id).await?;
                    if status.state == ContainerState::ContainerRunning as i32 {
                        return Err(Error::failed_precondition(format!(
                            "container {id} is running; stop it first or use -f"
                        )));
                    }
                } else {
                    rt.stop_container(StopContainerRequest {
                        container_id: id.clone(),
                        timeout: 0,
                    })
                    .await?;
                }
                rt.remove_container(RemoveContainerRequest {
                    container_id: id.clone(),
                })
                .await?;
                out!("{id}");
            }
        }
        Command::Stopp { ids } => {
            for id in ids {
                rt.stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                })
                .await?;
                out!("Stopped sandbox {id}");
            }
        }
        Command::Shim { .. }
        | Command::Proxy(_)
        | Command::Conformance(_)
        | Command::Bench(_)
        | Command::Completion(_)
        | Command::Migrate { .. } => {
            unreachable!("served above")
        }
        Command::Rmp { ids } => {
            for id in ids {
                // An unknown pod is an error here, even though removal itself is idempotent.
                rt.get_pod_status(&id).await?;
                rt.remove_pod_with_containers(&id).await?;
                out!("Removed sandbox {id}");
            }
        }
    }
    Ok(0)
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
