//! The userland every test image is built from: a busybox binary, its applets as links, and
//! the `/etc/passwd` and `/etc/group` with the users and groups the images refer to. The
//! conformance images use a static busybox (Debian's `busybox-static`), so nothing else of the
//! host goes into them; [`Busybox::with_libraries`] takes a dynamically linked one (Debian's
//! `busybox`) with the shared libraries it loads, and [`Busybox::hard_links`] makes the applets
//! hard links: busybox-static's shell runs applets in-process instead of executing them, so
//! features that act on exec (no_new_privs, setuid, seccomp on execve) need the glibc build to
//! behave as in a distribution's userland.

use std::path::{Path, PathBuf};
use std::process::Command;

use anycri_core::{Error, Result};
use bytes::Bytes;

use crate::host::{HostBinary, read_executable, stdout_of};
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

/// A busybox binary, the applets it provides, and (when dynamically linked) its libraries.
#[derive(Debug, Clone)]
pub struct Busybox {
    /// The binary, with its libraries when dynamically linked.
    exe: HostBinary,
    applets: Vec<String>,
    hard_links: bool,
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
        let (binary, dynamic) = read_executable(path).map_err(|e| e.context("busybox"))?;
        if dynamic {
            return Err(Error::failed_precondition(format!(
                "{} is dynamically linked; the test images need a static busybox \
                 (Debian's busybox-static)",
                path.display()
            )));
        }
        Busybox::new(
            HostBinary::without_libraries(path, binary),
            list_applets(path)?,
        )
    }

    /// Read the busybox at `path`, static or dynamically linked; a dynamic one brings the
    /// shared libraries `ldd` lists (see [`HostBinary`]), put into the image at their paths.
    ///
    /// ```no_run
    /// // Debian's glibc busybox, applets as hard links: a userland that executes its applets
    /// let busybox = anycri_images::Busybox::with_libraries("/bin/busybox")?.hard_links();
    /// let rootfs = busybox.rootfs()?;
    /// assert!(rootfs.contains("lib/x86_64-linux-gnu/libc.so.6"));
    /// # Ok::<(), anycri_core::Error>(())
    /// ```
    pub fn with_libraries(path: impl AsRef<Path>) -> Result<Busybox> {
        let path = path.as_ref();
        let exe = HostBinary::read(path).map_err(|e| e.context("busybox"))?;
        Busybox::new(exe, list_applets(path)?)
    }

    /// Make every applet a hard link to `/bin/busybox` instead of a symlink.
    pub fn hard_links(mut self) -> Busybox {
        self.hard_links = true;
        self
    }

    /// A busybox from its bytes and its applet paths as `--list-full` prints them
    /// (`bin/sh`, `usr/bin/wget`, ...). Needs at least `bin/sh`.
    pub fn from_parts(binary: impl Into<Bytes>, applets: Vec<String>) -> Result<Busybox> {
        Busybox::new(
            HostBinary::without_libraries(DEFAULT_BUSYBOX, binary.into()),
            applets,
        )
    }

    fn new(exe: HostBinary, applets: Vec<String>) -> Result<Busybox> {
        if exe.binary().is_empty() {
            return Err(Error::invalid_argument("empty busybox binary"));
        }
        if !applets.iter().any(|a| applet_name(a) == "sh") {
            return Err(Error::failed_precondition(
                "this busybox has no `sh` applet; the test images need a shell",
            ));
        }
        Ok(Busybox {
            exe,
            applets,
            hard_links: false,
        })
    }

    /// The binary.
    pub fn binary(&self) -> &Bytes {
        self.exe.binary()
    }

    /// The applet paths (relative, as `--list-full` prints them).
    pub fn applets(&self) -> &[String] {
        &self.applets
    }

    /// Whether the applet `name` (`wget`, `httpd`) is present.
    pub fn has_applet(&self, name: &str) -> bool {
        self.applets.iter().any(|a| applet_name(a) == name)
    }

    /// The shared libraries it brings (empty for a static busybox), by host path.
    pub fn library_paths(&self) -> Vec<&str> {
        self.exe.library_paths().collect()
    }

    /// The base layer: a userland of `/bin/busybox` (and its libraries, if any), each applet
    /// as a link to it (symlink, or hard link after [`Busybox::hard_links`]) at its own path
    /// and in `/bin`, the usual directories (`/tmp` sticky, `/root` private) and `/etc` with
    /// [`PASSWD`], [`GROUP`] and an `nsswitch.conf`.
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
        self.exe.add_to(&mut layer, "bin/busybox")?;
        let link = |layer: &mut LayerBuilder, path: &str| -> Result<()> {
            if self.hard_links {
                layer.hard_link(path, "bin/busybox")?;
            } else {
                layer.symlink(path, "/bin/busybox")?;
            }
            Ok(())
        };
        for applet in &self.applets {
            let path = applet.trim_start_matches('/');
            let name = applet_name(path);
            if path == "bin/busybox" || name == "busybox" || path == "linuxrc" || name.is_empty() {
                continue;
            }
            if !layer.contains(path) {
                link(&mut layer, path)?;
            }
            let in_bin = format!("bin/{name}");
            if !layer.contains(&in_bin) {
                link(&mut layer, &in_bin)?;
            }
        }
        add_etc(&mut layer)?;
        Ok(layer)
    }
}

/// Add `/etc/passwd` ([`PASSWD`]), `/etc/group` ([`GROUP`]) and an `nsswitch.conf` to `layer`.
pub(crate) fn add_etc(layer: &mut LayerBuilder) -> Result<()> {
    layer.file("etc/passwd", 0o644, PASSWD)?;
    layer.file("etc/group", 0o644, GROUP)?;
    layer.file("etc/nsswitch.conf", 0o644, NSSWITCH)?;
    Ok(())
}

fn applet_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The applets of the busybox at `path`, as `busybox --list-full` prints them.
fn list_applets(path: &Path) -> Result<Vec<String>> {
    Ok(stdout_of(Command::new(path).arg("--list-full"))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::elf_is_dynamic;
    use anycri_core::ErrorKind;

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
    fn hard_linked_applets() {
        let layer = fake().hard_links().rootfs().unwrap();
        let entries: std::collections::BTreeMap<_, _> = layer.entries().collect();
        for link in ["bin/sh", "usr/bin/wget", "bin/wget", "usr/sbin/httpd"] {
            assert!(
                matches!(entries[link], crate::layer::LayerEntry::HardLink { target } if target == "bin/busybox"),
                "{link}"
            );
        }
    }

    /// A dynamically linked busybox, when the host has one (Debian's `busybox` package;
    /// scripts/runtime-env extracts it into its cache and passes it to the image builder),
    /// with its hard-linked applets sharing the binary's mode.
    #[test]
    fn a_dynamic_busybox_brings_its_libraries() {
        // the runtime environment's (scripts/runtime-env: Debian's busybox, extracted)
        let env_cache = std::env::var("ANYCRI_ENV_DIR")
            .map(|d| format!("{d}/cache/busybox-glibc/bin/busybox"))
            .unwrap_or_default();
        let found = [env_cache.as_str(), "/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| std::fs::read(p).is_ok_and(|b| elf_is_dynamic(&b) == Some(true)));
        if found.is_none() && std::env::var("ANYCRI_REQUIRE_LIVE").as_deref() == Ok("1") {
            panic!(
                "no dynamically linked busybox (ANYCRI_REQUIRE_LIVE=1; run scripts/runtime-env up)"
            );
        }
        let Some(path) = found else {
            // the static build refuses nothing: with_libraries takes it, without libraries
            if Path::new(DEFAULT_BUSYBOX).exists() {
                let bb = Busybox::with_libraries(DEFAULT_BUSYBOX).unwrap();
                assert!(bb.library_paths().is_empty());
            }
            return;
        };
        let bb = Busybox::with_libraries(path).unwrap();
        let libs = bb.library_paths();
        assert!(libs.iter().any(|l| l.contains("libc.so")), "{libs:?}");
        let layer = bb.clone().hard_links().rootfs().unwrap();
        for lib in libs {
            assert!(layer.contains(lib), "{lib}");
        }
        let entries: std::collections::BTreeMap<_, _> = layer.entries().collect();
        assert!(matches!(
            entries["bin/sh"],
            crate::layer::LayerEntry::HardLink { .. }
        ));
        let err = Busybox::from_path(path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
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
                assert!(bb.library_paths().is_empty());
                for applet in ["sh", "wget", "httpd", "id", "sleep", "cat"] {
                    assert!(bb.has_applet(applet), "{applet}");
                }
            }
            // the glibc busybox package installed instead: refused, with the reason
            Err(e) => assert_eq!(e.kind(), ErrorKind::FailedPrecondition, "{e}"),
        }
    }
}
