//! Images written to disk instead of pushed: an OCI image layout directory, the same layout as
//! one tar (an OCI archive, what `ctr images import` reads; its index names each tag with the
//! `io.containerd.image.name` annotation), and a docker-archive (`docker save`'s format, what
//! `docker load` reads: Docker 20.10 cannot load OCI archives). All three are deterministic:
//! the same image gives the same bytes.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anycri_core::{Error, ErrorKind, Result};
use bytes::Bytes;
use serde_json::json;

use crate::image::{Digest, Image};
use crate::layer::LAYER_MTIME;

/// An image with the name and tags it is written under (`127.0.0.1:5000/anycri/busybox`,
/// `["1.0", "latest"]`).
#[derive(Debug, Clone, Copy)]
pub struct NamedImage<'a> {
    /// The image.
    pub image: &'a Image,
    /// The repository name, registry host included, without a tag.
    pub name: &'a str,
    /// Its tags; at least one.
    pub tags: &'a [String],
}

impl NamedImage<'_> {
    fn check(&self) -> Result<()> {
        if self.tags.is_empty() {
            return Err(Error::invalid_argument(format!(
                "writing {}: no tag given",
                self.name
            )));
        }
        Ok(())
    }

    /// The files of its OCI image layout, paths relative to the layout's root: `oci-layout`,
    /// `index.json` (one manifest entry per tag) and `blobs/sha256/*`.
    pub fn oci_layout_files(&self) -> Result<Vec<(String, Bytes)>> {
        self.check()?;
        let image = self.image;
        let architecture = config_field(image, "architecture")?;
        let manifests: Vec<_> = self
            .tags
            .iter()
            .map(|tag| {
                json!({
                    "mediaType": image.manifest.media_type,
                    "digest": image.manifest.digest,
                    "size": image.manifest.size(),
                    "platform": {"architecture": architecture, "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": format!("{}:{tag}", self.name),
                        "org.opencontainers.image.ref.name": tag,
                    },
                })
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let mut files = vec![
            (
                "oci-layout".to_owned(),
                Bytes::from_static(br#"{"imageLayoutVersion":"1.0.0"}"#),
            ),
            ("index.json".to_owned(), to_json(&index)?),
        ];
        for blob in image.layers.iter().chain([&image.config, &image.manifest]) {
            files.push((
                format!("blobs/sha256/{}", blob.digest.hex()),
                blob.data.clone(),
            ));
        }
        Ok(files)
    }

    /// Write its OCI image layout into `dir`: written beside it (`<dir>.partial`) and renamed
    /// into place, replacing a layout already there, so `dir` is never half-written.
    pub fn write_oci_layout(&self, dir: &Path) -> Result<()> {
        let mut partial = dir.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let replacing = |e| io_error(dir, e);
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(replacing)?;
        }
        for (path, data) in self.oci_layout_files()? {
            let path = partial.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
            }
            std::fs::write(&path, &data).map_err(|e| io_error(&path, e))?;
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(replacing)?;
        }
        std::fs::rename(&partial, dir).map_err(replacing)
    }

    /// Its OCI image layout as one tar (an OCI archive).
    pub fn oci_archive(&self) -> Result<Vec<u8>> {
        tar_of(self.oci_layout_files()?)
    }

    /// A docker-archive of it: `manifest.json` naming the config and the uncompressed layers
    /// and every `name:tag`; the config keeps its bytes, so the image ID Docker gives it is the
    /// config digest, as after a pull.
    pub fn docker_archive(&self) -> Result<Vec<u8>> {
        self.check()?;
        let image = self.image;
        let mut files = Vec::new();
        let mut layer_names = Vec::new();
        for layer in &image.layers {
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(layer.data.as_ref())
                .read_to_end(&mut tar)
                .map_err(|e| {
                    Error::with_source(
                        ErrorKind::InvalidArgument,
                        format!("layer {} is not gzip", layer.digest),
                        e,
                    )
                })?;
            let name = format!("{}.tar", Digest::of(&tar).hex());
            layer_names.push(name.clone());
            files.push((name, Bytes::from(tar)));
        }
        let config_name = format!("{}.json", image.config.digest.hex());
        let repo_tags: Vec<String> = self
            .tags
            .iter()
            .map(|t| format!("{}:{t}", self.name))
            .collect();
        let manifest = json!([{
            "Config": config_name,
            "RepoTags": repo_tags,
            "Layers": layer_names,
        }]);
        files.push((config_name, image.config.data.clone()));
        files.push(("manifest.json".to_owned(), to_json(&manifest)?));
        tar_of(files)
    }
}

fn config_field(image: &Image, field: &str) -> Result<String> {
    let config: serde_json::Value = serde_json::from_slice(&image.config.data).map_err(|e| {
        Error::with_source(
            ErrorKind::InvalidArgument,
            "the image config is not JSON",
            e,
        )
    })?;
    config[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::invalid_argument(format!("the image config has no {field}")))
}

fn to_json(value: &serde_json::Value) -> Result<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::with_source(ErrorKind::Internal, "encoding JSON", e))
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::with_source(
        ErrorKind::FailedPrecondition,
        format!("writing {}", path.display()),
        e,
    )
}

/// A tar of `files` (sorted by path, parents first, root-owned, fixed mtime).
fn tar_of(mut files: Vec<(String, Bytes)>) -> Result<Vec<u8>> {
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    let err = |e: std::io::Error| Error::with_source(ErrorKind::Internal, "writing an archive", e);
    for (path, data) in &files {
        // each parent directory (`blobs/`, `blobs/sha256/`) once, before its first file
        for (slash, _) in path.match_indices('/') {
            let parent = &path[..=slash];
            if dirs.insert(parent) {
                let mut header = header(0o755, 0);
                header.set_entry_type(tar::EntryType::Directory);
                builder
                    .append_data(&mut header, parent, std::io::empty())
                    .map_err(err)?;
            }
        }
        let mut header = header(0o644, data.len() as u64);
        builder
            .append_data(&mut header, path, data.as_ref())
            .map_err(err)?;
    }
    builder.into_inner().map_err(err)
}

fn header(mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(LAYER_MTIME);
    header.set_mode(mode);
    header.set_size(size);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ImageConfig, LayerBuilder, ManifestFormat};

    fn image() -> Image {
        let mut layer = LayerBuilder::new();
        layer.file("bin/hello", 0o755, "hi").unwrap();
        let config = ImageConfig {
            cmd: vec!["/bin/hello".into()],
            ..Default::default()
        };
        Image::assemble(
            &[layer.finish().unwrap()],
            &config,
            "amd64",
            ManifestFormat::Oci,
        )
        .unwrap()
    }

    fn entries(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
        tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (path, data)
            })
            .collect()
    }

    #[test]
    fn oci_layout_names_every_tag_and_holds_every_blob() {
        let image = image();
        let tags = ["1.0".to_owned(), "latest".to_owned()];
        let named = NamedImage {
            image: &image,
            name: "127.0.0.1:5000/anycri/hello",
            tags: &tags,
        };
        let files = named.oci_layout_files().unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&files.iter().find(|f| f.0 == "index.json").unwrap().1).unwrap();
        let manifests = index["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 2);
        assert_eq!(
            manifests[1]["annotations"]["io.containerd.image.name"],
            "127.0.0.1:5000/anycri/hello:latest"
        );
        assert_eq!(
            manifests[0]["annotations"]["org.opencontainers.image.ref.name"],
            "1.0"
        );
        assert_eq!(manifests[0]["digest"], image.digest().as_str());
        assert_eq!(manifests[0]["platform"]["architecture"], "amd64");
        for blob in image.layers.iter().chain([&image.config, &image.manifest]) {
            let path = format!("blobs/sha256/{}", blob.digest.hex());
            let (_, data) = files.iter().find(|f| f.0 == path).unwrap();
            assert_eq!(Digest::of(data), blob.digest);
        }
        // the archive is the same files, deterministic
        let archive = named.oci_archive().unwrap();
        assert_eq!(archive, named.oci_archive().unwrap());
        let in_tar = entries(&archive);
        assert!(in_tar.iter().any(|e| e.0 == "blobs/"));
        assert!(in_tar.iter().any(|e| e.0 == "oci-layout"));

        let dir = std::env::temp_dir().join(format!("anycri-oci-{}", std::process::id()));
        named.write_oci_layout(&dir).unwrap();
        let on_disk = std::fs::read(dir.join("index.json")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(on_disk, files[1].1);
    }

    #[test]
    fn docker_archive_has_uncompressed_layers_and_the_config_bytes() {
        let image = image();
        let tags = ["1.0".to_owned()];
        let named = NamedImage {
            image: &image,
            name: "r:5000/hello",
            tags: &tags,
        };
        let files = entries(&named.docker_archive().unwrap());
        let manifest: serde_json::Value =
            serde_json::from_slice(&files.iter().find(|f| f.0 == "manifest.json").unwrap().1)
                .unwrap();
        assert_eq!(manifest[0]["RepoTags"][0], "r:5000/hello:1.0");
        let config_name = manifest[0]["Config"].as_str().unwrap();
        let config = &files.iter().find(|f| f.0 == config_name).unwrap().1;
        assert_eq!(Digest::of(config), *image.id());
        // the layer file's digest is the config's diff_id
        let layer_name = manifest[0]["Layers"][0].as_str().unwrap();
        let layer = &files.iter().find(|f| f.0 == layer_name).unwrap().1;
        let config: serde_json::Value = serde_json::from_slice(config).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], Digest::of(layer).as_str());
        let count = tar::Archive::new(layer.as_slice())
            .entries()
            .unwrap()
            .count();
        assert_eq!(count, 2, "bin/ and bin/hello");
    }

    #[test]
    fn no_tag_is_an_invalid_argument() {
        let image = image();
        let named = NamedImage {
            image: &image,
            name: "r/x",
            tags: &[],
        };
        assert_eq!(
            named.docker_archive().unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            named.oci_layout_files().unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}
