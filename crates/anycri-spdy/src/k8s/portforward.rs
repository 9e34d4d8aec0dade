//! Port-forward over SPDY, as the kubelet serves it: for every forwarded connection the
//! client opens an `error` stream and a `data` stream with the same `port` and `requestID`
//! headers; the server pairs them (giving up on a pair that stays incomplete past the stream
//! creation timeout), copies the data stream to and from the pod's port, and writes any
//! failure as text on the error stream.

use std::collections::HashMap;
use std::time::Duration;

use futures::Stream;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::{
    HEADER_PORT, HEADER_REQUEST_ID, HEADER_STREAM_TYPE, STREAM_TYPE_DATA, STREAM_TYPE_ERROR,
};
use crate::error::{Result, SpdyError};
use crate::frame::RstStatus;
use crate::session::{SpdySession, SpdyStream};

/// One forwarded connection: copy `data` to and from `port`, report failure on `error`.
#[derive(Debug)]
#[non_exhaustive]
pub struct PortForwardRequest {
    /// The pod port.
    pub port: u16,
    /// The client's request ID (derived from the stream IDs for clients that send none).
    pub request_id: String,
    /// The connection's bytes.
    pub data: SpdyStream,
    /// Where a failure is reported as text.
    pub error: SpdyStream,
}

impl PortForwardRequest {
    /// Ends the forwarded connection normally: FIN on both streams.
    pub async fn finish(mut self) -> Result<()> {
        let _ = self.data.shutdown().await;
        self.error.shutdown().await?;
        Ok(())
    }

    /// Ends the forwarded connection with `message` on the error stream (the client prints
    /// it; the kubelet's form is `error forwarding port <port> to pod <pod>, uid <uid>: <err>`).
    pub async fn fail(mut self, message: &str) -> Result<()> {
        let _ = self.data.shutdown().await;
        self.error.write_all(message.as_bytes()).await?;
        self.error.shutdown().await?;
        Ok(())
    }
}

#[derive(Default)]
struct Pending {
    port: u16,
    data: Option<SpdyStream>,
    error: Option<SpdyStream>,
    deadline: Option<Instant>,
}

/// Accepts port-forward streams on a session and pairs them (see [`accept_port_forward`]).
#[derive(Debug)]
pub struct PortForwardListener {
    session: SpdySession,
    pairing_timeout: Duration,
    pending: HashMap<String, Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("port", &self.port)
            .field("data", &self.data.is_some())
            .field("error", &self.error.is_some())
            .finish()
    }
}

impl PortForwardListener {
    /// Pairs streams of `session`, dropping pairs still incomplete after `pairing_timeout`
    /// (the kubelet uses its stream creation timeout, 30 s by default).
    pub fn new(session: SpdySession, pairing_timeout: Duration) -> Self {
        Self {
            session,
            pairing_timeout,
            pending: HashMap::new(),
        }
    }

    /// The session (to close it, or check why it ended).
    pub fn session(&self) -> &SpdySession {
        &self.session
    }

    /// Gives the session back (pending, unpaired streams are dropped).
    pub fn into_session(self) -> SpdySession {
        self.session
    }

    /// The next complete pair; `None` once the connection has ended.
    pub async fn next(&mut self) -> Option<PortForwardRequest> {
        loop {
            let next_deadline = self.pending.values().filter_map(|p| p.deadline).min();
            let accepted = match next_deadline {
                Some(deadline) => tokio::select! {
                    s = self.session.accept_unreplied() => Some(s),
                    _ = tokio::time::sleep_until(deadline) => None,
                },
                None => Some(self.session.accept_unreplied().await),
            };
            match accepted {
                None => self.expire().await,
                Some(None) => return None,
                Some(Some(stream)) => {
                    if let Some(request) = self.add(stream).await {
                        return Some(request);
                    }
                }
            }
        }
    }

    /// Turns the listener into a `Stream` of requests.
    pub fn into_stream(self) -> impl Stream<Item = PortForwardRequest> + Send + Unpin {
        Box::pin(futures::stream::unfold(self, |mut listener| async move {
            listener.next().await.map(|r| (r, listener))
        }))
    }

    async fn expire(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(mut pair) = self.pending.remove(&id) {
                let message = format!("(request={id}) timed out waiting for streams");
                tracing::debug!(%message, "port-forward pair incomplete");
                if let Some(error) = pair.error.as_mut() {
                    let _ = error.write_all(message.as_bytes()).await;
                    let _ = error.shutdown().await;
                }
            }
        }
    }

    async fn add(&mut self, mut stream: SpdyStream) -> Option<PortForwardRequest> {
        let (port, kind) = match validate(&stream) {
            Ok(v) => v,
            Err(e) => {
                // The kubelet rejects such a stream outright.
                tracing::debug!(error = %e, "port-forward stream rejected");
                stream.reset(RstStatus::Cancel);
                return None;
            }
        };
        stream.send_reply();
        let request_id = match stream.headers().get(HEADER_REQUEST_ID) {
            Some(id) if !id.is_empty() => id.to_owned(),
            // Old clients send no request ID; their streams come in (error, data) pairs with
            // consecutive IDs, as the kubelet assumes.
            _ if kind == STREAM_TYPE_ERROR => stream.id().to_string(),
            _ => stream.id().saturating_sub(2).to_string(),
        };
        let timeout = self.pairing_timeout;
        let pair = self
            .pending
            .entry(request_id.clone())
            .or_insert_with(|| Pending {
                port,
                deadline: Some(Instant::now() + timeout),
                ..Pending::default()
            });
        let slot = if kind == STREAM_TYPE_ERROR {
            &mut pair.error
        } else {
            &mut pair.data
        };
        if slot.is_some() {
            let message = format!(
                "error processing stream for request {request_id}: {kind} stream already assigned"
            );
            if let Some(error) = pair.error.as_mut() {
                let _ = error.write_all(message.as_bytes()).await;
            }
            stream.reset(RstStatus::Cancel);
            return None;
        }
        *slot = Some(stream);
        if pair.data.is_some() && pair.error.is_some() {
            let pair = self.pending.remove(&request_id)?;
            let data = pair.data?;
            let error = pair.error?;
            // The kubelet forwards to the data stream's port.
            let port = validate(&data).map(|(p, _)| p).unwrap_or(pair.port);
            return Some(PortForwardRequest {
                port,
                request_id,
                data,
                error,
            });
        }
        None
    }
}

/// Checks a port-forward stream's `port` and `streamType` headers as the kubelet does.
fn validate(stream: &SpdyStream) -> Result<(u16, &'static str)> {
    let port = stream.headers().get(HEADER_PORT).unwrap_or("");
    if port.is_empty() {
        return Err(SpdyError::InvalidInput(format!(
            "{HEADER_PORT:?} header is required"
        )));
    }
    let port: u16 = port
        .parse()
        .map_err(|e| SpdyError::InvalidInput(format!("unable to parse {port:?} as a port: {e}")))?;
    if port < 1 {
        return Err(SpdyError::InvalidInput(format!(
            "port {port:?} must be > 0"
        )));
    }
    match stream.headers().get(HEADER_STREAM_TYPE).unwrap_or("") {
        STREAM_TYPE_ERROR => Ok((port, STREAM_TYPE_ERROR)),
        STREAM_TYPE_DATA => Ok((port, STREAM_TYPE_DATA)),
        "" => Err(SpdyError::InvalidInput(format!(
            "{HEADER_STREAM_TYPE:?} header is required"
        ))),
        other => Err(SpdyError::InvalidInput(format!(
            "invalid stream type {other:?}"
        ))),
    }
}

/// Pairs the port-forward streams the client opens on `session` into requests, as a
/// `Stream` that ends with the connection. Invalid streams are reset; pairs incomplete after
/// `pairing_timeout` get a timeout message on their error stream and are dropped.
pub fn accept_port_forward(
    session: SpdySession,
    pairing_timeout: Duration,
) -> impl Stream<Item = PortForwardRequest> + Send + Unpin {
    PortForwardListener::new(session, pairing_timeout).into_stream()
}
