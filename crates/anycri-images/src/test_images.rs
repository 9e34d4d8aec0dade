//! [`TestImages`]: the references (by tag and by digest) of every test image, as the
//! conformance suite and the benchmarks consume them. It is written to and read from a JSON
//! file, and can also be read from critest's `--test-images-file` YAML
//! (`defaultTestContainerImage`, `webServerTestImage`), which names only two images: the
//! others are then absent, and checks that need them report themselves as skipped.

use std::path::Path;

use anycri_core::{Error, ErrorKind, Result, image_ref};
use serde::{Deserialize, Serialize};

use crate::catalog::{BuiltImage, TestImageKind};
use crate::image::Digest;

/// One image: its repository, tags, manifest digest, image ID and configured user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// The repository, with its registry host (`127.0.0.1:5000/anycri-conformance/busybox`).
    pub repository: String,
    /// Its tags (`1.0`), first one the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The manifest digest, for `repository@digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// The image ID (config digest) runtimes report for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Digest>,
    /// The `User` of its config, if it sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl ImageRef {
    /// Parse a reference `repository[:tag][@sha256:...]` (only what the reference says is
    /// known: no ID, no user).
    pub fn parse(reference: &str) -> Result<ImageRef> {
        let reference = reference.trim();
        // Checked by the one parser of references; the parts are kept as written (a test
        // image's name is what the suite and the reports show).
        if let image_ref::ImageRef::Id(_) = image_ref::parse_reference(reference)? {
            return Err(Error::invalid_argument(format!(
                "not an image reference but an image ID: {reference:?}"
            )));
        }
        let written = image_ref::Written::split(reference);
        let digest = written.digest.map(Digest::parse).transpose()?;
        Ok(ImageRef {
            repository: written.name.to_owned(),
            tags: written.tag.map(|t| vec![t.to_owned()]).unwrap_or_default(),
            digest,
            id: None,
            user: None,
        })
    }

    /// The default reference: `repository:<first tag>`, else `repository@digest`, else the
    /// bare repository (which runtimes complete with `:latest`).
    pub fn reference(&self) -> String {
        match (self.tags.first(), &self.digest) {
            (Some(tag), _) => format!("{}:{tag}", self.repository),
            (None, Some(digest)) => format!("{}@{digest}", self.repository),
            (None, None) => self.repository.clone(),
        }
    }

    /// `repository:tag` for each tag.
    pub fn tagged(&self) -> Vec<String> {
        self.tags
            .iter()
            .map(|t| format!("{}:{t}", self.repository))
            .collect()
    }

    /// `repository@digest`, if the digest is known.
    pub fn by_digest(&self) -> Option<String> {
        self.digest
            .as_ref()
            .map(|d| format!("{}@{d}", self.repository))
    }

    /// Every reference: each tag, then the digest form.
    pub fn all_references(&self) -> Vec<String> {
        let mut all = self.tagged();
        all.extend(self.by_digest());
        if all.is_empty() {
            all.push(self.repository.clone());
        }
        all
    }
}

/// The images the conformance suite and the benchmarks use. Only `busybox` is required;
/// an absent image makes the checks that need it skip, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestImages {
    /// A busybox userland (critest's default test container image).
    pub busybox: ImageRef,
    /// A web server on port 80 serving [`crate::WEB_SERVER_PAGE`] (critest's web server image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_server: Option<ImageRef>,
    /// A web server on port 12003, for host-network pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_net_web_server: Option<ImageRef>,
    /// `User` 1002.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_uid: Option<ImageRef>,
    /// `User` 1003:1004.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_uid_group: Option<ImageRef>,
    /// `User` www-data (uid 33).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_username: Option<ImageRef>,
    /// `User` www-data:users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_username_group: Option<ImageRef>,
    /// `User` 1000, member of group 50000 defined in the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predefined_group: Option<ImageRef>,
    /// One image under several tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<ImageRef>,
    /// An image to pull by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<ImageRef>,
    /// Images with distinct content and IDs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distinct: Vec<ImageRef>,
}

/// critest's `--test-images-file` format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CritestImageList {
    /// `defaultTestContainerImage`: a busybox-like image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_test_container_image: String,
    /// `webServerTestImage`: a web server on port 80.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub web_server_test_image: String,
}

impl CritestImageList {
    /// Parse critest's YAML (unknown keys are ignored, as critest does).
    pub fn from_yaml(text: &str) -> Result<CritestImageList> {
        serde_yaml_ng::from_str(text).map_err(|e| {
            Error::with_source(
                ErrorKind::InvalidArgument,
                "not a critest test-images file",
                e,
            )
        })
    }

    /// critest's YAML.
    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml_ng::to_string(self).map_err(|e| {
            Error::with_source(
                ErrorKind::Internal,
                "encoding a critest test-images file",
                e,
            )
        })
    }
}

impl TestImages {
    /// The references of `images` pushed under `reference_prefix` (registry host and
    /// namespace, `127.0.0.1:5000/anycri-conformance`). None without a busybox image.
    pub fn from_built(reference_prefix: &str, images: &[BuiltImage]) -> Option<TestImages> {
        let prefix = reference_prefix.trim_end_matches('/');
        let refs = |kind: TestImageKind| {
            images.iter().find(|b| b.kind == kind).map(|b| ImageRef {
                repository: if prefix.is_empty() {
                    b.name.clone()
                } else {
                    format!("{prefix}/{}", b.name)
                },
                tags: b.tags.clone(),
                digest: Some(b.image.digest().clone()),
                id: Some(b.image.id().clone()),
                user: b.image.user.clone(),
            })
        };
        let mut distinct: Vec<(u32, ImageRef)> = images
            .iter()
            .filter_map(|b| match b.kind {
                TestImageKind::Distinct(n) => refs(b.kind).map(|r| (n, r)),
                _ => None,
            })
            .collect();
        distinct.sort_by_key(|(n, _)| *n);
        Some(TestImages {
            busybox: refs(TestImageKind::Busybox)?,
            web_server: refs(TestImageKind::WebServer),
            host_net_web_server: refs(TestImageKind::HostNetWebServer),
            user_uid: refs(TestImageKind::UserUid),
            user_uid_group: refs(TestImageKind::UserUidGroup),
            user_username: refs(TestImageKind::UserUsername),
            user_username_group: refs(TestImageKind::UserUsernameGroup),
            predefined_group: refs(TestImageKind::PredefinedGroup),
            tags: refs(TestImageKind::Tags),
            digest: refs(TestImageKind::Digest),
            distinct: distinct.into_iter().map(|(_, r)| r).collect(),
        })
    }

    /// The image of `kind`, if present.
    pub fn get(&self, kind: TestImageKind) -> Option<&ImageRef> {
        match kind {
            TestImageKind::Busybox => Some(&self.busybox),
            TestImageKind::WebServer => self.web_server.as_ref(),
            TestImageKind::HostNetWebServer => self.host_net_web_server.as_ref(),
            TestImageKind::UserUid => self.user_uid.as_ref(),
            TestImageKind::UserUidGroup => self.user_uid_group.as_ref(),
            TestImageKind::UserUsername => self.user_username.as_ref(),
            TestImageKind::UserUsernameGroup => self.user_username_group.as_ref(),
            TestImageKind::PredefinedGroup => self.predefined_group.as_ref(),
            TestImageKind::Tags => self.tags.as_ref(),
            TestImageKind::Digest => self.digest.as_ref(),
            TestImageKind::Distinct(n) => {
                n.checked_sub(1).and_then(|i| self.distinct.get(i as usize))
            }
        }
    }

    /// Every present image with its kind.
    pub fn iter(&self) -> Vec<(TestImageKind, &ImageRef)> {
        let mut kinds = TestImageKind::all();
        kinds.retain(|k| !matches!(k, TestImageKind::Distinct(_)));
        kinds.extend((1..=self.distinct.len() as u32).map(TestImageKind::Distinct));
        kinds
            .into_iter()
            .filter_map(|k| self.get(k).map(|r| (k, r)))
            .collect()
    }

    /// Every reference of every image (tags and digest forms), e.g. to remove them all.
    pub fn all_references(&self) -> Vec<String> {
        self.iter()
            .into_iter()
            .flat_map(|(_, r)| r.all_references())
            .collect()
    }

    /// Images from critest's list: `defaultTestContainerImage` is required.
    pub fn from_critest(list: &CritestImageList) -> Result<TestImages> {
        if list.default_test_container_image.is_empty() {
            return Err(Error::invalid_argument(
                "the critest test-images file has no defaultTestContainerImage",
            ));
        }
        let mut images = TestImages {
            busybox: ImageRef::parse(&list.default_test_container_image)?,
            web_server: None,
            host_net_web_server: None,
            user_uid: None,
            user_uid_group: None,
            user_username: None,
            user_username_group: None,
            predefined_group: None,
            tags: None,
            digest: None,
            distinct: Vec::new(),
        };
        images.apply_critest(list)?;
        Ok(images)
    }

    /// Override the busybox and web server images with those `list` names (empty fields
    /// leave them as they are), as critest's flag does for its defaults.
    pub fn apply_critest(&mut self, list: &CritestImageList) -> Result<()> {
        if !list.default_test_container_image.is_empty() {
            self.busybox = ImageRef::parse(&list.default_test_container_image)?;
        }
        if !list.web_server_test_image.is_empty() {
            self.web_server = Some(ImageRef::parse(&list.web_server_test_image)?);
        }
        Ok(())
    }

    /// The list critest reads, to run critest against these images.
    pub fn to_critest(&self) -> CritestImageList {
        CritestImageList {
            default_test_container_image: self.busybox.reference(),
            web_server_test_image: self
                .web_server
                .as_ref()
                .map(ImageRef::reference)
                .unwrap_or_default(),
        }
    }

    /// As pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::with_source(ErrorKind::Internal, "encoding test images", e))
    }

    /// Parse the file contents: this crate's JSON (or the same as YAML), or critest's YAML.
    pub fn parse(text: &str) -> Result<TestImages> {
        let value: serde_yaml_ng::Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| {
                Error::with_source(
                    ErrorKind::InvalidArgument,
                    "test images file is not JSON",
                    e,
                )
            })?
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| {
                Error::with_source(
                    ErrorKind::InvalidArgument,
                    "test images file is not YAML",
                    e,
                )
            })?
        };
        let has = |key: &str| value.get(key).is_some();
        if has("busybox") {
            serde_yaml_ng::from_value(value).map_err(|e| {
                Error::with_source(ErrorKind::InvalidArgument, "invalid test images file", e)
            })
        } else if has("defaultTestContainerImage") || has("webServerTestImage") {
            let list: CritestImageList = serde_yaml_ng::from_value(value).map_err(|e| {
                Error::with_source(
                    ErrorKind::InvalidArgument,
                    "invalid critest test-images file",
                    e,
                )
            })?;
            TestImages::from_critest(&list)
        } else {
            Err(Error::invalid_argument(
                "test images file has neither `busybox` (anycri's format) nor \
                 `defaultTestContainerImage` (critest's format)",
            ))
        }
    }

    /// Read a file written by [`TestImages::write`], or a critest `--test-images-file`.
    pub fn read(path: impl AsRef<Path>) -> Result<TestImages> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::NotFound
            } else {
                ErrorKind::FailedPrecondition
            };
            Error::with_source(kind, format!("reading {}", path.display()), e)
        })?;
        TestImages::parse(&text).map_err(|e| e.context(path.display()))
    }

    /// Write as JSON to `path` (through a temporary file and a rename).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let tmp = path.with_extension("tmp");
        let io = |e: std::io::Error| {
            Error::with_source(
                ErrorKind::FailedPrecondition,
                format!("writing {}", path.display()),
                e,
            )
        };
        std::fs::write(&tmp, self.to_json()? + "\n").map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::busybox::Busybox;
    use crate::catalog::build_all;
    use crate::image::ManifestFormat;

    fn images() -> TestImages {
        let bb = Busybox::from_parts(&b"fake"[..], vec!["bin/sh".into()]).unwrap();
        let built = build_all(&bb, ManifestFormat::Oci).unwrap();
        TestImages::from_built("127.0.0.1:5000/anycri-conformance", &built).unwrap()
    }

    #[test]
    fn references() {
        let images = images();
        assert_eq!(
            images.busybox.reference(),
            "127.0.0.1:5000/anycri-conformance/busybox:1.0"
        );
        let tags = images.tags.as_ref().unwrap();
        assert_eq!(
            tags.tagged(),
            ["1", "2", "3"].map(|t| format!("127.0.0.1:5000/anycri-conformance/tags:{t}"))
        );
        let digest = images.digest.as_ref().unwrap();
        let by_digest = digest.by_digest().unwrap();
        assert!(by_digest.starts_with("127.0.0.1:5000/anycri-conformance/digest@sha256:"));
        assert_eq!(
            images.user_uid.as_ref().unwrap().user.as_deref(),
            Some("1002")
        );
        assert_eq!(images.distinct.len(), 2);
        assert_eq!(
            images.get(TestImageKind::Distinct(2)).unwrap().repository,
            "127.0.0.1:5000/anycri-conformance/distinct-2"
        );
        assert!(images.get(TestImageKind::Distinct(0)).is_none());
        assert_eq!(images.iter().len(), TestImageKind::all().len());
        // each image by each tag plus by digest
        assert_eq!(
            images.all_references().len(),
            TestImageKind::all().len() * 2 + 2
        );
    }

    #[test]
    fn json_round_trip_through_a_file() {
        let images = images();
        let dir = std::env::temp_dir().join(format!("anycri-images-rt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("images.json");
        images.write(&path).unwrap();
        let read = TestImages::read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(read, images);
        let json: serde_json::Value = serde_json::from_str(&images.to_json().unwrap()).unwrap();
        assert_eq!(json["user_username"]["user"], "www-data");
    }

    #[test]
    fn critest_yaml_maps_onto_test_images() {
        let yaml = "# critest\ndefaultTestContainerImage: \"registry.k8s.io/e2e-test-images/busybox:1.29-2\"\nwebServerTestImage: quay.io/crio/nginx:1.18\nsomethingElse: 1\n";
        let images = TestImages::parse(yaml).unwrap();
        assert_eq!(
            images.busybox.reference(),
            "registry.k8s.io/e2e-test-images/busybox:1.29-2"
        );
        assert_eq!(
            images.busybox.repository,
            "registry.k8s.io/e2e-test-images/busybox"
        );
        assert_eq!(
            images.web_server.as_ref().unwrap().reference(),
            "quay.io/crio/nginx:1.18"
        );
        assert!(images.user_uid.is_none());
        assert!(images.distinct.is_empty());
        // and back
        let list = images.to_critest();
        let again = CritestImageList::from_yaml(&list.to_yaml().unwrap()).unwrap();
        assert_eq!(again, list);
        assert_eq!(again.web_server_test_image, "quay.io/crio/nginx:1.18");

        // overriding our own images keeps the rest
        let mut ours = self::images();
        ours.apply_critest(&CritestImageList {
            default_test_container_image: "busybox:1.36".into(),
            web_server_test_image: String::new(),
        })
        .unwrap();
        assert_eq!(ours.busybox.reference(), "busybox:1.36");
        assert!(
            ours.web_server
                .as_ref()
                .unwrap()
                .repository
                .ends_with("/webserver")
        );
        assert!(ours.user_uid.is_some());
    }

    #[test]
    fn bad_files_are_invalid_arguments() {
        for bad in [
            "webServerTestImage: nginx\n",
            "{\"nothing\": 1}",
            "{not json",
            "- a\n- b\n",
            "defaultTestContainerImage: \"bad ref\"\n",
        ] {
            let err = TestImages::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}: {err}");
        }
        let err = TestImages::read("/nonexistent/images.json").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn reference_parsing() {
        let r = ImageRef::parse("127.0.0.1:5000/a/b").unwrap();
        assert_eq!(r.repository, "127.0.0.1:5000/a/b");
        assert!(r.tags.is_empty());
        let d = Digest::of(b"x");
        let r = ImageRef::parse(&format!("busybox:1@{d}")).unwrap();
        assert_eq!(r.tags, ["1"]);
        assert_eq!(r.digest.as_ref(), Some(&d));
        assert_eq!(r.by_digest().unwrap(), format!("busybox@{d}"));
        let r = ImageRef::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.reference(), format!("busybox@{d}"));
        for bad in ["", "busybox@sha256:zz", "busybox:", "a b:1"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Fuzz finding (image_refs): a repository with a ':' in its last component parsed, but
    /// its digest reference (`repository@digest`) then read the ':' as a tag and was refused.
    #[test]
    fn a_colon_in_the_last_component_is_not_a_repository() {
        let digest = "sha256:197cde1dc6171197c9b2a16177fbd8a6325f02e4351320c7bf29c3e17de1d837";
        let input = format!("127.0.0.1:5000{}:1.0@{digest}", "\u{fffd}".repeat(21));
        assert!(ImageRef::parse(&input).is_err(), "{input:?}");
        assert!(ImageRef::parse(&format!("127.0.0.1:5000:1.0@{digest}")).is_err());
        let r = ImageRef::parse(&format!("127.0.0.1:5000/busybox:1.0@{digest}")).unwrap();
        for each in r.all_references() {
            assert_eq!(ImageRef::parse(&each).unwrap().repository, r.repository);
        }
    }
}
