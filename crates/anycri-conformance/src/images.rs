//! The images the checks run: anycri-images' [`TestImages`] (built from busybox-static and
//! pushed by [`push_test_images`]), read from its JSON file or critest's YAML, named under a
//! registry prefix, or taken from the live environment (`ANYCRI_TEST_IMAGE`,
//! `ANYCRI_PULL_IMAGE` in the process environment or `$ANYCRI_ENV_DIR/env`). Each check names
//! the [`ImageKind`] it needs; a set without that image makes the check skip, with the reason.

use std::path::{Path, PathBuf};

pub use anycri_images::{ImageRef, TestImages};
use anycri_images::{ManifestFormat, RegistryClient, TestImageKind};

/// The tag [`push_test_images`] adds to the second distinct image, so that a reference
/// without a tag (meaning `latest`) resolves.
pub const LATEST: &str = "latest";

/// A kind of test image a check may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// A busybox-like userland every container runs (always set).
    Busybox,
    /// An image that image checks pull and remove; nothing else uses it (the first
    /// distinct image).
    Pull,
    /// A repository with a `latest` tag, named without a tag.
    Untagged,
    /// An image to pull by its manifest digest.
    Digest,
    /// An image whose config sets `USER` to a numeric UID.
    User,
    /// An image whose config sets `USER` to `uid:gid`.
    UserGroup,
    /// An image whose config sets `USER` to a user name from its `/etc/passwd`.
    NamedUser,
    /// An image whose config sets `USER` to `name:group`.
    NamedUserGroup,
    /// An image whose user belongs to a group defined only in the image's `/etc/group`.
    PredefinedGroup,
    /// One image under several tags that only the image checks use.
    MultiTag,
    /// A web server image serving a known page on port 80 with its own command.
    WebServer,
    /// Two or more images with distinct content and IDs.
    Distinct,
}

impl ImageKind {
    /// A short description for skip reasons.
    pub fn describe(self) -> &'static str {
        match self {
            ImageKind::Busybox => "busybox-like",
            ImageKind::Pull => "pull-only (first distinct)",
            ImageKind::Untagged => "`latest`-tagged",
            ImageKind::Digest => "by-digest",
            ImageKind::User => "USER=uid",
            ImageKind::UserGroup => "USER=uid:gid",
            ImageKind::NamedUser => "USER=name",
            ImageKind::NamedUserGroup => "USER=name:group",
            ImageKind::PredefinedGroup => "image-defined-group",
            ImageKind::MultiTag => "several-tags",
            ImageKind::WebServer => "web server",
            ImageKind::Distinct => "two distinct",
        }
    }
}

/// The image of `kind` in `images`, if the set has one (for [`ImageKind::Untagged`], the
/// image with a `latest` tag; for [`ImageKind::Distinct`], the first of at least two).
pub fn image(images: &TestImages, kind: ImageKind) -> Option<&ImageRef> {
    fn with_user(r: Option<&ImageRef>) -> Option<&ImageRef> {
        r.filter(|r| r.user.is_some())
    }
    match kind {
        ImageKind::Busybox => Some(&images.busybox),
        ImageKind::Pull => images.distinct.first(),
        ImageKind::Untagged => images
            .iter()
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| r.tags.iter().any(|t| t == LATEST)),
        ImageKind::Digest => images.digest.as_ref(),
        ImageKind::User => with_user(images.user_uid.as_ref()),
        ImageKind::UserGroup => with_user(images.user_uid_group.as_ref()),
        ImageKind::NamedUser => with_user(images.user_username.as_ref()),
        ImageKind::NamedUserGroup => with_user(images.user_username_group.as_ref()),
        ImageKind::PredefinedGroup => images.predefined_group.as_ref(),
        ImageKind::MultiTag => images.tags.as_ref().filter(|r| r.tags.len() > 1),
        ImageKind::WebServer => images.web_server.as_ref(),
        ImageKind::Distinct => images
            .distinct
            .first()
            .filter(|_| images.distinct.len() > 1),
    }
}

/// The default reference of `kind`'s image (the bare repository for
/// [`ImageKind::Untagged`]).
pub fn reference(images: &TestImages, kind: ImageKind) -> Option<String> {
    let r = image(images, kind)?;
    Some(match kind {
        ImageKind::Untagged => r.repository.clone(),
        _ => r.reference(),
    })
}

/// A set with only a busybox image.
pub fn busybox_only(reference: &str) -> anycri::Result<TestImages> {
    TestImages::parse(&format!("defaultTestContainerImage: {reference:?}\n"))
}

/// The images of the live environment: `ANYCRI_TEST_IMAGE` (which `scripts/runtime-env`
/// pushes as `:1.0` and `:latest`) and `ANYCRI_PULL_IMAGE` (the same files under another
/// image ID: a distinct image), from the process environment or `$ANYCRI_ENV_DIR/env`
/// (default `/var/tmp/anycri-env`). None without a test image.
pub fn from_environment() -> Option<TestImages> {
    let mut images = busybox_only(&env_value("ANYCRI_TEST_IMAGE")?).ok()?;
    if images.busybox.tags.len() == 1 && images.busybox.digest.is_none() {
        images.busybox.tags.push(LATEST.to_owned());
    }
    if let Some(pull) = env_value("ANYCRI_PULL_IMAGE").and_then(|p| ImageRef::parse(&p).ok()) {
        images.distinct.push(pull);
    }
    Some(images)
}

/// anycri's catalogue of test images as references under `prefix` (critest's
/// `--registry-prefix`: `127.0.0.1:5000/anycri-conformance` names what
/// `anycri conformance images --push 127.0.0.1:5000` pushed), without digests or IDs: only
/// the registry knows those.
pub fn with_registry_prefix(prefix: &str) -> TestImages {
    let p = prefix.trim_end_matches('/');
    let refs = |kind: TestImageKind| {
        let mut tags = kind.tags();
        if kind == TestImageKind::Distinct(2) {
            tags.push(LATEST.to_owned());
        }
        ImageRef {
            repository: if p.is_empty() {
                kind.name()
            } else {
                format!("{p}/{}", kind.name())
            },
            tags,
            digest: None,
            id: None,
            user: kind.config().user,
        }
    };
    TestImages {
        busybox: refs(TestImageKind::Busybox),
        web_server: Some(refs(TestImageKind::WebServer)),
        host_net_web_server: Some(refs(TestImageKind::HostNetWebServer)),
        user_uid: Some(refs(TestImageKind::UserUid)),
        user_uid_group: Some(refs(TestImageKind::UserUidGroup)),
        user_username: Some(refs(TestImageKind::UserUsername)),
        user_username_group: Some(refs(TestImageKind::UserUsernameGroup)),
        predefined_group: Some(refs(TestImageKind::PredefinedGroup)),
        tags: Some(refs(TestImageKind::Tags)),
        digest: Some(refs(TestImageKind::Digest)),
        distinct: (1..=anycri_images::catalog::DISTINCT_IMAGES)
            .map(|n| refs(TestImageKind::Distinct(n)))
            .collect(),
    }
}

/// Build every test image from busybox-static (or the binary at `busybox`) and push it to
/// `registry` (`host:port`, plain HTTP) under `prefix` (a namespace, or `host/namespace`; see
/// `anycri_images::ImagePrefix`). The second distinct image is also tagged `latest`, for the
/// check that pulls a reference without a tag. Pushing again is cheap: every blob is there.
pub async fn push_test_images(
    registry: &str,
    prefix: &str,
    busybox: Option<PathBuf>,
    format: ManifestFormat,
) -> anycri::Result<TestImages> {
    let client = RegistryClient::new(registry)?;
    let mut built = anycri_images::build_images(busybox, format).await?;
    for b in &mut built {
        if b.kind == TestImageKind::Distinct(2) && !b.tags.iter().any(|t| t == LATEST) {
            b.tags.push(LATEST.to_owned());
        }
    }
    anycri_images::push_all(&client, prefix, &built)
        .await
        .map_err(|e| e.context(format!("pushing the test images to {registry}")))
}

/// Read a test images file: anycri-images' JSON (`busybox`, `web_server`, ... with digests
/// and IDs) replaces `base`; critest's `--test-images-file` YAML
/// (`defaultTestContainerImage`, `webServerTestImage`) names two images, which override
/// `base`'s (or make the whole set when there is no base).
pub fn read_file(path: &Path, base: Option<TestImages>) -> anycri::Result<TestImages> {
    let read = TestImages::read(path)?;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let critest = !text.trim_start().starts_with('{')
        && serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text)
            .ok()
            .is_some_and(|v| v.get("busybox").is_none());
    match base {
        Some(mut base) if critest => {
            let list = anycri_images::CritestImageList::from_yaml(&text)
                .map_err(|e| e.context(path.display()))?;
            base.apply_critest(&list)
                .map_err(|e| e.context(path.display()))?;
            Ok(base)
        }
        _ => Ok(read),
    }
}

/// A value from the process environment, else from the live environment's file.
pub(crate) fn env_value(key: &str) -> Option<String> {
    if let Ok(v) = std::env::var(key)
        && !v.is_empty()
    {
        return Some(v);
    }
    let dir = std::env::var("ANYCRI_ENV_DIR").unwrap_or_else(|_| "/var/tmp/anycri-env".into());
    let text = std::fs::read_to_string(Path::new(&dir).join("env")).ok()?;
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "anycri-conformance-images-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn registry_prefix_names_the_whole_catalogue() {
        let images = with_registry_prefix("10.0.0.1:5000/ns/");
        assert_eq!(images.busybox.reference(), "10.0.0.1:5000/ns/busybox:1.0");
        assert_eq!(
            reference(&images, ImageKind::Untagged).as_deref(),
            Some("10.0.0.1:5000/ns/distinct-2")
        );
        assert_eq!(
            reference(&images, ImageKind::Pull).as_deref(),
            Some("10.0.0.1:5000/ns/distinct-1:1.0")
        );
        assert_eq!(
            image(&images, ImageKind::MultiTag).unwrap().tagged().len(),
            3
        );
        assert_eq!(
            image(&images, ImageKind::NamedUserGroup)
                .unwrap()
                .user
                .as_deref(),
            Some("www-data:users")
        );
        assert!(image(&images, ImageKind::Distinct).is_some());
    }

    #[test]
    fn critest_yaml_alone_gives_two_images() {
        let path = temp_file(
            "critest.yaml",
            "defaultTestContainerImage: reg/busybox:1\nwebServerTestImage: reg/nginx:1\n",
        );
        let images = read_file(&path, None).unwrap();
        assert_eq!(images.busybox.reference(), "reg/busybox:1");
        assert!(image(&images, ImageKind::WebServer).is_some());
        for kind in [
            ImageKind::Pull,
            ImageKind::Untagged,
            ImageKind::Digest,
            ImageKind::User,
            ImageKind::MultiTag,
            ImageKind::Distinct,
        ] {
            assert!(image(&images, kind).is_none(), "{kind:?}");
        }
        // Over a full set, it overrides only its two images.
        let over = read_file(&path, Some(with_registry_prefix("r:1/x"))).unwrap();
        assert_eq!(over.busybox.reference(), "reg/busybox:1");
        assert_eq!(over.web_server.as_ref().unwrap().reference(), "reg/nginx:1");
        assert!(image(&over, ImageKind::User).is_some());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn json_file_replaces_the_base() {
        let full = with_registry_prefix("r:1/x");
        let path = temp_file("images.json", &full.to_json().unwrap());
        let read = read_file(&path, Some(with_registry_prefix("other:1"))).unwrap();
        assert_eq!(read, full);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn bad_files_are_invalid_arguments() {
        let path = temp_file("bad.yaml", "pull: x\n");
        let err = read_file(&path, None).unwrap_err();
        assert_eq!(err.kind(), anycri::ErrorKind::InvalidArgument);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        let err = read_file(Path::new("/nonexistent/images.yaml"), None).unwrap_err();
        assert_eq!(err.kind(), anycri::ErrorKind::NotFound);
    }

    #[test]
    fn busybox_only_has_no_other_kind() {
        let images = busybox_only("reg/busybox:1.0").unwrap();
        assert_eq!(
            reference(&images, ImageKind::Busybox).as_deref(),
            Some("reg/busybox:1.0")
        );
        assert!(image(&images, ImageKind::Untagged).is_none());
        assert!(busybox_only("bad ref").is_err());
    }
}
