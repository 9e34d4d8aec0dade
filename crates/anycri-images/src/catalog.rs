//! The catalogue of test images the conformance suite and the benchmarks use, after
//! critest's test images: a busybox userland, web servers, images whose config names a user
//! (uid, uid:gid, name, name:group, a user with a group defined in the image), one image under
//! several tags, one pulled by digest, and distinct images with different content. Every image
//! shares the busybox base layer; each config carries a label naming its kind, so every kind has
//! its own image ID.

use std::collections::BTreeMap;

use anycri_core::Result;
use serde::{Deserialize, Serialize};

use crate::busybox::Busybox;
use crate::image::{Image, ImageConfig, ManifestFormat, host_architecture};
use crate::layer::{Layer, LayerBuilder};

/// The label every test image carries, valued with its [`TestImageKind::name`].
pub const KIND_LABEL: &str = "org.anycri.test-image";
/// The label [`build_variant`] sets to tell variants of the same image apart.
pub const VARIANT_LABEL: &str = "org.anycri.test-image.variant";
/// The port the `webserver` image's httpd listens on.
pub const WEB_SERVER_PORT: u16 = 80;
/// The port the `hostnet-webserver` image's httpd listens on (critest's hostnet image's port).
pub const HOST_NET_WEB_SERVER_PORT: u16 = 12003;
/// The page both web servers serve at `/` (`/www/index.html`).
pub const WEB_SERVER_PAGE: &str = "anycri test web server\n";
/// `User` of the `user-uid` image.
pub const USER_UID: i64 = 1002;
/// `User` of the `user-uid-group` image: `1003:1004`.
pub const USER_UID_GROUP: (i64, i64) = (1003, 1004);
/// The named user of the `user-username` image, in the images' `/etc/passwd`.
pub const USERNAME: &str = "www-data";
/// The uid of [`USERNAME`].
pub const USERNAME_UID: i64 = 33;
/// `User` of the `user-username-group` image: `www-data:users`; `users` is gid 100.
pub const USERNAME_GROUP: (&str, &str) = ("www-data", "users");
/// The gid of the `users` group.
pub const USERS_GID: i64 = 100;
/// The user (uid 1000, `default-user`) of the `predefined-group` image.
pub const PREDEFINED_GROUP_UID: i64 = 1000;
/// The supplementary group `default-user` belongs to in the images' `/etc/group`.
pub const PREDEFINED_GROUP_GID: i64 = 50000;
/// The file that makes each distinct image different, holding its number.
pub const DISTINCT_FILE: &str = "/etc/anycri-distinct";
/// The `PATH` every image sets.
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How many distinct images the catalogue has.
pub const DISTINCT_IMAGES: u32 = 2;

/// One image of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestImageKind {
    /// A busybox userland; critest's default test container image. Cmd `sh`.
    Busybox,
    /// busybox `httpd -f -p 80 -h /www` serving [`WEB_SERVER_PAGE`]; critest's web server image.
    WebServer,
    /// The same on [`HOST_NET_WEB_SERVER_PORT`], for host-network pods.
    HostNetWebServer,
    /// `User` `1002` (no passwd entry).
    UserUid,
    /// `User` `1003:1004`.
    UserUidGroup,
    /// `User` `www-data` (uid 33 in the image's passwd).
    UserUsername,
    /// `User` `www-data:users`.
    UserUsernameGroup,
    /// `User` `1000`, a passwd user in the image-defined group 50000.
    PredefinedGroup,
    /// One image pushed under three tags.
    Tags,
    /// An image referenced by its manifest digest.
    Digest,
    /// Distinct image number n (1-based, up to [`DISTINCT_IMAGES`]): its own layer.
    Distinct(u32),
}

impl TestImageKind {
    /// Every image of the catalogue.
    pub fn all() -> Vec<TestImageKind> {
        let mut all = vec![
            TestImageKind::Busybox,
            TestImageKind::WebServer,
            TestImageKind::HostNetWebServer,
            TestImageKind::UserUid,
            TestImageKind::UserUidGroup,
            TestImageKind::UserUsername,
            TestImageKind::UserUsernameGroup,
            TestImageKind::PredefinedGroup,
            TestImageKind::Tags,
            TestImageKind::Digest,
        ];
        all.extend((1..=DISTINCT_IMAGES).map(TestImageKind::Distinct));
        all
    }

    /// The repository name under the prefix (`busybox`, `user-uid`, `distinct-1`, ...).
    pub fn name(self) -> String {
        match self {
            TestImageKind::Busybox => "busybox".into(),
            TestImageKind::WebServer => "webserver".into(),
            TestImageKind::HostNetWebServer => "hostnet-webserver".into(),
            TestImageKind::UserUid => "user-uid".into(),
            TestImageKind::UserUidGroup => "user-uid-group".into(),
            TestImageKind::UserUsername => "user-username".into(),
            TestImageKind::UserUsernameGroup => "user-username-group".into(),
            TestImageKind::PredefinedGroup => "predefined-group".into(),
            TestImageKind::Tags => "tags".into(),
            TestImageKind::Digest => "digest".into(),
            TestImageKind::Distinct(n) => format!("distinct-{n}"),
        }
    }

    /// The tags it is pushed under (`1.0`; `1`, `2`, `3` for [`TestImageKind::Tags`]).
    pub fn tags(self) -> Vec<String> {
        match self {
            TestImageKind::Tags => vec!["1".into(), "2".into(), "3".into()],
            _ => vec!["1.0".into()],
        }
    }

    /// Its config.
    pub fn config(self) -> ImageConfig {
        let mut config = ImageConfig {
            env: vec![PATH_ENV.to_owned()],
            cmd: vec!["sh".into()],
            working_dir: Some("/".into()),
            labels: BTreeMap::from([(KIND_LABEL.to_owned(), self.name())]),
            ..Default::default()
        };
        let web = |config: &mut ImageConfig, port: u16| {
            config.cmd = ["httpd", "-f", "-p", &port.to_string(), "-h", "/www"]
                .map(String::from)
                .to_vec();
            config.exposed_ports = vec![format!("{port}/tcp")];
            config.working_dir = Some("/www".into());
        };
        match self {
            TestImageKind::WebServer => web(&mut config, WEB_SERVER_PORT),
            TestImageKind::HostNetWebServer => web(&mut config, HOST_NET_WEB_SERVER_PORT),
            TestImageKind::UserUid => config.user = Some(USER_UID.to_string()),
            TestImageKind::UserUidGroup => {
                config.user = Some(format!("{}:{}", USER_UID_GROUP.0, USER_UID_GROUP.1));
            }
            TestImageKind::UserUsername => config.user = Some(USERNAME.into()),
            TestImageKind::UserUsernameGroup => {
                config.user = Some(format!("{}:{}", USERNAME_GROUP.0, USERNAME_GROUP.1));
            }
            TestImageKind::PredefinedGroup => config.user = Some(PREDEFINED_GROUP_UID.to_string()),
            _ => {}
        }
        config
    }

    /// The layer it adds on top of the busybox base, if any.
    fn extra_layer(self) -> Result<Option<LayerBuilder>> {
        let mut layer = LayerBuilder::new();
        match self {
            TestImageKind::WebServer | TestImageKind::HostNetWebServer => {
                layer.file("www/index.html", 0o644, WEB_SERVER_PAGE)?;
            }
            TestImageKind::Distinct(0) => {
                return Err(anycri_core::Error::invalid_argument(
                    "distinct images are numbered from 1",
                ));
            }
            TestImageKind::Distinct(n) => {
                layer.file(DISTINCT_FILE, 0o644, format!("{n}\n"))?;
            }
            _ => return Ok(None),
        }
        Ok(Some(layer))
    }
}

/// An image of the catalogue, assembled.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// Which image.
    pub kind: TestImageKind,
    /// The repository name under the prefix.
    pub name: String,
    /// The tags to push it under.
    pub tags: Vec<String>,
    /// The image.
    pub image: Image,
}

/// Build every image of the catalogue from `busybox` for the host's architecture. The
/// base layer is built once and shared; the web servers share their page layer.
pub fn build_all(busybox: &Busybox, format: ManifestFormat) -> Result<Vec<BuiltImage>> {
    build(busybox, format, &TestImageKind::all())
}

/// Build the images `kinds` from `busybox` for the host's architecture. Any number of
/// distinct images may be asked for (`Distinct(1..=n)`), e.g. by a benchmark.
pub fn build(
    busybox: &Busybox,
    format: ManifestFormat,
    kinds: &[TestImageKind],
) -> Result<Vec<BuiltImage>> {
    build_variant(busybox, format, kinds, None)
}

/// Like [`build`], with [`VARIANT_LABEL`] set to `variant` in every config: the same images
/// with their own image IDs (the layers are shared), for a user who must not share image IDs
/// with another user of the same runtime (removing an image removes it by ID).
pub fn build_variant(
    busybox: &Busybox,
    format: ManifestFormat,
    kinds: &[TestImageKind],
    variant: Option<&str>,
) -> Result<Vec<BuiltImage>> {
    let base = busybox.rootfs()?.finish()?;
    let mut extra: BTreeMap<TestImageKind, Layer> = BTreeMap::new();
    let mut built = Vec::with_capacity(kinds.len());
    for &kind in kinds {
        let mut layers = vec![base.clone()];
        if let Some(builder) = kind.extra_layer()? {
            // both web servers have the same page layer: build it once
            let key = match kind {
                TestImageKind::HostNetWebServer => TestImageKind::WebServer,
                k => k,
            };
            let layer = match extra.get(&key) {
                Some(l) => l.clone(),
                None => {
                    let l = builder.finish()?;
                    extra.insert(key, l.clone());
                    l
                }
            };
            layers.push(layer);
        }
        let mut config = kind.config();
        if let Some(variant) = variant {
            config
                .labels
                .insert(VARIANT_LABEL.to_owned(), variant.to_owned());
        }
        let image = Image::assemble(&layers, &config, host_architecture(), format)?;
        built.push(BuiltImage {
            kind,
            name: kind.name(),
            tags: kind.tags(),
            image,
        });
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn busybox() -> Busybox {
        Busybox::from_parts(
            &b"fake busybox"[..],
            vec!["bin/sh".into(), "usr/sbin/httpd".into()],
        )
        .unwrap()
    }

    #[test]
    fn every_kind_has_its_own_image_and_the_base_is_shared() {
        let images = build_all(&busybox(), ManifestFormat::Oci).unwrap();
        assert_eq!(images.len(), TestImageKind::all().len());
        let ids: HashSet<_> = images.iter().map(|b| b.image.id().clone()).collect();
        assert_eq!(ids.len(), images.len(), "image IDs must differ");
        let names: HashSet<_> = images.iter().map(|b| b.name.clone()).collect();
        assert_eq!(names.len(), images.len());
        let base = &images[0].image.layers[0].digest;
        assert!(images.iter().all(|b| &b.image.layers[0].digest == base));
        let web = images
            .iter()
            .find(|b| b.kind == TestImageKind::WebServer)
            .unwrap();
        let hostnet = images
            .iter()
            .find(|b| b.kind == TestImageKind::HostNetWebServer)
            .unwrap();
        assert_eq!(web.image.layers[1].digest, hostnet.image.layers[1].digest);
        let d1 = images
            .iter()
            .find(|b| b.kind == TestImageKind::Distinct(1))
            .unwrap();
        let d2 = images
            .iter()
            .find(|b| b.kind == TestImageKind::Distinct(2))
            .unwrap();
        assert_ne!(d1.image.layers[1].digest, d2.image.layers[1].digest);
        let tags = images
            .iter()
            .find(|b| b.kind == TestImageKind::Tags)
            .unwrap();
        assert_eq!(tags.tags, ["1", "2", "3"]);
    }

    #[test]
    fn variants_have_their_own_ids_and_the_same_layers() {
        let kinds = [TestImageKind::Busybox, TestImageKind::Distinct(7)];
        let plain = build(&busybox(), ManifestFormat::Oci, &kinds).unwrap();
        let variant = build_variant(&busybox(), ManifestFormat::Oci, &kinds, Some("live")).unwrap();
        for (a, b) in plain.iter().zip(&variant) {
            assert_ne!(a.image.id(), b.image.id());
            assert_eq!(a.image.layers, b.image.layers);
        }
        assert_eq!(variant[1].name, "distinct-7");
        let err = build(
            &busybox(),
            ManifestFormat::Oci,
            &[TestImageKind::Distinct(0)],
        )
        .unwrap_err();
        assert_eq!(err.kind(), anycri_core::ErrorKind::InvalidArgument);
    }

    #[test]
    fn builds_are_reproducible() {
        let one = build_all(&busybox(), ManifestFormat::Oci).unwrap();
        let two = build_all(&busybox(), ManifestFormat::Oci).unwrap();
        for (a, b) in one.iter().zip(&two) {
            assert_eq!(a.image.digest(), b.image.digest(), "{}", a.name);
            assert_eq!(a.image.manifest.data, b.image.manifest.data);
        }
    }

    #[test]
    fn configs_carry_users_and_web_server_settings() {
        let user = |k: TestImageKind| k.config().user;
        assert_eq!(user(TestImageKind::Busybox), None);
        assert_eq!(user(TestImageKind::UserUid).as_deref(), Some("1002"));
        assert_eq!(
            user(TestImageKind::UserUidGroup).as_deref(),
            Some("1003:1004")
        );
        assert_eq!(
            user(TestImageKind::UserUsername).as_deref(),
            Some("www-data")
        );
        assert_eq!(
            user(TestImageKind::UserUsernameGroup).as_deref(),
            Some("www-data:users")
        );
        assert_eq!(
            user(TestImageKind::PredefinedGroup).as_deref(),
            Some("1000")
        );
        let web = TestImageKind::WebServer.config();
        assert_eq!(web.cmd, ["httpd", "-f", "-p", "80", "-h", "/www"]);
        assert_eq!(web.exposed_ports, ["80/tcp"]);
        let hostnet = TestImageKind::HostNetWebServer.config();
        assert_eq!(hostnet.exposed_ports, ["12003/tcp"]);
        assert!(
            TestImageKind::all()
                .iter()
                .all(|k| k.config().labels[KIND_LABEL] == k.name())
        );
    }
}
