//! SPDY/3.1 for anycri's CRI streaming server: the protocol the kubelet's streaming path,
//! kubectl (before WebSockets) and critest use for exec, attach and port-forward.
//!
//! Three layers, each usable on its own:
//! - [`frame`] and [`headers`]: the SPDY/3.1 wire format — control and data frames, name/value
//!   header blocks compressed with zlib and the SPDY/3 dictionary — with size limits; malformed
//!   input is an error, never a panic.
//! - [`session`]: [`SpdySession`] over any `AsyncRead + AsyncWrite` connection (after the HTTP
//!   `Upgrade: SPDY/3.1` exchange, which is the caller's), handing out [`SpdyStream`]s that are
//!   themselves `AsyncRead + AsyncWrite`. Interoperates with moby/spdystream.
//! - [`k8s`]: the Kubernetes conventions on top — remote command (exec/attach) stream sets and
//!   exit statuses, port-forward stream pairs — as the kubelet implements them.
//!
//! ```no_run
//! # async fn serve(io: tokio::net::TcpStream) -> Result<(), anycri_spdy::SpdyError> {
//! use std::time::Duration;
//! use anycri_spdy::{SpdySession, k8s};
//! use tokio::io::AsyncWriteExt;
//!
//! let mut session = SpdySession::server(io);
//! let expected = k8s::ExpectedStreams { stdin: false, stdout: true, stderr: true, tty: false };
//! let protocol = k8s::RemoteCommandProtocol::V4;
//! let mut streams =
//!     k8s::accept_remote_command(&mut session, protocol, expected, Duration::from_secs(30)).await?;
//! if let Some(stdout) = streams.stdout.as_mut() {
//!     stdout.write_all(b"hello\n").await?;
//! }
//! streams.finish(&k8s::ExitStatus::Exited(0)).await?;
//! session.close().await;
//! # Ok(()) }
//! ```

mod dictionary;
pub mod error;
pub mod frame;
pub mod headers;
pub mod k8s;
pub mod session;

pub use dictionary::spdy3_dictionary;
pub use error::{Result, SpdyError};
pub use frame::{Frame, FrameCodec, GoAwayStatus, RstStatus};
pub use headers::Headers;
pub use session::{Role, SessionConfig, SpdySession, SpdyStream};

/// The value of the `Upgrade` header (and the protocol name) for this crate's connections.
pub const UPGRADE_PROTOCOL: &str = "SPDY/3.1";
