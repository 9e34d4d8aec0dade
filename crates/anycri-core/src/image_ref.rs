//! Image references, parsed and normalised once for all of anycri the way Docker does it:
//! `busybox` is `docker.io/library/busybox:latest`, `index.docker.io` is `docker.io`, a first
//! component with a `.` or a `:` or named `localhost` is a registry (`localhost:5000/x`),
//! repository paths are lower case, tags are at most 128 characters and the normalised name
//! at most 255, digests are SHA-2 in lower-case hex. A full image ID (`sha256:<64 hex>`, or
//! the bare 64 hex digits) is an [`ImageRef::Id`]; a name that is also a short ID
//! (`11f8c8e8`, `sha256:11f8c8`) says so in [`NamedRef::id_prefix`], since Docker tries such a
//! name first and then the ID prefix. The Docker shim, the fake, the bench and the test
//! images all read references through [`parse_reference`].
//!
//! ```
//! use anycri_core::image_ref::{ImageRef, parse_reference};
//! let ImageRef::Named(n) = parse_reference("busybox")? else { unreachable!() };
//! assert_eq!(n.canonical(), "docker.io/library/busybox:latest");
//! let ImageRef::Named(n) = parse_reference("localhost:5000/x:1.0")? else { unreachable!() };
//! assert_eq!((n.repo.as_str(), n.tag.as_deref()), ("localhost:5000/x", Some("1.0")));
//! assert!(parse_reference("Busybox").is_err());
//! # Ok::<(), anycri_core::image_ref::InvalidReference>(())
//! ```

use std::fmt;

use crate::error::Error;

/// A validated image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A full image ID, `sha256:<64 hex>` (also given as the bare 64 hex digits).
    Id(String),
    /// A repository with a tag and/or a digest.
    Named(NamedRef),
}

impl ImageRef {
    /// [`parse_reference`].
    pub fn parse(reference: &str) -> Result<ImageRef, InvalidReference> {
        parse_reference(reference)
    }
}

impl std::str::FromStr for ImageRef {
    type Err = InvalidReference;

    fn from_str(reference: &str) -> Result<ImageRef, InvalidReference> {
        parse_reference(reference)
    }
}

/// A repository reference, normalised the way Docker normalises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRef {
    /// `docker.io/library/busybox`, `127.0.0.1:5000/anycri/busybox`.
    pub repo: String,
    /// The tag; `latest` when the reference had neither a tag nor a digest.
    pub tag: Option<String>,
    /// `sha256:<hex>` (or `sha384:`, `sha512:`).
    pub digest: Option<String>,
    /// The hex digits, when Docker may also read the reference as a short image ID
    /// (`11f8c8e8`, `sha256:11f8c8e8`): Docker tries the name first, then the ID prefix.
    pub id_prefix: Option<String>,
}

impl NamedRef {
    /// `repo:tag`.
    pub fn tagged(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.repo))
    }

    /// `repo@digest`.
    pub fn digested(&self) -> Option<String> {
        self.digest.as_ref().map(|d| format!("{}@{d}", self.repo))
    }

    /// What a pull names beside the repository: the digest when there is one (a tag next to
    /// it is ignored), else the tag (`latest` when there is none). Docker's create-image call
    /// pulls every tag of a repository when given none, so it always gets this.
    ///
    /// ```
    /// use anycri_core::image_ref::{ImageRef, parse_reference};
    /// let ImageRef::Named(n) = parse_reference("busybox")? else { unreachable!() };
    /// assert_eq!((n.repo.as_str(), n.tag_or_digest()), ("docker.io/library/busybox", "latest"));
    /// # Ok::<(), anycri_core::image_ref::InvalidReference>(())
    /// ```
    pub fn tag_or_digest(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// What a runtime is asked for: the digest reference when there is a digest (Docker
    /// ignores the tag then), else the tagged one.
    pub fn canonical(&self) -> String {
        self.digested()
            .or_else(|| self.tagged())
            .unwrap_or_else(|| self.repo.clone())
    }
}

/// A reference [`parse_reference`] refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidReference {
    reference: String,
    why: String,
}

impl InvalidReference {
    /// The reference as given.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// What is wrong with it (`the repository name must be lower case`).
    pub fn reason(&self) -> &str {
        &self.why
    }
}

impl fmt::Display for InvalidReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid image reference {:?}: {}",
            self.reference, self.why
        )
    }
}

impl std::error::Error for InvalidReference {}

/// InvalidArgument, the category a bad reference from a caller is.
impl From<InvalidReference> for Error {
    fn from(e: InvalidReference) -> Error {
        Error::invalid_argument(e.to_string())
    }
}

/// A reference cut into its parts as written, neither validated nor normalised: what
/// [`parse_reference`] reads before it checks and completes them (use it only on a
/// reference that parses, to keep its spelling).
///
/// ```
/// use anycri_core::image_ref::Written;
/// let w = Written::split("localhost:5000/app:1.0");
/// assert_eq!((w.name, w.tag, w.digest), ("localhost:5000/app", Some("1.0"), None));
/// let w = Written::split("busybox@sha256:abc");
/// assert_eq!((w.name, w.tag, w.digest), ("busybox", None, Some("sha256:abc")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Written<'a> {
    /// The repository as written (`busybox`, `localhost:5000/app`).
    pub name: &'a str,
    /// The tag, if one is written.
    pub tag: Option<&'a str>,
    /// The digest, if one is written.
    pub digest: Option<&'a str>,
}

impl<'a> Written<'a> {
    /// Cut `reference` at its `@` (the digest) and at the tag's `:`, the last one in the last
    /// path component (a `:` before it is a registry's port).
    pub fn split(reference: &'a str) -> Written<'a> {
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (reference, None),
        };
        let last_component = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_component..].rfind(':') {
            Some(i) => (
                &name[..last_component + i],
                Some(&name[last_component + i + 1..]),
            ),
            None => (name, None),
        };
        Written { name, tag, digest }
    }
}

/// The longest repository name Docker accepts.
const NAME_MAX: usize = 255;

/// Parse and normalise `reference` (also [`ImageRef::parse`] and `str::parse`).
///
/// ```
/// use anycri_core::image_ref::{ImageRef, parse_reference};
/// let Ok(ImageRef::Named(n)) = parse_reference("localhost:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") else {
///     panic!("a digest reference");
/// };
/// assert_eq!(n.repo, "localhost:5000/team/app");
/// assert_eq!(n.tag, None);
/// assert!(n.canonical().ends_with("@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
/// let e = parse_reference("Busybox").unwrap_err();
/// assert_eq!(e.to_string(), "invalid image reference \"Busybox\": the repository name must be lower case");
/// ```
pub fn parse_reference(reference: &str) -> Result<ImageRef, InvalidReference> {
    parse(reference).map_err(|why| InvalidReference {
        reference: reference.to_owned(),
        why,
    })
}

/// The parser; the error says what is wrong.
fn parse(reference: &str) -> Result<ImageRef, String> {
    if reference.is_empty() {
        return Err("the reference is empty".into());
    }
    if let Some(hex) = reference.strip_prefix("sha256:")
        && is_hex(hex, Some(64))
    {
        return Ok(ImageRef::Id(reference.to_owned()));
    }
    if is_hex(reference, Some(64)) {
        return Ok(ImageRef::Id(format!("sha256:{reference}")));
    }
    if let Some(c) = reference
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-:/@".contains(*c)))
    {
        return Err(format!("{c:?} is not allowed in an image reference"));
    }
    let Written { name, tag, digest } = Written::split(reference);
    if let Some(digest) = digest {
        validate_digest(digest)?;
    }
    let digest = digest.map(str::to_owned);
    if let Some(tag) = tag {
        validate_tag(tag)?;
    }
    if name.is_empty() {
        return Err("the repository name is empty".into());
    }
    let (domain, path) = split_domain(name);
    if let Some(domain) = domain {
        validate_domain(domain)?;
    }
    for component in path.split('/') {
        validate_path_component(component)?;
    }
    let domain = match domain {
        None | Some("index.docker.io") => "docker.io",
        Some(d) => d,
    };
    let repo = if domain == "docker.io" && !path.contains('/') {
        format!("docker.io/library/{path}")
    } else {
        format!("{domain}/{path}")
    };
    // Docker limits the normalised name (`docker.io/library/...`), not the one given.
    if repo.len() > NAME_MAX {
        return Err(format!(
            "the repository name is longer than {NAME_MAX} characters"
        ));
    }
    let id_prefix = match (digest.is_none(), tag) {
        (true, None) if is_hex(name, None) => Some(name.to_owned()),
        (true, Some(hex)) if name == "sha256" && is_hex(hex, None) => Some(hex.to_owned()),
        _ => None,
    };
    let tag = match (tag, &digest) {
        (None, None) => Some("latest".to_owned()),
        (tag, _) => tag.map(str::to_owned),
    };
    Ok(ImageRef::Named(NamedRef {
        repo,
        tag,
        digest,
        id_prefix,
    }))
}

/// Lower-case hex digits only (exactly `len` of them when given, else at least one).
fn is_hex(s: &str, len: Option<usize>) -> bool {
    !s.is_empty()
        && len.is_none_or(|n| s.len() == n)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `algorithm:hex` with a SHA-2 algorithm Docker knows.
fn validate_digest(digest: &str) -> Result<(), String> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("digest {digest:?} is not <algorithm>:<hex>"))?;
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(format!("digest algorithm {algorithm:?} is not supported")),
    };
    if !is_hex(hex, Some(len)) {
        return Err(format!(
            "a {algorithm} digest is {len} lower-case hex digits"
        ));
    }
    Ok(())
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn validate_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let ok = chars.next().is_some_and(word)
        && chars.all(|c| word(c) || c == '.' || c == '-')
        && tag.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        ))
    }
}

/// Docker's rule: the first component is a registry when it has a '.' or a ':', is
/// `localhost`, or has upper-case letters (which a repository path cannot have).
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// `host[:port]` with DNS-label-like host components.
fn validate_domain(domain: &str) -> Result<(), String> {
    let bad = || Err(format!("registry {domain:?} is not a valid host[:port]"));
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad();
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if host.split('.').all(label_ok) {
        Ok(())
    } else {
        bad()
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn validate_path_component(component: &str) -> Result<(), String> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let err = || {
        if component.chars().any(|c| c.is_ascii_uppercase()) {
            Err("the repository name must be lower case".to_owned())
        } else {
            Err(format!(
                "repository path component {component:?} must be lower-case letters and digits \
                 separated by '.', '_', '__' or dashes"
            ))
        }
    };
    if !component.starts_with(alnum) || !component.ends_with(alnum) {
        return err();
    }
    let mut separator = String::new();
    for c in component.chars() {
        if alnum(c) {
            if !matches!(separator.as_str(), "" | "." | "_" | "__")
                && !separator.bytes().all(|b| b == b'-')
            {
                return err();
            }
            separator.clear();
        } else if matches!(c, '.' | '_' | '-') {
            separator.push(c);
        } else {
            return err();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(r: &str) -> NamedRef {
        match parse_reference(r) {
            Ok(ImageRef::Named(n)) => n,
            other => panic!("{r:?}: {other:?}"),
        }
    }

    const HEX: &str = "11f8c8e8406f4678adf34307e61490ec1791df3c5addaeeb293f143f2dedfd38";

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            (
                "index.docker.io/library/busybox:1",
                "docker.io/library/busybox:1",
            ),
            ("foo/bar", "docker.io/foo/bar:latest"),
            (
                "127.0.0.1:5000/anycri/busybox:1.0",
                "127.0.0.1:5000/anycri/busybox:1.0",
            ),
            ("localhost/x", "localhost/x:latest"),
            (
                "localhost:5000/a/b/c:v1.2-rc_3",
                "localhost:5000/a/b/c:v1.2-rc_3",
            ),
            ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
            ("a__b.c-d---e:T_ag", "docker.io/library/a__b.c-d---e:T_ag"),
        ];
        for (input, want) in cases {
            assert_eq!(named(input).canonical(), want, "{input}");
        }
        let n = named(&format!("busybox:1.0@sha256:{HEX}"));
        assert_eq!(n.tag.as_deref(), Some("1.0"));
        assert_eq!(
            n.canonical(),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );
        let n = named(&format!("127.0.0.1:5000/anycri/busybox@sha256:{HEX}"));
        assert_eq!(n.tag, None);
        assert_eq!(
            n.digested().unwrap(),
            format!("127.0.0.1:5000/anycri/busybox@sha256:{HEX}")
        );
    }

    #[test]
    fn ids_and_short_ids() {
        assert_eq!(
            parse_reference(HEX),
            Ok(ImageRef::Id(format!("sha256:{HEX}")))
        );
        assert_eq!(
            parse_reference(&format!("sha256:{HEX}")),
            Ok(ImageRef::Id(format!("sha256:{HEX}")))
        );
        // A short ID is also a valid name; Docker tries the name first.
        let n = named("11f8c8e8406f");
        assert_eq!(n.id_prefix.as_deref(), Some("11f8c8e8406f"));
        assert_eq!(n.canonical(), "docker.io/library/11f8c8e8406f:latest");
        assert_eq!(named("sha256:11f8c8").id_prefix.as_deref(), Some("11f8c8"));
        assert_eq!(named("busybox").id_prefix, None);
        assert_eq!(named("abc:1").id_prefix, None);
        assert_eq!(named("abc/def").id_prefix, None);
    }

    #[test]
    fn what_a_pull_names() {
        assert_eq!(named("localhost:5000/a/b:1.0").tag_or_digest(), "1.0");
        let digest = format!("sha256:{HEX}");
        assert_eq!(named(&format!("a/b:1.0@{digest}")).tag_or_digest(), digest);
        assert_eq!(named(&format!("a/b@{digest}")).tag_or_digest(), digest);
    }

    #[test]
    fn parses_through_from_str() {
        let parsed: ImageRef = "registry.k8s.io/pause:3.9".parse().unwrap();
        assert_eq!(
            parsed,
            ImageRef::parse("registry.k8s.io/pause:3.9").unwrap()
        );
        assert!("x y".parse::<ImageRef>().is_err());
    }

    #[test]
    fn rejects_bad_references() {
        let bad = [
            "",
            "Not A Valid Ref",
            "Busybox",
            "busybox:",
            ":tag",
            "busybox@sha256:abc",
            "busybox@md5:0123",
            "busybox:-x",
            "busybox:.x",
            "a//b",
            "/busybox",
            "busybox/",
            "-busybox",
            "busybox-",
            "bu..sybox",
            "bu___sybox",
            "registry:99999999/x",
            "reg-.com/x",
            "../../containers/json",
            "a/../b",
            "x?y",
            "x#y",
            "x%2f",
            "x y",
            "busybox\n",
            "a:b:c",
        ];
        for r in bad {
            assert!(
                parse_reference(r).is_err(),
                "{r:?} accepted: {:?}",
                parse_reference(r)
            );
        }
        assert!(parse_reference(&"a".repeat(256)).is_err());
        assert!(parse_reference(&format!("busybox:{}", "t".repeat(129))).is_err());
        assert!(parse_reference(&format!("busybox:{}", "t".repeat(128))).is_ok());
        let e = Error::from(parse_reference("Not A Valid Ref").unwrap_err());
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        assert!(
            e.message()
                .starts_with("invalid image reference \"Not A Valid Ref\": "),
            "{}",
            e.message()
        );
        let e = parse_reference("Busybox").unwrap_err();
        assert_eq!(e.reference(), "Busybox");
        assert!(e.reason().contains("lower case"), "{e}");
    }

    /// Fuzz target image_refs: a name of 255 characters was accepted, and its normalised
    /// form (`docker.io/library/` + 255) was then refused as too long.
    #[test]
    fn name_length_is_that_of_the_normalised_name() {
        let name = "a".repeat(255);
        assert!(parse_reference(&name).is_err());
        let longest = "a".repeat(NAME_MAX - "docker.io/library/".len());
        let Ok(ImageRef::Named(n)) = parse_reference(&longest) else {
            panic!("{longest:?} refused");
        };
        assert_eq!(n.repo.len(), NAME_MAX);
        assert!(parse_reference(&n.canonical()).is_ok());
    }
}
