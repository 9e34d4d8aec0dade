//! The userland every test image is built from: a static busybox binary (Debian's
//! `busybox-static`), its applets as symlinks, and the `/etc/passwd` and `/etc/group` with the
//! users and groups the images refer to. The binary must be static, since nothing else of
//! the host goes into the image.

use std::path::{Path, PathBuf};
use std::process::Command;

use anycri_core::{Error, ErrorKind, Result};
use bytes::Bytes;

use crate::layer::LayerBuilder;

/// Where Debian's `busybox-static` installs the binary.
pub const DEFAULT_BUSYBOX: &str = "/bin/busybox";

/// The `/etc/passwd` of every image: root, www-data (33), a default user (1000), nobody.
pub const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
default-user:x:1000:1000:default-user:/home/default-user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
";

/// The `/etc/group` of every image; `default-user` is also in `group-defined-in-image` (50000).
pub const GROUP: &str = "\
root:x:0:
daemon:x:1:
www-data:x:33:
users:x:100:
default-user:x:1000:
group-defined-in-image:x:50000:default-user
nogroup:x:65534:
";

const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n";

/// A static busybox binary and the applets it provides.
#[derive(Debug, Clone)]
pub struct Busybox {
    binary: Bytes,
    applets: Vec<String>,
}

impl Busybox {
    /// Find busybox-static: [`DEFAULT_BUSYBOX`], else the binary `dpkg -L busybox-static` lists.
    pub fn locate() -> Result<Busybox> {
        if Path::new(DEFAULT_BUSYBOX).exists() {
            return Busybox::from_path(DEFAULT_BUSYBOX);
        }
        let listed = Command::new("dpkg")
            .args(["-L", "busybox-static"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .find(|l| l.ends_with("/bin/busybox"))
                    .map(PathBuf::from)
            });
        match listed {
            Some(path) => Busybox::from_path(path),
            None => Err(Error::not_found(format!(
                "no busybox at {DEFAULT_BUSYBOX} and none listed by `dpkg -L busybox-static`; \
                 install Debian's busybox-static or pass the binary's path"
            ))),
        }
    }

    /// Read the binary at `path`, check that it is statically linked, and ask it for its
    /// applets (`busybox --list-full`).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Busybox> {
        let path = path.as_ref();
        let binary = std::fs::read(path).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::NotFound
            } else {
                ErrorKind::FailedPrecondition
            };
            Error::with_source(kind, format!("reading busybox {}", path.display()), e)
        })?;
        match elf_is_dynamic(&binary) {
            None => {
                return Err(Error::invalid_argument(format!(
                    "{} is not an ELF executable",
                    path.display()
                )));
            }
            Some(true) => {
                return Err(Error::failed_precondition(format!(
                    "{} is dynamically linked; the test images need a static busybox \
                     (Debian's busybox-static)",
                    path.display()
                )));
            }
            Some(false) => {}
        }
        let out = Command::new(path)
            .arg("--list-full")
            .output()
            .map_err(|e| {
                Error::with_source(
                    ErrorKind::FailedPrecondition,
                    format!("running {} --list-full", path.display()),
                    e,
                )
            })?;
        if !out.status.success() {
            return Err(Error::failed_precondition(format!(
                "{} --list-full failed: {}",
                path.display(),
                out.status
            )));
        }
        let applets = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        Busybox::from_parts(binary, applets)
    }

    /// A busybox from its bytes and its applet paths as `--list-full` prints them
    /// (`bin/sh`, `usr/bin/wget`, ...). Needs at least `bin/sh`.
    pub fn from_parts(binary: impl Into<Bytes>, applets: Vec<String>) -> Result<Busybox> {
        let binary = binary.into();
        if binary.is_empty() {
            return Err(Error::invalid_argument("empty busybox binary"));
        }
        if !applets.iter().any(|a| applet_name(a) == "sh") {
            return Err(Error::failed_precondition(
                "this busybox has no `sh` applet; the test images need a shell",
            ));
        }
        Ok(Busybox { binary, applets })
    }

    /// The binary.
    pub fn binary(&self) -> &Bytes {
        &self.binary
    }

    /// The applet paths (relative, as `--list-full` prints them).
    pub fn applets(&self) -> &[String] {
        &self.applets
    }

    /// Whether the applet `name` (`wget`, `httpd`) is present.
    pub fn has_applet(&self, name: &str) -> bool {
        self.applets.iter().any(|a| applet_name(a) == name)
    }

    /// The base layer: a userland of `/bin/busybox`, each applet as a symlink to it at its own
    /// path and in `/bin`, the usual directories (`/tmp` sticky, `/root` private) and `/etc`
    /// with [`PASSWD`], [`GROUP`] and an `nsswitch.conf`.
    pub fn rootfs(&self) -> Result<LayerBuilder> {
        let mut layer = LayerBuilder::new();
        for dir in [
            "bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "run", "home", "var",
        ] {
            layer.dir(dir, 0o755)?;
        }
        layer.dir("tmp", 0o1777)?;
        layer.dir("var/tmp", 0o1777)?;
        layer.dir("root", 0o700)?;
        layer.dir("home/default-user", 0o755)?;
        layer.file("bin/busybox", 0o755, self.binary.clone())?;
        for applet in &self.applets {
            let path = applet.trim_start_matches('/');
            let name = applet_name(path);
            if path == "bin/busybox" || name == "busybox" || path == "linuxrc" || name.is_empty() {
                continue;
            }
            if !layer.contains(path) {
                layer.symlink(path, "/bin/busybox")?;
            }
            let in_bin = format!("bin/{name}");
            if !layer.contains(&in_bin) {
                layer.symlink(&in_bin, "/bin/busybox")?;
            }
        }
        layer.file("etc/passwd", 0o644, PASSWD)?;
        layer.file("etc/group", 0o644, GROUP)?;
        layer.file("etc/nsswitch.conf", 0o644, NSSWITCH)?;
        Ok(layer)
    }
}

fn applet_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether an ELF file asks for a program interpreter (a PT_INTERP program header): `None`
/// if it is not an ELF file we can read.
fn elf_is_dynamic(data: &[u8]) -> Option<bool> {
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

    fn fake() -> Busybox {
        Busybox::from_parts(
            &b"not really busybox"[..],
            [
                "bin/sh",
                "usr/bin/wget",
                "usr/sbin/httpd",
                "linuxrc",
                "bin/busybox",
            ]
            .map(String::from)
            .to_vec(),
        )
        .unwrap()
    }

    #[test]
    fn rootfs_has_binary_applets_and_users() {
        let layer = fake().rootfs().unwrap();
        let entries: std::collections::BTreeMap<_, _> = layer.entries().collect();
        assert!(matches!(
            entries["bin/busybox"],
            crate::layer::LayerEntry::File { mode: 0o755, contents } if contents.as_ref() == b"not really busybox"
        ));
        for link in [
            "bin/sh",
            "usr/bin/wget",
            "bin/wget",
            "usr/sbin/httpd",
            "bin/httpd",
        ] {
            assert!(
                matches!(entries[link], crate::layer::LayerEntry::Symlink { target } if target == "/bin/busybox"),
                "{link}"
            );
        }
        assert!(!entries.contains_key("linuxrc"));
        assert!(matches!(
            entries["tmp"],
            crate::layer::LayerEntry::Dir { mode: 0o1777 }
        ));
        assert!(matches!(
            entries["etc/passwd"],
            crate::layer::LayerEntry::File { contents, .. } if contents.as_ref() == PASSWD.as_bytes()
        ));
        assert!(PASSWD.contains("www-data:x:33:33:"));
        assert!(GROUP.contains("group-defined-in-image:x:50000:default-user"));
    }

    #[test]
    fn needs_a_shell_and_a_binary() {
        let err = Busybox::from_parts(&b"x"[..], vec!["bin/ls".into()]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
        let err = Busybox::from_parts(Bytes::new(), vec!["bin/sh".into()]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn missing_or_non_elf_binaries_are_errors() {
        let err = Busybox::from_path("/nonexistent/busybox").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let dir = std::env::temp_dir().join(format!("anycri-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("busybox");
        std::fs::write(&script, "#!/bin/sh\necho bin/sh\n").unwrap();
        let err = Busybox::from_path(&script).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
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

    /// The host's busybox-static, when installed (scripts/runtime-env installs it).
    #[test]
    fn host_busybox_static_is_accepted() {
        if !Path::new(DEFAULT_BUSYBOX).exists() {
            eprintln!("SKIPPED: no {DEFAULT_BUSYBOX} (install busybox-static)");
            return;
        }
        match Busybox::from_path(DEFAULT_BUSYBOX) {
            Ok(bb) => {
                assert_eq!(elf_is_dynamic(bb.binary()), Some(false));
                for applet in ["sh", "wget", "httpd", "id", "sleep", "cat"] {
                    assert!(bb.has_applet(applet), "{applet}");
                }
            }
            // the glibc busybox package installed instead: refused, with the reason
            Err(e) => assert_eq!(e.kind(), ErrorKind::FailedPrecondition, "{e}"),
        }
    }
}
