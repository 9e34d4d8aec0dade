//! CNI for the Docker shim: with [`NetworkPlugin::Cni`] the pause container is created with
//! Docker's `none` network and the shim itself runs the CNI plugins in its network namespace,
//! the way libcni does for the kubelet and containerd (no `cnitool`, no `nsenter`).
//!
//! - The network config is the lexically first `*.conf`, `*.conflist` or `*.json` file of the
//!   config directory; a single-plugin `.conf` becomes a one-plugin list.
//! - ADD runs when the sandbox has started: the plugins in order, each getting the previous
//!   one's result as `prevResult`, on interface `eth0` of the pause container's network
//!   namespace (Docker's `SandboxKey`, else `/proc/<pid>/ns/net`). Plugins declaring the
//!   `portMappings` capability get the pod's host ports as `runtimeConfig.portMappings`. The
//!   pod IP of the final result is kept in the sandbox checkpoint, with the config and result,
//!   so status needs no plugin and DEL works with what ADD used.
//! - DEL runs when the sandbox stops (before the pause container does, while its namespace
//!   still exists) and, if that did not happen, when it is removed: the plugins in reverse
//!   order with the cached ADD result. It is idempotent: the checkpoint records whether a DEL
//!   is still due, and CNI plugins tolerate deleting what is gone.
//! - Plugins run with a cleared environment (`PATH` and the `CNI_*` variables only), a
//!   timeout and bounded output; a plugin's error (`{"code","msg","details"}`) becomes the
//!   error of the CRI call.
//!
//! [`NetworkPlugin::Cni`]: crate::NetworkPlugin::Cni

use std::{net::IpAddr, path::Path, process::Stdio, time::Duration};

use anycri_core::{Error, ErrorKind, Result, api::PodSandboxConfig};
use bollard::models::ContainerInspectResponse;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    DockerRuntime, NetworkPlugin,
    checkpoint::{PortMappingEntry, SandboxCheckpoint},
    error::docker_error,
    labels,
};

/// How long one plugin invocation may take.
pub(crate) const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// The most a plugin may print on stdout (its result or error).
const MAX_STDOUT: u64 = 1 << 20;
/// The most of a plugin's stderr that is kept (for error messages).
const MAX_STDERR: u64 = 16 << 10;
/// The largest network config file read.
const MAX_CONFIG_FILE: u64 = 1 << 20;
/// The pod's interface.
const POD_INTERFACE: &str = "eth0";
/// CNI's "try again later" error code.
const CNI_TRY_AGAIN_LATER: u64 = 11;
/// Linux's ETXTBSY: the plugin binary is being written (e.g. upgraded) right now.
const ETXTBSY: i32 = 26;

/// A CNI network configuration list, as loaded from the config directory (or the checkpoint).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NetworkConfigList {
    /// `cniVersion`.
    pub cni_version: String,
    /// The network's `name`.
    pub name: String,
    /// The plugins' configs, in order, as given (each has a `type`).
    pub plugins: Vec<Map<String, Value>>,
    /// Where it came from, for messages.
    pub source: String,
}

fn config_error(source: &str, why: impl std::fmt::Display) -> Error {
    Error::failed_precondition(format!("CNI network config {source}: {why}"))
}

/// Whether `v` is a version `x.y.z` of numbers.
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

/// Whether the CNI spec's network name rule holds.
fn valid_network_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Whether `t` can name a plugin binary in the bin directory (no path tricks).
fn valid_plugin_type(t: &str) -> bool {
    !t.is_empty() && t != "." && t != ".." && !t.contains('/') && !t.contains('\0')
}

impl NetworkConfigList {
    /// Parse a config file's contents; `conf` tells a single-plugin `.conf` from a list
    /// (a `.json` file is a list when it has `plugins`).
    pub fn parse(data: &[u8], source: &str, conf_list: Option<bool>) -> Result<Self> {
        let value: Value = serde_json::from_slice(data)
            .map_err(|e| config_error(source, format!("not valid JSON: {e}")))?;
        let Value::Object(obj) = value else {
            return Err(config_error(source, "not a JSON object"));
        };
        let is_list = conf_list.unwrap_or_else(|| obj.contains_key("plugins"));
        let string = |key: &str| -> Result<String> {
            match obj.get(key) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                Some(_) => Err(config_error(
                    source,
                    format!("{key:?} must be a non-empty string"),
                )),
                None => Err(config_error(source, format!("{key:?} is missing"))),
            }
        };
        let cni_version = string("cniVersion")?;
        match parse_version(&cni_version) {
            Some((0 | 1, _, _)) => {}
            _ => {
                return Err(config_error(
                    source,
                    format!(
                        "cniVersion {cni_version:?} is not a CNI version this runtime supports (0.x.y, 1.x.y)"
                    ),
                ));
            }
        }
        let name = string("name")?;
        if !valid_network_name(&name) {
            return Err(config_error(
                source,
                format!("network name {name:?} is invalid"),
            ));
        }
        let plugins = if is_list {
            let Some(Value::Array(list)) = obj.get("plugins") else {
                return Err(config_error(source, "\"plugins\" must be a list"));
            };
            if list.is_empty() {
                return Err(config_error(source, "\"plugins\" is empty"));
            }
            list.iter()
                .enumerate()
                .map(|(i, p)| match p {
                    Value::Object(p) => Ok(p.clone()),
                    _ => Err(config_error(
                        source,
                        format!("plugins[{i}] is not an object"),
                    )),
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            vec![obj.clone()]
        };
        for (i, p) in plugins.iter().enumerate() {
            match p.get("type") {
                Some(Value::String(t)) if valid_plugin_type(t) => {}
                Some(t) => {
                    return Err(config_error(
                        source,
                        format!("plugins[{i}]: type {t} is not a plugin name"),
                    ));
                }
                None => {
                    return Err(config_error(
                        source,
                        format!("plugins[{i}] has no \"type\""),
                    ));
                }
            }
        }
        Ok(NetworkConfigList {
            cni_version,
            name,
            plugins,
            source: source.to_owned(),
        })
    }

    /// The list as a `.conflist` document (what the checkpoint keeps).
    pub fn to_json(&self) -> String {
        json!({ "cniVersion": self.cni_version, "name": self.name, "plugins": self.plugins })
            .to_string()
    }

    fn version_at_least(&self, major: u64, minor: u64) -> bool {
        parse_version(&self.cni_version).is_some_and(|(ma, mi, _)| (ma, mi) >= (major, minor))
    }
}

/// The network config of `conf_dir`: its lexically first `*.conf`, `*.conflist` or `*.json`
/// file, as libcni's `ConfFiles` orders them.
pub(crate) async fn load_config(conf_dir: &Path) -> Result<NetworkConfigList> {
    let mut entries = tokio::fs::read_dir(conf_dir).await.map_err(|e| {
        Error::with_source(
            ErrorKind::FailedPrecondition,
            format!("reading the CNI config directory {}", conf_dir.display()),
            e,
        )
    })?;
    let mut files = Vec::new();
    loop {
        let entry = entries.next_entry().await.map_err(|e| {
            Error::with_source(
                ErrorKind::FailedPrecondition,
                format!("reading the CNI config directory {}", conf_dir.display()),
                e,
            )
        })?;
        let Some(entry) = entry else { break };
        let path = entry.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if !matches!(ext, "conf" | "conflist" | "json") {
            continue;
        }
        // Follows symlinks, as the kubelet does; directories are skipped.
        if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort();
    let Some(path) = files.into_iter().next() else {
        return Err(Error::failed_precondition(format!(
            "no CNI network config (*.conf, *.conflist, *.json) in {}",
            conf_dir.display()
        )));
    };
    let source = path.display().to_string();
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        Error::with_source(
            ErrorKind::FailedPrecondition,
            format!("reading {source}"),
            e,
        )
    })?;
    let mut data = Vec::new();
    file.take(MAX_CONFIG_FILE + 1)
        .read_to_end(&mut data)
        .await
        .map_err(|e| {
            Error::with_source(
                ErrorKind::FailedPrecondition,
                format!("reading {source}"),
                e,
            )
        })?;
    if data.len() as u64 > MAX_CONFIG_FILE {
        return Err(config_error(
            &source,
            format!("larger than {MAX_CONFIG_FILE} bytes"),
        ));
    }
    let conf_list = match path.extension().and_then(|e| e.to_str()) {
        Some("conflist") => Some(true),
        Some("conf") => Some(false),
        _ => None,
    };
    NetworkConfigList::parse(&data, &source, conf_list)
}

/// The IPs of a CNI result (any version): `ips[].address` (0.3.0 and later; only those on an
/// interface in the sandbox when the result names interfaces), else `ip4.ip`/`ip6.ip` (0.1/0.2).
pub(crate) fn result_ips(result: &Value) -> Vec<IpAddr> {
    let parse = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .and_then(|a| a.split('/').next())
            .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
    };
    if let Some(ips) = result.get("ips").and_then(Value::as_array) {
        let interfaces = result.get("interfaces").and_then(Value::as_array);
        let in_sandbox = |ip: &Value| -> bool {
            let (Some(interfaces), Some(index)) =
                (interfaces, ip.get("interface").and_then(Value::as_u64))
            else {
                return true;
            };
            interfaces
                .get(index as usize)
                .and_then(|i| i.get("sandbox"))
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        };
        let all: Vec<IpAddr> = ips
            .iter()
            .filter_map(|ip| parse(ip.get("address")))
            .collect();
        let sandboxed: Vec<IpAddr> = ips
            .iter()
            .filter(|ip| in_sandbox(ip))
            .filter_map(|ip| parse(ip.get("address")))
            .collect();
        return if sandboxed.is_empty() { all } else { sandboxed };
    }
    ["ip4", "ip6"]
        .iter()
        .filter_map(|k| parse(result.get(*k).and_then(|v| v.get("ip"))))
        .collect()
}

/// The pod IP of a CNI result: its first IPv4 address, else its first IPv6 address.
pub(crate) fn pod_ip(result: &Value) -> Option<IpAddr> {
    let ips = result_ips(result);
    ips.iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| ips.first())
        .copied()
}

/// What a plugin invocation is about.
#[derive(Debug, Clone)]
struct PodNetwork {
    /// The sandbox ID (`CNI_CONTAINERID`).
    id: String,
    /// The network namespace path (empty for a DEL when it is gone).
    netns: String,
    name: String,
    namespace: String,
    uid: String,
    ports: Vec<PortMappingEntry>,
}

impl PodNetwork {
    /// `CNI_ARGS`, as the kubelet and containerd pass them.
    fn cni_args(&self) -> Result<String> {
        let fields = [
            ("K8S_POD_NAMESPACE", &self.namespace),
            ("K8S_POD_NAME", &self.name),
            ("K8S_POD_INFRA_CONTAINER_ID", &self.id),
            ("K8S_POD_UID", &self.uid),
        ];
        let mut args = String::from("IgnoreUnknown=1");
        for (key, value) in fields {
            if value.contains([';', '=', '\0']) {
                return Err(Error::invalid_argument(format!(
                    "{value:?} cannot be passed to CNI plugins as {key} (contains ';', '=' or NUL)"
                )));
            }
            args.push_str(&format!(";{key}={value}"));
        }
        Ok(args)
    }

    /// `runtimeConfig.portMappings`: the mappings with a host port.
    fn port_mappings(&self) -> Value {
        Value::Array(
            self.ports
                .iter()
                .filter(|p| p.host_port > 0)
                .map(|p| {
                    let mut m = json!({
                        "hostPort": p.host_port,
                        "containerPort": p.container_port,
                        "protocol": p.protocol,
                    });
                    if !p.host_ip.is_empty() {
                        m["hostIP"] = json!(p.host_ip);
                    }
                    m
                })
                .collect(),
        )
    }
}

/// The stdin of one plugin: its config with the list's `name` and `cniVersion`, the
/// `prevResult` and the runtime config of the capabilities it declares (as libcni builds it).
fn plugin_stdin(
    list: &NetworkConfigList,
    plugin: &Map<String, Value>,
    prev: Option<&Value>,
    pod: &PodNetwork,
) -> Value {
    let mut conf = plugin.clone();
    conf.insert("name".into(), json!(list.name));
    conf.insert("cniVersion".into(), json!(list.cni_version));
    if let Some(prev) = prev {
        conf.insert("prevResult".into(), prev.clone());
    }
    let wants_ports = plugin
        .get("capabilities")
        .and_then(|c| c.get("portMappings"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if wants_ports {
        conf.insert(
            "runtimeConfig".into(),
            json!({ "portMappings": pod.port_mappings() }),
        );
    }
    Value::Object(conf)
}

/// The `PATH` plugins get: ours, plus the sbin directories (plugins run `iptables`).
fn plugin_path() -> String {
    let mut path = std::env::var("PATH").unwrap_or_default();
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        if !path.split(':').any(|p| p == dir) {
            if !path.is_empty() {
                path.push(':');
            }
            path.push_str(dir);
        }
    }
    path
}

/// A printable, bounded excerpt of a plugin's output.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(2000) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

/// The error a failed plugin reported, as an anycri error.
fn plugin_failure(
    plugin: &str,
    command: &str,
    status: std::process::ExitStatus,
    stdout: &[u8],
    stderr: &[u8],
) -> Error {
    let what = format!("CNI plugin {plugin} ({command})");
    if let Ok(Value::Object(err)) = serde_json::from_slice::<Value>(stdout)
        && let Some(msg) = err.get("msg").and_then(Value::as_str)
    {
        let code = err.get("code").and_then(Value::as_u64).unwrap_or(0);
        let mut message = format!("{what} failed: {msg}");
        if let Some(details) = err
            .get("details")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        {
            message.push_str(&format!(": {details}"));
        }
        message.push_str(&format!(" (CNI error code {code})"));
        let kind = if code == CNI_TRY_AGAIN_LATER {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Internal
        };
        return Error::new(kind, message);
    }
    let mut message = format!("{what} failed ({status})");
    for (name, out) in [("stdout", stdout), ("stderr", stderr)] {
        let text = excerpt(out);
        if !text.is_empty() {
            message.push_str(&format!("; {name}: {text}"));
        }
    }
    Error::internal(message)
}

/// The environment of one invocation.
struct Invocation<'a> {
    command: &'static str,
    bin_dir: &'a Path,
    pod: &'a PodNetwork,
    cni_args: String,
    timeout: Duration,
}

/// Run one plugin: its config on stdin, its result (or error) from stdout.
async fn exec_plugin(inv: &Invocation<'_>, plugin: &str, stdin: &[u8]) -> Result<Vec<u8>> {
    let binary = inv.bin_dir.join(plugin);
    if !tokio::fs::metadata(&binary)
        .await
        .is_ok_and(|m| m.is_file())
    {
        return Err(Error::failed_precondition(format!(
            "CNI plugin {plugin:?} is not in {}",
            inv.bin_dir.display()
        )));
    }
    let mut command = tokio::process::Command::new(&binary);
    command
        .env_clear()
        .env("PATH", plugin_path())
        .env("CNI_COMMAND", inv.command)
        .env("CNI_CONTAINERID", &inv.pod.id)
        .env("CNI_NETNS", &inv.pod.netns)
        .env("CNI_IFNAME", POD_INTERFACE)
        .env("CNI_ARGS", &inv.cni_args)
        .env("CNI_PATH", inv.bin_dir)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut attempt = 0;
    let mut child = loop {
        match command.spawn() {
            Ok(child) => break child,
            // A binary being replaced (or just written) is busy for a moment.
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            Err(e) => {
                return Err(Error::with_source(
                    ErrorKind::Internal,
                    format!("running CNI plugin {}", binary.display()),
                    e,
                ));
            }
        }
    };
    let (mut child_in, child_out, child_err) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let run = async {
        let write = async {
            if let Some(mut pipe) = child_in.take() {
                // A plugin may exit without reading all of it; its exit status tells.
                let _ = pipe.write_all(stdin).await;
            }
        };
        // Each pipe is read up to its bound and then closed, so a chatty plugin gets EPIPE
        // instead of blocking.
        let read = |pipe: Option<tokio::process::ChildStdout>, limit: u64| async move {
            let mut buf = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(limit).read_to_end(&mut buf).await;
            }
            buf
        };
        let read_err = async {
            let mut buf = Vec::new();
            if let Some(pipe) = child_err {
                let _ = pipe.take(MAX_STDERR).read_to_end(&mut buf).await;
            }
            buf
        };
        let ((), stdout, stderr) = tokio::join!(write, read(child_out, MAX_STDOUT + 1), read_err);
        let status = child.wait().await;
        (status, stdout, stderr)
    };
    let (status, stdout, stderr) = match tokio::time::timeout(inv.timeout, run).await {
        Ok(done) => done,
        // Dropping the future drops the child, which kills it (kill_on_drop).
        Err(_) => {
            return Err(Error::deadline_exceeded(format!(
                "CNI plugin {plugin} ({}) did not finish within {:?}",
                inv.command, inv.timeout
            )));
        }
    };
    let status = status.map_err(|e| {
        Error::with_source(
            ErrorKind::Internal,
            format!("waiting for CNI plugin {plugin}"),
            e,
        )
    })?;
    if stdout.len() as u64 > MAX_STDOUT {
        return Err(Error::internal(format!(
            "CNI plugin {plugin} ({}) printed more than {MAX_STDOUT} bytes",
            inv.command
        )));
    }
    if !status.success() {
        return Err(plugin_failure(
            plugin,
            inv.command,
            status,
            &stdout,
            &stderr,
        ));
    }
    if !stderr.is_empty() {
        tracing::debug!(plugin, command = inv.command, stderr = %excerpt(&stderr), "CNI plugin stderr");
    }
    Ok(stdout)
}

fn plugin_type(plugin: &Map<String, Value>) -> &str {
    plugin
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// ADD: the plugins in order, each with the previous result; the final result.
async fn add_network(
    bin_dir: &Path,
    list: &NetworkConfigList,
    pod: &PodNetwork,
    timeout: Duration,
) -> Result<Value> {
    let inv = Invocation {
        command: "ADD",
        bin_dir,
        pod,
        cni_args: pod.cni_args()?,
        timeout,
    };
    let mut prev: Option<Value> = None;
    for plugin in &list.plugins {
        let name = plugin_type(plugin);
        let stdin = plugin_stdin(list, plugin, prev.as_ref(), pod).to_string();
        let out = exec_plugin(&inv, name, stdin.as_bytes()).await?;
        let result = if out.iter().all(u8::is_ascii_whitespace) {
            // Nothing printed: the previous result stands (lenient with old plugins).
            prev.take().unwrap_or_else(|| json!({}))
        } else {
            serde_json::from_slice(&out).map_err(|e| {
                Error::internal(format!(
                    "CNI plugin {name} (ADD) printed a result that is not JSON ({e}): {}",
                    excerpt(&out)
                ))
            })?
        };
        prev = Some(result);
    }
    Ok(prev.unwrap_or_else(|| json!({})))
}

/// DEL: the plugins in reverse order, each with the cached ADD result (CNI 0.4.0 and later).
/// Every plugin is run even when one fails (so IPs are released even if, say, port mappings
/// cannot be removed); the first error is returned.
async fn del_network(
    bin_dir: &Path,
    list: &NetworkConfigList,
    pod: &PodNetwork,
    cached: Option<&Value>,
    timeout: Duration,
) -> Result<()> {
    let inv = Invocation {
        command: "DEL",
        bin_dir,
        pod,
        cni_args: pod.cni_args()?,
        timeout,
    };
    let prev = cached.filter(|_| list.version_at_least(0, 4));
    let mut first_error = None;
    for plugin in list.plugins.iter().rev() {
        let stdin = plugin_stdin(list, plugin, prev, pod).to_string();
        if let Err(e) = exec_plugin(&inv, plugin_type(plugin), stdin.as_bytes()).await {
            tracing::warn!(sandbox = %pod.id, "CNI DEL: {e}");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The pause container's network namespace: Docker's `SandboxKey` (a bind mount that outlives
/// PID reuse), else `/proc/<pid>/ns/net`; `None` when it is not running.
fn netns_path(inspect: &ContainerInspectResponse) -> Option<String> {
    let state = inspect.state.as_ref()?;
    if state.running != Some(true) {
        return None;
    }
    let key = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.sandbox_key.clone())
        .unwrap_or_default();
    if !key.is_empty() && Path::new(&key).exists() {
        return Some(key);
    }
    state
        .pid
        .filter(|p| *p > 0)
        .map(|p| format!("/proc/{p}/ns/net"))
}

/// The `iptables-restore` input that removes the nat rules of `iptables_save` (the nat table as
/// `iptables-save` prints it) whose CNI comment names container `id` (`id: "<id>"`, as the
/// plugins write it) in POSTROUTING, and the `CNI-` chains they jump to.
fn orphaned_nat_rules(iptables_save: &str, id: &str) -> Option<String> {
    let mark = format!("id: \\\"{id}\\\"");
    let mut deletes = Vec::new();
    let mut chains = Vec::new();
    for line in iptables_save.lines() {
        let Some(rule) = line.strip_prefix("-A POSTROUTING ") else {
            continue;
        };
        if !line.contains(&mark) {
            continue;
        }
        deletes.push(format!("-D POSTROUTING {rule}"));
        if let Some(target) = rule.rsplit_once(" -j ").map(|(_, t)| t.trim())
            && target.starts_with("CNI-")
            && !target.contains(' ')
        {
            chains.push(target.to_owned());
        }
    }
    if deletes.is_empty() {
        return None;
    }
    let mut out = String::from("*nat\n");
    for d in deletes {
        out += &d;
        out.push('\n');
    }
    for c in &chains {
        out += &format!("-F {c}\n-X {c}\n");
    }
    out += "COMMIT\n";
    Some(out)
}

/// Remove the nat rules a CNI DEL without a network namespace left for sandbox `id` (see
/// [`orphaned_nat_rules`]), for IPv4 and IPv6; best effort, logged.
async fn release_orphaned_nat_rules(id: &str) {
    for (save, restore) in [
        ("iptables-save", "iptables-restore"),
        ("ip6tables-save", "ip6tables-restore"),
    ] {
        let Ok(out) = tokio::process::Command::new(save)
            .args(["-t", "nat"])
            .stderr(Stdio::null())
            .output()
            .await
        else {
            continue;
        };
        let Some(input) = orphaned_nat_rules(&String::from_utf8_lossy(&out.stdout), id) else {
            continue;
        };
        let run = async {
            let mut child = tokio::process::Command::new(restore)
                .arg("--noflush")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(input.as_bytes()).await?;
            }
            child.wait_with_output().await
        };
        match run.await {
            Ok(o) if o.status.success() => {
                tracing::info!(sandbox = %id, "removed the NAT rules CNI DEL left without a network namespace");
            }
            Ok(o) => {
                tracing::warn!(sandbox = %id, "{restore}: {}", String::from_utf8_lossy(&o.stderr).trim())
            }
            Err(e) => tracing::warn!(sandbox = %id, "{restore}: {e}"),
        }
    }
}

impl DockerRuntime {
    /// CNI ADD for sandbox `id` whose pause container has just started. A no-op with Docker's
    /// bridge or for a host-network pod. On failure DEL has run (best effort), and the caller
    /// removes the pause container and the checkpoint.
    pub(crate) async fn setup_pod_network(
        &self,
        id: &str,
        config: &PodSandboxConfig,
        checkpoint: &SandboxCheckpoint,
    ) -> Result<()> {
        let NetworkPlugin::Cni { bin_dir, conf_dir } = &self.inner.network else {
            return Ok(());
        };
        if checkpoint.host_network {
            return Ok(());
        }
        let list = load_config(conf_dir).await?;
        let inspect = self
            .docker()
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(|e| docker_error(format!("inspecting pause container {id}"), e))?;
        let netns = netns_path(&inspect).ok_or_else(|| {
            Error::unavailable(format!(
                "pause container {id} is not running: no network namespace for CNI"
            ))
        })?;
        let meta = config.metadata.clone().unwrap_or_default();
        let pod = PodNetwork {
            id: id.to_owned(),
            netns,
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            ports: checkpoint.port_mappings.clone(),
        };
        pod.cni_args()?;
        // DEL is due from here on, also if the shim dies halfway through ADD.
        let mut checkpoint = SandboxCheckpoint {
            network_ready: true,
            cni_config: list.to_json(),
            cni_result: String::new(),
            ..checkpoint.clone()
        };
        self.inner.checkpoints.write(id, &checkpoint).await?;
        let added = async {
            let result = add_network(bin_dir, &list, &pod, PLUGIN_TIMEOUT).await?;
            let ip = pod_ip(&result).ok_or_else(|| {
                Error::internal(format!(
                    "CNI network {} ({}) gave the pod no IP: {result}",
                    list.name, list.source
                ))
            })?;
            checkpoint.pod_ip = ip.to_string();
            checkpoint.cni_result = result.to_string();
            // The last setup step: from this write on the sandbox is Ready.
            checkpoint.ready = true;
            self.inner.checkpoints.write(id, &checkpoint).await?;
            tracing::info!(sandbox = %id, network = %list.name, ip = %ip, "CNI ADD done");
            Ok::<_, Error>(result)
        }
        .await;
        match added {
            Ok(_) => Ok(()),
            Err(e) => {
                let cached = serde_json::from_str::<Value>(&checkpoint.cni_result).ok();
                if let Err(del) =
                    del_network(bin_dir, &list, &pod, cached.as_ref(), PLUGIN_TIMEOUT).await
                {
                    tracing::warn!(sandbox = %id, "CNI DEL after a failed ADD: {del}");
                }
                Err(e.context(format!(
                    "setting up the pod network of sandbox {id} with CNI network {}",
                    list.name
                )))
            }
        }
    }

    /// CNI DEL for sandbox `id` if its checkpoint says it is due (a no-op otherwise: with
    /// Docker's bridge, for host-network pods, after an earlier DEL). `inspect` is the pause
    /// container when it still exists: it gives the network namespace (while running) and the
    /// pod's UID. Clears the checkpoint's network state once DEL succeeded.
    pub(crate) async fn teardown_pod_network(
        &self,
        id: &str,
        inspect: Option<&ContainerInspectResponse>,
    ) -> Result<()> {
        let NetworkPlugin::Cni { bin_dir, conf_dir } = &self.inner.network else {
            return Ok(());
        };
        let checkpoint = match self.inner.checkpoints.read(id).await {
            Ok(Some(cp)) => Some(cp),
            Ok(None) => return Ok(()),
            // A corrupt checkpoint must not make the pod unstoppable: DEL from the current
            // config (without cached result or ports), and leave the file alone.
            Err(e) => {
                tracing::warn!(sandbox = %id, "{e}; running CNI DEL from the current config");
                None
            }
        };
        if let Some(cp) = &checkpoint
            && (!cp.network_ready || cp.host_network)
        {
            return Ok(());
        }
        let cp = checkpoint.clone().unwrap_or_default();
        let list = if cp.cni_config.is_empty() {
            load_config(conf_dir).await?
        } else {
            NetworkConfigList::parse(
                cp.cni_config.as_bytes(),
                &format!("cached in the checkpoint of {id}"),
                Some(true),
            )?
        };
        let meta = inspect
            .and_then(|i| i.name.as_deref())
            .and_then(|n| labels::parse_sandbox_name(n).ok())
            .unwrap_or_default();
        let pick = |a: String, b: &String| if a.is_empty() { b.clone() } else { a };
        let pod = PodNetwork {
            id: id.to_owned(),
            netns: inspect.and_then(netns_path).unwrap_or_default(),
            name: pick(meta.name, &cp.name),
            namespace: pick(meta.namespace, &cp.namespace),
            uid: meta.uid,
            ports: cp.port_mappings.clone(),
        };
        let cached = serde_json::from_str::<Value>(&cp.cni_result).ok();
        // NotReady before DEL starts releasing the network: a crash during or right after DEL
        // must not leave a sandbox that reads Ready with an IP the IPAM gave back.
        if let Some(cp) = checkpoint.as_ref().filter(|cp| cp.ready) {
            let unready = SandboxCheckpoint {
                ready: false,
                ..cp.clone()
            };
            self.inner.checkpoints.write(id, &unready).await?;
        }
        del_network(bin_dir, &list, &pod, cached.as_ref(), PLUGIN_TIMEOUT)
            .await
            .map_err(|e| e.context(format!("tearing down the pod network of sandbox {id}")))?;
        tracing::info!(sandbox = %id, network = %list.name, "CNI DEL done");
        if pod.netns.is_empty() {
            // The pause container (and with it Docker's netns) was already gone — dockerd
            // restarted, say. The bridge plugin's DEL then releases the IP but cannot find
            // the addresses its ipMasq rules name, and leaves them: remove what still carries
            // this sandbox's CNI comment.
            release_orphaned_nat_rules(id).await;
        }
        if let Some(cp) = checkpoint {
            // Not ready any more either: a crash before the pause container stops must not
            // leave a running sandbox that reads Ready without a network.
            let cleared = SandboxCheckpoint {
                network_ready: false,
                ready: false,
                pod_ip: String::new(),
                cni_config: String::new(),
                cni_result: String::new(),
                ..cp
            };
            self.inner.checkpoints.write(id, &cleared).await?;
        }
        Ok(())
    }

    /// Removal of a sandbox whose pause container is already gone: DEL if it is still due
    /// (best effort), then drop the checkpoint.
    pub(crate) async fn forget_sandbox_network(&self, id: &str) {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return;
        }
        if let Err(e) = self.teardown_pod_network(id, None).await {
            tracing::warn!(sandbox = %id, "{e}");
        }
        let _ = self.inner.checkpoints.remove(id).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_rules_left_without_a_netns() {
        let id = "bbf9fc1478844ba96442951fc5b98f24";
        let save = format!(
            "# Generated by iptables-save\n*nat\n:POSTROUTING ACCEPT [0:0]\n:CNI-0bb3e58fcc1be3a84142e813 - [0:0]\n\
             -A POSTROUTING -s 10.251.0.15/32 -m comment --comment \"name: \\\"pods\\\" id: \\\"{id}\\\"\" -j CNI-0bb3e58fcc1be3a84142e813\n\
             -A POSTROUTING -s 10.251.0.16/32 -m comment --comment \"name: \\\"pods\\\" id: \\\"other\\\"\" -j CNI-1111\n\
             -A CNI-0bb3e58fcc1be3a84142e813 -d 10.251.0.0/24 -m comment --comment \"name: \\\"pods\\\" id: \\\"{id}\\\"\" -j ACCEPT\nCOMMIT\n"
        );
        let input = orphaned_nat_rules(&save, id).unwrap();
        assert_eq!(
            input,
            format!(
                "*nat\n-D POSTROUTING -s 10.251.0.15/32 -m comment --comment \"name: \\\"pods\\\" id: \\\"{id}\\\"\" -j CNI-0bb3e58fcc1be3a84142e813\n\
                 -F CNI-0bb3e58fcc1be3a84142e813\n-X CNI-0bb3e58fcc1be3a84142e813\nCOMMIT\n"
            )
        );
        assert_eq!(orphaned_nat_rules(&save, "absent"), None);
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    const CONFLIST: &str = r#"{"cniVersion":"1.0.0","name":"pods","plugins":[
        {"type":"bridge","bridge":"cni0","ipam":{"type":"host-local","subnet":"10.1.0.0/24"}},
        {"type":"portmap","capabilities":{"portMappings":true}}]}"#;

    #[tokio::test]
    async fn loads_the_lexically_first_config() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(
            load_config(d).await.unwrap_err().kind(),
            ErrorKind::FailedPrecondition
        );
        write(d, "README.md", "not a config");
        write(d, "99-last.conflist", CONFLIST);
        std::fs::create_dir(d.join("00-dir.conf")).unwrap();
        let list = load_config(d).await.unwrap();
        assert_eq!(list.name, "pods");
        assert_eq!(list.cni_version, "1.0.0");
        assert_eq!(list.plugins.len(), 2);
        assert_eq!(plugin_type(&list.plugins[1]), "portmap");
        assert!(list.source.ends_with("99-last.conflist"));

        // A .conf is one plugin, wrapped as a list.
        write(
            d,
            "10-single.conf",
            r#"{"cniVersion":"0.4.0","name":"single","type":"bridge","bridge":"br9"}"#,
        );
        let list = load_config(d).await.unwrap();
        assert_eq!(
            (list.name.as_str(), list.cni_version.as_str()),
            ("single", "0.4.0")
        );
        assert_eq!(list.plugins.len(), 1);
        assert_eq!(list.plugins[0]["bridge"], "br9");

        // .json counts, and is a list when it has plugins; byte order decides.
        write(
            d,
            "05-x.json",
            &CONFLIST.replace("\"pods\"", "\"json-list\""),
        );
        assert_eq!(load_config(d).await.unwrap().name, "json-list");

        // The round trip through the checkpoint keeps it.
        let list = load_config(d).await.unwrap();
        let again =
            NetworkConfigList::parse(list.to_json().as_bytes(), &list.source, Some(true)).unwrap();
        assert_eq!(again, list);
    }

    #[tokio::test]
    async fn bad_configs_name_the_file() {
        let cases = [
            ("a.conflist", "{not json", "not valid JSON"),
            ("a.conflist", "[1]", "not a JSON object"),
            (
                "a.conflist",
                r#"{"name":"n","plugins":[{"type":"bridge"}]}"#,
                "\"cniVersion\" is missing",
            ),
            (
                "a.conflist",
                r#"{"cniVersion":"banana","name":"n","plugins":[{"type":"bridge"}]}"#,
                "banana",
            ),
            (
                "a.conflist",
                r#"{"cniVersion":"2.0.0","name":"n","plugins":[{"type":"bridge"}]}"#,
                "2.0.0",
            ),
            (
                "a.conflist",
                r#"{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}"#,
                "\"name\" is missing",
            ),
            (
                "a.conflist",
                r#"{"cniVersion":"1.0.0","name":"bad/name","plugins":[{"type":"b"}]}"#,
                "bad/name",
            ),
            (
                "a.conflist",
                r#"{"cniVersion":"1.0.0","name":"n"}"#,
                "\"plugins\" must be a list",
            ),
            (
                "a.conflist",
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#,
                "\"plugins\" is empty",
            ),
            (
                "a.conflist",
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[3]}"#,
                "plugins[0] is not an object",
            ),
            (
                "a.conflist",
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"x":1}]}"#,
                "plugins[0] has no \"type\"",
            ),
            (
                "a.conflist",
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../sh"}]}"#,
                "not a plugin name",
            ),
            (
                "a.conf",
                r#"{"cniVersion":"1.0.0","name":"n"}"#,
                "plugins[0] has no \"type\"",
            ),
        ];
        for (file, text, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), file, text);
            let err = load_config(dir.path()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{text}");
            assert!(
                err.message().contains(file) && err.message().contains(want),
                "{text}: {}",
                err.message()
            );
        }
        // The first file decides even when a later one is fine (as libcni picks it).
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "00-bad.conf", "{");
        write(dir.path(), "10-good.conflist", CONFLIST);
        assert!(
            load_config(dir.path())
                .await
                .unwrap_err()
                .message()
                .contains("00-bad.conf")
        );
        let missing = load_config(&dir.path().join("nope")).await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::FailedPrecondition);
    }

    #[test]
    fn parses_results_of_every_version() {
        // 1.0.0: ips with interface indexes; the host-side veth has no sandbox.
        let v1: Value = serde_json::from_str(
            r#"{"cniVersion":"1.0.0",
                "interfaces":[{"name":"cni0","mac":"aa"},{"name":"vethx","mac":"bb"},
                              {"name":"eth0","mac":"cc","sandbox":"/var/run/netns/x"}],
                "ips":[{"address":"fd00::5/64","gateway":"fd00::1","interface":2},
                       {"address":"10.1.0.5/24","gateway":"10.1.0.1","interface":2},
                       {"address":"10.9.9.9/24","interface":0}],
                "routes":[{"dst":"0.0.0.0/0"}],"dns":{}}"#,
        )
        .unwrap();
        assert_eq!(
            result_ips(&v1),
            vec![
                "fd00::5".parse::<IpAddr>().unwrap(),
                "10.1.0.5".parse().unwrap()
            ]
        );
        assert_eq!(pod_ip(&v1), Some("10.1.0.5".parse().unwrap()));
        // 0.4.0 (and 0.3.x): the same shape with a version per IP.
        let v04: Value = serde_json::from_str(
            r#"{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.250.0.7/24","gateway":"10.250.0.1"}],"dns":{}}"#,
        )
        .unwrap();
        assert_eq!(pod_ip(&v04), Some("10.250.0.7".parse().unwrap()));
        // IPv6 only.
        let v6: Value =
            serde_json::from_str(r#"{"cniVersion":"1.0.0","ips":[{"address":"fd00::9/64"}]}"#)
                .unwrap();
        assert_eq!(pod_ip(&v6), Some("fd00::9".parse().unwrap()));
        // 0.2.0.
        let v02: Value =
            serde_json::from_str(r#"{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.3/16"}}"#).unwrap();
        assert_eq!(pod_ip(&v02), Some("10.0.0.3".parse().unwrap()));
        // Nothing usable.
        assert_eq!(
            pod_ip(&json!({"cniVersion":"1.0.0","ips":[{"address":"garbage"}]})),
            None
        );
        assert_eq!(pod_ip(&json!({})), None);
    }

    fn pod() -> PodNetwork {
        PodNetwork {
            id: "abc123".into(),
            netns: "/proc/1/ns/net".into(),
            name: "web".into(),
            namespace: "default".into(),
            uid: "u-1".into(),
            ports: vec![
                PortMappingEntry {
                    protocol: "tcp".into(),
                    container_port: 80,
                    host_port: 8080,
                    host_ip: String::new(),
                },
                PortMappingEntry {
                    protocol: "udp".into(),
                    container_port: 53,
                    host_port: 0,
                    host_ip: String::new(),
                },
                PortMappingEntry {
                    protocol: "udp".into(),
                    container_port: 53,
                    host_port: 5353,
                    host_ip: "127.0.0.1".into(),
                },
            ],
        }
    }

    #[test]
    fn builds_plugin_stdin_like_libcni() {
        let list = NetworkConfigList::parse(CONFLIST.as_bytes(), "x", Some(true)).unwrap();
        let first = plugin_stdin(&list, &list.plugins[0], None, &pod());
        assert_eq!(first["name"], "pods");
        assert_eq!(first["cniVersion"], "1.0.0");
        assert!(first.get("prevResult").is_none() && first.get("runtimeConfig").is_none());
        let prev = json!({"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/24"}]});
        let second = plugin_stdin(&list, &list.plugins[1], Some(&prev), &pod());
        assert_eq!(second["prevResult"], prev);
        assert_eq!(
            second["runtimeConfig"],
            json!({"portMappings":[
                {"hostPort":8080,"containerPort":80,"protocol":"tcp"},
                {"hostPort":5353,"containerPort":53,"protocol":"udp","hostIP":"127.0.0.1"}]})
        );
        assert_eq!(
            pod().cni_args().unwrap(),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=u-1"
        );
        let bad = PodNetwork {
            name: "a;b".into(),
            ..pod()
        };
        assert_eq!(
            bad.cni_args().unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }

    /// A plugin written as a shell script into `dir`.
    fn script(dir: &Path, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[tokio::test]
    async fn runs_plugins_with_a_clean_environment_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path();
        let log = bin.join("log");
        // Prints its environment and stdin as a "result"; logs the command.
        script(
            bin,
            "envdump",
            &format!(
                "echo \"$CNI_COMMAND\" >> {log}\nin=$(cat)\nprintf '{{\"cniVersion\":\"1.0.0\",\"ips\":[{{\"address\":\"10.1.0.%s/24\"}}],\"env\":\"%s\",\"stdin\":%s}}' \"$(env | wc -l)\" \"$(env | sort | tr '\\n' ' ')\" \"$in\"",
                log = log.display()
            ),
        );
        script(
            bin,
            "failing",
            r#"cat >/dev/null; echo '{"cniVersion":"1.0.0","code":7,"msg":"no luck","details":"by design"}'; exit 1"#,
        );
        script(
            bin,
            "busy",
            r#"cat >/dev/null; echo '{"code":11,"msg":"later"}'; exit 1"#,
        );
        script(bin, "garbage", "cat >/dev/null; echo oops >&2; exit 3");
        script(bin, "chatty", "yes 0123456789abcdef");
        script(bin, "slow", "sleep 30");
        let pod = pod();
        let inv = |command| Invocation {
            command,
            bin_dir: bin,
            pod: &pod,
            cni_args: pod.cni_args().unwrap(),
            timeout: Duration::from_secs(20),
        };

        let out = exec_plugin(&inv("ADD"), "envdump", br#"{"hello":1}"#)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stdin"], json!({"hello":1}));
        let env = v["env"].as_str().unwrap();
        for want in [
            "CNI_COMMAND=ADD",
            "CNI_CONTAINERID=abc123",
            "CNI_IFNAME=eth0",
            "CNI_NETNS=/proc/1/ns/net",
            "K8S_POD_UID=u-1",
        ] {
            assert!(env.contains(want), "{want} in {env}");
        }
        assert!(
            env.contains(&format!("CNI_PATH={}", bin.display())),
            "{env}"
        );
        let names: Vec<&str> = env
            .split(' ')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, _)| k)
            .collect();
        assert!(
            names
                .iter()
                .all(|k| k.starts_with("CNI_") || ["PATH", "PWD", "SHLVL", "_"].contains(k)),
            "only PATH and CNI_* are passed: {names:?}"
        );

        let err = exec_plugin(&inv("ADD"), "failing", b"{}")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert_eq!(
            err.message(),
            "CNI plugin failing (ADD) failed: no luck: by design (CNI error code 7)"
        );
        assert_eq!(
            exec_plugin(&inv("ADD"), "busy", b"{}")
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Unavailable
        );
        let err = exec_plugin(&inv("DEL"), "garbage", b"{}")
            .await
            .unwrap_err();
        assert!(
            err.message().contains("exit status: 3") && err.message().contains("stderr: oops"),
            "{}",
            err.message()
        );
        let err = exec_plugin(&inv("ADD"), "chatty", b"{}").await.unwrap_err();
        assert!(
            err.message().contains("printed more than"),
            "{}",
            err.message()
        );
        let err = exec_plugin(&inv("ADD"), "missing", b"{}")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
        let quick = Invocation {
            timeout: Duration::from_millis(300),
            ..inv("ADD")
        };
        let started = std::time::Instant::now();
        assert_eq!(
            exec_plugin(&quick, "slow", b"{}").await.unwrap_err().kind(),
            ErrorKind::DeadlineExceeded
        );
        assert!(started.elapsed() < Duration::from_secs(10));

        // A chain: ADD in order with prevResult, DEL in reverse with the cached result.
        let list = NetworkConfigList::parse(
            br#"{"cniVersion":"1.0.0","name":"chain","plugins":[{"type":"envdump","n":1},{"type":"envdump","n":2}]}"#,
            "x",
            Some(true),
        )
        .unwrap();
        std::fs::remove_file(&log).unwrap();
        let result = add_network(bin, &list, &pod, Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(result["stdin"]["n"], 2);
        assert_eq!(result["stdin"]["prevResult"]["stdin"]["n"], 1);
        assert!(pod_ip(&result).is_some());
        del_network(bin, &list, &pod, Some(&result), Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "ADD\nADD\nDEL\nDEL\n"
        );

        // A failing plugin stops ADD; DEL runs every plugin and reports the first error.
        let list = NetworkConfigList::parse(
            br#"{"cniVersion":"0.4.0","name":"chain","plugins":[{"type":"envdump"},{"type":"failing"},{"type":"envdump"}]}"#,
            "x",
            Some(true),
        )
        .unwrap();
        std::fs::remove_file(&log).unwrap();
        assert!(
            add_network(bin, &list, &pod, Duration::from_secs(20))
                .await
                .unwrap_err()
                .message()
                .contains("no luck")
        );
        assert!(
            del_network(bin, &list, &pod, None, Duration::from_secs(20))
                .await
                .unwrap_err()
                .message()
                .contains("no luck")
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "ADD\nDEL\nDEL\n");
    }
}
