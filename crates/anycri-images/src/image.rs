//! Image assembly: content digests, blobs, the image config (`User`, `Cmd`, `Env`,
//! `WorkingDir`, exposed ports, labels) and the manifest, in either the OCI or the Docker
//! v2 schema 2 media types. containerd 1.6 and Docker 20.10 pull both; OCI is the default.
//! JSON is written with a fixed field order, so an image's digests depend only on its content.

use std::collections::BTreeMap;
use std::fmt;

use anycri_core::{Error, Result};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::layer::Layer;

/// The media types of both formats.
pub mod media_types {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI gzipped layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// Docker v2 schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzipped layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}

/// A content digest, `sha256:<64 hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The sha256 digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Digest(format!("sha256:{:x}", Sha256::digest(data)))
    }

    /// Parse `sha256:<hex>`; anything else is an InvalidArgument error.
    pub fn parse(s: &str) -> Result<Self> {
        let valid = s.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if valid {
            Ok(Digest(s.to_owned()))
        } else {
            Err(Error::invalid_argument(format!(
                "not a sha256 digest: {s:?}"
            )))
        }
    }

    /// The digest as `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Digest {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

/// Content with its media type, digest and size: a layer, a config or a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The media type the manifest (or the registry) states for it.
    pub media_type: String,
    /// sha256 of `data`.
    pub digest: Digest,
    /// The bytes.
    pub data: Bytes,
}

impl Blob {
    /// A blob of `data` with `media_type`; computes the digest.
    pub fn new(media_type: &str, data: impl Into<Bytes>) -> Self {
        let data = data.into();
        Blob {
            media_type: media_type.to_owned(),
            digest: Digest::of(&data),
            data,
        }
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size(),
        }
    }
}

/// Which media types an image is written with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ManifestFormat {
    /// OCI image manifest and config (`application/vnd.oci.image.*`).
    #[default]
    Oci,
    /// Docker Image Manifest V2, Schema 2 (`application/vnd.docker.*`).
    Docker,
}

impl ManifestFormat {
    /// The manifest media type.
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => media_types::OCI_MANIFEST,
            ManifestFormat::Docker => media_types::DOCKER_MANIFEST,
        }
    }

    /// The config media type.
    pub fn config_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => media_types::OCI_CONFIG,
            ManifestFormat::Docker => media_types::DOCKER_CONFIG,
        }
    }

    /// The gzipped layer media type.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => media_types::OCI_LAYER_GZIP,
            ManifestFormat::Docker => media_types::DOCKER_LAYER_GZIP,
        }
    }
}

/// What a container of the image runs with unless the CRI config says otherwise: the
/// `config` object of an image config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `User`: `uid`, `uid:gid`, `name` or `name:group`; None runs as root.
    pub user: Option<String>,
    /// `Env`, `KEY=value` each.
    pub env: Vec<String>,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
    /// `ExposedPorts`, as `port/proto` (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
}

/// The creation time written into every config (matches the layers' mtime).
pub const CREATED: &str = "2024-01-01T00:00:00Z";

#[derive(Serialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: Digest,
    size: u64,
}

#[derive(Serialize)]
struct ManifestJson {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize)]
struct ConfigJson<'a> {
    created: &'static str,
    architecture: &'a str,
    os: &'static str,
    config: ContainerConfigJson<'a>,
    rootfs: RootFsJson,
    history: Vec<HistoryJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfigJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    exposed_ports: BTreeMap<&'a str, BTreeMap<(), ()>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    env: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    entrypoint: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    cmd: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RootFsJson {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<Digest>,
}

#[derive(Serialize)]
struct HistoryJson<'a> {
    created: &'static str,
    created_by: &'a str,
}

/// An assembled image: its layers, config and manifest, ready to push.
#[derive(Debug, Clone)]
pub struct Image {
    /// The compressed layers, in order, with the format's layer media type.
    pub layers: Vec<Blob>,
    /// The config blob; its digest is the image ID containerd and Docker report.
    pub config: Blob,
    /// The manifest blob; its digest is what `repo@sha256:...` references.
    pub manifest: Blob,
    /// The `User` of the config.
    pub user: Option<String>,
}

impl Image {
    /// Assemble an image for `architecture` (an OCI name such as `amd64`) from `layers`
    /// (bottom first) and `config`, in `format`.
    pub fn assemble(
        layers: &[Layer],
        config: &ImageConfig,
        architecture: &str,
        format: ManifestFormat,
    ) -> Result<Image> {
        if layers.is_empty() {
            return Err(Error::invalid_argument("an image needs at least one layer"));
        }
        for port in &config.exposed_ports {
            let ok = port.split_once('/').is_some_and(|(n, proto)| {
                n.parse::<u16>().is_ok() && matches!(proto, "tcp" | "udp" | "sctp")
            });
            if !ok {
                return Err(Error::invalid_argument(format!(
                    "exposed port {port:?} is not port/tcp|udp|sctp"
                )));
            }
        }
        let config_json = ConfigJson {
            created: CREATED,
            architecture,
            os: "linux",
            config: ContainerConfigJson {
                user: config.user.as_deref(),
                exposed_ports: config
                    .exposed_ports
                    .iter()
                    .map(|p| (p.as_str(), BTreeMap::new()))
                    .collect(),
                env: &config.env,
                entrypoint: &config.entrypoint,
                cmd: &config.cmd,
                working_dir: config.working_dir.as_deref(),
                labels: &config.labels,
            },
            rootfs: RootFsJson {
                kind: "layers",
                diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
            },
            history: layers
                .iter()
                .map(|_| HistoryJson {
                    created: CREATED,
                    created_by: "anycri-images",
                })
                .collect(),
        };
        let config_blob = Blob::new(format.config_media_type(), to_json(&config_json)?);
        let layer_blobs: Vec<Blob> = layers
            .iter()
            .map(|l| Blob {
                media_type: format.layer_media_type().to_owned(),
                ..l.blob.clone()
            })
            .collect();
        let manifest = ManifestJson {
            schema_version: 2,
            media_type: format.manifest_media_type(),
            config: config_blob.descriptor(),
            layers: layer_blobs.iter().map(Blob::descriptor).collect(),
        };
        let manifest_blob = Blob::new(format.manifest_media_type(), to_json(&manifest)?);
        Ok(Image {
            layers: layer_blobs,
            config: config_blob,
            manifest: manifest_blob,
            user: config.user.clone(),
        })
    }

    /// The image ID runtimes report: the config digest.
    pub fn id(&self) -> &Digest {
        &self.config.digest
    }

    /// The manifest digest, for pull by digest.
    pub fn digest(&self) -> &Digest {
        &self.manifest.digest
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| Error::with_source(anycri_core::ErrorKind::Internal, "encoding image JSON", e))
}

/// The OCI architecture name of the machine this runs on (`amd64`, `arm64`, ...).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::LayerBuilder;

    fn layer(content: &'static str) -> Layer {
        let mut b = LayerBuilder::new();
        b.file("f", 0o644, content).unwrap();
        b.finish().unwrap()
    }

    fn config() -> ImageConfig {
        ImageConfig {
            user: Some("1003:1004".into()),
            env: vec!["PATH=/bin".into()],
            cmd: vec!["httpd".into(), "-f".into()],
            working_dir: Some("/www".into()),
            exposed_ports: vec!["80/tcp".into()],
            labels: [("k".to_owned(), "v".to_owned())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn manifest_and_config_json() {
        let layers = [layer("a"), layer("b")];
        let image = Image::assemble(&layers, &config(), "amd64", ManifestFormat::Oci).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&image.manifest.data).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], media_types::OCI_MANIFEST);
        assert_eq!(manifest["config"]["mediaType"], media_types::OCI_CONFIG);
        assert_eq!(manifest["config"]["digest"], image.config.digest.as_str());
        assert_eq!(manifest["config"]["size"], image.config.size());
        let ls = manifest["layers"].as_array().unwrap();
        assert_eq!(ls.len(), 2);
        assert_eq!(ls[1]["digest"], layers[1].blob.digest.as_str());
        assert_eq!(ls[1]["mediaType"], media_types::OCI_LAYER_GZIP);
        assert_eq!(ls[1]["size"], layers[1].blob.size());

        let cfg: serde_json::Value = serde_json::from_slice(&image.config.data).unwrap();
        assert_eq!(cfg["architecture"], "amd64");
        assert_eq!(cfg["os"], "linux");
        assert_eq!(cfg["config"]["User"], "1003:1004");
        assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["httpd", "-f"]));
        assert_eq!(cfg["config"]["Env"], serde_json::json!(["PATH=/bin"]));
        assert_eq!(cfg["config"]["WorkingDir"], "/www");
        assert_eq!(
            cfg["config"]["ExposedPorts"],
            serde_json::json!({"80/tcp": {}})
        );
        assert_eq!(cfg["config"]["Labels"], serde_json::json!({"k": "v"}));
        assert!(cfg["config"].get("Entrypoint").is_none());
        assert_eq!(
            cfg["rootfs"]["diff_ids"],
            serde_json::json!([layers[0].diff_id, layers[1].diff_id])
        );
        assert_eq!(cfg["history"].as_array().unwrap().len(), 2);
        assert_eq!(image.id(), &Digest::of(&image.config.data));
        assert_eq!(image.digest(), &Digest::of(&image.manifest.data));
    }

    #[test]
    fn docker_format_uses_docker_media_types() {
        let layers = [layer("a")];
        let oci = Image::assemble(&layers, &config(), "amd64", ManifestFormat::Oci).unwrap();
        let docker = Image::assemble(&layers, &config(), "amd64", ManifestFormat::Docker).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&docker.manifest.data).unwrap();
        assert_eq!(manifest["mediaType"], media_types::DOCKER_MANIFEST);
        assert_eq!(manifest["config"]["mediaType"], media_types::DOCKER_CONFIG);
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            media_types::DOCKER_LAYER_GZIP
        );
        // same config content, same image ID; a different manifest
        assert_eq!(oci.id(), docker.id());
        assert_ne!(oci.digest(), docker.digest());
        assert_eq!(oci.layers[0].digest, docker.layers[0].digest);
    }

    #[test]
    fn digests_are_stable_and_config_sensitive() {
        let layers = [layer("a")];
        let one = Image::assemble(&layers, &config(), "amd64", ManifestFormat::Oci).unwrap();
        let two = Image::assemble(&layers, &config(), "amd64", ManifestFormat::Oci).unwrap();
        assert_eq!(one.digest(), two.digest());
        assert_eq!(one.id(), two.id());
        let mut other = config();
        other.user = Some("1002".into());
        let three = Image::assemble(&layers, &other, "amd64", ManifestFormat::Oci).unwrap();
        assert_ne!(one.id(), three.id());
        assert_ne!(one.digest(), three.digest());
    }

    #[test]
    fn invalid_input_is_rejected() {
        let err = Image::assemble(&[], &config(), "amd64", ManifestFormat::Oci).unwrap_err();
        assert_eq!(err.kind(), anycri_core::ErrorKind::InvalidArgument);
        let mut bad = config();
        bad.exposed_ports = vec!["eighty".into()];
        let err = Image::assemble(&[layer("a")], &bad, "amd64", ManifestFormat::Oci).unwrap_err();
        assert_eq!(err.kind(), anycri_core::ErrorKind::InvalidArgument);
    }

    #[test]
    fn digest_parsing() {
        let d = Digest::of(b"x");
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert_eq!(d.hex().len(), 64);
        for bad in ["", "sha256:", "md5:00", "sha256:XYZ", &format!("{d}0")] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"nope\"").is_err());
    }
}
