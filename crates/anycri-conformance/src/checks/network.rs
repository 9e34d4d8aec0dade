//! Networking: DNS config and hostname inside the pod, a container port reachable at the
//! pod IP, a TCP and a UDP host port reachable on the host, and the web server test image
//! serving on both.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{multi::HTTPD, prelude::*};

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!("network::dns_config", "the pod's DNS servers, searches and options are in /etc/resolv.conf", dns_config)
            .critest("[k8s.io] Networking runtime should support networking runtime should support DNS config [Conformance]")
            .needs(&[Need::Processes]),
        check!("network::hostname", "the container's hostname is the pod's hostname", hostname)
            .critest("[k8s.io] Networking runtime should support networking runtime should support set hostname [Conformance]")
            .needs(&[Need::Processes]),
        check!("network::container_port", "a server in the pod is reachable from the host at the pod IP and its container port", container_port)
            .critest("[k8s.io] Networking runtime should support networking runtime should support port mapping with only container port [Conformance]")
            .needs(&[Need::Processes]),
        check!("network::host_port", "a port mapping makes the pod's server reachable at the host port", host_port)
            .critest("[k8s.io] Networking runtime should support networking runtime should support port mapping with host port and container port [Conformance]")
            .needs(&[Need::Processes]),
        check!("network::host_port_udp", "a UDP port mapping delivers datagrams sent to the host port into the pod's network namespace", host_port_udp)
            .critest("[k8s.io] Networking runtime should support networking runtime should support port mapping with host port and container port [Conformance]")
            .needs(&[Need::Processes]),
        check!("network::web_server_image", "the web server test image, run with its own command, answers at the pod IP on its port and at a mapped host port", web_server_image)
            .critest("[k8s.io] Networking runtime should support networking runtime should support port mapping with host port and container port [Conformance]")
            .needs(&[Need::Processes, Need::Image(ImageKind::WebServer)]),
    ]
}

async fn dns_config(t: TestContext) -> CheckResult {
    let pod = t
        .pod()
        .dns(&["10.10.10.10"], &["conformance.anycri.test"], &["ndots:3"])
        .build();
    let r = t.run(pod, t.container().build()).await?;
    let conf = t.sh(&r.container, "cat /etc/resolv.conf").await?;
    for want in [
        "nameserver 10.10.10.10",
        "search conformance.anycri.test",
        "options ndots:3",
    ] {
        ensure!(
            conf.lines().any(|l| l.trim() == want),
            "/etc/resolv.conf lacks {want:?}: {conf:?}"
        );
    }
    Ok(())
}

async fn hostname(t: TestContext) -> CheckResult {
    let pod = t.pod().hostname("anycri-conformance-host").build();
    let r = t.run(pod, t.container().build()).await?;
    ensure_eq!(
        t.sh(&r.container, "hostname").await?.trim_end(),
        "anycri-conformance-host",
        "hostname"
    );
    Ok(())
}

/// GET / from `addr`; the body when the server answered 200.
pub(crate) async fn http_get(addr: std::net::SocketAddr) -> Option<String> {
    let mut s = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: conformance\r\n\r\n")
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    (text.starts_with("HTTP/1.") && text.contains(" 200 ")).then_some(text)
}

async fn container_port(t: TestContext) -> CheckResult {
    let pod = t.pod().port_mapping(Protocol::Tcp, 8080, 0).build();
    let r = t
        .run(pod, t.container().command(["sh", "-c", HTTPD]).build())
        .await?;
    let ip = t
        .pod_status(&r.pod)
        .await?
        .network
        .map(|n| n.ip)
        .unwrap_or_default();
    let ip: std::net::IpAddr = ip
        .parse()
        .map_err(|_| Failure::Fail(format!("pod IP {ip:?} is not an address")))?;
    let body = poll(
        Duration::from_secs(15),
        &format!("nothing answered at {ip}:8080"),
        || async { Ok(http_get((ip, 8080).into()).await) },
    )
    .await?;
    ensure!(
        body.contains("served-by-anycri"),
        "unexpected answer: {body:?}"
    );
    Ok(())
}

/// A port that is free now (the OS picks it at random).
fn free_port() -> Result<u16, Failure> {
    let l = std::net::TcpListener::bind("0.0.0.0:0")
        .map_err(|e| Failure::Fail(format!("finding a free port: {e}")))?;
    Ok(l.local_addr()
        .map_err(|e| Failure::Fail(format!("{e}")))?
        .port())
}

/// The host's own addresses to try: loopback, then the source address of its default route.
fn host_addresses() -> Vec<std::net::IpAddr> {
    let mut out = vec![std::net::IpAddr::from([127, 0, 0, 1])];
    if let Ok(s) = std::net::UdpSocket::bind("0.0.0.0:0")
        && s.connect("10.255.255.254:9").is_ok()
        && let Ok(a) = s.local_addr()
        && !a.ip().is_unspecified()
    {
        out.push(a.ip());
    }
    out
}

async fn host_port(t: TestContext) -> CheckResult {
    let port = free_port()?;
    let pod = t
        .pod()
        .port_mapping(Protocol::Tcp, 8080, i32::from(port))
        .build();
    let r = t
        .run(pod, t.container().command(["sh", "-c", HTTPD]).build())
        .await?;
    let addrs = host_addresses();
    let body = poll(
        Duration::from_secs(15),
        &format!("nothing answered at host port {port} on {addrs:?}"),
        || async {
            for a in &addrs {
                if let Some(b) = http_get((*a, port).into()).await {
                    return Ok(Some(b));
                }
            }
            Ok(None)
        },
    )
    .await?;
    ensure!(
        body.contains("served-by-anycri"),
        "unexpected answer: {body:?}"
    );
    let _ = r;
    Ok(())
}

/// Datagrams that reached the UDP layer of the container's network namespace, delivered or
/// not: `InDatagrams + NoPorts + InErrors` from the `Udp:` lines of `/proc/net/snmp`.
async fn udp_arrivals(t: &TestContext, container: &str) -> Result<u64, Failure> {
    let snmp = t.sh(container, "cat /proc/net/snmp").await?;
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return Err(Failure::Fail(format!(
            "no Udp: lines in /proc/net/snmp: {snmp:?}"
        )));
    };
    let mut total = 0;
    for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
        if matches!(name, "InDatagrams" | "NoPorts" | "InErrors") {
            total += value
                .parse::<u64>()
                .map_err(|_| Failure::Fail(format!("/proc/net/snmp: {name} is {value:?}")))?;
        }
    }
    Ok(total)
}

/// busybox has no UDP server, so the check counts arrivals in the pod's network namespace
/// instead of waiting for an answer: a datagram that reaches the container port with nothing
/// listening still counts as `NoPorts` there (and nowhere else, as the pod has its own
/// namespace). Each attempt sends from a fresh socket, so a conntrack entry made by an early
/// datagram cannot pin later ones to a path without the mapping.
async fn host_port_udp(t: TestContext) -> CheckResult {
    let port = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.local_addr())
        .map_err(|e| Failure::Fail(format!("finding a free UDP port: {e}")))?
        .port();
    let pod = t
        .pod()
        .port_mapping(Protocol::Udp, 5353, i32::from(port))
        .build();
    let r = t.run(pod, t.container().build()).await?;
    let before = udp_arrivals(&t, &r.container).await?;
    let addrs = host_addresses();
    poll(
        Duration::from_secs(15),
        &format!("no datagram sent to host port {port}/udp on {addrs:?} reached the pod"),
        || async {
            for a in &addrs {
                let s = tokio::net::UdpSocket::bind("0.0.0.0:0")
                    .await
                    .map_err(|e| Failure::Fail(format!("binding a UDP socket: {e}")))?;
                let _ = s.send_to(b"anycri-conformance", (*a, port)).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok((udp_arrivals(&t, &r.container).await? > before).then_some(()))
        },
    )
    .await
}

async fn web_server_image(t: TestContext) -> CheckResult {
    let image = t.image(ImageKind::WebServer)?;
    t.ensure_image(&image).await?;
    // critest's web server image and anycri's both listen on 80.
    let container_port = 80;
    let port = free_port()?;
    let pod = t
        .pod()
        .port_mapping(Protocol::Tcp, container_port, i32::from(port))
        .build();
    let mut container = t.container_on(&image).build();
    // The image's own entrypoint and command start the server.
    container.command.clear();
    container.args.clear();
    let r = t.run(pod, container).await?;
    let ip = t
        .pod_status(&r.pod)
        .await?
        .network
        .map(|n| n.ip)
        .unwrap_or_default();
    let ip: std::net::IpAddr = ip
        .parse()
        .map_err(|_| Failure::Fail(format!("pod IP {ip:?} is not an address")))?;
    let at_pod = poll(
        Duration::from_secs(15),
        &format!("the web server never answered at {ip}:{container_port}"),
        || async { Ok(http_get((ip, container_port as u16).into()).await) },
    )
    .await?;
    let addrs = host_addresses();
    let at_host = poll(
        Duration::from_secs(15),
        &format!("the web server never answered at host port {port} on {addrs:?}"),
        || async {
            for a in &addrs {
                if let Some(b) = http_get((*a, port).into()).await {
                    return Ok(Some(b));
                }
            }
            Ok(None)
        },
    )
    .await?;
    let page = |body: &str| body.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    ensure_eq!(
        page(&at_host),
        page(&at_pod),
        "page served at the host port and at the pod IP"
    );
    Ok(())
}
