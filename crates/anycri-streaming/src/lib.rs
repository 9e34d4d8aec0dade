//! The CRI streaming server and client. A runtime's `Exec`, `Attach` and `PortForward` RPCs
//! return URLs; the streaming server behind those URLs runs the session, and a client
//! connects to them. This crate has both halves:
//!
//! - [`StreamingServer`] serves any backend that implements [`StreamingProvider`]: it hands
//!   out single-use, expiring tokens (`get_exec`, `get_attach`, `get_port_forward` build the
//!   URL the RPC returns) and speaks the Kubernetes WebSocket channel protocols
//!   (`v5.channel.k8s.io`, `v4.channel.k8s.io`, `channel.k8s.io` and their base64 forms) and
//!   the WebSocket port-forward protocol, and SPDY/3.1 (`Upgrade: SPDY/3.1`, the protocol of
//!   kubectl, critest and the kubelet's path) with the remote command protocols v4 to v1 and
//!   `portforward.k8s.io`. Both transports run the same provider path ([`session`]).
//! - [`client`] asks any [`RuntimeService`](anycri_core::RuntimeService) for a URL and
//!   connects: [`client::exec`], [`client::attach`], [`client::port_forward`]. It works with
//!   containerd's own streaming server and with this one, over WebSocket (v5, v4) or SPDY/3.1
//!   ([`client::Transport`]; sessions that send stdin take SPDY, which can close it
//!   everywhere).
//!
//! ```no_run
//! # async fn demo(runtime: &dyn anycri_core::RuntimeService) -> anycri_core::Result<()> {
//! use anycri_streaming::client::{self, ExecOptions};
//! use tokio::io::AsyncReadExt;
//!
//! let mut session = client::exec(runtime, "CONTAINER", &["uname", "-a"], ExecOptions::default()).await?;
//! let mut out = String::new();
//! let mut stdout = session.stdout.take().unwrap();
//! drop(session.stderr.take());
//! stdout.read_to_string(&mut out).await.ok();
//! let code = session.wait().await?;
//! # Ok(()) }
//! ```

pub mod client;
mod mux;
pub mod protocol;
pub mod provider;
mod server;
pub mod session;
mod spdy;
pub mod token;
mod websocket;

pub use mux::ChannelWriter;
pub use protocol::TerminalSize;
pub use provider::{BoxRead, BoxWrite, PortStream, PortStreamIo, StreamIo, StreamingProvider};
pub use server::{MAX_PORTS, StreamingConfig, StreamingServer};
