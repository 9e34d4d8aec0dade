//! The Kubernetes WebSocket channel protocols, as data: each WebSocket message carries one
//! channel's bytes behind a one-byte channel number (binary protocols) or an ASCII digit and
//! base64 text (`base64.` protocols). Exec and attach use channels 0–4 (stdin, stdout,
//! stderr, the error/status channel, terminal resize); `v5.channel.k8s.io` adds a close signal
//! (channel 255, payload the channel being closed). Port-forward uses a data and an error
//! channel per port, each opened by the port number as two little-endian bytes. This module
//! also builds and reads the `metav1.Status` JSON the v4+ protocols put on the status channel.

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

/// Channel of the remote process's stdin.
pub const STDIN: u8 = 0;
/// Channel of stdout.
pub const STDOUT: u8 = 1;
/// Channel of stderr.
pub const STDERR: u8 = 2;
/// Channel of the exit status / error.
pub const ERROR: u8 = 3;
/// Channel of terminal resize events (JSON `{"Width":..,"Height":..}`).
pub const RESIZE: u8 = 4;
/// The v5 close signal: a message on this channel closes the channel named by its payload.
pub const CLOSE: u8 = 255;

/// `v5.channel.k8s.io`: v4 plus the close signal.
pub const V5_CHANNEL: &str = "v5.channel.k8s.io";
/// `v4.channel.k8s.io`: binary channels, exit status as `metav1.Status` JSON.
pub const V4_CHANNEL: &str = "v4.channel.k8s.io";
/// `v4.base64.channel.k8s.io`: as v4, text messages with base64 payloads.
pub const V4_BASE64_CHANNEL: &str = "v4.base64.channel.k8s.io";
/// `channel.k8s.io`: binary channels, errors as plain text.
pub const V1_CHANNEL: &str = "channel.k8s.io";
/// `base64.channel.k8s.io`: as `channel.k8s.io`, base64 text.
pub const V1_BASE64_CHANNEL: &str = "base64.channel.k8s.io";
/// `portforward.k8s.io`: the port-forward protocol's name (accepted on WebSocket too).
pub const PORT_FORWARD: &str = "portforward.k8s.io";

/// One negotiated channel protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelProtocol {
    /// Its name as sent in `Sec-WebSocket-Protocol` ("" when the client offered none).
    pub name: &'static str,
    /// Text messages with base64 payloads instead of binary messages.
    pub base64: bool,
    /// Protocol generation: 1 (plain-text errors), 4 (Status JSON) or 5 (close signal).
    pub version: u8,
}

impl ChannelProtocol {
    const fn new(name: &'static str, base64: bool, version: u8) -> Self {
        ChannelProtocol {
            name,
            base64,
            version,
        }
    }

    /// Whether the status channel carries `metav1.Status` JSON.
    pub fn status_json(&self) -> bool {
        self.version >= 4
    }

    /// Whether the close signal (channel 255) is understood.
    pub fn close_signal(&self) -> bool {
        self.version >= 5
    }
}

/// Protocols the server accepts for exec and attach.
pub const EXEC_PROTOCOLS: &[ChannelProtocol] = &[
    ChannelProtocol::new(V5_CHANNEL, false, 5),
    ChannelProtocol::new(V4_CHANNEL, false, 4),
    ChannelProtocol::new(V4_BASE64_CHANNEL, true, 4),
    ChannelProtocol::new(V1_CHANNEL, false, 1),
    ChannelProtocol::new(V1_BASE64_CHANNEL, true, 1),
];

/// Protocols the server accepts for port-forward.
pub const PORT_FORWARD_PROTOCOLS: &[ChannelProtocol] = &[
    ChannelProtocol::new(V4_CHANNEL, false, 4),
    ChannelProtocol::new(V4_BASE64_CHANNEL, true, 4),
    ChannelProtocol::new(PORT_FORWARD, false, 4),
    ChannelProtocol::new(V1_CHANNEL, false, 1),
    ChannelProtocol::new(V1_BASE64_CHANNEL, true, 1),
];

/// What a client that names no protocol gets: binary channels, as the kubelet does.
pub const DEFAULT_PROTOCOL: ChannelProtocol = ChannelProtocol::new("", false, 1);

/// Pick the first protocol in the client's `Sec-WebSocket-Protocol` list that `supported`
/// has. No header at all picks [`DEFAULT_PROTOCOL`]; a header with nothing known is `None`.
pub fn negotiate(offered: Option<&str>, supported: &[ChannelProtocol]) -> Option<ChannelProtocol> {
    let Some(offered) = offered.filter(|o| !o.trim().is_empty()) else {
        return Some(DEFAULT_PROTOCOL);
    };
    offered
        .split(',')
        .map(str::trim)
        .find_map(|name| supported.iter().find(|p| p.name == name).copied())
}

/// The protocol named `name` (as the server answered it) among `supported`.
pub fn by_name(name: &str, supported: &[ChannelProtocol]) -> Option<ChannelProtocol> {
    if name.is_empty() {
        return Some(DEFAULT_PROTOCOL);
    }
    supported.iter().find(|p| p.name == name).copied()
}

/// The WebSocket message carrying `data` on `channel`.
pub fn encode(protocol: ChannelProtocol, channel: u8, data: &[u8]) -> Message {
    if protocol.base64 {
        let mut text = String::with_capacity(1 + data.len().div_ceil(3) * 4);
        // Base64 protocols name the channel as an ASCII digit.
        text.push(char::from(b'0'.wrapping_add(channel)));
        base64::engine::general_purpose::STANDARD.encode_string(data, &mut text);
        Message::text(text)
    } else {
        let mut buf = Vec::with_capacity(1 + data.len());
        buf.push(channel);
        buf.extend_from_slice(data);
        Message::binary(buf)
    }
}

/// A decoding failure: the message is not a channel frame of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub String);

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FrameError {}

/// The channel and payload of a data message. Control messages (ping, pong, close) are
/// `Ok(None)`; an empty message or bad base64 is an error.
pub fn decode(
    protocol: ChannelProtocol,
    message: Message,
) -> Result<Option<(u8, Bytes)>, FrameError> {
    match message {
        Message::Binary(data) if !protocol.base64 => {
            let Some(&channel) = data.first() else {
                return Err(FrameError("empty binary message (no channel byte)".into()));
            };
            Ok(Some((channel, data.slice(1..))))
        }
        Message::Text(text) if protocol.base64 => {
            let bytes = text.as_bytes();
            let Some(&digit) = bytes.first() else {
                return Err(FrameError("empty text message (no channel digit)".into()));
            };
            let channel = digit.wrapping_sub(b'0');
            let data = base64::engine::general_purpose::STANDARD
                .decode(&bytes[1..])
                .map_err(|e| FrameError(format!("bad base64 on channel {channel}: {e}")))?;
            Ok(Some((channel, Bytes::from(data))))
        }
        Message::Binary(_) => Err(FrameError(format!(
            "binary message on the base64 protocol {:?}",
            protocol.name
        ))),
        Message::Text(_) => Err(FrameError(format!(
            "text message on the binary protocol {:?}",
            protocol.name
        ))),
        _ => Ok(None),
    }
}

/// A terminal size, as the resize channel carries it (`{"Width":80,"Height":24}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    /// Columns.
    #[serde(rename = "Width")]
    pub width: u16,
    /// Rows.
    #[serde(rename = "Height")]
    pub height: u16,
}

/// The outcome of an exec or attach as the status channel tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// The command ran and exited with this code (0 for success).
    Exited(i32),
    /// The command could not be run or the session failed.
    Failed(String),
}

#[derive(Serialize, Deserialize, Default)]
struct Status {
    #[serde(default)]
    metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details: Option<StatusDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<i32>,
}

#[derive(Serialize, Deserialize, Default)]
struct StatusDetails {
    #[serde(default)]
    causes: Vec<StatusCause>,
}

#[derive(Serialize, Deserialize, Default)]
struct StatusCause {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    message: String,
}

/// The status-channel payload for `status` under `protocol`: `metav1.Status` JSON for v4+
/// (exit codes as a `NonZeroExitCode` failure with an `ExitCode` cause, like the kubelet);
/// for v1, plain text on failure and nothing (`None`) on success.
pub fn status_payload(protocol: ChannelProtocol, status: &ExitStatus) -> Option<Vec<u8>> {
    let (message, st) = match status {
        ExitStatus::Exited(0) => (
            None,
            Status {
                status: "Success".into(),
                ..Default::default()
            },
        ),
        ExitStatus::Exited(code) => {
            let message = format!("command terminated with non-zero exit code: exit code {code}");
            (
                Some(message.clone()),
                Status {
                    status: "Failure".into(),
                    message,
                    reason: "NonZeroExitCode".into(),
                    details: Some(StatusDetails {
                        causes: vec![StatusCause {
                            reason: "ExitCode".into(),
                            message: code.to_string(),
                        }],
                    }),
                    ..Default::default()
                },
            )
        }
        ExitStatus::Failed(message) => (
            Some(message.clone()),
            Status {
                status: "Failure".into(),
                message: message.clone(),
                reason: "InternalError".into(),
                details: Some(StatusDetails {
                    causes: vec![StatusCause {
                        reason: String::new(),
                        message: message.clone(),
                    }],
                }),
                code: Some(500),
                ..Default::default()
            },
        ),
    };
    if protocol.status_json() {
        serde_json::to_vec(&st).ok()
    } else {
        message.map(String::into_bytes)
    }
}

/// Read a status-channel payload. v4+ JSON gives the exit code; v1 text (or anything that is
/// not JSON) is a failure with that text. An empty payload under v1 is success.
pub fn parse_status(protocol: ChannelProtocol, payload: &[u8]) -> ExitStatus {
    if payload.is_empty() && !protocol.status_json() {
        return ExitStatus::Exited(0);
    }
    let Ok(st) = serde_json::from_slice::<Status>(payload) else {
        return ExitStatus::Failed(String::from_utf8_lossy(payload).into_owned());
    };
    if st.status == "Success" {
        return ExitStatus::Exited(0);
    }
    if st.reason == "NonZeroExitCode"
        && let Some(code) = st
            .details
            .iter()
            .flat_map(|d| &d.causes)
            .find(|c| c.reason == "ExitCode")
            .and_then(|c| c.message.parse().ok())
    {
        return ExitStatus::Exited(code);
    }
    ExitStatus::Failed(if st.message.is_empty() {
        String::from_utf8_lossy(payload).into_owned()
    } else {
        st.message
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: ChannelProtocol = EXEC_PROTOCOLS[1];
    const V4B64: ChannelProtocol = EXEC_PROTOCOLS[2];
    const V1: ChannelProtocol = EXEC_PROTOCOLS[3];

    #[test]
    fn binary_frames_round_trip() {
        let msg = encode(V4, STDOUT, b"hello");
        assert_eq!(msg, Message::binary(b"\x01hello".to_vec()));
        assert_eq!(
            decode(V4, msg).unwrap(),
            Some((STDOUT, Bytes::from_static(b"hello")))
        );
        // An empty payload is a valid frame (the kubelet opens a session with one).
        assert_eq!(
            decode(V4, encode(V4, STDERR, b"")).unwrap(),
            Some((STDERR, Bytes::new()))
        );
    }

    #[test]
    fn base64_frames_round_trip() {
        let msg = encode(V4B64, STDERR, b"\x00\xffoops");
        assert_eq!(msg, Message::text("2AP9vb3Bz"));
        assert_eq!(
            decode(V4B64, msg).unwrap(),
            Some((STDERR, Bytes::from_static(b"\x00\xffoops")))
        );
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        assert!(decode(V4, Message::binary(Vec::new())).is_err());
        assert!(decode(V4B64, Message::text("")).is_err());
        assert!(decode(V4B64, Message::text("1***")).is_err());
        assert!(decode(V4, Message::text("1abc")).is_err());
        assert!(decode(V4B64, Message::binary(vec![1, 2])).is_err());
        assert_eq!(decode(V4, Message::Ping(Bytes::new())).unwrap(), None);
    }

    #[test]
    fn negotiation_follows_the_clients_order() {
        let p = negotiate(Some("v5.channel.k8s.io, v4.channel.k8s.io"), EXEC_PROTOCOLS).unwrap();
        assert_eq!(p.name, V5_CHANNEL);
        assert!(p.close_signal());
        let p = negotiate(Some("bogus, v4.channel.k8s.io"), EXEC_PROTOCOLS).unwrap();
        assert_eq!(p.name, V4_CHANNEL);
        assert!(!p.close_signal());
        assert_eq!(negotiate(None, EXEC_PROTOCOLS), Some(DEFAULT_PROTOCOL));
        assert_eq!(negotiate(Some("bogus"), EXEC_PROTOCOLS), None);
        assert_eq!(negotiate(Some(V5_CHANNEL), PORT_FORWARD_PROTOCOLS), None);
    }

    #[test]
    fn exit_codes_survive_the_status_channel() {
        for code in [0, 1, 3, 127, 255] {
            let payload = status_payload(V4, &ExitStatus::Exited(code)).unwrap();
            assert_eq!(parse_status(V4, &payload), ExitStatus::Exited(code));
        }
        let payload = status_payload(V4, &ExitStatus::Failed("no such container".into())).unwrap();
        assert_eq!(
            parse_status(V4, &payload),
            ExitStatus::Failed("no such container".into())
        );
    }

    #[test]
    fn kubelet_status_json_is_understood() {
        let kubelet = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}"#;
        assert_eq!(parse_status(V4, kubelet), ExitStatus::Exited(7));
        assert_eq!(
            parse_status(V4, br#"{"metadata":{},"status":"Success"}"#),
            ExitStatus::Exited(0)
        );
    }

    #[test]
    fn v1_status_is_plain_text() {
        assert_eq!(status_payload(V1, &ExitStatus::Exited(0)), None);
        let text = status_payload(V1, &ExitStatus::Exited(2)).unwrap();
        assert!(
            String::from_utf8(text.clone())
                .unwrap()
                .contains("exit code 2")
        );
        assert!(matches!(parse_status(V1, &text), ExitStatus::Failed(_)));
        assert_eq!(parse_status(V1, b""), ExitStatus::Exited(0));
    }

    #[test]
    fn resize_json_uses_kubernetes_field_names() {
        let size: TerminalSize = serde_json::from_str(r#"{"Width":120,"Height":40}"#).unwrap();
        assert_eq!(
            size,
            TerminalSize {
                width: 120,
                height: 40
            }
        );
        assert_eq!(
            serde_json::to_string(&size).unwrap(),
            r#"{"Width":120,"Height":40}"#
        );
    }
}
