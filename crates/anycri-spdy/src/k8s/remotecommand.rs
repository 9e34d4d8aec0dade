//! Remote command (exec and attach) over SPDY, as the kubelet serves it: the client opens one
//! stream per channel (`error`, and `stdin`/`stdout`/`stderr`/`resize` as requested), the
//! server waits for all of them, runs the command, writes the exit status on the error stream
//! (JSON `metav1.Status` on v4, plain text on earlier versions) and closes.

use std::time::Duration;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    HEADER_STREAM_TYPE, STREAM_PROTOCOL_V1, STREAM_PROTOCOL_V2, STREAM_PROTOCOL_V3,
    STREAM_PROTOCOL_V4, STREAM_TYPE_ERROR, STREAM_TYPE_RESIZE, STREAM_TYPE_STDERR,
    STREAM_TYPE_STDIN, STREAM_TYPE_STDOUT, SUPPORTED_REMOTE_COMMAND_PROTOCOLS,
};
use crate::error::{Result, SpdyError};
use crate::frame::RstStatus;
use crate::session::{SpdySession, SpdyStream};

/// A remote command protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RemoteCommandProtocol {
    /// `channel.k8s.io`.
    V1,
    /// `v2.channel.k8s.io`.
    V2,
    /// `v3.channel.k8s.io`.
    V3,
    /// `v4.channel.k8s.io`.
    V4,
}

impl RemoteCommandProtocol {
    /// The protocol's name as negotiated in `X-Stream-Protocol-Version`.
    pub fn name(self) -> &'static str {
        match self {
            RemoteCommandProtocol::V1 => STREAM_PROTOCOL_V1,
            RemoteCommandProtocol::V2 => STREAM_PROTOCOL_V2,
            RemoteCommandProtocol::V3 => STREAM_PROTOCOL_V3,
            RemoteCommandProtocol::V4 => STREAM_PROTOCOL_V4,
        }
    }

    /// The protocol with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            STREAM_PROTOCOL_V1 => Some(RemoteCommandProtocol::V1),
            STREAM_PROTOCOL_V2 => Some(RemoteCommandProtocol::V2),
            STREAM_PROTOCOL_V3 => Some(RemoteCommandProtocol::V3),
            STREAM_PROTOCOL_V4 => Some(RemoteCommandProtocol::V4),
            _ => None,
        }
    }

    /// Negotiates from the client's `X-Stream-Protocol-Version` values like the kubelet:
    /// no offer at all means v1; offers that match nothing are an error (the server answers
    /// 403 with `X-Accepted-Stream-Protocol-Versions`).
    pub fn negotiate(client_offers: &[&str]) -> Result<Self> {
        if client_offers.iter().all(|v| v.trim().is_empty()) {
            return Ok(RemoteCommandProtocol::V1);
        }
        super::negotiate(client_offers, SUPPORTED_REMOTE_COMMAND_PROTOCOLS)
            .and_then(Self::from_name)
            .ok_or_else(|| {
                SpdyError::InvalidInput(format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {client_offers:?}, server supports {SUPPORTED_REMOTE_COMMAND_PROTOCOLS:?}"
                ))
            })
    }

    /// Whether the client opens a `resize` stream for a tty (v3 and later).
    pub fn supports_resize(self) -> bool {
        self >= RemoteCommandProtocol::V3
    }
}

/// Which streams the request asked for (the `stdin`, `stdout`, `stderr` and `tty` query
/// parameters of the streaming URL).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpectedStreams {
    /// The client sends stdin.
    pub stdin: bool,
    /// The client wants stdout.
    pub stdout: bool,
    /// The client wants stderr (ignored with a tty, as the kubelet does).
    pub stderr: bool,
    /// The command runs on a terminal.
    pub tty: bool,
}

impl ExpectedStreams {
    fn wants(&self, protocol: RemoteCommandProtocol, kind: &str) -> bool {
        match kind {
            STREAM_TYPE_ERROR => true,
            STREAM_TYPE_STDIN => self.stdin,
            STREAM_TYPE_STDOUT => self.stdout,
            STREAM_TYPE_STDERR => self.stderr && !self.tty,
            STREAM_TYPE_RESIZE => self.tty && protocol.supports_resize(),
            _ => false,
        }
    }
}

/// The streams of one exec or attach, as the client opened them.
#[derive(Debug)]
#[non_exhaustive]
pub struct RemoteCommandStreams {
    /// The negotiated protocol.
    pub protocol: RemoteCommandProtocol,
    /// What the client types (read it).
    pub stdin: Option<SpdyStream>,
    /// The command's stdout (write to it).
    pub stdout: Option<SpdyStream>,
    /// The command's stderr (write to it); never present with a tty.
    pub stderr: Option<SpdyStream>,
    /// The status stream: [`RemoteCommandStreams::finish`] writes the exit status here.
    pub error: SpdyStream,
    /// Terminal size changes (tty on v3+).
    pub resize: Option<ResizeStream>,
}

impl RemoteCommandStreams {
    /// Ends the command: writes `status` on the error stream in the protocol's format and
    /// sends FIN on every stream (stdout and stderr first, the error stream last) (the client reads the error stream to
    /// its end). Close the session afterwards.
    pub async fn finish(mut self, status: &ExitStatus) -> Result<()> {
        let resize = self.resize.as_mut().map(|r| &mut r.stream);
        let streams = [
            self.stdout.as_mut(),
            self.stderr.as_mut(),
            self.stdin.as_mut(),
            resize,
        ];
        for out in streams.into_iter().flatten() {
            // A client that went away already is not an error of the command.
            let _ = out.shutdown().await;
        }
        write_exit_status(&mut self.error, self.protocol, status).await?;
        self.error.shutdown().await?;
        Ok(())
    }
}

/// Waits until the client has opened every stream `expected` calls for (always `error`), or
/// fails after `timeout` (the kubelet's stream creation timeout, 30 s by default). Streams of
/// an unknown, unexpected or repeated type are reset.
pub async fn accept_remote_command(
    session: &mut SpdySession,
    protocol: RemoteCommandProtocol,
    expected: ExpectedStreams,
    timeout: Duration,
) -> Result<RemoteCommandStreams> {
    let mut error = None;
    let mut stdin = None;
    let mut stdout = None;
    let mut stderr = None;
    let mut resize = None;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let complete = error.is_some()
            && (stdin.is_some() || !expected.wants(protocol, STREAM_TYPE_STDIN))
            && (stdout.is_some() || !expected.wants(protocol, STREAM_TYPE_STDOUT))
            && (stderr.is_some() || !expected.wants(protocol, STREAM_TYPE_STDERR))
            && (resize.is_some() || !expected.wants(protocol, STREAM_TYPE_RESIZE));
        if complete {
            break;
        }
        let mut stream = match tokio::time::timeout_at(deadline, session.accept()).await {
            Ok(Some(stream)) => stream,
            Ok(None) => return Err(SpdyError::Closed),
            Err(_) => {
                return Err(SpdyError::Timeout(
                    "timed out waiting for client to create streams".into(),
                ));
            }
        };
        let kind = stream
            .headers()
            .get(HEADER_STREAM_TYPE)
            .unwrap_or("")
            .to_owned();
        let slot = match kind.as_str() {
            STREAM_TYPE_ERROR => &mut error,
            STREAM_TYPE_STDIN => &mut stdin,
            STREAM_TYPE_STDOUT => &mut stdout,
            STREAM_TYPE_STDERR => &mut stderr,
            STREAM_TYPE_RESIZE => &mut resize,
            _ => {
                tracing::debug!(stream_type = %kind, "unexpected stream type, resetting");
                stream.reset(RstStatus::Cancel);
                continue;
            }
        };
        if !expected.wants(protocol, &kind) || slot.is_some() {
            tracing::debug!(stream_type = %kind, "stream not expected or repeated, resetting");
            stream.reset(RstStatus::Cancel);
            continue;
        }
        *slot = Some(stream);
    }
    Ok(RemoteCommandStreams {
        protocol,
        stdin,
        stdout,
        stderr,
        error: error.ok_or(SpdyError::Closed)?,
        resize: resize.map(ResizeStream::new),
    })
}

/// How a command ended, for the error stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// The command ran and exited with this code (0 is success).
    Exited(i32),
    /// The command could not be run or followed (an internal error on the server's side).
    Error(String),
}

#[derive(Serialize)]
struct Status<'a> {
    metadata: Empty,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Details {
    causes: Vec<Cause>,
}

#[derive(Serialize)]
struct Cause {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    message: String,
}

impl ExitStatus {
    /// The JSON `metav1.Status` the kubelet writes on a v4 error stream.
    pub fn to_v4_json(&self) -> String {
        let status = match self {
            ExitStatus::Exited(0) => Status {
                metadata: Empty {},
                status: "Success",
                message: None,
                reason: None,
                details: None,
                code: None,
            },
            ExitStatus::Exited(code) => Status {
                metadata: Empty {},
                status: "Failure",
                message: Some(self.message().unwrap_or_default()),
                reason: Some("NonZeroExitCode"),
                details: Some(Details {
                    causes: vec![Cause {
                        reason: Some("ExitCode"),
                        message: code.to_string(),
                    }],
                }),
                code: None,
            },
            ExitStatus::Error(e) => Status {
                metadata: Empty {},
                status: "Failure",
                message: Some(self.message().unwrap_or_default()),
                reason: Some("InternalError"),
                details: Some(Details {
                    causes: vec![Cause {
                        reason: None,
                        message: format!("error executing command in container: {e}"),
                    }],
                }),
                code: Some(500),
            },
        };
        // Serialising these plain structs cannot fail.
        serde_json::to_string(&status).unwrap_or_default()
    }

    /// The text the kubelet writes on a v1–v3 error stream: nothing on success.
    pub fn message(&self) -> Option<String> {
        match self {
            ExitStatus::Exited(0) => None,
            ExitStatus::Exited(code) => Some(format!(
                "command terminated with non-zero exit code: exit status {code}"
            )),
            ExitStatus::Error(e) => Some(format!(
                "Internal error occurred: error executing command in container: {e}"
            )),
        }
    }
}

/// Writes `status` on an error stream in `protocol`'s format (does not close the stream).
pub async fn write_exit_status(
    error_stream: &mut SpdyStream,
    protocol: RemoteCommandProtocol,
    status: &ExitStatus,
) -> Result<()> {
    let bytes = match protocol {
        RemoteCommandProtocol::V4 => Some(status.to_v4_json()),
        _ => status.message(),
    };
    if let Some(bytes) = bytes {
        error_stream.write_all(bytes.as_bytes()).await?;
    }
    Ok(())
}

/// A terminal size as the client sends it on the resize stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    /// Columns.
    #[serde(rename = "Width", alias = "width")]
    pub width: u16,
    /// Rows.
    #[serde(rename = "Height", alias = "height")]
    pub height: u16,
}

/// Parses one resize message (`{"Width":80,"Height":24}`).
pub fn parse_resize(message: &[u8]) -> Result<TerminalSize> {
    serde_json::from_slice(message)
        .map_err(|e| SpdyError::InvalidInput(format!("bad resize message: {e}")))
}

/// The resize stream, decoded: a sequence of JSON [`TerminalSize`] values, however the
/// client split them into frames.
#[derive(Debug)]
pub struct ResizeStream {
    stream: SpdyStream,
    buf: BytesMut,
}

impl ResizeStream {
    /// Decodes resize messages from `stream`.
    pub fn new(stream: SpdyStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// The next terminal size; `None` when the client closed the stream; an error for a
    /// malformed message or a stream error (after which no more sizes come, as in the kubelet).
    pub async fn next(&mut self) -> Option<Result<TerminalSize>> {
        const MAX_MESSAGE: usize = 4096;
        loop {
            let mut values = serde_json::Deserializer::from_slice(&self.buf).into_iter();
            match values.next() {
                Some(Ok(size)) => {
                    let used = values.byte_offset();
                    let _ = self.buf.split_to(used);
                    return Some(Ok(size));
                }
                Some(Err(e)) if !e.is_eof() => {
                    self.buf.clear();
                    return Some(Err(SpdyError::InvalidInput(format!(
                        "bad resize message: {e}"
                    ))));
                }
                _ => {}
            }
            if self.buf.len() > MAX_MESSAGE {
                self.buf.clear();
                return Some(Err(SpdyError::InvalidInput(
                    "resize message too long".into(),
                )));
            }
            self.buf.reserve(512);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => {
                    let rest = std::mem::take(&mut self.buf);
                    return if rest.iter().all(u8::is_ascii_whitespace) {
                        None
                    } else {
                        Some(Err(SpdyError::InvalidInput(
                            "resize stream ended inside a message".into(),
                        )))
                    };
                }
                Ok(_) => {}
                Err(e) => return Some(Err(SpdyError::Io(e))),
            }
        }
    }

    /// The underlying stream.
    pub fn into_inner(self) -> SpdyStream {
        self.stream
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_status_matches_the_kubelet() {
        assert_eq!(
            ExitStatus::Exited(0).to_v4_json(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        assert_eq!(
            ExitStatus::Exited(3).to_v4_json(),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
        let internal: serde_json::Value =
            serde_json::from_str(&ExitStatus::Error("boom".into()).to_v4_json()).unwrap();
        assert_eq!(internal["reason"], "InternalError");
        assert_eq!(internal["code"], 500);
        assert_eq!(
            internal["details"]["causes"][0]["message"],
            "error executing command in container: boom"
        );
        assert_eq!(ExitStatus::Exited(0).message(), None);
    }

    #[test]
    fn protocol_negotiation_and_resize_support() {
        use RemoteCommandProtocol::*;
        assert_eq!(RemoteCommandProtocol::negotiate(&[]).unwrap(), V1);
        assert_eq!(
            RemoteCommandProtocol::negotiate(&["v4.channel.k8s.io", "v3.channel.k8s.io"]).unwrap(),
            V4
        );
        assert!(RemoteCommandProtocol::negotiate(&["v9.channel.k8s.io"]).is_err());
        assert!(V3.supports_resize() && V4.supports_resize());
        assert!(!V2.supports_resize() && !V1.supports_resize());
        let tty = ExpectedStreams {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: true,
        };
        assert!(!tty.wants(V4, STREAM_TYPE_STDERR));
        assert!(tty.wants(V4, STREAM_TYPE_RESIZE));
        assert!(!tty.wants(V2, STREAM_TYPE_RESIZE));
    }

    #[test]
    fn resize_messages_parse() {
        assert_eq!(
            parse_resize(br#"{"Width":80,"Height":24}"#).unwrap(),
            TerminalSize {
                width: 80,
                height: 24
            }
        );
        assert!(parse_resize(br#"{"Width":-1,"Height":24}"#).is_err());
        assert!(parse_resize(b"nonsense").is_err());
    }
}
