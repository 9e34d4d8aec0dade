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

/// Serve `server` on the unix socket at `path` until `shutdown` resolves; in-flight calls
/// finish, then the socket is removed.
pub async fn serve_unix(
    server: CriServer,
    path: impl Into<PathBuf>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let path = path.into();
    let listener = bind(&path, options.mode, options.group).await?;
    tracing::info!(socket = %path.display(), "serving CRI");
    let incoming = UnixListenerStream::new(listener).map_ok(AuthorityFix::new);
    let result = tonic::transport::Server::builder()
        .layer(tower::layer::layer_fn(crate::limits::SizeStatus))
        .add_service(server.runtime_service(options.max_message_size))
        .add_service(server.image_service(options.max_message_size))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    let _ = tokio::fs::remove_file(&path).await;
    result.map_err(|e| Error::with_source(ErrorKind::Internal, "serving CRI", e))
}
