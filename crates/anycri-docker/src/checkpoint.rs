//! What Docker cannot hold in labels, per sandbox, in a small directory of JSON files: the
//! port mappings and network mode the pod asked for (cri-dockerd keeps the same in its
//! checkpoints) and, with CNI, the pod's IP. Files are written atomically (temporary file,
//! fsync, rename), so a crash leaves the old or the new checkpoint, never half of one.

use std::path::PathBuf;

use anycri_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

/// One port mapping of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMappingEntry {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// Port in the pod.
    pub container_port: i32,
    /// Port on the host (0: none).
    pub host_port: i32,
    /// Host IP to bind (empty: all).
    pub host_ip: String,
}

/// The checkpoint of one sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxCheckpoint {
    /// Format version ("v1").
    pub version: String,
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Port mappings.
    pub port_mappings: Vec<PortMappingEntry>,
    /// The pod uses the host's network.
    pub host_network: bool,
    /// The pod's IP when the shim (CNI) assigned it rather than Docker.
    pub pod_ip: String,
    /// CNI: the pod's network is (or may be partly) set up, so a CNI DEL is still due. Set
    /// before ADD runs and cleared once DEL succeeded, so a crash in between is cleaned up.
    pub network_ready: bool,
    /// CNI: the network config list (JSON) ADD ran with; DEL runs with the same one even if
    /// the config directory changed since.
    pub cni_config: String,
    /// CNI: the result (JSON) of ADD, passed to DEL as `prevResult`.
    pub cni_result: String,
}

/// The checkpoint directory.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
}

fn io_error(what: String, e: std::io::Error) -> Error {
    Error::with_source(ErrorKind::Internal, what, e)
}

fn valid_id(id: &str) -> Result<()> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Error::invalid_argument(format!(
            "sandbox ID {id:?} is not a Docker ID"
        )));
    }
    Ok(())
}

impl Checkpoints {
    /// Open (creating it if needed) the directory `dir`.
    pub async fn open(dir: PathBuf) -> Result<Self> {
        // Nothing is created until the first checkpoint is written: opening writes nothing
        // on the host.
        Ok(Checkpoints { dir })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Write the checkpoint of sandbox `id` atomically.
    pub async fn write(&self, id: &str, checkpoint: &SandboxCheckpoint) -> Result<()> {
        valid_id(id)?;
        let data = serde_json::to_vec_pretty(checkpoint).map_err(|e| {
            Error::with_source(ErrorKind::Internal, "encoding a sandbox checkpoint", e)
        })?;
        let path = self.path(id);
        let tmp = self.dir.join(format!(".{id}.json.tmp"));
        let write = async {
            use tokio::io::AsyncWriteExt;
            if tokio::fs::metadata(&self.dir).await.is_err() {
                tokio::fs::create_dir_all(&self.dir).await?;
                use std::os::unix::fs::PermissionsExt;
                let private = std::fs::Permissions::from_mode(0o700);
                tokio::fs::set_permissions(&self.dir, private).await?;
            }
            let mut f = tokio::fs::File::create(&tmp).await?;
            f.write_all(&data).await?;
            f.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await
        };
        write
            .await
            .map_err(|e| io_error(format!("writing checkpoint {}", path.display()), e))
    }

    /// The checkpoint of sandbox `id`, if there is one. A corrupt file is an error.
    pub async fn read(&self, id: &str) -> Result<Option<SandboxCheckpoint>> {
        valid_id(id)?;
        let path = self.path(id);
        match tokio::fs::read(&path).await {
            Ok(data) => serde_json::from_slice(&data).map(Some).map_err(|e| {
                Error::with_source(
                    ErrorKind::DataLoss,
                    format!("checkpoint {} is corrupt", path.display()),
                    e,
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(
                format!("reading checkpoint {}", path.display()),
                e,
            )),
        }
    }

    /// Remove the checkpoint of sandbox `id` (absent is fine).
    pub async fn remove(&self, id: &str) -> Result<()> {
        valid_id(id)?;
        match tokio::fs::remove_file(self.path(id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io_error(format!("removing checkpoint of {id}"), e))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn write_read_remove() {
        let dir = tempfile::tempdir().unwrap();
        let cps = Checkpoints::open(dir.path().join("sandboxes"))
            .await
            .unwrap();
        assert_eq!(cps.read("abc123").await.unwrap(), None);
        let cp = SandboxCheckpoint {
            version: "v1".into(),
            name: "web".into(),
            namespace: "default".into(),
            port_mappings: vec![PortMappingEntry {
                protocol: "tcp".into(),
                container_port: 80,
                host_port: 8080,
                host_ip: String::new(),
            }],
            host_network: false,
            pod_ip: String::new(),
            ..Default::default()
        };
        cps.write("abc123", &cp).await.unwrap();
        assert_eq!(cps.read("abc123").await.unwrap(), Some(cp));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sandboxes"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("abc123.json")]);
        cps.remove("abc123").await.unwrap();
        cps.remove("abc123").await.unwrap();
        assert_eq!(cps.read("abc123").await.unwrap(), None);
        assert_eq!(
            cps.read("../etc").await.unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        std::fs::write(dir.path().join("sandboxes/bad.json"), b"{not json").unwrap();
        assert_eq!(
            cps.read("bad").await.unwrap_err().kind(),
            ErrorKind::DataLoss
        );
    }
}
