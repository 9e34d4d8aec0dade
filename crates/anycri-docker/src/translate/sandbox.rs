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

#[cfg(test)]
mod tests {
    use super::*;

    const PAUSE: &str = "pause:3.9";

    fn strings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }
    fn opts(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| (*s).to_owned()).collect())
    }

    /// The facts a case may change: Docker's bridge on a host that lets the pause container
    /// lower its OOM score.
    struct Env {
        cni: bool,
        negative_oom_score_adj: bool,
    }

    fn base_config() -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "web".into(),
                namespace: "shop".into(),
                uid: "u1".into(),
                attempt: 0,
            }),
            ..Default::default()
        }
    }

    /// What the base config becomes: the pause image on Docker's bridge, a shareable IPC
    /// namespace, OOM protection, the shim's labels, and a ready checkpoint.
    fn base_pause() -> PauseContainer {
        PauseContainer {
            body: ContainerCreateBody {
                image: Some(PAUSE.into()),
                labels: Some(strings(&[
                    ("io.kubernetes.docker.type", "podsandbox"),
                    ("io.anycri.docker.state-dir", "/state"),
                ])),
                host_config: Some(HostConfig {
                    network_mode: Some("bridge".into()),
                    ipc_mode: Some("shareable".into()),
                    oom_score_adj: Some(-998),
                    ..Default::default()
                }),
                ..Default::default()
            },
            checkpoint: SandboxCheckpoint {
                version: "v2".into(),
                name: "web".into(),
                namespace: "shop".into(),
                ready: true,
                ..Default::default()
            },
            needs_cni: false,
        }
    }

    fn namespaces(c: &mut PodSandboxConfig) -> &mut NamespaceOption {
        c.linux
            .get_or_insert_with(Default::default)
            .security_context
            .get_or_insert_with(Default::default)
            .namespace_options
            .get_or_insert_with(Default::default)
    }
    fn host(p: &mut PauseContainer) -> &mut HostConfig {
        p.body.host_config.as_mut().unwrap()
    }

    struct Case {
        name: &'static str,
        env: fn(&mut Env),
        config: fn(&mut PodSandboxConfig),
        want: fn(&mut PauseContainer),
    }

    const CASE: Case = Case {
        name: "",
        env: |_| {},
        config: |_| {},
        want: |_| {},
    };

    #[test]
    fn pod_configs_become_pause_containers() {
        let cases = [
            Case {
                name: "the base config",
                ..CASE
            },
            Case {
                name: "CNI: no Docker network, the checkpoint ready only after ADD",
                env: |e| e.cni = true,
                want: |p| {
                    host(p).network_mode = Some("none".into());
                    p.needs_cni = true;
                    p.checkpoint.ready = false;
                },
                ..CASE
            },
            Case {
                name: "the host's network (with CNI too): no CNI, no hostname of its own",
                env: |e| e.cni = true,
                config: |c| {
                    namespaces(c).network = NamespaceMode::Node as i32;
                    c.hostname = "web-0".into();
                },
                want: |p| {
                    host(p).network_mode = Some("host".into());
                    p.checkpoint.host_network = true;
                },
            },
            Case {
                name: "a hostname",
                config: |c| c.hostname = "web-0".into(),
                want: |p| p.body.hostname = Some("web-0".into()),
                ..CASE
            },
            Case {
                name: "the host's IPC and PID namespaces",
                config: |c| {
                    let ns = namespaces(c);
                    ns.ipc = NamespaceMode::Node as i32;
                    ns.pid = NamespaceMode::Node as i32;
                },
                want: |p| {
                    let h = host(p);
                    h.ipc_mode = Some("host".into());
                    h.pid_mode = Some("host".into());
                },
                ..CASE
            },
            Case {
                name: "a pod PID namespace is the pause container's own",
                config: |c| namespaces(c).pid = NamespaceMode::Pod as i32,
                ..CASE
            },
            Case {
                name: "cgroup parent and sysctls",
                config: |c| {
                    let linux = c.linux.get_or_insert_with(Default::default);
                    linux.cgroup_parent = "/kubepods/besteffort/podu1".into();
                    linux.sysctls = strings(&[("net.ipv4.ip_forward", "1")]);
                },
                want: |p| {
                    let h = host(p);
                    h.cgroup_parent = Some("/kubepods/besteffort/podu1".into());
                    h.sysctls = Some(strings(&[("net.ipv4.ip_forward", "1")]));
                },
                ..CASE
            },
            Case {
                name: "DNS servers, searches and options",
                config: |c| {
                    c.dns_config = Some(DnsConfig {
                        servers: vec!["10.96.0.10".into()],
                        searches: vec!["shop.svc.cluster.local".into()],
                        options: vec!["ndots:5".into()],
                    })
                },
                want: |p| {
                    let h = host(p);
                    h.dns = opts(&["10.96.0.10"]);
                    h.dns_search = opts(&["shop.svc.cluster.local"]);
                    h.dns_options = opts(&["ndots:5"]);
                },
                ..CASE
            },
            Case {
                name: "an empty DNS config leaves Docker's",
                config: |c| c.dns_config = Some(DnsConfig::default()),
                ..CASE
            },
            Case {
                name: "ports: exposed each, bound when a host port is given, kept in the checkpoint",
                config: |c| {
                    let port = |protocol: Protocol, container_port, host_port, host_ip: &str| {
                        PortMapping {
                            protocol: protocol as i32,
                            container_port,
                            host_port,
                            host_ip: host_ip.into(),
                        }
                    };
                    c.port_mappings = vec![
                        port(Protocol::Tcp, 80, 8080, ""),
                        port(Protocol::Tcp, 80, 8081, "127.0.0.1"),
                        port(Protocol::Udp, 53, 0, ""),
                        port(Protocol::Sctp, 9000, 9000, ""),
                    ];
                },
                want: |p| {
                    p.body.exposed_ports = opts(&["80/tcp", "80/tcp", "53/udp", "9000/sctp"]);
                    let binding = |ip: Option<&str>, port: &str| PortBinding {
                        host_ip: ip.map(str::to_owned),
                        host_port: Some(port.into()),
                    };
                    host(p).port_bindings = Some(HashMap::from([
                        (
                            "80/tcp".to_owned(),
                            Some(vec![
                                binding(None, "8080"),
                                binding(Some("127.0.0.1"), "8081"),
                            ]),
                        ),
                        ("9000/sctp".to_owned(), Some(vec![binding(None, "9000")])),
                    ]));
                    let entry = |protocol: &str, container_port, host_port, host_ip: &str| {
                        PortMappingEntry {
                            protocol: protocol.into(),
                            container_port,
                            host_port,
                            host_ip: host_ip.into(),
                        }
                    };
                    p.checkpoint.port_mappings = vec![
                        entry("tcp", 80, 8080, ""),
                        entry("tcp", 80, 8081, "127.0.0.1"),
                        entry("udp", 53, 0, ""),
                        entry("sctp", 9000, 9000, ""),
                    ];
                },
                ..CASE
            },
            Case {
                name: "no OOM protection where the host does not allow lowering the score",
                env: |e| e.negative_oom_score_adj = false,
                want: |p| host(p).oom_score_adj = None,
                ..CASE
            },
            Case {
                name: "labels, annotations (prefixed) and the log directory",
                config: |c| {
                    c.labels = strings(&[("app", "web")]);
                    c.annotations = strings(&[("seen", "yes")]);
                    c.log_directory = "/var/log/pods/shop_web_u1".into();
                },
                want: |p| {
                    p.body.labels.as_mut().unwrap().extend(strings(&[
                        ("app", "web"),
                        ("annotation.seen", "yes"),
                        ("io.anycri.pod.logdirectory", "/var/log/pods/shop_web_u1"),
                    ]))
                },
                ..CASE
            },
        ];
        for case in cases {
            let mut env = Env {
                cni: false,
                negative_oom_score_adj: true,
            };
            (case.env)(&mut env);
            let mut config = base_config();
            (case.config)(&mut config);
            let mut want = base_pause();
            (case.want)(&mut want);
            let got = pause_container(
                &config,
                &SandboxFacts {
                    pause_image: PAUSE,
                    cni: env.cni,
                    negative_oom_score_adj: env.negative_oom_score_adj,
                    state_dir_label: "/state",
                },
            )
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(got, want, "{}", case.name);
        }
    }

    #[test]
    fn ports_out_of_range_are_refused() {
        let facts = SandboxFacts {
            pause_image: PAUSE,
            cni: false,
            negative_oom_score_adj: true,
            state_dir_label: "/state",
        };
        for (container_port, host_port) in [(0, 80), (65536, 80), (80, -1), (80, 65536)] {
            let mut config = base_config();
            config.port_mappings = vec![PortMapping {
                container_port,
                host_port,
                ..Default::default()
            }];
            let err = pause_container(&config, &facts).unwrap_err();
            assert_eq!(
                err.kind(),
                anycri_core::ErrorKind::InvalidArgument,
                "{container_port} {host_port}"
            );
        }
    }
}
