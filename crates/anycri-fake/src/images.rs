//! The fake's image store: references normalised the way containerd does
//! (`busybox` → `docker.io/library/busybox:latest`), images found by ID, ID prefix, tag or
//! digest, tags removed one at a time, and every pull "succeeds" with an ID derived from the
//! reference so repeated pulls agree.

use std::hash::{DefaultHasher, Hash, Hasher};

use anycri_core::{Error, Result, api::Image};

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// Normalised repository (`docker.io/library/busybox`).
    pub repo: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

pub(crate) fn parse_reference(reference: &str) -> Result<Reference> {
    let bad = |why: &str| {
        Error::invalid_argument(format!("invalid image reference {reference:?}: {why}"))
    };
    if reference.is_empty() || reference.chars().any(|c| c.is_whitespace()) {
        return Err(bad("empty or contains whitespace"));
    }
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => {
            let hex = d
                .strip_prefix("sha256:")
                .ok_or_else(|| bad("digest must be sha256:<hex>"))?;
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad("digest must be sha256 followed by 64 hex digits"));
            }
            (n, Some(d.to_owned()))
        }
        None => (reference, None),
    };
    // A tag follows the last ':' after the last '/' (a ':' before it is a registry port).
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (
            &name[..last_slash + i],
            Some(name[last_slash + i + 1..].to_owned()),
        ),
        None => (name, None),
    };
    if repo.is_empty() || tag.as_deref() == Some("") {
        return Err(bad("empty repository or tag"));
    }
    let first = repo.split('/').next().unwrap_or_default();
    let repo = if !repo.contains('/') {
        format!("docker.io/library/{repo}")
    } else if !(first.contains('.') || first.contains(':') || first == "localhost") {
        format!("docker.io/{repo}")
    } else {
        repo.to_owned()
    };
    // Checked once normalised: a name without a registry is a path too (`Busybox`).
    if repo
        .split('/')
        .skip(1)
        .any(|p| p.is_empty() || p.chars().any(|c| c.is_ascii_uppercase()))
    {
        return Err(bad("repository path must be lower case"));
    }
    let tag = if tag.is_none() && digest.is_none() {
        Some("latest".to_owned())
    } else {
        tag
    };
    Ok(Reference { repo, tag, digest })
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
    }
}
