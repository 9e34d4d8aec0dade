//! The Kubernetes conventions on top of SPDY streams, as the kubelet's streaming server
//! implements them: protocol names and negotiation (`X-Stream-Protocol-Version`), the stream
//! headers a client sets (`streamType`, `port`, `requestID`), the remote command stream set
//! (exec/attach, [`remotecommand`]) and port-forward stream pairs ([`portforward`]).

pub mod portforward;
pub mod remotecommand;

pub use portforward::{PortForwardListener, PortForwardRequest, accept_port_forward};
pub use remotecommand::{
    ExitStatus, ExpectedStreams, RemoteCommandProtocol, RemoteCommandStreams, ResizeStream,
    TerminalSize, accept_remote_command, parse_resize, write_exit_status,
};

/// The request/response header carrying the offered and the negotiated protocol.
pub const HEADER_PROTOCOL_VERSION: &str = "X-Stream-Protocol-Version";
/// The response header listing the server's protocols when negotiation fails.
pub const HEADER_ACCEPTED_PROTOCOL_VERSIONS: &str = "X-Accepted-Stream-Protocol-Versions";

/// Remote command protocol v4: exit status as JSON `metav1.Status`, terminal resize.
pub const STREAM_PROTOCOL_V4: &str = "v4.channel.k8s.io";
/// Remote command protocol v3: terminal resize, plain-text errors.
pub const STREAM_PROTOCOL_V3: &str = "v3.channel.k8s.io";
/// Remote command protocol v2: plain-text errors, no resize.
pub const STREAM_PROTOCOL_V2: &str = "v2.channel.k8s.io";
/// Remote command protocol v1 (also what a client that offers nothing gets).
pub const STREAM_PROTOCOL_V1: &str = "channel.k8s.io";
/// The remote command protocols the kubelet supports, in its order of preference.
pub const SUPPORTED_REMOTE_COMMAND_PROTOCOLS: &[&str] = &[
    STREAM_PROTOCOL_V4,
    STREAM_PROTOCOL_V3,
    STREAM_PROTOCOL_V2,
    STREAM_PROTOCOL_V1,
];
/// The port-forward protocol.
pub const PORT_FORWARD_PROTOCOL_V1: &str = "portforward.k8s.io";
/// The port-forward protocols the kubelet supports.
pub const SUPPORTED_PORT_FORWARD_PROTOCOLS: &[&str] = &[PORT_FORWARD_PROTOCOL_V1];

/// Stream header naming the stream's role (SPDY sends it lowercase: `streamtype`).
pub const HEADER_STREAM_TYPE: &str = "streamType";
/// Port-forward stream header: the pod port.
pub const HEADER_PORT: &str = "port";
/// Port-forward stream header: the ID pairing a data stream with its error stream.
pub const HEADER_REQUEST_ID: &str = "requestID";

/// `streamType` of the error (status) stream.
pub const STREAM_TYPE_ERROR: &str = "error";
/// `streamType` of stdin.
pub const STREAM_TYPE_STDIN: &str = "stdin";
/// `streamType` of stdout.
pub const STREAM_TYPE_STDOUT: &str = "stdout";
/// `streamType` of stderr.
pub const STREAM_TYPE_STDERR: &str = "stderr";
/// `streamType` of the terminal resize stream.
pub const STREAM_TYPE_RESIZE: &str = "resize";
/// `streamType` of a port-forward data stream.
pub const STREAM_TYPE_DATA: &str = "data";

/// Picks the protocol for a connection as the kubelet's handshake does: the first protocol
/// the client offers (in its order; header values may be comma-separated lists) that the
/// server supports. `None` when nothing matches; a client that offered nothing at all is the
/// caller's case (the kubelet falls back to [`STREAM_PROTOCOL_V1`] for remote commands).
pub fn negotiate<'s>(client_offers: &[&str], server_supports: &[&'s str]) -> Option<&'s str> {
    client_offers
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .find_map(|offer| server_supports.iter().copied().find(|s| *s == offer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_the_client_order() {
        let server = SUPPORTED_REMOTE_COMMAND_PROTOCOLS;
        assert_eq!(
            negotiate(&[STREAM_PROTOCOL_V2, STREAM_PROTOCOL_V4], server),
            Some(STREAM_PROTOCOL_V2)
        );
        assert_eq!(
            negotiate(&["v5.channel.k8s.io, v4.channel.k8s.io"], server),
            Some(STREAM_PROTOCOL_V4)
        );
        assert_eq!(negotiate(&["v5.channel.k8s.io"], server), None);
        assert_eq!(negotiate(&[], server), None);
        assert_eq!(
            negotiate(
                &[PORT_FORWARD_PROTOCOL_V1],
                SUPPORTED_PORT_FORWARD_PROTOCOLS
            ),
            Some(PORT_FORWARD_PROTOCOL_V1)
        );
    }
}
