//! Errors of the SPDY layer: what went wrong on a connection or a stream, and which SPDY status
//! code (RST_STREAM or GOAWAY) the peer is told.

use crate::frame::{GoAwayStatus, RstStatus};

/// An error of a SPDY connection or of one of its streams.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpdyError {
    /// The peer broke the protocol in a way that ends the whole connection (a GOAWAY with
    /// PROTOCOL_ERROR is sent).
    #[error("spdy protocol error: {0}")]
    Protocol(String),
    /// A frame or header block is larger than this side accepts.
    #[error("spdy frame too large: {what} is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// What was too large ("control frame", "data frame", "header block").
        what: &'static str,
        /// Its size in bytes (at least this many).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The zlib header-compression context failed; the connection cannot continue.
    #[error("spdy header compression: {0}")]
    Compression(String),
    /// The peer reset the stream (RST_STREAM) or refused it.
    #[error("spdy stream {stream_id} reset by peer: {status:?}")]
    StreamReset {
        /// The stream.
        stream_id: u32,
        /// The status the peer sent.
        status: RstStatus,
    },
    /// The peer announced GOAWAY; no new stream can be opened.
    #[error("spdy session going away (status {0:?})")]
    GoingAway(GoAwayStatus),
    /// The connection is closed (by either side, or because of an earlier error).
    #[error("spdy connection closed")]
    Closed,
    /// Waiting for the peer took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The peer sent something this side's conventions (for example the Kubernetes stream
    /// headers) do not accept.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An I/O error on the underlying connection or a stream.
    #[error("spdy i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl SpdyError {
    /// The GOAWAY status that reports this error to the peer when it ends the connection.
    pub fn goaway_status(&self) -> GoAwayStatus {
        match self {
            SpdyError::Protocol(_) | SpdyError::TooLarge { .. } | SpdyError::Compression(_) => {
                GoAwayStatus::ProtocolError
            }
            _ => GoAwayStatus::InternalError,
        }
    }
}

/// A `Result` with [`SpdyError`].
pub type Result<T, E = SpdyError> = std::result::Result<T, E>;
