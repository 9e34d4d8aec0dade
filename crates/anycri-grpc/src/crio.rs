//! CRI-O's info endpoint. Besides CRI gRPC, CRI-O answers plain HTTP/1.1 on its socket:
//! `GET /info` (storage and cgroup settings), `GET /config` (its configuration as TOML) and
//! `GET /containers/<id>` (a container's PID, root, sandbox and IPs). These calls are only
//! made when the runtime said it is CRI-O; elsewhere they return Unimplemented.

use std::collections::HashMap;

use anycri_core::{Error, ErrorKind, Result, RuntimeFlavour};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Deserializer, Serialize};

use crate::GrpcRuntime;

/// `GET /info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrioInfo {
    /// containers/storage driver (`overlay`).
    pub storage_driver: String,
    /// Storage root (`/var/lib/containers/storage`).
    pub storage_root: String,
    /// Image store, when separate.
    pub storage_image: String,
    /// `systemd` or `cgroupfs`.
    pub cgroup_driver: String,
    /// Default user-namespace ID mappings.
    pub default_id_mappings: Option<IdMappings>,
}

/// UID and GID mappings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdMappings {
    /// UID ranges.
    #[serde(deserialize_with = "null_as_default")]
    pub uids: Vec<IdMap>,
    /// GID ranges.
    #[serde(deserialize_with = "null_as_default")]
    pub gids: Vec<IdMap>,
}

/// One ID range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdMap {
    /// First ID inside the namespace.
    pub container_id: u32,
    /// First ID on the host.
    pub host_id: u32,
    /// Range length.
    pub size: u32,
}

/// `GET /containers/<id>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrioContainerInfo {
    /// Container name.
    pub name: String,
    /// Init process PID.
    pub pid: i64,
    /// Image name.
    pub image: String,
    /// Image reference.
    pub image_ref: String,
    /// Creation time (Unix nanoseconds).
    pub created_time: i64,
    /// Labels.
    #[serde(deserialize_with = "null_as_default")]
    pub labels: HashMap<String, String>,
    /// Annotations.
    #[serde(deserialize_with = "null_as_default")]
    pub annotations: HashMap<String, String>,
    /// CRI-O's own annotations.
    #[serde(deserialize_with = "null_as_default")]
    pub crio_annotations: HashMap<String, String>,
    /// Log path.
    pub log_path: String,
    /// Root filesystem path.
    pub root: String,
    /// Sandbox ID.
    pub sandbox: String,
    /// IP addresses.
    #[serde(deserialize_with = "null_as_default")]
    pub ip_addresses: Vec<String>,
}

/// CRI-O is written in Go, which encodes a nil map or slice as `null` (a host-network pod's
/// container has `"ip_addresses": null`); read that as empty.
fn null_as_default<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl GrpcRuntime {
    fn require_crio(&self, what: &str) -> Result<()> {
        match self.flavour() {
            Some(RuntimeFlavour::CriO) => Ok(()),
            Some(other) => Err(Error::unimplemented(
                format!("CRI-O info endpoint {what}"),
                format!("{other:?} runtime"),
            )),
            None => Err(Error::failed_precondition(
                "the runtime's flavour is unknown until the Version handshake",
            )),
        }
    }

    async fn crio_get(&self, path: &str) -> Result<Bytes> {
        self.require_crio(path)?;
        let stream = tokio::net::UnixStream::connect(self.socket_path())
            .await
            .map_err(|e| {
                Error::with_source(ErrorKind::Unavailable, "connecting to the CRI-O socket", e)
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| {
                Error::with_source(ErrorKind::Unavailable, "HTTP handshake with CRI-O", e)
            })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, "crio")
            .body(Empty::<Bytes>::new())
            .map_err(|e| {
                Error::with_source(
                    ErrorKind::InvalidArgument,
                    format!("bad info path {path:?}"),
                    e,
                )
            })?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Error::with_source(ErrorKind::Unavailable, format!("GET {path}"), e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| {
                Error::with_source(ErrorKind::Unavailable, format!("reading GET {path}"), e)
            })?
            .to_bytes();
        match status.as_u16() {
            200 => Ok(body),
            404 => Err(Error::not_found(format!(
                "CRI-O: {path}: {}",
                String::from_utf8_lossy(&body).trim()
            ))),
            code => Err(Error::internal(format!(
                "CRI-O answered {code} for {path}: {}",
                String::from_utf8_lossy(&body).trim()
            ))),
        }
    }

    /// CRI-O's `GET /info`.
    pub async fn crio_info(&self) -> Result<CrioInfo> {
        decode_info(&self.crio_get("/info").await?)
    }

    /// CRI-O's `GET /config`: its configuration, as TOML text.
    pub async fn crio_config(&self) -> Result<String> {
        decode_config(&self.crio_get("/config").await?)
    }

    /// CRI-O's `GET /containers/<id>`.
    pub async fn crio_container_info(&self, container_id: &str) -> Result<CrioContainerInfo> {
        if container_id.is_empty() || !container_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid_argument(format!(
                "container_id {container_id:?} must be a non-empty alphanumeric ID"
            )));
        }
        decode_container_info(
            &self
                .crio_get(&format!("/containers/{container_id}"))
                .await?,
        )
    }
}

/// The body of CRI-O's `GET /info` (public for the fuzz targets in `fuzz/`, not part of the
/// API).
#[doc(hidden)]
pub fn decode_info(body: &[u8]) -> Result<CrioInfo> {
    serde_json::from_slice(body)
        .map_err(|e| Error::with_source(ErrorKind::Internal, "decoding CRI-O /info", e))
}

/// The body of CRI-O's `GET /config` (public for the fuzz targets in `fuzz/`, not part of
/// the API).
#[doc(hidden)]
pub fn decode_config(body: &[u8]) -> Result<String> {
    String::from_utf8(body.to_vec())
        .map_err(|e| Error::with_source(ErrorKind::Internal, "CRI-O /config is not UTF-8", e))
}

/// The body of CRI-O's `GET /containers/<id>` (public for the fuzz targets in `fuzz/`, not
/// part of the API).
#[doc(hidden)]
pub fn decode_container_info(body: &[u8]) -> Result<CrioContainerInfo> {
    serde_json::from_slice(body)
        .map_err(|e| Error::with_source(ErrorKind::Internal, "decoding CRI-O /containers/<id>", e))
}
