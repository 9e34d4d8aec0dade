//! `anycri docker ps|images|inspect|logs|exec`: a read-mostly bridge for the scripts that
//! outlive Docker on a node. They run over any CRI runtime with Docker's flags and output
//! shapes for what scripts use — `ps -a -q --filter label=… --filter name=…`, `inspect`'s
//! `Id`, `Name`, `State.Status`, `State.Pid`, `Config.Image`, `Config.Labels`, `Mounts`,
//! `logs -f --tail -t` — with containers named as dockershim named them
//! (`k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`). Not a Docker replacement: nothing
//! here creates, changes or removes anything.

use std::collections::HashMap;
use std::sync::Arc;

use anycri::api::*;
use anycri::{Error, ErrorKind, ImageService, RuntimeService};
use clap::Subcommand;
use serde_json::{Value, json};

/// `anycri docker ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum DockerCommand {
    /// List containers (`docker ps`).
    Ps(PsArgs),
    /// List images (`docker images`).
    Images {
        /// Only image IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Full image IDs.
        #[arg(long)]
        no_trunc: bool,
    },
    /// Docker-shaped JSON of containers or images (`docker inspect`).
    Inspect {
        /// Go-template-like format: `{{.State.Pid}}`, `{{.Config.Image}}`, `{{json .Mounts}}`,
        /// `{{index .Config.Labels "key"}}`.
        #[arg(short, long)]
        format: Option<String>,
        /// Container IDs (or prefixes, or dockershim names) and image references.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// A container's log (`docker logs`).
    Logs {
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines ("all" for everything).
        #[arg(long, default_value = "all")]
        tail: String,
        /// Show timestamps.
        #[arg(short, long)]
        timestamps: bool,
        /// Container.
        id: String,
    },
    /// Run a command in a container (`docker exec`).
    Exec {
        /// Keep stdin open.
        #[arg(short, long)]
        interactive: bool,
        /// Allocate a terminal.
        #[arg(short, long)]
        tty: bool,
        /// Container.
        id: String,
        /// Command and arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
}

/// `anycri docker ps`.
#[derive(Debug, Clone, clap::Args)]
pub struct PsArgs {
    /// All containers (running only by default).
    #[arg(short, long)]
    pub all: bool,
    /// Only IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Full IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Filters: `label=key`, `label=key=value`, `name=substring`, `id=prefix`,
    /// `status=running|exited|created`; repeatable (all must match, as in Docker).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Go-template-like format (`{{.ID}}\t{{.Names}}`, `{{.Label "key"}}`) or `json`.
    #[arg(long)]
    pub format: Option<String>,
}

/// One container as Docker would show it.
struct Row {
    id: String,
    name: String,
    image: String,
    image_id: String,
    created_at: i64,
    state: &'static str,
    status: ContainerStatus,
    pid: i64,
    labels: HashMap<String, String>,
}

/// Everything a `docker` subcommand needs.
pub async fn run(
    command: DockerCommand,
    rt: &Arc<dyn RuntimeService>,
    images: &Arc<dyn ImageService>,
) -> anycri::Result<i32> {
    match command {
        DockerCommand::Ps(args) => ps(rt, args).await,
        DockerCommand::Images { quiet, no_trunc } => images_cmd(images, quiet, no_trunc).await,
        DockerCommand::Inspect { format, ids } => inspect(rt, images, format, ids).await,
        // Logs and exec are the CLI's own commands; main.rs maps them.
        DockerCommand::Logs { .. } | DockerCommand::Exec { .. } => Err(Error::new(
            ErrorKind::Internal,
            "docker logs/exec are dispatched by the CLI",
        )),
    }
}

async fn rows(rt: &Arc<dyn RuntimeService>) -> anycri::Result<Vec<Row>> {
    let pods: HashMap<String, PodSandboxMetadata> = rt
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await?
        .items
        .into_iter()
        .map(|p| (p.id, p.metadata.unwrap_or_default()))
        .collect();
    let containers = rt
        .list_containers(ListContainersRequest::default())
        .await?
        .containers;
    let mut rows = Vec::new();
    for c in containers {
        let response = match rt
            .container_status(ContainerStatusRequest {
                container_id: c.id.clone(),
                verbose: true,
            })
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let status = response.status.unwrap_or_default();
        let pid = response
            .info
            .get("info")
            .and_then(|i| serde_json::from_str::<Value>(i).ok())
            .and_then(|v| v.get("pid").and_then(Value::as_i64))
            .unwrap_or(0);
        let meta = c.metadata.clone().unwrap_or_default();
        let pod = pods.get(&c.pod_sandbox_id).cloned().unwrap_or_default();
        let name = anycri::docker::labels::container_name(&meta, &pod)
            .unwrap_or_else(|_| meta.name.clone());
        let image = status
            .image
            .as_ref()
            .map(|i| {
                if i.user_specified_image.is_empty() {
                    i.image.clone()
                } else {
                    i.user_specified_image.clone()
                }
            })
            .unwrap_or_default();
        let state = match status.state() {
            ContainerState::ContainerCreated => "created",
            ContainerState::ContainerRunning => "running",
            ContainerState::ContainerExited => "exited",
            ContainerState::ContainerUnknown => "dead",
        };
        rows.push(Row {
            id: c.id.clone(),
            name,
            image,
            image_id: status.image_id.clone(),
            created_at: c.created_at,
            state,
            pid: if state == "running" { pid } else { 0 },
            labels: c.labels.clone(),
            status,
        });
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    Ok(rows)
}

fn matches(row: &Row, filter: &str) -> anycri::Result<bool> {
    let bad = || Error::invalid_argument(format!("filter {filter:?}: want key=value"));
    let (key, value) = filter.split_once('=').ok_or_else(bad)?;
    Ok(match key {
        "label" => match value.split_once('=') {
            Some((k, v)) => row.labels.get(k).is_some_and(|x| x == v),
            None => row.labels.contains_key(value),
        },
        "name" => row.name.contains(value),
        "id" => row.id.starts_with(value),
        "status" => row.state == value,
        other => {
            return Err(Error::invalid_argument(format!(
                "filter {other:?} is not supported (label, name, id, status)"
            )));
        }
    })
}

fn short(id: &str, no_trunc: bool) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    if no_trunc {
        id.to_string()
    } else {
        id[..id.len().min(12)].to_string()
    }
}

/// Docker's STATUS column: `Up 5 minutes`, `Exited (0) 3 minutes ago`, `Created`.
fn status_text(row: &Row) -> String {
    let since = |ns: i64| crate::output::ago(ns).trim_end_matches(" ago").to_string();
    match row.state {
        "running" => format!("Up {}", since(row.status.started_at)),
        "exited" => format!(
            "Exited ({}) {} ago",
            row.status.exit_code,
            since(row.status.finished_at)
        ),
        "created" => "Created".into(),
        _ => "Dead".into(),
    }
}

/// `{{.Field}}` substitution (and `\t`, `\n`) for `ps --format`.
fn ps_format(template: &str, row: &Row, no_trunc: bool) -> String {
    let mut out = template.replace("\\t", "\t").replace("\\n", "\n");
    let label_re = label_placeholders(&out);
    for (placeholder, key) in label_re {
        out = out.replace(
            &placeholder,
            row.labels.get(&key).map_or("", String::as_str),
        );
    }
    let labels = {
        let mut l: Vec<String> = row.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        l.sort();
        l.join(",")
    };
    for (field, value) in [
        ("ID", short(&row.id, no_trunc)),
        ("Names", row.name.clone()),
        ("Image", row.image.clone()),
        // The CRI lists no command; Docker's column stays empty.
        ("Command", String::new()),
        ("CreatedAt", rfc3339(row.created_at)),
        ("State", row.state.to_string()),
        ("Status", status_text(row)),
        ("Labels", labels),
        ("Ports", String::new()),
    ] {
        out = out.replace(&format!("{{{{.{field}}}}}"), &value);
    }
    out
}

/// `{{.Label "key"}}` placeholders and their keys.
fn label_placeholders(template: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{.Label \"") {
        let after = &rest[start + 10..];
        let Some(end) = after.find("\"}}") else { break };
        found.push((
            rest[start..start + 10 + end + 3].to_string(),
            after[..end].to_string(),
        ));
        rest = &after[end + 3..];
    }
    found
}

fn rfc3339(ns: i64) -> String {
    if ns <= 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

async fn ps(rt: &Arc<dyn RuntimeService>, args: PsArgs) -> anycri::Result<i32> {
    let mut selected = Vec::new();
    for row in rows(rt).await? {
        if !args.all && row.state != "running" {
            continue;
        }
        let mut ok = true;
        for f in &args.filter {
            ok &= matches(&row, f)?;
        }
        if ok {
            selected.push(row);
        }
    }
    if args.quiet {
        for r in &selected {
            out!("{}", short(&r.id, args.no_trunc));
        }
        return Ok(0);
    }
    match args.format.as_deref() {
        Some("json") => {
            for r in &selected {
                out!(
                    "{}",
                    json!({
                        "ID": short(&r.id, args.no_trunc), "Names": r.name, "Image": r.image,
                        "CreatedAt": rfc3339(r.created_at), "State": r.state, "Status": status_text(r),
                        "Labels": r.labels,
                    })
                );
            }
        }
        Some(template) => {
            for r in &selected {
                out!("{}", ps_format(template, r, args.no_trunc));
            }
        }
        None => {
            let mut t = crate::output::Table::new([
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ]);
            for r in &selected {
                t.row([
                    short(&r.id, args.no_trunc),
                    r.image.clone(),
                    String::new(),
                    crate::output::ago(r.created_at),
                    status_text(r),
                    String::new(),
                    r.name.clone(),
                ]);
            }
            t.print();
        }
    }
    Ok(0)
}

async fn images_cmd(
    images: &Arc<dyn ImageService>,
    quiet: bool,
    no_trunc: bool,
) -> anycri::Result<i32> {
    let list = images
        .list_images(ListImagesRequest::default())
        .await?
        .images;
    if quiet {
        for i in &list {
            out!("{}", short(&i.id, no_trunc));
        }
        return Ok(0);
    }
    let mut t = crate::output::Table::new(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    for i in &list {
        let id = short(&i.id, no_trunc);
        let tags: Vec<(&str, &str)> = if i.repo_tags.is_empty() {
            vec![("<none>", "<none>")]
        } else {
            i.repo_tags
                .iter()
                .map(|r| crate::output::split_tag(r))
                .collect()
        };
        for (repo, tag) in tags {
            t.row([
                repo.to_string(),
                tag.to_string(),
                id.clone(),
                "N/A".into(),
                crate::output::size(i.size),
            ]);
        }
    }
    t.print();
    Ok(0)
}

/// Docker's `inspect` JSON of a container.
fn container_json(row: &Row) -> Value {
    let s = &row.status;
    let mounts: Vec<Value> = s
        .mounts
        .iter()
        .map(|m| {
            json!({
                "Type": "bind",
                "Source": m.host_path,
                "Destination": m.container_path,
                "Mode": if m.readonly { "ro" } else { "" },
                "RW": !m.readonly,
                "Propagation": match m.propagation() {
                    MountPropagation::PropagationPrivate => "rprivate",
                    MountPropagation::PropagationHostToContainer => "rslave",
                    MountPropagation::PropagationBidirectional => "rshared",
                },
            })
        })
        .collect();
    json!({
        "Id": row.id,
        "Created": rfc3339(row.created_at),
        "Name": format!("/{}", row.name),
        "Image": row.image_id,
        "State": {
            "Status": row.state,
            "Running": row.state == "running",
            "Paused": false,
            "Restarting": false,
            "OOMKilled": s.reason == "OOMKilled",
            "Dead": row.state == "dead",
            "Pid": row.pid,
            "ExitCode": s.exit_code,
            "Error": "",
            "StartedAt": rfc3339(s.started_at),
            "FinishedAt": rfc3339(s.finished_at),
        },
        "Config": {
            "Image": row.image,
            "Labels": row.labels,
        },
        "Mounts": mounts,
        "LogPath": s.log_path,
    })
}

async fn inspect(
    rt: &Arc<dyn RuntimeService>,
    images: &Arc<dyn ImageService>,
    format: Option<String>,
    ids: Vec<String>,
) -> anycri::Result<i32> {
    let rows = rows(rt).await?;
    let mut out = Vec::new();
    for id in &ids {
        let name = id.trim_start_matches('/');
        let found: Vec<&Row> = rows
            .iter()
            .filter(|r| r.id == *id || r.name == name || r.id.starts_with(id.as_str()))
            .collect();
        match found.as_slice() {
            [row] => out.push(container_json(row)),
            [] => match images
                .image_status(ImageStatusRequest {
                    image: Some(ImageSpec {
                        image: id.clone(),
                        ..Default::default()
                    }),
                    verbose: false,
                })
                .await?
                .image
            {
                Some(i) => out.push(json!({
                    "Id": i.id,
                    "RepoTags": i.repo_tags,
                    "RepoDigests": i.repo_digests,
                    "Size": i.size,
                })),
                None => {
                    return Err(Error::not_found(format!("no such object: {id}")));
                }
            },
            _ => {
                return Err(Error::invalid_argument(format!(
                    "{id} matches {} containers; give more of the ID",
                    found.len()
                )));
            }
        }
    }
    match format {
        None => out!("{}", serde_json::to_string_pretty(&out).unwrap_or_default()),
        Some(template) => {
            for value in &out {
                out!("{}", go_template(&template, value)?);
            }
        }
    }
    Ok(0)
}

/// The subset of Go templates scripts use with `docker inspect -f`: `{{.A.B}}`,
/// `{{json .A}}`, `{{index .A.B "key"}}`.
fn go_template(template: &str, value: &Value) -> anycri::Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| Error::invalid_argument(format!("unclosed action in {template:?}")))?;
        let action = after[..end].trim();
        out.push_str(&action_value(action, value)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out.replace("\\t", "\t").replace("\\n", "\n"))
}

fn lookup<'a>(path: &str, value: &'a Value) -> anycri::Result<&'a Value> {
    let path = path.trim();
    if path == "." {
        return Ok(value);
    }
    let mut v = value;
    for key in path.trim_start_matches('.').split('.') {
        v = v.get(key).ok_or_else(|| {
            Error::invalid_argument(format!("template: no field {key:?} in {path}"))
        })?;
    }
    Ok(v)
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Object(m) => {
            let mut items: Vec<String> =
                m.iter().map(|(k, v)| format!("{k}:{}", plain(v))).collect();
            items.sort();
            format!("map[{}]", items.join(" "))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(" ")),
        other => other.to_string(),
    }
}

fn action_value(action: &str, value: &Value) -> anycri::Result<String> {
    if let Some(path) = action.strip_prefix("json ") {
        return Ok(serde_json::to_string(lookup(path, value)?).unwrap_or_default());
    }
    if let Some(args) = action.strip_prefix("index ") {
        let (path, key) = args.trim().split_once(' ').ok_or_else(|| {
            Error::invalid_argument(format!("template: index needs a key: {action}"))
        })?;
        let key = key.trim().trim_matches('"');
        return Ok(lookup(path, value)?
            .get(key)
            .map_or_else(|| "<no value>".into(), plain));
    }
    if action.starts_with('.') {
        return Ok(plain(lookup(action, value)?));
    }
    Err(Error::new(
        ErrorKind::InvalidArgument,
        format!("template action {action:?} is not supported (.Field, json, index)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_scripts_use() {
        let v = json!({"Id": "abc", "State": {"Pid": 42, "Status": "running"},
            "Config": {"Labels": {"io.kubernetes.pod.name": "web"}, "Image": "busybox"}, "Mounts": []});
        assert_eq!(go_template("{{.State.Pid}}", &v).unwrap(), "42");
        assert_eq!(
            go_template("{{.Id}} {{.State.Status}}", &v).unwrap(),
            "abc running"
        );
        assert_eq!(
            go_template("{{index .Config.Labels \"io.kubernetes.pod.name\"}}", &v).unwrap(),
            "web"
        );
        assert_eq!(go_template("{{json .Mounts}}", &v).unwrap(), "[]");
        assert!(go_template("{{.Nope}}", &v).is_err());
        assert!(go_template("{{range .Mounts}}", &v).is_err());
    }

    #[test]
    fn label_placeholders_are_found() {
        let found = label_placeholders("{{.ID}} {{.Label \"a.b\"}}");
        assert_eq!(
            found,
            vec![("{{.Label \"a.b\"}}".to_string(), "a.b".to_string())]
        );
    }
}
