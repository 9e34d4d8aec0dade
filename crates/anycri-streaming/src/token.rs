//! Single-use, expiring tokens for streaming requests, as the kubelet keeps them: the CRI
//! `Exec`/`Attach`/`PortForward` RPC validates its request and stores it under a random
//! token; the URL it returns names the token; the first HTTP request for that URL takes the
//! request out again. Expired tokens are dropped; at most a fixed number are in flight.
//! Also the request validation every streaming RPC shares.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use anycri_core::{
    Error, Result,
    api::{AttachRequest, ExecRequest, PortForwardRequest},
};
use base64::Engine as _;

/// A stored streaming request.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamRequest {
    /// An exec.
    Exec(ExecRequest),
    /// An attach.
    Attach(AttachRequest),
    /// A port-forward.
    PortForward(PortForwardRequest),
}

impl StreamRequest {
    /// The URL path segment of this kind of request (`exec`, `attach`, `portforward`).
    pub fn path(&self) -> &'static str {
        match self {
            StreamRequest::Exec(_) => "exec",
            StreamRequest::Attach(_) => "attach",
            StreamRequest::PortForward(_) => "portforward",
        }
    }
}

/// The token cache.
#[derive(Debug)]
pub struct TokenCache {
    ttl: Duration,
    max_in_flight: usize,
    entries: Mutex<HashMap<String, (StreamRequest, Instant)>>,
}

impl TokenCache {
    /// A cache whose tokens live `ttl` and of which at most `max_in_flight` exist at once.
    pub fn new(ttl: Duration, max_in_flight: usize) -> Self {
        TokenCache {
            ttl,
            max_in_flight: max_in_flight.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Store `request`; its new token. ResourceExhausted when too many are in flight.
    pub fn insert(&self, request: StreamRequest) -> Result<String> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (_, expires)| *expires > now);
        if entries.len() >= self.max_in_flight {
            return Err(Error::resource_exhausted(format!(
                "maximum number of in-flight streaming requests ({}) exceeded",
                self.max_in_flight
            )));
        }
        let token = loop {
            let token = new_token()?;
            if !entries.contains_key(&token) {
                break token;
            }
        };
        entries.insert(token.clone(), (request, now + self.ttl));
        Ok(token)
    }

    /// Take the request stored under `token` if it exists and has not expired. A token is
    /// good for one request only, whatever its kind.
    pub fn consume(&self, token: &str) -> Option<StreamRequest> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (request, expires) = entries.remove(token)?;
        (expires > Instant::now()).then_some(request)
    }

    /// Tokens stored and not yet expired.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.values().filter(|(_, e)| *e > now).count()
    }

    /// True when no live token is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// 16 random bytes, URL-safe base64 (the kubelet uses 8; more costs nothing).
fn new_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::internal(format!("no randomness for a streaming token: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn check_streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<()> {
    if !stdin && !stdout && !stderr {
        return Err(Error::invalid_argument(
            "one of stdin, stdout, or stderr must be set",
        ));
    }
    if tty && stderr {
        return Err(Error::invalid_argument(
            "tty and stderr cannot both be true (a terminal has one output)",
        ));
    }
    Ok(())
}

/// Check an `ExecRequest` as the kubelet's streaming server does.
pub fn validate_exec(request: &ExecRequest) -> Result<()> {
    if request.container_id.is_empty() {
        return Err(Error::invalid_argument("container_id must not be empty"));
    }
    if request.cmd.is_empty() {
        return Err(Error::invalid_argument("cmd must not be empty"));
    }
    check_streams(request.stdin, request.stdout, request.stderr, request.tty)
}

/// Check an `AttachRequest` as the kubelet's streaming server does.
pub fn validate_attach(request: &AttachRequest) -> Result<()> {
    if request.container_id.is_empty() {
        return Err(Error::invalid_argument("container_id must not be empty"));
    }
    check_streams(request.stdin, request.stdout, request.stderr, request.tty)
}

/// Check a `PortForwardRequest`: a pod and ports in 1..=65535 (an empty port list is
/// allowed: the client names the ports in the URL).
pub fn validate_port_forward(request: &PortForwardRequest) -> Result<()> {
    if request.pod_sandbox_id.is_empty() {
        return Err(Error::invalid_argument("pod_sandbox_id must not be empty"));
    }
    if let Some(bad) = request.port.iter().find(|p| !(1..=65535).contains(*p)) {
        return Err(Error::invalid_argument(format!(
            "port {bad} is out of range (1-65535)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use anycri_core::ErrorKind;

    use super::*;

    fn exec(cmd: &[&str]) -> ExecRequest {
        ExecRequest {
            container_id: "c1".into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            stdout: true,
            ..Default::default()
        }
    }

    #[test]
    fn tokens_are_single_use() {
        let cache = TokenCache::new(Duration::from_secs(60), 10);
        let t = cache.insert(StreamRequest::Exec(exec(&["ls"]))).unwrap();
        assert!(matches!(cache.consume(&t), Some(StreamRequest::Exec(_))));
        assert_eq!(cache.consume(&t), None);
        assert_eq!(cache.consume("bogus"), None);
    }

    #[test]
    fn tokens_expire() {
        let cache = TokenCache::new(Duration::ZERO, 10);
        let t = cache.insert(StreamRequest::Exec(exec(&["ls"]))).unwrap();
        assert_eq!(cache.consume(&t), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn tokens_are_distinct_and_url_safe() {
        let cache = TokenCache::new(Duration::from_secs(60), 100);
        let a = cache.insert(StreamRequest::Exec(exec(&["a"]))).unwrap();
        let b = cache.insert(StreamRequest::Exec(exec(&["b"]))).unwrap();
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn in_flight_tokens_are_bounded() {
        let cache = TokenCache::new(Duration::from_secs(60), 2);
        cache.insert(StreamRequest::Exec(exec(&["a"]))).unwrap();
        cache.insert(StreamRequest::Exec(exec(&["b"]))).unwrap();
        let err = cache.insert(StreamRequest::Exec(exec(&["c"]))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceExhausted);
    }

    #[test]
    fn requests_are_validated_like_the_kubelet() {
        assert!(validate_exec(&exec(&["ls"])).is_ok());
        let bad = [
            ExecRequest {
                container_id: String::new(),
                ..exec(&["ls"])
            },
            exec(&[]),
            ExecRequest {
                stdout: false,
                ..exec(&["ls"])
            },
            ExecRequest {
                tty: true,
                stderr: true,
                ..exec(&["ls"])
            },
        ];
        for request in bad {
            assert_eq!(
                validate_exec(&request).unwrap_err().kind(),
                ErrorKind::InvalidArgument,
                "{request:?}"
            );
        }
        assert!(
            validate_attach(&AttachRequest {
                container_id: "c".into(),
                stdin: true,
                ..Default::default()
            })
            .is_ok()
        );
        assert!(validate_attach(&AttachRequest::default()).is_err());
        assert!(
            validate_port_forward(&PortForwardRequest {
                pod_sandbox_id: "p".into(),
                port: vec![0],
            })
            .is_err()
        );
        assert!(
            validate_port_forward(&PortForwardRequest {
                pod_sandbox_id: "p".into(),
                port: vec![80],
            })
            .is_ok()
        );
    }
}
