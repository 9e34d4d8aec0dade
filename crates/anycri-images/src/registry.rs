//! A push-only client of the Docker Registry HTTP API V2 (the OCI distribution API) over
//! plain HTTP, which is what a local registry on loopback speaks: blob existence checks
//! (`HEAD`), cross-repository mounts, monolithic uploads (`POST` then `PUT ?digest=`), and
//! manifest `PUT` by tag. No authentication and no TLS: a registry that asks for either gets
//! a clear error.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anycri_core::{Error, ErrorKind, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, CONTENT_LENGTH, HeaderValue, LOCATION};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::image::{Blob, Digest, Image, media_types};

/// What pushing one blob took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The repository had it already.
    Existed,
    /// Mounted from another repository of the same registry (no upload).
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// What pushing one image did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Blobs (layers and config) uploaded.
    pub uploaded: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
    /// Blobs already present.
    pub existed: usize,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// The manifest digest the registry reported for each tag.
    pub manifest_digest: Option<Digest>,
}

/// A client for one registry (`host:port`, or `http://host:port`).
#[derive(Debug)]
pub struct RegistryClient {
    host: String,
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    /// Where each blob is known to exist, for cross-repository mounts.
    known: Mutex<HashMap<Digest, String>>,
}

struct Response {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl RegistryClient {
    /// A client for `registry`: `host[:port]` or `http://host[:port]`. `https://` is not
    /// supported (Unimplemented); anything else that is not a host is InvalidArgument.
    pub fn new(registry: &str) -> Result<RegistryClient> {
        let host = if let Some(rest) = registry.strip_prefix("http://") {
            rest
        } else if registry.starts_with("https://") {
            return Err(Error::unimplemented(
                "pushing test images over HTTPS",
                "anycri-images (plain HTTP registries only)",
            ));
        } else {
            registry
        };
        let host = host.trim_end_matches('/');
        let valid = !host.is_empty()
            && !host.contains('/')
            && !host.contains('@')
            && host.parse::<hyper::http::uri::Authority>().is_ok()
            && host
                .rsplit_once(':')
                .is_none_or(|(_, port)| port.contains(']') || port.parse::<u16>().is_ok());
        if !valid {
            return Err(Error::invalid_argument(format!(
                "not a registry address (host[:port]): {registry:?}"
            )));
        }
        Ok(RegistryClient {
            host: host.to_owned(),
            base: format!("http://{host}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
            timeout: Duration::from_secs(120),
            known: Mutex::new(HashMap::new()),
        })
    }

    /// The same client with `timeout` for each request (default 120 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The registry's `host[:port]`, as image references name it.
    pub fn host(&self) -> &str {
        &self.host
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Response> {
        let mut req = Request::builder().method(method.clone()).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let len = body.len();
        let mut req = req.body(Full::new(body)).map_err(|e| {
            Error::with_source(
                ErrorKind::InvalidArgument,
                format!("bad request {method} {uri}"),
                e,
            )
        })?;
        if method == Method::PUT || method == Method::POST {
            req.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                Error::with_source(
                    ErrorKind::Unavailable,
                    format!("registry {}: {method} {uri}", self.host),
                    e,
                )
            })?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|e| {
                Error::with_source(
                    ErrorKind::Unavailable,
                    format!(
                        "registry {}: reading the answer to {method} {uri}",
                        self.host
                    ),
                    e,
                )
            })?;
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body: body.to_bytes(),
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                Error::deadline_exceeded(format!(
                    "registry {}: {method} {uri} took longer than {:?}",
                    self.host, self.timeout
                ))
            })?
    }

    /// Check that the registry speaks the V2 API without authentication (`GET /v2/`).
    pub async fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = self.send(Method::GET, &url, &[], Bytes::new()).await?;
        expect(&resp, &[StatusCode::OK], "GET /v2/")
    }

    /// Whether `repository` has the blob `digest` (`HEAD /v2/<repo>/blobs/<digest>`).
    pub async fn blob_exists(&self, repository: &str, digest: &Digest) -> Result<bool> {
        validate_repository(repository)?;
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let resp = self.send(Method::HEAD, &url, &[], Bytes::new()).await?;
        match resp.status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(&resp, &format!("HEAD blob {digest}"))),
        }
    }

    /// Push `blob` to `repository` unless it is there: mount it from a repository of this
    /// registry that is known to have it, else upload it monolithically.
    pub async fn push_blob(&self, repository: &str, blob: &Blob) -> Result<BlobPush> {
        validate_repository(repository)?;
        if self.blob_exists(repository, &blob.digest).await? {
            self.remember(&blob.digest, repository);
            return Ok(BlobPush::Existed);
        }
        let from = self
            .known
            .lock()
            .ok()
            .and_then(|k| k.get(&blob.digest).cloned())
            .filter(|r| r != repository);
        let start = match &from {
            Some(from) => format!(
                "{}/v2/{repository}/blobs/uploads/?mount={}&from={from}",
                self.base,
                query_escape(blob.digest.as_str())
            ),
            None => format!("{}/v2/{repository}/blobs/uploads/", self.base),
        };
        let resp = self.send(Method::POST, &start, &[], Bytes::new()).await?;
        if resp.status == StatusCode::CREATED && from.is_some() {
            self.remember(&blob.digest, repository);
            return Ok(BlobPush::Mounted);
        }
        expect(&resp, &[StatusCode::ACCEPTED], "starting a blob upload")?;
        let location = self.location(&resp)?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!(
            "{location}{sep}digest={}",
            query_escape(blob.digest.as_str())
        );
        let resp = self
            .send(
                Method::PUT,
                &url,
                &[("content-type", "application/octet-stream")],
                blob.data.clone(),
            )
            .await?;
        expect(
            &resp,
            &[StatusCode::CREATED],
            &format!("uploading blob {}", blob.digest),
        )?;
        self.remember(&blob.digest, repository);
        Ok(BlobPush::Uploaded)
    }

    /// Put `manifest` as `repository:tag`; returns the digest the registry computed, which
    /// must be the manifest's own (DataLoss otherwise).
    pub async fn push_manifest(
        &self,
        repository: &str,
        tag: &str,
        manifest: &Blob,
    ) -> Result<Digest> {
        validate_repository(repository)?;
        validate_tag(tag)?;
        let url = format!("{}/v2/{repository}/manifests/{tag}", self.base);
        let resp = self
            .send(
                Method::PUT,
                &url,
                &[("content-type", manifest.media_type.as_str())],
                manifest.data.clone(),
            )
            .await?;
        expect(
            &resp,
            &[StatusCode::CREATED],
            &format!("putting manifest {repository}:{tag}"),
        )?;
        match header(&resp, "docker-content-digest") {
            Some(d) => {
                let digest = Digest::parse(d)?;
                if digest != manifest.digest {
                    return Err(Error::data_loss(format!(
                        "registry stored {repository}:{tag} as {digest}, expected {}",
                        manifest.digest
                    )));
                }
                Ok(digest)
            }
            None => Ok(manifest.digest.clone()),
        }
    }

    /// The digest of the manifest `reference` (a tag or digest) names in `repository`, or
    /// None if it has none (`HEAD /v2/<repo>/manifests/<reference>`).
    pub async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Digest>> {
        validate_repository(repository)?;
        if Digest::parse(reference).is_err() {
            validate_tag(reference)?;
        }
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let accept = [
            media_types::OCI_MANIFEST,
            media_types::DOCKER_MANIFEST,
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ]
        .join(", ");
        let resp = self
            .send(
                Method::HEAD,
                &url,
                &[(ACCEPT.as_str(), &accept)],
                Bytes::new(),
            )
            .await?;
        match resp.status {
            StatusCode::OK => header(&resp, "docker-content-digest")
                .map(Digest::parse)
                .transpose(),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(&resp, &format!("HEAD manifest {reference}"))),
        }
    }

    /// Push `image` to `repository` under each of `tags`: its layers and config, then the
    /// manifest once per tag.
    pub async fn push_image(
        &self,
        repository: &str,
        image: &Image,
        tags: &[String],
    ) -> Result<PushReport> {
        if tags.is_empty() {
            return Err(Error::invalid_argument(format!(
                "pushing {repository}: no tag given"
            )));
        }
        let mut report = PushReport::default();
        for blob in image.layers.iter().chain(std::iter::once(&image.config)) {
            match self.push_blob(repository, blob).await? {
                BlobPush::Existed => report.existed += 1,
                BlobPush::Mounted => report.mounted += 1,
                BlobPush::Uploaded => {
                    report.uploaded += 1;
                    report.bytes_uploaded += blob.size();
                }
            }
        }
        for tag in tags {
            report.manifest_digest =
                Some(self.push_manifest(repository, tag, &image.manifest).await?);
        }
        Ok(report)
    }

    fn remember(&self, digest: &Digest, repository: &str) {
        if let Ok(mut known) = self.known.lock() {
            known
                .entry(digest.clone())
                .or_insert_with(|| repository.to_owned());
        }
    }

    fn location(&self, resp: &Response) -> Result<String> {
        let loc = resp
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::internal(format!(
                    "registry {} started an upload without a Location",
                    self.host
                ))
            })?;
        if loc.starts_with("http://") {
            Ok(loc.to_owned())
        } else if loc.starts_with('/') {
            Ok(format!("{}{loc}", self.base))
        } else if loc.starts_with("https://") {
            Err(Error::unimplemented(
                "uploading to an HTTPS location",
                "anycri-images (plain HTTP registries only)",
            ))
        } else {
            Err(Error::internal(format!(
                "registry {} gave an upload location we cannot use: {loc:?}",
                self.host
            )))
        }
    }
}

fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers.get(name).and_then(|v| v.to_str().ok())
}

fn expect(resp: &Response, ok: &[StatusCode], what: &str) -> Result<()> {
    if ok.contains(&resp.status) {
        Ok(())
    } else {
        Err(status_error(resp, what))
    }
}

/// An error of the category the registry's HTTP status means, with its error messages.
fn status_error(resp: &Response, what: &str) -> Error {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<RegistryError>,
    }
    #[derive(serde::Deserialize)]
    struct RegistryError {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let detail = serde_json::from_slice::<Errors>(&resp.body)
        .ok()
        .map(|e| {
            e.errors
                .iter()
                .map(|e| format!("{}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&resp.body)
                .trim()
                .chars()
                .take(300)
                .collect()
        });
    let kind = match resp.status {
        StatusCode::BAD_REQUEST => ErrorKind::InvalidArgument,
        StatusCode::UNAUTHORIZED => ErrorKind::Unauthenticated,
        StatusCode::FORBIDDEN => ErrorKind::PermissionDenied,
        StatusCode::NOT_FOUND => ErrorKind::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorKind::Unimplemented,
        StatusCode::TOO_MANY_REQUESTS => ErrorKind::ResourceExhausted,
        s if s.is_server_error() => ErrorKind::Unavailable,
        _ => ErrorKind::Unknown,
    };
    let auth = if resp.status == StatusCode::UNAUTHORIZED {
        " (the registry wants authentication, which anycri-images does not do)"
    } else {
        ""
    };
    Error::new(
        kind,
        format!("registry: {what}: HTTP {}{auth}: {detail}", resp.status),
    )
}

fn query_escape(s: &str) -> String {
    s.replace(':', "%3A")
}

/// Check a repository name as the distribution spec defines it: `/`-separated components of
/// lowercase letters and digits, joined inside by `.`, `_`, `__` or dashes.
pub fn validate_repository(name: &str) -> Result<()> {
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|&x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"._-".contains(&x))
            && !c.contains("..")
            && !c.contains("._")
            && !c.contains("_.")
            && !c.contains("___")
    };
    if name.len() <= 255 && name.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(Error::invalid_argument(format!(
            "invalid repository name {name:?}: lowercase letters, digits and . _ - inside \
             /-separated components"
        )))
    }
}

/// Check a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<()> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || b"_.-".contains(&x));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_argument(format!("invalid tag {tag:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_addresses() {
        assert_eq!(
            RegistryClient::new("127.0.0.1:5000").unwrap().host(),
            "127.0.0.1:5000"
        );
        assert_eq!(
            RegistryClient::new("http://localhost:5000/")
                .unwrap()
                .host(),
            "localhost:5000"
        );
        let err = RegistryClient::new("https://r.example").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unimplemented);
        for bad in ["", "a/b", "http://", "ho st", "127.0.0.1:port"] {
            let err = RegistryClient::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn names_and_tags() {
        for ok in [
            "busybox",
            "anycri-conformance/user-uid",
            "a/b.c/d_e",
            "a__b",
        ] {
            validate_repository(ok).unwrap();
        }
        for bad in ["", "Busybox", "a//b", "-a", "a-", "a/", "a b", "a..b"] {
            assert!(validate_repository(bad).is_err(), "{bad:?}");
        }
        for ok in ["1", "1.0", "latest", "_x", "v1-rc.2"] {
            validate_tag(ok).unwrap();
        }
        for bad in ["", ".x", "-x", "a:b", "a/b", &"x".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn registry_errors_map_to_categories() {
        let resp = |status: StatusCode, body: &str| Response {
            status,
            headers: Default::default(),
            body: Bytes::from(body.to_owned()),
        };
        let e = status_error(
            &resp(
                StatusCode::BAD_REQUEST,
                r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#,
            ),
            "uploading",
        );
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains("DIGEST_INVALID"), "{e}");
        let e = status_error(&resp(StatusCode::UNAUTHORIZED, ""), "ping");
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert!(e.message().contains("authentication"));
        let e = status_error(&resp(StatusCode::BAD_GATEWAY, "oops"), "x");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.message().contains("oops"));
    }

    #[tokio::test]
    async fn unreachable_registry_is_unavailable() {
        // a port nothing listens on: bind one, then drop it
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = RegistryClient::new(&format!("127.0.0.1:{port}")).unwrap();
        let err = client.ping().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    }
}
