//! Image layers built in memory: a [`LayerBuilder`] collects directories, files and symlinks,
//! writes them as a tar archive with fixed owners and timestamps in path order, and gzips it,
//! so the same content always gives the same bytes and therefore the same digests.

use std::collections::BTreeMap;
use std::io::Write;

use anycri_core::{Error, Result};
use bytes::Bytes;
use flate2::{Compression, GzBuilder};

use crate::image::{Blob, Digest};

/// The modification time of every entry: 2024-01-01T00:00:00Z. Fixed so digests are stable.
pub const LAYER_MTIME: u64 = 1_704_067_200;

/// One entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerEntry {
    /// A directory with its permission bits.
    Dir {
        /// Permission bits (e.g. `0o755`).
        mode: u32,
    },
    /// A regular file.
    File {
        /// Permission bits (e.g. `0o644`).
        mode: u32,
        /// The file's content.
        contents: Bytes,
    },
    /// A symbolic link.
    Symlink {
        /// Where the link points (absolute or relative).
        target: String,
    },
    /// A hard link to a regular file of the same layer.
    HardLink {
        /// The path of the file it links to, relative to the image root.
        target: String,
    },
}

/// Collects the entries of a layer; [`LayerBuilder::finish`] writes the tar and gzips it.
///
/// Paths are relative to the image root (a leading `/` is accepted and dropped); missing parent
/// directories are added with mode `0755`. Every entry is owned by root. Hard links are written
/// after every other entry, so each comes after the file it names whatever the paths' order.
#[derive(Debug, Default, Clone)]
pub struct LayerBuilder {
    entries: BTreeMap<String, LayerEntry>,
}

/// A finished layer: the gzipped tar as a blob, and the digest of the uncompressed tar
/// (the `diff_id` an image config lists).
#[derive(Debug, Clone)]
pub struct Layer {
    /// The compressed layer (`tar+gzip`); its media type is set when an image is assembled.
    pub blob: Blob,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
}

impl LayerBuilder {
    /// An empty layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a directory (and its missing parents).
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<&mut Self> {
        let path = normalise(path)?;
        self.parents(&path)?;
        self.entries.insert(path, LayerEntry::Dir { mode });
        Ok(self)
    }

    /// Add a regular file (and its missing parent directories).
    pub fn file(&mut self, path: &str, mode: u32, contents: impl Into<Bytes>) -> Result<&mut Self> {
        let path = normalise(path)?;
        self.parents(&path)?;
        self.entries.insert(
            path,
            LayerEntry::File {
                mode,
                contents: contents.into(),
            },
        );
        Ok(self)
    }

    /// Add a symbolic link at `path` pointing to `target` (and its missing parent directories).
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<&mut Self> {
        let path = normalise(path)?;
        if target.is_empty() || target.contains('\0') {
            return Err(Error::invalid_argument(format!(
                "symlink {path}: invalid target {target:?}"
            )));
        }
        self.parents(&path)?;
        self.entries.insert(
            path,
            LayerEntry::Symlink {
                target: target.to_owned(),
            },
        );
        Ok(self)
    }

    /// Add a hard link at `path` to the regular file `target`, already in the layer (an
    /// executed applet is then a real file, as in a distribution's userland).
    ///
    /// ```
    /// let mut layer = anycri_images::LayerBuilder::new();
    /// layer.file("bin/busybox", 0o755, &b"\x7fELF..."[..])?;
    /// layer.hard_link("bin/sh", "/bin/busybox")?;
    /// assert!(layer.hard_link("bin/ls", "bin/missing").is_err());
    /// # Ok::<(), anycri_core::Error>(())
    /// ```
    pub fn hard_link(&mut self, path: &str, target: &str) -> Result<&mut Self> {
        let path = normalise(path)?;
        let target = normalise(target)?;
        if !matches!(self.entries.get(&target), Some(LayerEntry::File { .. })) {
            return Err(Error::invalid_argument(format!(
                "hard link {path}: {target} is not a regular file of the layer"
            )));
        }
        self.parents(&path)?;
        self.entries.insert(path, LayerEntry::HardLink { target });
        Ok(self)
    }

    /// Whether an entry exists at `path`.
    pub fn contains(&self, path: &str) -> bool {
        normalise(path).is_ok_and(|p| self.entries.contains_key(&p))
    }

    /// The entries collected so far, in the order they will be written.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &LayerEntry)> {
        self.entries.iter().map(|(p, e)| (p.as_str(), e))
    }

    fn parents(&mut self, path: &str) -> Result<()> {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let parent = &path[..end + i];
            match self.entries.get(parent) {
                None => {
                    self.entries
                        .insert(parent.to_owned(), LayerEntry::Dir { mode: 0o755 });
                }
                Some(LayerEntry::Dir { .. }) => {}
                Some(_) => {
                    return Err(Error::invalid_argument(format!(
                        "{path}: parent {parent} is not a directory"
                    )));
                }
            }
            end += i + 1;
        }
        Ok(())
    }

    /// The uncompressed tar archive: entries in path order (parents first), then the hard
    /// links in path order; all owned by root, mtime [`LAYER_MTIME`].
    pub fn tar(&self) -> Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        let is_link = |e: &LayerEntry| matches!(e, LayerEntry::HardLink { .. });
        let others = self.entries.iter().filter(|(_, e)| !is_link(e));
        let links = self.entries.iter().filter(|(_, e)| is_link(e));
        for (path, entry) in others.chain(links) {
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(LAYER_MTIME);
            header.set_username("root").map_err(tar_error)?;
            header.set_groupname("root").map_err(tar_error)?;
            match entry {
                LayerEntry::Dir { mode } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_size(0);
                    builder
                        .append_data(&mut header, format!("{path}/"), std::io::empty())
                        .map_err(tar_error)?;
                }
                LayerEntry::File { mode, contents } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(contents.len() as u64);
                    builder
                        .append_data(&mut header, path, contents.as_ref())
                        .map_err(tar_error)?;
                }
                LayerEntry::Symlink { target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    builder
                        .append_link(&mut header, path, target)
                        .map_err(tar_error)?;
                }
                LayerEntry::HardLink { target } => {
                    // the target's mode: extractors (Docker's, containerd's) chmod the path
                    // after linking, i.e. the one inode both names share
                    let mode = match self.entries.get(target) {
                        Some(LayerEntry::File { mode, .. }) => *mode,
                        _ => 0o644,
                    };
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_mode(mode);
                    header.set_size(0);
                    builder
                        .append_link(&mut header, path, target)
                        .map_err(tar_error)?;
                }
            }
        }
        builder.into_inner().map_err(tar_error)
    }

    /// Write the tar, gzip it (no file name, mtime 0, level 6) and compute both digests.
    pub fn finish(&self) -> Result<Layer> {
        let tar = self.tar()?;
        let diff_id = Digest::of(&tar);
        let mut gz = GzBuilder::new()
            .mtime(0)
            .write(Vec::with_capacity(tar.len() / 2), Compression::new(6));
        gz.write_all(&tar).map_err(tar_error)?;
        let compressed = gz.finish().map_err(tar_error)?;
        Ok(Layer {
            blob: Blob::new(crate::image::media_types::OCI_LAYER_GZIP, compressed),
            diff_id,
        })
    }
}

fn tar_error(e: std::io::Error) -> Error {
    Error::with_source(anycri_core::ErrorKind::Internal, "writing a layer", e)
}

/// `path` without a leading `/`, checked: no empty, `.` or `..` components, no NUL.
fn normalise(path: &str) -> Result<String> {
    let trimmed = path.trim_start_matches('/').trim_end_matches('/');
    let bad = trimmed.is_empty()
        || trimmed.contains('\0')
        || trimmed
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(Error::invalid_argument(format!(
            "invalid path in a layer: {path:?}"
        )));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn read_entries(layer: &Layer) -> Vec<(String, tar::EntryType, u32, u64, Vec<u8>, String)> {
        let gz = flate2::read::GzDecoder::new(layer.blob.data.as_ref());
        let mut archive = tar::Archive::new(gz);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (
                    path,
                    h.entry_type(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    data,
                    link,
                )
            })
            .collect()
    }

    #[test]
    fn entries_are_sorted_with_parents_and_fixed_metadata() {
        let mut b = LayerBuilder::new();
        b.file("/usr/share/page.html", 0o644, "hi").unwrap();
        b.symlink("bin/sh", "busybox").unwrap();
        b.dir("tmp", 0o1777).unwrap();
        let layer = b.finish().unwrap();
        let entries = read_entries(&layer);
        let paths: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bin/",
                "bin/sh",
                "tmp/",
                "usr/",
                "usr/share/",
                "usr/share/page.html"
            ]
        );
        let sh = &entries[1];
        assert_eq!(sh.1, tar::EntryType::Symlink);
        assert_eq!(sh.5, "busybox");
        let tmp = &entries[2];
        assert_eq!(tmp.1, tar::EntryType::Directory);
        assert_eq!(tmp.2, 0o1777);
        let page = &entries[5];
        assert_eq!(page.4, b"hi");
        assert_eq!(page.2, 0o644);
        assert!(entries.iter().all(|e| e.3 == LAYER_MTIME));
    }

    #[test]
    fn digests_are_stable_and_content_sensitive() {
        let build = |content: &'static str| {
            let mut b = LayerBuilder::new();
            b.file("a/b", 0o644, content).unwrap();
            b.finish().unwrap()
        };
        let one = build("x");
        let two = build("x");
        assert_eq!(one.blob.digest, two.blob.digest);
        assert_eq!(one.diff_id, two.diff_id);
        assert_eq!(one.blob.data, two.blob.data);
        let other = build("y");
        assert_ne!(one.blob.digest, other.blob.digest);
        assert_ne!(one.diff_id, other.diff_id);
        // the diff_id is the digest of the uncompressed tar
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(one.blob.data.as_ref())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(Digest::of(&tar), one.diff_id);
        assert_eq!(Digest::of(&one.blob.data), one.blob.digest);
    }

    #[test]
    fn hard_links_follow_their_target_and_unpack_as_one_file() {
        let mut b = LayerBuilder::new();
        b.file("bin/busybox", 0o755, "bb").unwrap();
        // "bin/ash" sorts before its target: it must still be written after it
        b.hard_link("bin/ash", "/bin/busybox").unwrap();
        b.hard_link("usr/bin/wc", "bin/busybox").unwrap();
        let layer = b.finish().unwrap();
        let entries = read_entries(&layer);
        let paths: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bin/",
                "bin/busybox",
                "usr/",
                "usr/bin/",
                "bin/ash",
                "usr/bin/wc"
            ]
        );
        assert_eq!(entries[4].1, tar::EntryType::Link);
        assert_eq!(entries[4].5, "bin/busybox");
        // a link's header carries its file's mode: extractors chmod the shared inode with it
        assert_eq!(entries[4].2, 0o755);

        let dir = std::env::temp_dir().join(format!("anycri-layer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let gz = flate2::read::GzDecoder::new(layer.blob.data.as_ref());
        tar::Archive::new(gz).unpack(&dir).unwrap();
        use std::os::unix::fs::MetadataExt;
        let inode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().ino();
        assert_eq!(inode("bin/ash"), inode("bin/busybox"));
        assert_eq!(inode("usr/bin/wc"), inode("bin/busybox"));
        assert_eq!(std::fs::read(dir.join("bin/ash")).unwrap(), b"bb");
        std::fs::remove_dir_all(&dir).unwrap();

        let err = b.hard_link("bin/x", "usr/bin").unwrap_err();
        assert_eq!(err.kind(), anycri_core::ErrorKind::InvalidArgument);
    }

    #[test]
    fn bad_paths_are_invalid_arguments() {
        let mut b = LayerBuilder::new();
        for bad in ["", "/", "a/../b", "a//b", "./a", "a\0b"] {
            let err = b.file(bad, 0o644, "x").unwrap_err();
            assert_eq!(
                err.kind(),
                anycri_core::ErrorKind::InvalidArgument,
                "{bad:?}"
            );
        }
        b.file("f", 0o644, "x").unwrap();
        let err = b.file("f/g", 0o644, "x").unwrap_err();
        assert_eq!(err.kind(), anycri_core::ErrorKind::InvalidArgument);
        let err = b.symlink("l", "").unwrap_err();
        assert_eq!(err.kind(), anycri_core::ErrorKind::InvalidArgument);
    }
}
