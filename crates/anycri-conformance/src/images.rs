//! The images the checks run, in one struct so that the images crate (which builds and
//! pushes a full set) plugs in by filling it. Defaults come from the live environment
//! (`ANYCRI_TEST_IMAGE`, `ANYCRI_PULL_IMAGE`, ... in the process environment or in
//! `$ANYCRI_ENV_DIR/env`), from a registry prefix, or from a critest-style YAML file.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A kind of test image a check may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// A busybox-like userland every container runs (always set).
    Busybox,
    /// An image that image checks pull and remove; nothing else uses it.
    Pull,
    /// The repository of an image with a `latest` tag, named without a tag.
    Untagged,
    /// An image whose config sets `USER` to a numeric UID.
    User,
    /// An image whose config sets `USER` to `uid:gid`.
    UserGroup,
    /// An image whose config sets `USER` to a user name from its `/etc/passwd`.
    NamedUser,
    /// Several tags of one image that only the image checks use.
    MultiTag,
}

impl ImageKind {
    /// A short description for skip reasons.
    pub fn describe(self) -> &'static str {
        match self {
            ImageKind::Busybox => "busybox-like",
            ImageKind::Pull => "pull-only",
            ImageKind::Untagged => "untagged-repository",
            ImageKind::User => "USER=uid",
            ImageKind::UserGroup => "USER=uid:gid",
            ImageKind::NamedUser => "USER=name",
            ImageKind::MultiTag => "several-tags",
        }
    }
}

/// The image references of a run. Field names in the YAML file are camelCase;
/// `defaultTestContainerImage` is critest's name for `busybox`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TestImages {
    /// The busybox-like image every container runs (critest's `defaultTestContainerImage`).
    #[serde(alias = "defaultTestContainerImage")]
    pub busybox: String,
    /// An image that only the image checks pull and remove.
    pub pull: Option<String>,
    /// A repository with a `latest` tag, named without a tag (it is pulled, not removed).
    pub untagged: Option<String>,
    /// An image with `USER <uid>`; the expected UID.
    pub user: Option<(String, i64)>,
    /// An image with `USER <uid>:<gid>`; the expected UID and GID.
    pub user_group: Option<(String, i64, i64)>,
    /// An image with `USER <name>`; the expected UID.
    pub named_user: Option<(String, i64)>,
    /// Several tags of one image that only the image checks use (and remove).
    pub multi_tag: Vec<String>,
}

impl TestImages {
    /// The reference configured for `kind`, if any.
    pub fn get(&self, kind: ImageKind) -> Option<&str> {
        match kind {
            ImageKind::Busybox => (!self.busybox.is_empty()).then_some(self.busybox.as_str()),
            ImageKind::Pull => self.pull.as_deref(),
            ImageKind::Untagged => self.untagged.as_deref(),
            ImageKind::User => self.user.as_ref().map(|u| u.0.as_str()),
            ImageKind::UserGroup => self.user_group.as_ref().map(|u| u.0.as_str()),
            ImageKind::NamedUser => self.named_user.as_ref().map(|u| u.0.as_str()),
            ImageKind::MultiTag => self.multi_tag.first().map(String::as_str),
        }
    }

    /// anycri's test images under `prefix` (a registry host, maybe with a path): the images
    /// `scripts/runtime-env` pushes (`<prefix>/anycri/busybox:1.0`, `.../pulltest:1.0`).
    pub fn with_registry_prefix(prefix: &str) -> Self {
        let p = prefix.trim_end_matches('/');
        TestImages {
            busybox: format!("{p}/anycri/busybox:1.0"),
            pull: Some(format!("{p}/anycri/pulltest:1.0")),
            untagged: Some(format!("{p}/anycri/busybox")),
            ..Default::default()
        }
    }

    /// The images of the live environment: `ANYCRI_TEST_IMAGE`, `ANYCRI_PULL_IMAGE` and
    /// `REGISTRY` from the process environment or `$ANYCRI_ENV_DIR/env`
    /// (default `/var/tmp/anycri-env`); None without a test image.
    pub fn from_environment() -> Option<Self> {
        let busybox = env_value("ANYCRI_TEST_IMAGE")?;
        let untagged = busybox
            .rsplit_once(':')
            .filter(|(repo, tag)| !tag.contains('/') && !repo.is_empty())
            .map(|(repo, _)| repo.to_owned());
        Some(TestImages {
            busybox,
            pull: env_value("ANYCRI_PULL_IMAGE"),
            untagged,
            ..Default::default()
        })
    }

    /// Read a YAML file (critest's `--test-images-file` keys are accepted).
    pub fn from_file(path: &Path) -> anycri::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anycri::Error::with_source(
                anycri::ErrorKind::InvalidArgument,
                format!("reading test images file {}", path.display()),
                e,
            )
        })?;
        Self::from_yaml(&text)
            .map_err(|e| e.context(format!("test images file {}", path.display())))
    }

    /// Parse the YAML text of a test images file.
    pub fn from_yaml(text: &str) -> anycri::Result<Self> {
        let images: TestImages = serde_yaml_ng::from_str(text).map_err(|e| {
            anycri::Error::with_source(
                anycri::ErrorKind::InvalidArgument,
                "invalid test images YAML",
                e,
            )
        })?;
        if images.busybox.is_empty() {
            return Err(anycri::Error::invalid_argument(
                "the test images file must set busybox (or defaultTestContainerImage)",
            ));
        }
        Ok(images)
    }

    /// Apply `other`'s set fields over these.
    pub fn merge(&mut self, other: TestImages) {
        if !other.busybox.is_empty() {
            self.busybox = other.busybox;
        }
        self.pull = other.pull.or(self.pull.take());
        self.untagged = other.untagged.or(self.untagged.take());
        self.user = other.user.or(self.user.take());
        self.user_group = other.user_group.or(self.user_group.take());
        self.named_user = other.named_user.or(self.named_user.take());
        if !other.multi_tag.is_empty() {
            self.multi_tag = other.multi_tag;
        }
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

    #[test]
    fn critest_yaml_keys() {
        let images = TestImages::from_yaml(
            "defaultTestContainerImage: reg/busybox:1\npull: reg/p:1\nuser: [reg/u:1, 1000]\nmultiTag: [reg/m:1, reg/m:2]\n",
        )
        .unwrap();
        assert_eq!(images.busybox, "reg/busybox:1");
        assert_eq!(images.get(ImageKind::Pull), Some("reg/p:1"));
        assert_eq!(images.user, Some(("reg/u:1".into(), 1000)));
        assert_eq!(images.get(ImageKind::MultiTag), Some("reg/m:1"));
        assert_eq!(images.get(ImageKind::NamedUser), None);
    }

    #[test]
    fn yaml_without_busybox_is_invalid() {
        let err = TestImages::from_yaml("pull: x\n").unwrap_err();
        assert_eq!(err.kind(), anycri::ErrorKind::InvalidArgument);
        assert!(TestImages::from_yaml("[not a map").is_err());
    }

    #[test]
    fn registry_prefix() {
        let images = TestImages::with_registry_prefix("10.0.0.1:5000/");
        assert_eq!(images.busybox, "10.0.0.1:5000/anycri/busybox:1.0");
        assert_eq!(
            images.untagged.as_deref(),
            Some("10.0.0.1:5000/anycri/busybox")
        );
    }
}
