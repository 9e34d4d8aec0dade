//! The test images of anycri's conformance suite and benchmarks, built in memory from a
//! static busybox and pushed to a registry, without a Docker engine or any external tool.
//! The same builder makes any small image from a busybox userland (static, or glibc with its
//! libraries: [`Busybox::with_libraries`]) or one host binary ([`HostBinary`]), and writes
//! images as an OCI layout, an OCI archive or a docker-archive ([`NamedImage`]); the
//! `anycri-images build` command does all of it, and is how `scripts/runtime-env` makes the
//! live tests' images.
//!
//! The images follow critest's (a busybox userland, web servers, images whose config names a
//! user, one image under several tags, one pulled by digest, distinct images; see
//! [`TestImageKind`]). Builds are deterministic: fixed timestamps and owners in the layers and
//! a fixed JSON field order give the same digests on every run for the same busybox binary.
//!
//! ```no_run
//! # async fn f() -> anycri_core::Result<()> {
//! let images = anycri_images::build_and_push("127.0.0.1:5000", "anycri-conformance").await?;
//! println!("{}", images.busybox.reference()); // 127.0.0.1:5000/anycri-conformance/busybox:1.0
//! images.write("test-images.json")?;
//! # Ok(()) }
//! ```

pub mod archive;
pub mod busybox;
pub mod catalog;
pub mod cli;
pub mod host;
pub mod image;
pub mod layer;
pub mod registry;
pub mod test_images;

pub use archive::NamedImage;
pub use busybox::Busybox;
pub use catalog::{
    BuiltImage, HOST_NET_WEB_SERVER_PORT, KIND_LABEL, TestImageKind, USER_UID, USER_UID_GROUP,
    USERNAME, USERNAME_UID, VARIANT_LABEL, WEB_SERVER_PAGE, WEB_SERVER_PORT, build, build_all,
    build_variant,
};
pub use host::HostBinary;
pub use image::{Blob, Digest, Image, ImageConfig, ManifestFormat};
pub use layer::{Layer, LayerBuilder};
pub use registry::{PushReport, RegistryClient};
pub use test_images::{CritestImageList, ImageRef, TestImages};

use anycri_core::{Error, ErrorKind, Result};

/// Where images go: the repository namespace pushed to, and the prefix references use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePrefix {
    /// The namespace in the registry pushed to (`anycri-conformance`; may be empty).
    pub namespace: String,
    /// What image references start with (`127.0.0.1:5000/anycri-conformance`).
    pub reference_prefix: String,
}

impl ImagePrefix {
    /// The prefix for pushing to `registry_host` (`host:port`) with `prefix`, critest's
    /// `--registry-prefix` style: a prefix whose first component is a host (it has a `.` or
    /// a `:`, or is `localhost`) is used as it is for the references (the registry pushed to
    /// then serves that name, e.g. as a mirror) and the rest is the namespace; any other
    /// prefix is a namespace in `registry_host`.
    pub fn new(registry_host: &str, prefix: &str) -> Result<ImagePrefix> {
        let prefix = prefix.trim_matches('/');
        let (host, namespace) = match prefix.split_once('/') {
            Some((first, rest)) if looks_like_host(first) => (first, rest),
            None if looks_like_host(prefix) => (prefix, ""),
            _ => (registry_host, prefix),
        };
        if !namespace.is_empty() {
            registry::validate_repository(namespace).map_err(|e| e.context("--registry-prefix"))?;
        }
        let reference_prefix = if namespace.is_empty() {
            host.to_owned()
        } else {
            format!("{host}/{namespace}")
        };
        Ok(ImagePrefix {
            namespace: namespace.to_owned(),
            reference_prefix,
        })
    }

    /// The repository of image `name` in the registry pushed to.
    pub fn repository(&self, name: &str) -> String {
        if self.namespace.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.namespace)
        }
    }
}

pub(crate) fn looks_like_host(s: &str) -> bool {
    s.contains('.') || s.contains(':') || s == "localhost"
}

/// Build every test image from the host's busybox-static (OCI media types) and push it to
/// `registry` (`host:port`, plain HTTP) under `prefix` (see [`ImagePrefix::new`]).
pub async fn build_and_push(registry: &str, prefix: &str) -> Result<TestImages> {
    let client = RegistryClient::new(registry)?;
    let images = build_images(None, ManifestFormat::default()).await?;
    push_all(&client, prefix, &images).await
}

/// Build every test image from the busybox at `busybox` (or the located busybox-static) on a
/// blocking thread: reading and gzipping the binary takes a moment.
pub async fn build_images(
    busybox: Option<std::path::PathBuf>,
    format: ManifestFormat,
) -> Result<Vec<BuiltImage>> {
    tokio::task::spawn_blocking(move || {
        let busybox = match busybox {
            Some(path) => Busybox::from_path(path)?,
            None => Busybox::locate()?,
        };
        build_all(&busybox, format)
    })
    .await
    .map_err(|e| Error::with_source(ErrorKind::Internal, "building the test images", e))?
}

/// Push `images` with `client` under `prefix`; returns their references.
pub async fn push_all(
    client: &RegistryClient,
    prefix: &str,
    images: &[BuiltImage],
) -> Result<TestImages> {
    Ok(push_images(client, prefix, images).await?.0)
}

/// Push `images` with `client` under `prefix`; returns their references and what the push
/// did in total (blobs uploaded, mounted, already present; bytes uploaded).
pub async fn push_images(
    client: &RegistryClient,
    prefix: &str,
    images: &[BuiltImage],
) -> Result<(TestImages, PushReport)> {
    let prefix = ImagePrefix::new(client.host(), prefix)?;
    client.ping().await?;
    let mut total = PushReport::default();
    for built in images {
        let repository = prefix.repository(&built.name);
        let report = client
            .push_image(&repository, &built.image, &built.tags)
            .await
            .map_err(|e| e.context(format!("pushing {repository}")))?;
        tracing::info!(
            repository,
            tags = ?built.tags,
            digest = %built.image.digest(),
            uploaded = report.uploaded,
            mounted = report.mounted,
            existed = report.existed,
            bytes = report.bytes_uploaded,
            "pushed test image"
        );
        total.uploaded += report.uploaded;
        total.mounted += report.mounted;
        total.existed += report.existed;
        total.bytes_uploaded += report.bytes_uploaded;
    }
    let refs = TestImages::from_built(&prefix.reference_prefix, images).ok_or_else(|| {
        Error::invalid_argument("the images pushed do not include the busybox image")
    })?;
    Ok((refs, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let p = ImagePrefix::new("127.0.0.1:5000", "anycri-conformance").unwrap();
        assert_eq!(p.namespace, "anycri-conformance");
        assert_eq!(p.reference_prefix, "127.0.0.1:5000/anycri-conformance");
        assert_eq!(p.repository("busybox"), "anycri-conformance/busybox");

        let p = ImagePrefix::new("127.0.0.1:5000", "127.0.0.1:5000/a/b/").unwrap();
        assert_eq!(p.namespace, "a/b");
        assert_eq!(p.reference_prefix, "127.0.0.1:5000/a/b");

        let p = ImagePrefix::new("127.0.0.1:5000", "registry.example/mirror").unwrap();
        assert_eq!(p.namespace, "mirror");
        assert_eq!(p.reference_prefix, "registry.example/mirror");

        let p = ImagePrefix::new("127.0.0.1:5000", "").unwrap();
        assert_eq!(p.namespace, "");
        assert_eq!(p.reference_prefix, "127.0.0.1:5000");
        assert_eq!(p.repository("busybox"), "busybox");

        let p = ImagePrefix::new("127.0.0.1:5000", "localhost").unwrap();
        assert_eq!(p.reference_prefix, "localhost");

        let err = ImagePrefix::new("127.0.0.1:5000", "Upper/Case").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
}
