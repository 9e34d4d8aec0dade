//! The fake's image store: references normalised by [`anycri_core::image_ref`]
//! (`busybox` → `docker.io/library/busybox:latest`, as every runtime does), images found by
//! ID, ID prefix, tag or digest, tags removed one at a time, and every pull "succeeds" with an ID derived from the
//! reference so repeated pulls agree.

use std::hash::{DefaultHasher, Hash, Hasher};

use anycri_core::{
    Error, Result,
    api::Image,
    image_ref::{self, ImageRef, NamedRef},
};

/// `reference` as a repository reference (parsed by [`anycri_core::image_ref`]); a full image
/// ID names no repository and is found by ID only.
fn parse_reference(reference: &str) -> Result<NamedRef> {
    match image_ref::parse_reference(reference)? {
        ImageRef::Named(n) => Ok(n),
        ImageRef::Id(id) => Err(Error::not_found(format!(
            "image {id} is not present, and an image ID cannot be pulled"
        ))),
    }
}

fn sha(seed: &str) -> String {
    let mut out = String::from("sha256:");
    for round in 0..4u64 {
        let mut h = DefaultHasher::new();
        (seed, round).hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

#[derive(Debug, Default)]
pub(crate) struct ImageStore {
    images: Vec<Image>,
    /// The "registry": every `repo@digest` ever pulled and its image ID, so that a digest
    /// pulled again after a removal names the same image, as content addressing does.
    registry: std::collections::HashMap<String, String>,
}

impl ImageStore {
    fn find(&self, reference: &str) -> Option<usize> {
        let by_id = |img: &Image| {
            let hex = img.id.trim_start_matches("sha256:");
            let wanted = reference.trim_start_matches("sha256:");
            img.id == reference || (wanted.len() >= 12 && hex.starts_with(wanted))
        };
        if let Some(i) = self.images.iter().position(by_id) {
            return Some(i);
        }
        let r = parse_reference(reference).ok()?;
        self.images
            .iter()
            .position(|img| match (&r.tag, &r.digest) {
                (_, Some(d)) => img.repo_digests.contains(&format!("{}@{d}", r.repo)),
                (Some(t), None) => img.repo_tags.contains(&format!("{}:{t}", r.repo)),
                (None, None) => false,
            })
    }

    pub fn status(&self, reference: &str) -> Option<Image> {
        self.find(reference).map(|i| self.images[i].clone())
    }

    pub fn list(&self, filter: &str) -> Vec<Image> {
        if filter.is_empty() {
            return self.images.clone();
        }
        self.status(filter).into_iter().collect()
    }

    pub fn pull(&mut self, reference: &str) -> Result<String> {
        if let Ok(ImageRef::Id(id)) = image_ref::parse_reference(reference)
            && let Some(i) = self.find(&id)
        {
            return Ok(self.images[i].id.clone());
        }
        let r = parse_reference(reference)?;
        // RFC 2606 reserves `.invalid`: no registry there can ever answer.
        let host = r.repo.split('/').next().unwrap_or_default();
        if host
            .split(':')
            .next()
            .unwrap_or_default()
            .ends_with(".invalid")
        {
            return Err(Error::unavailable(format!(
                "pulling {reference:?}: registry {host} cannot be reached"
            )));
        }
        if let Some(i) = self.find(reference) {
            return Ok(self.images[i].id.clone());
        }
        let (id, digest) = match (&r.tag, &r.digest) {
            (_, Some(d)) => (
                self.registry
                    .get(&format!("{}@{d}", r.repo))
                    .cloned()
                    .unwrap_or_else(|| sha(&format!("config {}@{d}", r.repo))),
                d.clone(),
            ),
            (Some(t), None) => {
                let content = format!("{}:{t}", r.repo);
                (
                    sha(&format!("config {content}")),
                    sha(&format!("manifest {content}")),
                )
            }
            (None, None) => unreachable!("parse_reference always sets a tag or a digest"),
        };
        let tag = r.tag.as_ref().map(|t| format!("{}:{t}", r.repo));
        let repo_digest = format!("{}@{digest}", r.repo);
        self.registry.insert(repo_digest.clone(), id.clone());
        match self.images.iter_mut().find(|img| img.id == id) {
            Some(img) => {
                if let Some(tag) = tag.filter(|t| !img.repo_tags.contains(t)) {
                    img.repo_tags.push(tag);
                }
            }
            None => self.images.push(Image {
                id: id.clone(),
                repo_tags: tag.into_iter().collect(),
                repo_digests: vec![repo_digest],
                size: 1 << 20,
                ..Default::default()
            }),
        }
        Ok(id)
    }

    /// Remove by tag (only that tag while others remain), or the whole image by ID or digest.
    pub fn remove(&mut self, reference: &str) {
        let Some(i) = self.find(reference) else {
            return;
        };
        if let Ok(r) = parse_reference(reference)
            && r.digest.is_none()
            && let Some(tag) = r.tag.map(|t| format!("{}:{t}", r.repo))
            && self.images[i].repo_tags.contains(&tag)
            && self.images[i].repo_tags.len() > 1
        {
            self.images[i].repo_tags.retain(|t| t != &tag);
            return;
        }
        self.images.remove(i);
    }

    pub fn total_size(&self) -> u64 {
        self.images.iter().map(|i| i.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_references() {
        let r = parse_reference("busybox").unwrap();
        assert_eq!(
            (r.repo.as_str(), r.tag.as_deref()),
            ("docker.io/library/busybox", Some("latest"))
        );
        let r = parse_reference("127.0.0.1:5000/anycri/busybox:1.0").unwrap();
        assert_eq!(
            (r.repo.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000/anycri/busybox", Some("1.0"))
        );
        let r = parse_reference(&format!("library/x@sha256:{}", "a".repeat(64))).unwrap();
        assert_eq!(r.repo, "docker.io/library/x");
        assert!(r.tag.is_none());
        for bad in ["", "a b", "x@sha256:12", "Reg.io/Upper:1", "x:"] {
            assert!(parse_reference(bad).is_err(), "{bad}");
        }
    }

    /// Fuzz finding (image_refs): a name without a registry was accepted with upper-case
    /// letters, and its normalised form was then refused.
    #[test]
    fn upper_case_names_without_a_registry_are_invalid() {
        assert!(parse_reference("busyboxusyboxO").is_err());
        assert!(parse_reference("docker.io/library/busyboxusyboxO:latest").is_err());
        assert!(parse_reference("/x").is_err());
    }

    #[test]
    fn pull_status_remove() {
        let mut s = ImageStore::default();
        let id = s.pull("busybox:1.0").unwrap();
        assert_eq!(s.pull("docker.io/library/busybox:1.0").unwrap(), id);
        let img = s.status("busybox:1.0").unwrap();
        assert_eq!(img.id, id);
        // Found by ID, short ID and digest too.
        assert!(s.status(&id).is_some());
        assert!(s.status(&id[7..19]).is_some());
        let digest_ref = img.repo_digests[0].clone();
        assert_eq!(s.status(&digest_ref).unwrap().id, id);
        assert_eq!(s.pull(&digest_ref).unwrap(), id);
        // Removing one of two tags keeps the image.
        s.images[0]
            .repo_tags
            .push("docker.io/library/busybox:other".into());
        s.remove("busybox:other");
        assert!(s.status(&id).is_some());
        s.remove("busybox:1.0");
        assert!(s.status(&id).is_none());
        s.remove("busybox:1.0");
        // The digest still names the same image after the removal.
        assert_eq!(s.pull(&digest_ref).unwrap(), id);
        assert!(s.pull("registry.invalid/x:1").is_err());
        // A full ID names a present image only: it cannot be pulled.
        assert_eq!(s.pull(&id).unwrap(), id);
        let absent = format!("sha256:{}", "0".repeat(64));
        let e = s.pull(&absent).unwrap_err();
        assert_eq!(e.kind(), anycri_core::ErrorKind::NotFound, "{e}");
    }
}
