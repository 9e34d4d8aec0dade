//! A CRI `PodSandboxConfig` as the pause container's create body (hostname, DNS, ports,
//! namespaces, sysctls, cgroup parent, OOM protection where the host allows it) and the
//! checkpoint that keeps what Docker's labels cannot. Pure: the shim's settings come in
//! [`SandboxFacts`]; creating and starting the container is `run_pod_sandbox_impl`'s.

use std::collections::HashMap;

use anycri_core::{Error, Result, api::*};
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};

use crate::{
    checkpoint::{PortMappingEntry, SandboxCheckpoint},
    labels,
};

/// What a pause container's translation needs besides the pod's config.
pub(crate) struct SandboxFacts<'a> {
    /// The pause image.
    pub pause_image: &'a str,
    /// The shim sets up pod networks with CNI (else Docker's bridge does).
    pub cni: bool,
    /// The host lets processes lower oom_score_adj.
    pub negative_oom_score_adj: bool,
    /// The value of [`labels::STATE_DIR_LABEL`] for this shim.
    pub state_dir_label: &'a str,
}

/// A pod's pause container, as the shim creates it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PauseContainer {
    /// The body of Docker's container create.
    pub body: ContainerCreateBody,
    /// The sandbox's checkpoint as first written: ready unless CNI must set up the network.
    pub checkpoint: SandboxCheckpoint,
    /// CNI sets up the pod's network once the pause container runs.
    pub needs_cni: bool,
}

fn protocol_name(p: i32) -> &'static str {
    match Protocol::try_from(p) {
        Ok(Protocol::Udp) => "udp",
        Ok(Protocol::Sctp) => "sctp",
        _ => "tcp",
    }
}

/// The pause container for `config`; InvalidArgument for a port out of range.
pub(crate) fn pause_container(
    config: &PodSandboxConfig,
    facts: &SandboxFacts<'_>,
) -> Result<PauseContainer> {
    let meta = config.metadata.clone().unwrap_or_default();
    let linux = config.linux.clone().unwrap_or_default();
    let security = linux.security_context.clone().unwrap_or_default();
    let ns = security.namespace_options.clone().unwrap_or_default();
    let host_network = ns.network == NamespaceMode::Node as i32;

    let mut host = HostConfig {
        network_mode: Some(
            if host_network {
                "host"
            } else if facts.cni {
                "none"
            } else {
                "bridge"
            }
            .into(),
        ),
        ipc_mode: Some(
            if ns.ipc == NamespaceMode::Node as i32 {
                "host"
            } else {
                "shareable"
            }
            .into(),
        ),
        pid_mode: (ns.pid == NamespaceMode::Node as i32).then(|| "host".to_owned()),
        cgroup_parent: (!linux.cgroup_parent.is_empty()).then(|| linux.cgroup_parent.clone()),
        sysctls: (!linux.sysctls.is_empty()).then(|| linux.sysctls.clone()),
        // The pause container must outlive memory pressure; only where the host lets us.
        oom_score_adj: facts.negative_oom_score_adj.then_some(-998),
        ..Default::default()
    };
    if let Some(dns) = &config.dns_config {
        host.dns = (!dns.servers.is_empty()).then(|| dns.servers.clone());
        host.dns_search = (!dns.searches.is_empty()).then(|| dns.searches.clone());
        host.dns_options = (!dns.options.is_empty()).then(|| dns.options.clone());
    }
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let mut checkpoint_ports = Vec::new();
    for pm in &config.port_mappings {
        if pm.container_port <= 0
            || pm.container_port > 65535
            || pm.host_port < 0
            || pm.host_port > 65535
        {
            return Err(Error::invalid_argument(format!(
                "config.port_mappings: port {} -> {} is out of range",
                pm.host_port, pm.container_port
            )));
        }
        let key = format!("{}/{}", pm.container_port, protocol_name(pm.protocol));
        exposed.push(key.clone());
        if pm.host_port > 0 {
            bindings
                .entry(key)
                .or_default()
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: (!pm.host_ip.is_empty()).then(|| pm.host_ip.clone()),
                    host_port: Some(pm.host_port.to_string()),
                });
        }
        checkpoint_ports.push(PortMappingEntry {
            protocol: protocol_name(pm.protocol).into(),
            container_port: pm.container_port,
            host_port: pm.host_port,
            host_ip: pm.host_ip.clone(),
        });
    }
    if !bindings.is_empty() {
        host.port_bindings = Some(bindings);
    }
    let body = ContainerCreateBody {
        image: Some(facts.pause_image.to_owned()),
        hostname: (!host_network && !config.hostname.is_empty()).then(|| config.hostname.clone()),
        labels: Some({
            let mut l = labels::sandbox_labels(config);
            // Marks a sandbox made with the ready mark (checkpoint.rs): one without it
            // (cri-dockerd's, an older anycri's) is Ready whenever it runs.
            l.insert(
                labels::STATE_DIR_LABEL.into(),
                facts.state_dir_label.to_owned(),
            );
            l
        }),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(host),
        ..Default::default()
    };
    // With CNI the network is set up after the start, and the checkpoint is marked ready
    // only once ADD is done (network.rs); otherwise Docker sets up everything the pod
    // needs as it starts the pause container, so the mark is there from the first write.
    let needs_cni = facts.cni && !host_network;
    let checkpoint = SandboxCheckpoint {
        version: crate::checkpoint::CHECKPOINT_VERSION.into(),
        name: meta.name,
        namespace: meta.namespace,
        port_mappings: checkpoint_ports,
        host_network,
        pod_ip: String::new(),
        ready: !needs_cni,
        ..Default::default()
    };
    Ok(PauseContainer {
        body,
        checkpoint,
        needs_cni,
    })
}
