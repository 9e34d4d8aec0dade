//! What Docker cannot hold in labels, per sandbox, in a small directory of JSON files: the
//! port mappings and network mode the pod asked for (cri-dockerd keeps the same in its
//! checkpoints) and, with CNI, the pod's IP. Files are written atomically (temporary file,
//! fsync, rename), so a crash leaves the old or the new checkpoint, never half of one.
//!
//! The checkpoint also records how far RunPodSandbox got: [`SandboxCheckpoint::ready`] is set
//! only once every setup step the shim performs has completed (with CNI: after ADD and its
//! result are recorded). A sandbox the shim made this way (its pause container carries the
//! state-directory label) is Ready only when its pause container runs *and* its checkpoint
//! says so (a sandbox made by cri-dockerd or an older anycri is Ready when it runs), so a shim killed halfway through RunPodSandbox leaves a NotReady
//! sandbox (which the kubelet stops and removes, releasing what was set up), never a Ready one
//! without a network. Checkpoints whose pause container is gone (a crash between removing the
//! container and the file) and temporary files of interrupted writes are collected when the
//! shim starts managing the node (`owner.rs`).

use std::path::{Path, PathBuf};

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
    /// Format version: [`CHECKPOINT_VERSION`] ("v2"); "v1" checkpoints (written before the
    /// `ready` field existed) count as ready.
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
    /// Every setup step of RunPodSandbox the shim performs has completed (see the module
    /// docs); a running sandbox without it is NotReady.
    pub ready: bool,
}

/// The format version the shim writes.
pub const CHECKPOINT_VERSION: &str = "v2";

impl SandboxCheckpoint {
    /// Whether RunPodSandbox completed every setup step for this sandbox: the `ready` mark,
    /// or a "v1" checkpoint (from before the mark existed, written only for complete sandboxes
    /// on Docker's bridge or for CNI with the IP recorded).
    pub fn setup_complete(&self) -> bool {
        self.ready || (self.version == "v1" && (!self.network_ready || !self.pod_ip.is_empty()))
    }
}

/// The checkpoint directory.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
}

fn io_error(what: String, e: std::io::Error) -> Error {
    Error::with_source(ErrorKind::Internal, what, e)
}

/// The writer's pid of a temporary file name `.<id>.json.<pid>.tmp` (0 for the older
/// `.<id>.json.tmp`, whose writer is unknown), or `None` for other names.
fn temporary_writer(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    if rest.ends_with(".json") {
        return Some(0);
    }
    let (_, pid) = rest.rsplit_once(".json.")?;
    pid.parse().ok()
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
        // The writer's pid in the name tells a crashed write's leftover from one in progress.
        let tmp = self
            .dir
            .join(format!(".{id}.json.{}.tmp", std::process::id()));
        let write = async {
            use tokio::io::AsyncWriteExt;
            if tokio::fs::metadata(&self.dir).await.is_err() {
                tokio::fs::create_dir_all(&self.dir).await?;
                use std::os::unix::fs::PermissionsExt;
                let private = std::fs::Permissions::from_mode(0o700);
                tokio::fs::set_permissions(&self.dir, private).await?;
            }
            // Readable by root alone, like the directory (it holds the pod's network state).
            let mut f = tokio::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .await?;
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

    /// The sandbox IDs that have a checkpoint, sorted. Temporary files of interrupted writes
    /// are not listed (see [`Checkpoints::remove_stale_temporaries`]).
    pub async fn ids(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut dir = match tokio::fs::read_dir(&self.dir).await {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_error(format!("listing {}", self.dir.display()), e)),
        };
        while let Some(entry) = dir
            .next_entry()
            .await
            .map_err(|e| io_error(format!("listing {}", self.dir.display()), e))?
        {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_suffix(".json")
                && valid_id(id).is_ok()
            {
                out.push(id.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Delete the temporary files (`.<id>.json.<pid>.tmp`) of writes whose process is gone:
    /// what a crash in the middle of [`Checkpoints::write`] leaves. Returns how many it deleted.
    pub async fn remove_stale_temporaries(&self) -> usize {
        let Ok(mut dir) = tokio::fs::read_dir(&self.dir).await else {
            return 0;
        };
        let mut removed = 0;
        while let Ok(Some(entry)) = dir.next_entry().await {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(pid) = temporary_writer(name) else {
                continue;
            };
            let alive = pid != 0 && Path::new(&format!("/proc/{pid}")).exists();
            if !alive && tokio::fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        removed
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

    #[test]
    fn temporary_names() {
        assert_eq!(temporary_writer(".ab12.json.77.tmp"), Some(77));
        assert_eq!(temporary_writer(".ab12.json.tmp"), Some(0));
        assert_eq!(temporary_writer("ab12.json"), None);
        assert_eq!(temporary_writer(".ab12.json.x.tmp"), None);
    }

    #[test]
    fn setup_complete_needs_the_mark_or_a_complete_v1() {
        let v2 = SandboxCheckpoint {
            version: CHECKPOINT_VERSION.into(),
            ..Default::default()
        };
        assert!(!v2.setup_complete());
        assert!(
            SandboxCheckpoint {
                ready: true,
                ..v2.clone()
            }
            .setup_complete()
        );
        let v1 = SandboxCheckpoint {
            version: "v1".into(),
            ..Default::default()
        };
        assert!(v1.setup_complete());
        // A v1 CNI checkpoint with ADD due but no IP: a crash during ADD.
        let half = SandboxCheckpoint {
            network_ready: true,
            ..v1.clone()
        };
        assert!(!half.setup_complete());
        assert!(
            SandboxCheckpoint {
                pod_ip: "10.1.0.2".into(),
                ..half
            }
            .setup_complete()
        );
        // An old file without the field parses, with the mark unset.
        let old: SandboxCheckpoint =
            serde_json::from_str(r#"{"version":"v1","name":"a","namespace":"b"}"#).unwrap();
        assert!(!old.ready && old.setup_complete());
    }

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
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(dir.path().join("sandboxes/abc123.json")), 0o600);
            assert_eq!(mode(dir.path().join("sandboxes")), 0o700);
        }
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sandboxes"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("abc123.json")]);
        assert_eq!(cps.ids().await.unwrap(), vec!["abc123".to_owned()]);
        // A write a crash interrupted leaves a temporary file; it is not a checkpoint, and
        // it is collected once its writer is gone (a live writer's is left alone).
        let live = format!("sandboxes/.def456.json.{}.tmp", std::process::id());
        let dead = "sandboxes/.def456.json.4000000000.tmp";
        for name in [live.as_str(), dead, "sandboxes/.old.json.tmp"] {
            std::fs::write(dir.path().join(name), b"{\"na").unwrap();
        }
        assert_eq!(cps.ids().await.unwrap(), vec!["abc123".to_owned()]);
        assert_eq!(cps.remove_stale_temporaries().await, 2);
        assert!(dir.path().join(&live).exists());
        assert!(!dir.path().join(dead).exists());
        std::fs::remove_file(dir.path().join(&live)).unwrap();
        cps.remove("abc123").await.unwrap();
        cps.remove("abc123").await.unwrap();
        assert_eq!(cps.read("abc123").await.unwrap(), None);
        assert_eq!(
            cps.read("../etc").await.unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        std::fs::write(dir.path().join("sandboxes/bad.json"), b"{not json").unwrap();
        assert_eq!(cps.ids().await.unwrap(), vec!["bad".to_owned()]);
        assert_eq!(
            cps.read("bad").await.unwrap_err().kind(),
            ErrorKind::DataLoss
        );
    }
}
