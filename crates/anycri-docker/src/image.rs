//! CRI images on Docker: list, status, pull, remove and filesystem info, translated the way
//! cri-dockerd does, with containerd's answers where the two differ in ways the kubelet sees.
//!
//! * An image's CRI `id` is Docker's image ID (`sha256:<hex>`) everywhere: ListImages,
//!   ImageStatus, PullImage's `image_ref` (containerd returns the ID there; cri-dockerd a repo
//!   digest when it has one) and, through [`DockerRuntime::resolve_image`], the containers.
//! * References are parsed by [`anycri_core::image_ref`] (a bad one is the caller's
//!   InvalidArgument, naming the field) and normalised the way Docker does (`busybox` → `docker.io/library/busybox:latest`),
//!   so `busybox`, `busybox:latest` and `docker.io/library/busybox:latest` name the same image
//!   although Docker shows its tag as `busybox:latest`. An image is also found by its full ID,
//!   a short ID prefix (`11f8c8e8`, `sha256:11f8c8e8`) or a digest reference (`repo@sha256:…`).
//! * ImageStatus of an absent image is an empty answer, not NotFound (CRI semantics).
//! * RemoveImage by tag removes only that tag while the image has others (Docker deletes the
//!   image with its last tag); by ID or digest it removes the image with all its names — but
//!   never one a container (even a stopped one) uses: that is FailedPrecondition. Removing an
//!   absent image succeeds.
//! * The pause image is reported pinned, so the kubelet's image GC leaves it alone (as
//!   cri-dockerd and containerd do).

use std::collections::HashMap;

use anycri_core::{
    Error, ErrorKind, Result,
    api::*,
    image_ref::{ImageRef, parse_reference},
};
use base64::Engine as _;
use bollard::{
    auth::DockerCredentials,
    errors::Error as DockerError,
    models::{ImageInspect, ImageSummary},
    query_parameters::{
        CreateImageOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
        RemoveImageOptionsBuilder,
    },
};
use futures::StreamExt as _;

use crate::{
    DockerRuntime,
    error::{docker_error, is_not_found},
};

/// How long a container status may reuse an image's resolved `image_ref` (a repo digest).
/// PullImage and RemoveImage through the shim clear the cache at once; the lifetime bounds
/// how stale it can be after image changes made directly on Docker.
pub(crate) const IMAGE_REF_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// The request field holding the image reference.
const FIELD: &str = "image.image";

/// What the container code needs to know about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedImage {
    /// Docker's image ID (`sha256:<hex>`), the same ID ImageStatus reports.
    pub id: String,
    /// A digested reference (`repo@sha256:<hex>`) when Docker knows one.
    pub repo_digest: Option<String>,
    /// The image config's user (`1000`, `nobody`, `1000:1000`, or empty).
    pub user: String,
}

// ---------------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------------

/// `reference` parsed, or InvalidArgument naming `field`.
fn parse_field(field: &str, reference: &str) -> Result<ImageRef> {
    parse_reference(reference).map_err(|e| Error::invalid_argument(format!("{field}: {e}")))
}

/// The normalised `repo:tag` of one of Docker's RepoTags (`busybox:latest`), if it is one.
fn normalised_tag(docker_tag: &str) -> Option<String> {
    match parse_reference(docker_tag) {
        Ok(ImageRef::Named(n)) if n.digest.is_none() => n.tagged(),
        _ => None,
    }
}

/// The normalised `repo@digest` of one of Docker's RepoDigests, if it is one.
fn normalised_digest(docker_digest: &str) -> Option<String> {
    match parse_reference(docker_digest) {
        Ok(ImageRef::Named(n)) => n.digested(),
        _ => None,
    }
}

/// What Docker is asked to look up for `reference` (already parsed as `parsed`).
fn lookup_name(reference: &str, parsed: &ImageRef) -> String {
    match parsed {
        ImageRef::Id(id) => id.clone(),
        // Docker tries the name, then the ID prefix; given as is, it does both.
        ImageRef::Named(n) if n.id_prefix.is_some() => reference.to_owned(),
        ImageRef::Named(n) => n.canonical(),
    }
}

/// How a Docker image matches a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Match {
    /// By full ID, tag or digest.
    Exact,
    /// By a short ID prefix (Docker prefers names to prefixes).
    IdPrefix,
}

/// Whether the image `id` with `tags` and `digests` is what `wanted` names.
fn matches(wanted: &ImageRef, id: &str, tags: &[String], digests: &[String]) -> Option<Match> {
    match wanted {
        ImageRef::Id(wanted) => (id == wanted).then_some(Match::Exact),
        ImageRef::Named(n) => {
            let by_name = match (n.digested(), n.tagged()) {
                (Some(d), _) => digests
                    .iter()
                    .any(|x| normalised_digest(x).as_deref() == Some(d.as_str())),
                (None, Some(t)) => tags
                    .iter()
                    .any(|x| normalised_tag(x).as_deref() == Some(t.as_str())),
                (None, None) => false,
            };
            if by_name {
                return Some(Match::Exact);
            }
            let hex = id.strip_prefix("sha256:").unwrap_or(id);
            n.id_prefix
                .as_deref()
                .is_some_and(|p| hex.starts_with(p))
                .then_some(Match::IdPrefix)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------------

/// The uid (numeric user) or user name of an image config's `User` (`uid:gid` → uid).
pub(crate) fn user_of(image_user: &str) -> (Option<i64>, String) {
    let user = image_user.split(':').next().unwrap_or_default();
    if user.is_empty() {
        return (None, String::new());
    }
    match user.parse::<i64>() {
        Ok(uid) => (Some(uid), String::new()),
        Err(_) => (None, user.to_owned()),
    }
}

/// Docker's RepoTags without the placeholder of untagged images.
fn clean_tags(tags: Option<Vec<String>>) -> Vec<String> {
    let mut tags = tags.unwrap_or_default();
    tags.retain(|t| t != "<none>:<none>" && !t.is_empty());
    tags
}

/// Docker's RepoDigests without the placeholder of undigested images.
fn clean_digests(digests: Option<Vec<String>>) -> Vec<String> {
    let mut digests = digests.unwrap_or_default();
    digests.retain(|d| d != "<none>@<none>" && !d.is_empty());
    digests
}

fn size_of(size: Option<i64>) -> u64 {
    size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0)
}

/// Whether an image with `tags` and `digests` is the pause image `pause`.
fn is_pinned(pause: Option<&ImageRef>, id: &str, tags: &[String], digests: &[String]) -> bool {
    pause.is_some_and(|p| matches(p, id, tags, digests) == Some(Match::Exact))
}

fn image_from_summary(s: ImageSummary, pause: Option<&ImageRef>) -> Image {
    let repo_tags = clean_tags(Some(s.repo_tags));
    let repo_digests = clean_digests(Some(s.repo_digests));
    Image {
        pinned: is_pinned(pause, &s.id, &repo_tags, &repo_digests),
        id: s.id,
        repo_tags,
        repo_digests,
        size: size_of(Some(s.size)),
        // A summary has no config; ImageStatus has the user (as in cri-dockerd).
        uid: None,
        username: String::new(),
        spec: None,
    }
}

fn image_from_inspect(i: &ImageInspect, pause: Option<&ImageRef>) -> Result<Image> {
    let id =
        i.id.clone()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::internal("Docker described an image without an ID"))?;
    let repo_tags = clean_tags(i.repo_tags.clone());
    let repo_digests = clean_digests(i.repo_digests.clone());
    let user = i
        .config
        .as_ref()
        .and_then(|c| c.user.as_deref())
        .unwrap_or_default();
    let (uid, username) = user_of(user);
    Ok(Image {
        pinned: is_pinned(pause, &id, &repo_tags, &repo_digests),
        id,
        repo_tags,
        repo_digests,
        size: size_of(i.size),
        uid: uid.map(|value| Int64Value { value }),
        username,
        spec: None,
    })
}

/// The OCI image config keys of Docker's image config (which also has container-only keys).
const OCI_CONFIG_KEYS: &[&str] = &[
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "ArgsEscaped",
];

/// null, `""`, `[]` or `{}`.
fn is_empty_json(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// ImageStatus's verbose `info`: the image as an OCI image spec (created, author, platform,
/// config, rootfs, history), like cri-dockerd's and containerd's `imageSpec`.
fn verbose_info(
    i: &ImageInspect,
    history: Option<Vec<bollard::models::ImageHistoryResponseItem>>,
) -> HashMap<String, String> {
    use serde_json::{Map, Value, json};
    let config = i
        .config
        .as_ref()
        .and_then(|c| serde_json::to_value(c).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    let config: Map<String, Value> = config
        .into_iter()
        .filter(|(k, v)| OCI_CONFIG_KEYS.contains(&k.as_str()) && !is_empty_json(v))
        .collect();
    let mut spec = Map::new();
    let mut put = |key: &str, value: Value| {
        if !value.is_null() && value != json!("") {
            spec.insert(key.to_owned(), value);
        }
    };
    put(
        "created",
        serde_json::to_value(&i.created).unwrap_or(Value::Null),
    );
    put("author", json!(i.author));
    put("architecture", json!(i.architecture));
    put("variant", json!(i.variant));
    put("os", json!(i.os));
    put("os.version", json!(i.os_version));
    put("config", Value::Object(config));
    if let Some(root_fs) = &i.root_fs {
        put(
            "rootfs",
            json!({ "type": root_fs.typ, "diff_ids": root_fs.layers.clone().unwrap_or_default() }),
        );
    }
    if let Some(history) = history {
        // Docker lists the newest first; an image spec the oldest first.
        let entries: Vec<Value> = history
            .iter()
            .rev()
            .map(|h| {
                let created = chrono::DateTime::from_timestamp(h.created, 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                let mut e = Map::new();
                if let Some(created) = created {
                    e.insert("created".into(), json!(created));
                }
                e.insert("created_by".into(), json!(h.created_by));
                if !h.comment.is_empty() {
                    e.insert("comment".into(), json!(h.comment));
                }
                if h.size == 0 {
                    e.insert("empty_layer".into(), json!(true));
                }
                Value::Object(e)
            })
            .collect();
        put("history", Value::Array(entries));
    }
    let labels = i
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    let info = json!({
        "id": i.id,
        "repoTags": clean_tags(i.repo_tags.clone()),
        "repoDigests": clean_digests(i.repo_digests.clone()),
        "size": size_of(i.size),
        "labels": labels,
        "storageDriver": i.graph_driver.as_ref().map(|g| g.name.clone()),
        "imageSpec": Value::Object(spec),
    });
    HashMap::from([("info".to_owned(), info.to_string())])
}

/// A CRI `AuthConfig` as Docker registry credentials. `auth` (base64 `user:password`, as in a
/// docker config file) fills in the username and password when those are not given: Docker's
/// daemon itself reads only the separate fields.
fn credentials(auth: &AuthConfig) -> Result<DockerCredentials> {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let (mut username, mut password) = (some(&auth.username), some(&auth.password));
    if username.is_none() && password.is_none() && !auth.auth.is_empty() {
        let (u, p) = decode_auth(&auth.auth).ok_or_else(|| {
            Error::invalid_argument("auth.auth: not base64 of \"username:password\"")
        })?;
        username = Some(u);
        password = Some(p);
    }
    Ok(DockerCredentials {
        username,
        password,
        auth: some(&auth.auth),
        email: None,
        serveraddress: some(&auth.server_address),
        identitytoken: some(&auth.identity_token),
        registrytoken: some(&auth.registry_token),
    })
}

/// base64 `user:password` → (user, password).
fn decode_auth(auth: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The category of a failed pull, from Docker's message (its HTTP status says little: an
/// unreachable registry is a 500, as is a manifest Docker failed to fetch).
fn pull_error_kind(status: Option<u16>, message: &str) -> ErrorKind {
    let m = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    if has(&["invalid reference format"]) {
        ErrorKind::InvalidArgument
    } else if has(&[
        "connection refused",
        "no such host",
        "i/o timeout",
        "timeout exceeded",
        "network is unreachable",
        "no route to host",
        "connection reset",
        "tls handshake timeout",
        "server misbehaving",
        "bad gateway",
        "service unavailable",
        "gateway timeout",
        "unexpected eof",
    ]) {
        ErrorKind::Unavailable
    } else if has(&[
        "manifest unknown",
        "not found",
        "does not exist",
        "name unknown",
        "no matching manifest",
    ]) {
        ErrorKind::NotFound
    } else if has(&["toomanyrequests", "too many requests", "rate limit"]) {
        ErrorKind::ResourceExhausted
    } else if has(&[
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "incorrect username or password",
    ]) {
        ErrorKind::Unauthenticated
    } else if has(&["denied", "forbidden"]) {
        ErrorKind::PermissionDenied
    } else if has(&["http response to https client", "certificate", "x509"]) {
        // The registry's transport is not what Docker is configured for.
        ErrorKind::FailedPrecondition
    } else {
        match status {
            Some(400) => ErrorKind::InvalidArgument,
            Some(401) => ErrorKind::Unauthenticated,
            Some(403) => ErrorKind::PermissionDenied,
            Some(404) => ErrorKind::NotFound,
            Some(_) => ErrorKind::Internal,
            None => ErrorKind::Unknown,
        }
    }
}

fn pull_error(reference: &str, e: DockerError) -> Error {
    let (status, message) = match &e {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => (Some(*status_code), message.clone()),
        DockerError::DockerStreamError { error } => (None, error.clone()),
        _ => return docker_error(format!("pulling image {reference:?}"), e),
    };
    Error::with_source(
        pull_error_kind(status, &message),
        format!("pulling image {reference:?}: {message}"),
        e,
    )
}

/// A failed removal: Docker's 409 (in use, dependent child images) is FailedPrecondition.
fn remove_error(reference: &str, e: DockerError) -> Error {
    let what = format!("removing image {reference:?}");
    match &e {
        DockerError::DockerResponseServerError {
            status_code: 409,
            message,
        } => {
            let message = format!("{what}: {message}");
            Error::with_source(ErrorKind::FailedPrecondition, message, e)
        }
        _ => docker_error(what, e),
    }
}

/// Docker refused to delete an image by ID only because several names refer to it.
fn needs_force(e: &DockerError) -> bool {
    matches!(e, DockerError::DockerResponseServerError { status_code: 409, message }
        if message.contains("referenced in multiple repositories"))
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

/// Inodes in use on the filesystem holding `path` (like cri-dockerd: the whole filesystem's).
fn inodes_used(path: &str) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_files.saturating_sub(st.f_ffree))
}

// ---------------------------------------------------------------------------------------------
// The image service
// ---------------------------------------------------------------------------------------------

impl DockerRuntime {
    /// The pause image as a reference, to report it pinned.
    fn pause_ref(&self) -> Option<ImageRef> {
        parse_reference(&self.inner.pause_image).ok()
    }

    /// Docker's description of the image `reference` names; None when absent.
    async fn inspect(&self, reference: &str, parsed: &ImageRef) -> Result<Option<ImageInspect>> {
        match self
            .docker()
            .inspect_image(&lookup_name(reference, parsed))
            .await
        {
            Ok(i) => Ok(Some(i)),
            // Inspecting an image while another call removes it.
            Err(e) if is_gone(&e) => Ok(None),
            Err(e) => Err(docker_error(format!("inspecting image {reference:?}"), e)),
        }
    }

    pub(crate) async fn list_images_impl(
        &self,
        r: ListImagesRequest,
    ) -> Result<ListImagesResponse> {
        let filter = r
            .filter
            .and_then(|f| f.image)
            .map(|spec| spec.image)
            .filter(|image| !image.is_empty());
        let wanted = filter
            .as_deref()
            .map(|f| parse_field("filter.image.image", f))
            .transpose()?;
        let summaries = self
            .docker()
            .list_images(Some(ListImagesOptionsBuilder::new().all(false).build()))
            .await
            .map_err(|e| docker_error("listing images", e))?;
        let summaries: Vec<ImageSummary> =
            summaries.into_iter().filter(|s| !s.id.is_empty()).collect();
        let pause = self.pause_ref();
        let Some(wanted) = wanted else {
            let images = summaries
                .into_iter()
                .map(|s| image_from_summary(s, pause.as_ref()))
                .collect();
            return Ok(ListImagesResponse { images });
        };
        // What ImageStatus would find: names first, short-ID prefixes only when no name matches.
        let mut found: Vec<(Match, ImageSummary)> = summaries
            .into_iter()
            .filter_map(|s| matches(&wanted, &s.id, &s.repo_tags, &s.repo_digests).map(|m| (m, s)))
            .collect();
        if let Some(best) = found.iter().map(|(m, _)| *m).min() {
            found.retain(|(m, _)| *m == best);
        }
        let images = found
            .into_iter()
            .map(|(_, s)| image_from_summary(s, pause.as_ref()))
            .collect();
        Ok(ListImagesResponse { images })
    }

    pub(crate) async fn image_status_impl(
        &self,
        r: ImageStatusRequest,
    ) -> Result<ImageStatusResponse> {
        let reference = r.image.map(|spec| spec.image).unwrap_or_default();
        let parsed = parse_field(FIELD, &reference)?;
        let Some(inspect) = self.inspect(&reference, &parsed).await? else {
            return Ok(ImageStatusResponse::default());
        };
        let image = image_from_inspect(&inspect, self.pause_ref().as_ref())?;
        let info = if r.verbose {
            let history = match self.docker().image_history(&image.id).await {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::debug!(image = %image.id, error = %e, "no history for the verbose image status");
                    None
                }
            };
            verbose_info(&inspect, history)
        } else {
            HashMap::new()
        };
        Ok(ImageStatusResponse {
            image: Some(image),
            info,
        })
    }

    pub(crate) async fn pull_image_impl(&self, r: PullImageRequest) -> Result<PullImageResponse> {
        self.inner.image_refs.clear();
        let reference = r.image.map(|spec| spec.image).unwrap_or_default();
        let named = match parse_field(FIELD, &reference)? {
            ImageRef::Named(n) => n,
            ImageRef::Id(_) => {
                return Err(Error::invalid_argument(format!(
                    "{FIELD}: {reference:?} is an image ID; pull a repository reference \
                     (repo:tag or repo@digest)"
                )));
            }
        };
        let credentials = r.auth.as_ref().map(credentials).transpose()?;
        let options = CreateImageOptionsBuilder::new()
            .from_image(&named.repo)
            .tag(named.tag_or_digest())
            .build();
        let mut progress = self.docker().create_image(Some(options), None, credentials);
        while let Some(item) = progress.next().await {
            if let Err(e) = item {
                return Err(pull_error(&reference, e));
            }
        }
        let pulled = ImageRef::Named(named.clone());
        let Some(inspect) = self.inspect(&named.canonical(), &pulled).await? else {
            return Err(Error::internal(format!(
                "pulled image {reference:?}, but Docker does not find {:?}",
                named.canonical()
            )));
        };
        let image = image_from_inspect(&inspect, None)?;
        Ok(PullImageResponse {
            image_ref: image.id,
        })
    }

    pub(crate) async fn remove_image_impl(
        &self,
        r: RemoveImageRequest,
    ) -> Result<RemoveImageResponse> {
        self.inner.image_refs.clear();
        let reference = r.image.map(|spec| spec.image).unwrap_or_default();
        let parsed = parse_field(FIELD, &reference)?;
        let Some(inspect) = self.inspect(&reference, &parsed).await? else {
            return Ok(RemoveImageResponse {});
        };
        let image = image_from_inspect(&inspect, None)?;
        // By tag: remove the tag; Docker deletes the image with its last name.
        if let ImageRef::Named(n) = &parsed
            && n.digest.is_none()
            && let Some(tag) = n.tagged()
            && image
                .repo_tags
                .iter()
                .any(|t| normalised_tag(t).as_deref() == Some(tag.as_str()))
        {
            let options = RemoveImageOptionsBuilder::new().force(false).build();
            return match self.docker().remove_image(&tag, Some(options), None).await {
                Ok(_) => Ok(RemoveImageResponse {}),
                Err(e) if is_gone(&e) => Ok(RemoveImageResponse {}),
                Err(e) => Err(remove_error(&reference, e)),
            };
        }
        // By ID or digest: the image with all its names.
        self.remove_by_id(&reference, &image.id).await?;
        Ok(RemoveImageResponse {})
    }

    /// Remove the image `id` with all its names, unless a container uses it.
    /// (A concurrent removal of the same image is a success: see [`is_gone`].)
    async fn remove_by_id(&self, reference: &str, id: &str) -> Result<()> {
        let plain = RemoveImageOptionsBuilder::new().force(false).build();
        let e = match self.docker().remove_image(id, Some(plain), None).await {
            Ok(_) => return Ok(()),
            Err(e) if is_gone(&e) => {
                self.await_gone(id).await;
                return Ok(());
            }
            Err(e) if needs_force(&e) => e,
            Err(e) => return Err(remove_error(reference, e)),
        };
        // Several names: Docker wants force, which would also delete an image that stopped
        // containers use. Refuse that first.
        if let Some(container) = self.container_using(id).await? {
            return Err(Error::with_source(
                ErrorKind::FailedPrecondition,
                format!(
                    "removing image {reference:?}: image {id} is in use by container {container}"
                ),
                e,
            ));
        }
        let forced = RemoveImageOptionsBuilder::new().force(true).build();
        match self.docker().remove_image(id, Some(forced), None).await {
            Ok(_) => Ok(()),
            Err(e) if is_gone(&e) => {
                self.await_gone(id).await;
                Ok(())
            }
            Err(e) => Err(remove_error(reference, e)),
        }
    }

    /// Another call's removal of image `id` won the race, and Docker may still be deleting
    /// it: wait (5 s at most) until Docker no longer finds it, so that when RemoveImage
    /// returns the image is gone, as the CRI's callers expect (critest removes one image
    /// five times at once and checks ImageStatus right after each).
    async fn await_gone(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            match self.docker().inspect_image(id).await {
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                Err(_) => return,
            }
        }
    }

    /// A container (running or not) created from the image `id` or one built on it.
    async fn container_using(&self, id: &str) -> Result<Option<String>> {
        let filters = HashMap::from([("ancestor", vec![id])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker()
            .list_containers(Some(options))
            .await
            .map_err(|e| docker_error(format!("listing the containers of image {id}"), e))?;
        Ok(containers.into_iter().next().map(|c| {
            let cid = c.id.unwrap_or_default();
            let short = cid.get(..12).unwrap_or(&cid).to_owned();
            match c.names.unwrap_or_default().first() {
                Some(name) => format!("{short} ({})", name.trim_start_matches('/')),
                None => short,
            }
        }))
    }

    pub(crate) async fn image_fs_info_impl(
        &self,
        _r: ImageFsInfoRequest,
    ) -> Result<ImageFsInfoResponse> {
        let docker = self.docker();
        let info = docker
            .info()
            .await
            .map_err(|e| docker_error("asking Docker for its info", e))?;
        let root = info
            .docker_root_dir
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/var/lib/docker".to_owned());
        // Images: like cri-dockerd, the images' sizes with shared layers counted once where
        // Docker reports them (SharedSize, API >= 1.42; older engines say -1 and the sizes add
        // up). bollard's `df` speaks API 1.52's shape only, which older engines do not send.
        let images = docker
            .list_images(Some(
                ListImagesOptionsBuilder::new()
                    .all(false)
                    .shared_size(true)
                    .build(),
            ))
            .await
            .map_err(|e| docker_error("listing images", e))?;
        let image_bytes = images_bytes(&images);
        // Containers: their writable layers, on the same filesystem.
        let containers = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .size(true)
                    .build(),
            ))
            .await
            .map_err(|e| docker_error("listing containers with their sizes", e))?;
        let container_bytes = containers.iter().map(|c| size_of(c.size_rw)).sum();
        let timestamp = now_nanos();
        let usage = |used: u64, inodes: Option<u64>| FilesystemUsage {
            timestamp,
            fs_id: Some(FilesystemIdentifier {
                mountpoint: root.clone(),
            }),
            used_bytes: Some(UInt64Value { value: used }),
            inodes_used: inodes.map(|value| UInt64Value { value }),
        };
        Ok(ImageFsInfoResponse {
            image_filesystems: vec![usage(image_bytes, inodes_used(&root))],
            container_filesystems: vec![usage(container_bytes, None)],
        })
    }

    /// The image `reference` names (tag, digest, full or short ID); NotFound when absent.
    /// The `image_ref` a container status reports for `image_id`: a repo digest of the image
    /// when it has one, else the ID (also when the image is gone). Cached per image ID.
    pub(crate) async fn image_ref_of(&self, image_id: &str) -> String {
        if let Some(r) = self.inner.image_refs.get(image_id) {
            return r;
        }
        let image_ref = match self.resolve_image(image_id).await {
            Ok(r) => r.repo_digest.unwrap_or_else(|| image_id.to_owned()),
            // Not cached: the image may come back (a pull), or Docker may answer next time.
            Err(_) => return image_id.to_owned(),
        };
        self.inner.image_refs.insert(image_id, image_ref.clone());
        image_ref
    }

    pub(crate) async fn resolve_image(&self, reference: &str) -> Result<ResolvedImage> {
        let parsed = parse_reference(reference).map_err(|why| {
            Error::invalid_argument(format!("invalid image reference {reference:?}: {why}"))
        })?;
        let Some(inspect) = self.inspect(reference, &parsed).await? else {
            return Err(Error::not_found(format!("image {reference:?} not found")));
        };
        let image = image_from_inspect(&inspect, None)?;
        // The digest the reference names, else one of its repository, else any.
        let repo_digest = match &parsed {
            ImageRef::Named(n) => {
                let exact = n.digested().and_then(|want| {
                    image
                        .repo_digests
                        .iter()
                        .find(|d| normalised_digest(d).as_deref() == Some(want.as_str()))
                });
                let same_repo = || {
                    image.repo_digests.iter().find(|d| {
                        normalised_digest(d).is_some_and(|nd| {
                            nd.split_once('@').is_some_and(|(repo, _)| repo == n.repo)
                        })
                    })
                };
                exact.or_else(same_repo)
            }
            ImageRef::Id(_) => None,
        }
        .or_else(|| image.repo_digests.first())
        .cloned();
        let user = inspect.config.and_then(|c| c.user).unwrap_or_default();
        Ok(ResolvedImage {
            id: image.id,
            repo_digest,
            user,
        })
    }
}

/// cri-dockerd's sum: each image's own bytes, plus each distinct shared size once.
fn images_bytes(images: &[ImageSummary]) -> u64 {
    let mut total = 0u64;
    let mut shared = std::collections::BTreeSet::new();
    for i in images {
        let size = size_of(Some(i.size));
        match u64::try_from(i.shared_size) {
            Ok(s) => {
                total = total.saturating_add(size.saturating_sub(s));
                shared.insert(s);
            }
            Err(_) => total = total.saturating_add(size),
        }
    }
    shared.into_iter().fold(total, u64::saturating_add)
}

/// Whether a call failed because the image is gone: Docker says 404, or, when another
/// removal of the same image won the race after the name was resolved, 500 "unrecognized
/// image ID" (a removal) or "layer does not exist" (an inspect during the removal: critest's
/// concurrent RemoveImage spec then expects an empty ImageStatus, not an error).
fn is_gone(e: &bollard::errors::Error) -> bool {
    is_not_found(e)
        || matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 500, message }
            if message.contains("unrecognized image ID") || message.contains("layer does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_concurrently_removed_image_is_gone() {
        let server =
            |status_code: u16, message: &str| bollard::errors::Error::DockerResponseServerError {
                status_code,
                message: message.into(),
            };
        assert!(is_gone(&server(404, "No such image: x")));
        assert!(is_gone(&server(500, "unrecognized image ID sha256:0f41")));
        assert!(is_gone(&server(500, "layer does not exist")));
        assert!(!is_gone(&server(500, "driver failed")));
        assert!(!is_gone(&server(409, "conflict: unable to delete")));
    }

    const HEX: &str = "11f8c8e8406f4678adf34307e61490ec1791df3c5addaeeb293f143f2dedfd38";

    #[test]
    fn lookup_names_and_field_errors() {
        // A short ID is given to Docker as is (it tries the name, then the ID prefix).
        let parsed = parse_reference("11f8c8").unwrap();
        assert_eq!(lookup_name("11f8c8", &parsed), "11f8c8");
        let parsed = parse_reference("busybox").unwrap();
        assert_eq!(
            lookup_name("busybox", &parsed),
            "docker.io/library/busybox:latest"
        );
        let e = parse_field(FIELD, "Not A Valid Ref").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            e.message()
                .starts_with("image.image: invalid image reference \"Not A Valid Ref\": "),
            "{}",
            e.message()
        );
    }

    #[test]
    fn matches_tags_digests_and_ids() {
        let id = format!("sha256:{HEX}");
        let tags = vec![
            "busybox:latest".to_owned(),
            "127.0.0.1:5000/anycri/busybox:1.0".to_owned(),
        ];
        let digests = vec![format!(
            "127.0.0.1:5000/anycri/busybox@sha256:{}",
            "a".repeat(64)
        )];
        let m = |r: &str| matches(&parse_reference(r).unwrap(), &id, &tags, &digests);
        assert_eq!(m("busybox"), Some(Match::Exact));
        assert_eq!(m("docker.io/library/busybox:latest"), Some(Match::Exact));
        assert_eq!(m("127.0.0.1:5000/anycri/busybox:1.0"), Some(Match::Exact));
        assert_eq!(
            m(&format!(
                "127.0.0.1:5000/anycri/busybox@sha256:{}",
                "a".repeat(64)
            )),
            Some(Match::Exact)
        );
        assert_eq!(m(&id), Some(Match::Exact));
        assert_eq!(m(HEX), Some(Match::Exact));
        assert_eq!(m("11f8c8e8"), Some(Match::IdPrefix));
        assert_eq!(m("sha256:11f8c8e8"), Some(Match::IdPrefix));
        assert_eq!(m("busybox:1.0"), None);
        assert_eq!(m("127.0.0.1:5000/anycri/busybox"), None);
        assert_eq!(m(&format!("busybox@sha256:{}", "a".repeat(64))), None);
        assert_eq!(m("22f8"), None);
        // Placeholders are not names.
        assert_eq!(
            clean_tags(Some(vec!["<none>:<none>".into()])),
            Vec::<String>::new()
        );
        assert_eq!(clean_digests(None), Vec::<String>::new());
        assert_eq!(normalised_tag("<none>:<none>"), None);
    }

    #[test]
    fn users() {
        assert_eq!(user_of(""), (None, String::new()));
        assert_eq!(user_of("0"), (Some(0), String::new()));
        assert_eq!(user_of("1000"), (Some(1000), String::new()));
        assert_eq!(user_of("1000:1000"), (Some(1000), String::new()));
        assert_eq!(user_of("nobody"), (None, "nobody".to_owned()));
        assert_eq!(user_of("nobody:nogroup"), (None, "nobody".to_owned()));
        assert_eq!(user_of(":100"), (None, String::new()));
        assert_eq!(
            user_of("99999999999999999999"),
            (None, "99999999999999999999".to_owned())
        );
    }

    #[test]
    fn auth_configs() {
        let c = credentials(&AuthConfig {
            auth: "dXNlcjpwYTpzcw==".into(), // user:pa:ss
            server_address: "127.0.0.1:5000".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.username.as_deref(), Some("user"));
        assert_eq!(c.password.as_deref(), Some("pa:ss"));
        assert_eq!(c.serveraddress.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(c.identitytoken, None);
        let c = credentials(&AuthConfig {
            username: "u".into(),
            password: "p".into(),
            auth: "garbage".into(),
            identity_token: "id".into(),
            registry_token: "reg".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("u"), Some("p"))
        );
        assert_eq!(c.identitytoken.as_deref(), Some("id"));
        assert_eq!(c.registrytoken.as_deref(), Some("reg"));
        let e = credentials(&AuthConfig {
            auth: "!!!".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn pull_failures() {
        let k = pull_error_kind;
        assert_eq!(
            k(
                Some(404),
                "manifest for 127.0.0.1:5000/anycri/nope:1.0 not found: manifest unknown: manifest unknown"
            ),
            ErrorKind::NotFound
        );
        assert_eq!(
            k(
                Some(500),
                "Get \"http://127.0.0.1:5999/v2/\": dial tcp 127.0.0.1:5999: connect: connection refused"
            ),
            ErrorKind::Unavailable
        );
        assert_eq!(
            k(
                Some(500),
                "Get \"https://x.invalid/v2/\": dial tcp: lookup x.invalid on 1.1.1.1:53: no such host"
            ),
            ErrorKind::Unavailable
        );
        assert_eq!(
            k(
                Some(404),
                "pull access denied for nope, repository does not exist or may require 'docker login'"
            ),
            ErrorKind::NotFound
        );
        assert_eq!(
            k(
                Some(400),
                "invalid reference format: repository name must be lowercase"
            ),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            k(Some(500), "unauthorized: authentication required"),
            ErrorKind::Unauthenticated
        );
        assert_eq!(
            k(
                Some(500),
                "toomanyrequests: You have reached your pull rate limit"
            ),
            ErrorKind::ResourceExhausted
        );
        assert_eq!(
            k(Some(500), "http: server gave HTTP response to HTTPS client"),
            ErrorKind::FailedPrecondition
        );
        assert_eq!(k(None, "something odd"), ErrorKind::Unknown);
        let e = pull_error(
            "x",
            DockerError::DockerStreamError {
                error: "unexpected EOF".into(),
            },
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn removal_conflicts() {
        let e = DockerError::DockerResponseServerError {
            status_code: 409,
            message: "conflict: unable to delete 11f8c8e8406f (must be forced) - image is referenced in multiple repositories".into(),
        };
        assert!(needs_force(&e));
        assert_eq!(remove_error("x", e).kind(), ErrorKind::FailedPrecondition);
        let e = DockerError::DockerResponseServerError {
            status_code: 409,
            message: "conflict: unable to remove repository reference \"x\" (must force) - container 0123 is using its referenced image 11f8".into(),
        };
        assert!(!needs_force(&e));
        assert_eq!(remove_error("x", e).kind(), ErrorKind::FailedPrecondition);
    }

    #[test]
    fn image_sizes() {
        let img = |size, shared_size| ImageSummary {
            size,
            shared_size,
            ..Default::default()
        };
        assert_eq!(images_bytes(&[img(10, -1), img(8, -1)]), 18);
        assert_eq!(images_bytes(&[img(10, 4), img(8, 4)]), 14);
        assert_eq!(images_bytes(&[img(-5, -1)]), 0);
        assert_eq!(size_of(Some(-1)), 0);
    }

    #[test]
    fn conversions() {
        let inspect = ImageInspect {
            id: Some(format!("sha256:{HEX}")),
            repo_tags: Some(vec![
                "<none>:<none>".into(),
                "registry.k8s.io/pause:3.9".into(),
            ]),
            repo_digests: None,
            size: Some(100),
            config: Some(bollard::models::ImageConfig {
                user: Some("65535:65535".into()),
                exposed_ports: Some(vec!["80/tcp".into()]),
                ..Default::default()
            }),
            architecture: Some("amd64".into()),
            os: Some("linux".into()),
            created: serde_json::from_value(serde_json::json!("2024-01-01T00:00:00Z")).ok(),
            ..Default::default()
        };
        let pause = parse_reference("registry.k8s.io/pause:3.9").ok();
        let image = image_from_inspect(&inspect, pause.as_ref()).unwrap();
        assert_eq!(image.id, format!("sha256:{HEX}"));
        assert_eq!(
            image.repo_tags,
            vec!["registry.k8s.io/pause:3.9".to_owned()]
        );
        assert_eq!(image.uid, Some(Int64Value { value: 65535 }));
        assert!(image.pinned);
        assert!(image_from_inspect(&ImageInspect::default(), None).is_err());
        let history = vec![bollard::models::ImageHistoryResponseItem {
            id: "x".into(),
            created: 1_704_067_200,
            created_by: "ADD rootfs".into(),
            tags: vec![],
            size: 10,
            comment: String::new(),
        }];
        let info = verbose_info(&inspect, Some(history));
        let v: serde_json::Value = serde_json::from_str(&info["info"]).unwrap();
        assert_eq!(v["imageSpec"]["architecture"], "amd64");
        assert_eq!(v["imageSpec"]["config"]["User"], "65535:65535");
        assert_eq!(
            v["imageSpec"]["config"]["ExposedPorts"]["80/tcp"],
            serde_json::json!({})
        );
        assert_eq!(v["imageSpec"]["created"], "2024-01-01T00:00:00Z");
        assert_eq!(
            v["imageSpec"]["history"][0]["created"],
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(v["imageSpec"]["history"][0]["created_by"], "ADD rootfs");
    }
}
