//! Owning a unix socket for the CRI services: create the parent directory, replace a stale
//! socket (refuse one somebody still listens on), set the mode, serve until the shutdown
//! future resolves (in-flight calls finish), then remove the socket. Size-limit failures go out
//! with gRPC's code for them (see `limits`); every connection goes through [`AuthorityFix`], so
//! grpc-core clients' percent-encoded `:authority` does not fail their calls.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anycri_core::{Error, ErrorKind, Result};
use futures::TryStreamExt;
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::UnixListenerStream;

use crate::{AuthorityFix, CriServer, DEFAULT_MAX_MESSAGE_SIZE};

/// How [`serve_unix`] serves.
///
/// ```
/// use anycri_server::{ServeOptions, group_id};
/// let options = ServeOptions {
///     mode: 0o660,
///     max_message_size: 80 * 1024 * 1024, // CRI-O's limit, for very large lists
///     group: Some(group_id("0")?),        // a gid, or a group name from /etc/group
/// };
/// # let _ = options;
/// # Ok::<(), anycri_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// File mode of the socket (default 0o660).
    pub mode: u32,
    /// Largest message sent or received (default 16 MiB).
    pub max_message_size: usize,
    /// Group that owns the socket (a gid), so its members may connect, like containerd's
    /// `[grpc] gid` (default: the server's own group).
    pub group: Option<u32>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            mode: 0o660,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            group: None,
        }
    }
}

fn io_error(what: String, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        std::io::ErrorKind::AddrInUse => ErrorKind::AlreadyExists,
        _ => ErrorKind::Internal,
    };
    Error::with_source(kind, what, e)
}

async fn bind(path: &Path, mode: u32, group: Option<u32>) -> Result<UnixListener> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| io_error(format!("creating {}", parent.display()), e))?;
    }
    if tokio::fs::symlink_metadata(path).await.is_ok() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(Error::already_exists(format!(
                "{} is in use by another server",
                path.display()
            )));
        }
        tracing::info!(socket = %path.display(), "removing a stale socket");
        tokio::fs::remove_file(path)
            .await
            .map_err(|e| io_error(format!("removing stale socket {}", path.display()), e))?;
    }
    let listener =
        UnixListener::bind(path).map_err(|e| io_error(format!("binding {}", path.display()), e))?;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(|e| io_error(format!("setting the mode of {}", path.display()), e))?;
    if let Some(gid) = group {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(|e| io_error(format!("giving {} to group {gid}", path.display()), e))?;
    }
    Ok(listener)
}

/// The gid of `group`: a number, or a name from `/etc/group`.
pub fn group_id(group: &str) -> Result<u32> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    let text = std::fs::read_to_string("/etc/group")
        .map_err(|e| io_error("reading /etc/group".into(), e))?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            Some((f.next()?, f.nth(1)?))
        })
        .find(|(name, _)| *name == group)
        .and_then(|(_, gid)| gid.parse().ok())
        .ok_or_else(|| Error::invalid_argument(format!("no group {group:?} in /etc/group")))
}

/// Create the unix socket at `path` as [`serve_unix`] does (parent directory created, a stale
/// socket replaced, a live one refused, `options.mode` and `options.group` applied) and return
/// its listener, for a caller that serves it with [`serve_unix_listener`] once it has done
/// what must follow the bind (telling systemd it is ready, say). The caller removes the socket
/// when done.
pub async fn bind_unix(path: &Path, options: &ServeOptions) -> Result<UnixListener> {
    bind(path, options.mode, options.group).await
}

/// Serve `server` on the unix socket at `path` until `shutdown` resolves; in-flight calls
/// finish, then the socket is removed.
///
/// A daemon serves until Ctrl-C (the crate docs show a whole round trip):
///
/// ```no_run
/// # #[tokio::main] async fn main() -> anycri_core::Result<()> {
/// use std::sync::Arc;
/// use anycri_server::{CriServer, ServeOptions, serve_unix};
/// let backend = Arc::new(anycri_fake::FakeRuntime::new());
/// let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
/// serve_unix(CriServer::new(backend.clone(), backend), "/run/my-cri.sock", ServeOptions::default(), ctrl_c).await
/// # }
/// ```
pub async fn serve_unix(
    server: CriServer,
    path: impl Into<PathBuf>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let path = path.into();
    let listener = bind(&path, options.mode, options.group).await?;
    tracing::info!(socket = %path.display(), "serving CRI");
    let result = serve_unix_listener(server, listener, &options, shutdown).await;
    let _ = tokio::fs::remove_file(&path).await;
    result
}

/// Serve `server` on a listening unix socket somebody else made (systemd's socket activation,
/// [`bind_unix`]) until `shutdown` resolves; in-flight calls finish. `options.max_message_size`
/// applies (`mode` and `group` are the socket owner's business); the socket file, if any, is
/// left where it is.
pub async fn serve_unix_listener(
    server: CriServer,
    listener: UnixListener,
    options: &ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let incoming = UnixListenerStream::new(listener).map_ok(AuthorityFix::new);
    tonic::transport::Server::builder()
        .layer(tower::layer::layer_fn(crate::limits::SizeStatus))
        .add_service(server.runtime_service(options.max_message_size))
        .add_service(server.image_service(options.max_message_size))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| Error::with_source(ErrorKind::Internal, "serving CRI", e))
}
