//! Executables taken from the host into an image: the binary's bytes and, when it is
//! dynamically linked, the shared libraries and loader `ldd` says it loads, each put into the
//! image at its host path. This is how a glibc busybox userland or a `catatonit` pause image
//! is built from Debian's packages without a distribution base image.

use std::path::{Path, PathBuf};
use std::process::Command;

use anycri_core::{Error, ErrorKind, Result};
use bytes::Bytes;

use crate::layer::LayerBuilder;

/// A host executable and the shared libraries it needs.
#[derive(Debug, Clone)]
pub struct HostBinary {
    path: PathBuf,
    binary: Bytes,
    libraries: Vec<(String, Bytes)>,
}

impl HostBinary {
    /// Read the executable at `path` and, if it asks for a program interpreter, the libraries
    /// `ldd` lists for it (symlinks followed: each library is copied as a file at the path the
    /// loader looks for).
    ///
    /// ```no_run
    /// let catatonit = anycri_images::HostBinary::read("/usr/bin/catatonit")?;
    /// let mut layer = anycri_images::LayerBuilder::new();
    /// catatonit.add_to(&mut layer, "usr/bin/catatonit")?;
    /// # Ok::<(), anycri_core::Error>(())
    /// ```
    pub fn read(path: impl AsRef<Path>) -> Result<HostBinary> {
        let path = path.as_ref();
        let (binary, dynamic) = read_executable(path)?;
        let libraries = if dynamic {
            shared_libraries(path)?
                .into_iter()
                .map(|lib| {
                    let contents = read_file(&lib, "reading shared library")?;
                    Ok((lib.to_string_lossy().into_owned(), contents))
                })
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        Ok(HostBinary {
            path: path.to_owned(),
            binary,
            libraries,
        })
    }

    /// A static executable from its bytes, as if read from `path`.
    pub(crate) fn without_libraries(path: impl Into<PathBuf>, binary: Bytes) -> HostBinary {
        HostBinary {
            path: path.into(),
            binary,
            libraries: Vec::new(),
        }
    }

    /// Where it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The executable's bytes.
    pub fn binary(&self) -> &Bytes {
        &self.binary
    }

    /// Whether it is statically linked (no libraries).
    pub fn is_static(&self) -> bool {
        self.libraries.is_empty()
    }

    /// The libraries' absolute host paths, in `ldd`'s order.
    pub fn library_paths(&self) -> impl Iterator<Item = &str> {
        self.libraries.iter().map(|(p, _)| p.as_str())
    }

    /// Put the executable at `image_path` (mode 0755) and each library at its host path
    /// (mode 0755 too, as Debian installs them) into `layer`.
    pub fn add_to(&self, layer: &mut LayerBuilder, image_path: &str) -> Result<()> {
        layer.file(image_path, 0o755, self.binary.clone())?;
        self.add_libraries_to(layer)
    }

    /// A layer of this executable alone, at its host path, with its libraries, the usual
    /// directories (`/tmp` sticky) and the images' `/etc` files (users, groups,
    /// `nsswitch.conf`): what a pause image such as `catatonit` needs.
    ///
    /// ```no_run
    /// use anycri_images::{HostBinary, Image, ImageConfig, ManifestFormat};
    /// let catatonit = HostBinary::read("/usr/bin/catatonit")?;
    /// let layer = catatonit.rootfs()?.finish()?;
    /// let config = ImageConfig {
    ///     entrypoint: vec!["/usr/bin/catatonit".into(), "-P".into()],
    ///     ..Default::default()
    /// };
    /// let pause = Image::assemble(&[layer], &config, "amd64", ManifestFormat::Oci)?;
    /// # Ok::<(), anycri_core::Error>(())
    /// ```
    pub fn rootfs(&self) -> Result<LayerBuilder> {
        let mut layer = LayerBuilder::new();
        for dir in ["dev", "proc", "sys", "etc"] {
            layer.dir(dir, 0o755)?;
        }
        layer.dir("tmp", 0o1777)?;
        let path = self.path.to_string_lossy();
        self.add_to(&mut layer, &path)?;
        crate::busybox::add_etc(&mut layer)?;
        Ok(layer)
    }

    /// Put only the libraries into `layer`, each at its host path.
    pub fn add_libraries_to(&self, layer: &mut LayerBuilder) -> Result<()> {
        for (path, contents) in &self.libraries {
            layer.file(path, 0o755, contents.clone())?;
        }
        Ok(())
    }
}

/// Read the ELF executable at `path`: its bytes, and whether it is dynamically linked.
/// NotFound when missing, InvalidArgument when not an ELF file.
pub(crate) fn read_executable(path: &Path) -> Result<(Bytes, bool)> {
    let binary = read_file(path, "reading executable")?;
    match elf_is_dynamic(&binary) {
        Some(dynamic) => Ok((binary, dynamic)),
        None => Err(Error::invalid_argument(format!(
            "{} is not an ELF executable",
            path.display()
        ))),
    }
}

fn read_file(path: &Path, what: &str) -> Result<Bytes> {
    std::fs::read(path).map(Bytes::from).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::FailedPrecondition
        };
        Error::with_source(kind, format!("{what} {}", path.display()), e)
    })
}

/// The shared libraries (and the loader) the dynamic executable at `path` loads, as `ldd`
/// prints them: absolute paths, loader last.
pub fn shared_libraries(path: &Path) -> Result<Vec<PathBuf>> {
    let out = stdout_of(Command::new("ldd").arg(path))?;
    parse_ldd(&out).map_err(|e| e.context(path.display()))
}

/// Run `command` and return its stdout; a command that cannot run or fails is a
/// FailedPrecondition naming it (and its stderr).
pub(crate) fn stdout_of(command: &mut Command) -> Result<String> {
    let shown = format!("{command:?}");
    let out = command.output().map_err(|e| {
        Error::with_source(ErrorKind::FailedPrecondition, format!("running {shown}"), e)
    })?;
    if !out.status.success() {
        return Err(Error::failed_precondition(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The absolute paths in `ldd` output: `name => /path (addr)` lines and the loader's
/// `/path (addr)` line; the vDSO (`linux-vdso.so.1 (addr)`) has no file and is left out. A
/// library ldd cannot find (`=> not found`) is an error.
fn parse_ldd(text: &str) -> Result<Vec<PathBuf>> {
    let mut libs = Vec::new();
    let mut loader = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some((name, rest)) = line.split_once("=>") {
            let target = rest.split_whitespace().next().unwrap_or("");
            if target == "not" {
                return Err(Error::failed_precondition(format!(
                    "shared library {} not found",
                    name.trim()
                )));
            }
            if target.starts_with('/') {
                libs.push(PathBuf::from(target));
            }
        } else if let Some(first) = line
            .split_whitespace()
            .next()
            .filter(|f| f.starts_with('/'))
        {
            loader.push(PathBuf::from(first));
        }
    }
    libs.extend(loader);
    Ok(libs)
}

/// Whether an ELF file asks for a program interpreter (a PT_INTERP program header): `None`
/// if it is not an ELF file we can read.
pub(crate) fn elf_is_dynamic(data: &[u8]) -> Option<bool> {
    if data.len() < 0x40 || &data[..4] != b"\x7fELF" {
        return None;
    }
    let is64 = match data[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = match data[5] {
        1 => true,
        2 => false,
        _ => return None,
    };
    let read = |off: usize, len: usize| -> Option<u64> {
        let bytes = data.get(off..off + len)?;
        let mut v: u64 = 0;
        for i in 0..len {
            let b = if little { bytes[len - 1 - i] } else { bytes[i] };
            v = (v << 8) | u64::from(b);
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if is64 {
        (read(0x20, 8)?, read(0x36, 2)?, read(0x38, 2)?)
    } else {
        (read(0x1c, 4)?, read(0x2a, 2)?, read(0x2c, 2)?)
    };
    const PT_INTERP: u64 = 3;
    for i in 0..phnum {
        let off = usize::try_from(phoff.checked_add(i.checked_mul(phentsize)?)?).ok()?;
        if read(off, 4)? == PT_INTERP {
            return Some(true);
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_parsed_loader_last() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibresolv.so.2 => /lib/x86_64-linux-gnu/libresolv.so.2 (0x00007f1)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        let libs = parse_ldd(text).unwrap();
        assert_eq!(
            libs,
            [
                "/lib/x86_64-linux-gnu/libresolv.so.2",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        let err = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
        assert!(err.to_string().contains("libfoo.so.1"), "{err}");
    }

    #[test]
    fn elf_interpreter_detection() {
        // a dynamically linked binary of the host (the test binary itself is dynamic on Linux)
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(elf_is_dynamic(&me), Some(true));
        assert_eq!(elf_is_dynamic(b"#!/bin/sh"), None);
        let truncated = &me[..0x40];
        assert_eq!(elf_is_dynamic(truncated), None);
    }

    /// The test binary itself: dynamic, so its libraries (libc and the loader at least) are
    /// found by the real ldd and read.
    #[test]
    fn a_dynamic_host_binary_brings_its_libraries() {
        let me = HostBinary::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!me.is_static());
        let libs: Vec<&str> = me.library_paths().collect();
        assert!(libs.iter().any(|l| l.contains("libc.so")), "{libs:?}");
        assert!(libs.last().unwrap().contains("ld-"), "{libs:?}");
        let mut layer = LayerBuilder::new();
        me.add_to(&mut layer, "usr/bin/me").unwrap();
        for lib in libs {
            assert!(layer.contains(lib), "{lib}");
        }
        assert!(layer.contains("usr/bin/me"));
        let rootfs = me.rootfs().unwrap();
        assert!(rootfs.contains(&me.path().to_string_lossy()));
        assert!(rootfs.contains("etc/passwd") && rootfs.contains("tmp"));
    }

    #[test]
    fn missing_and_non_elf_files_are_errors() {
        let err = HostBinary::read("/nonexistent/x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let dir = std::env::temp_dir().join(format!("anycri-host-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("script");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let err = HostBinary::read(&script).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
}
