//! The status of a message over the size limit. gRPC says RESOURCE_EXHAUSTED, and grpc-go —
//! so containerd, CRI-O, cri-dockerd, the kubelet and crictl — answers it; tonic answers
//! OUT_OF_RANGE. [`SizeStatus`] rewrites exactly those statuses, in the response headers (a
//! request refused before its handler ran) and in the trailers (a response refused while being
//! encoded), so a client sees from anycri's server the code any other CRI runtime gives it.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures::{TryFutureExt, future::MapOk};
use http_body::{Frame, SizeHint};
use tonic::{
    Status,
    body::Body,
    codegen::{Bytes, Service, http},
};

/// tonic's `grpc-status` for a message over the limit (OUT_OF_RANGE), and gRPC's.
const TONIC_CODE: &[u8] = b"11";
const GRPC_CODE: &str = "8";

/// Whether `headers` carry tonic's status for a message over the size limit.
fn is_size_status(headers: &http::HeaderMap) -> bool {
    headers.get("grpc-status").map(|v| v.as_bytes()) == Some(TONIC_CODE)
        && headers.get("grpc-message").is_some_and(|m| {
            // tonic percent-encodes the message's spaces
            let m = m.as_bytes();
            [
                &b"message length too large"[..],
                b"message%20length%20too%20large",
            ]
            .iter()
            .any(|needle| m.windows(needle.len()).any(|w| w == *needle))
        })
}

fn fix(headers: &mut http::HeaderMap) {
    if is_size_status(headers) {
        headers.insert("grpc-status", http::HeaderValue::from_static(GRPC_CODE));
    }
}

/// A tower service around tonic's routes that gives size-limit failures gRPC's status code.
#[derive(Debug, Clone)]
pub(crate) struct SizeStatus<S>(pub(crate) S);

type Fixer = fn(http::Response<Body>) -> http::Response<Body>;

fn fix_response(mut response: http::Response<Body>) -> http::Response<Body> {
    fix(response.headers_mut());
    response.map(|body| Body::new(FixTrailers(body)))
}

impl<S, B> Service<http::Request<B>> for SizeStatus<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = MapOk<S::Future, Fixer>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.0.call(request).map_ok(fix_response as Fixer)
    }
}

/// A response body whose trailers get the fix.
struct FixTrailers(Body);

impl http_body::Body for FixTrailers {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.0)
            .poll_frame(cx)
            .map_ok(|frame| match frame.into_trailers() {
                Ok(mut trailers) => {
                    fix(&mut trailers);
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            })
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(code: &str, message: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", code.parse().unwrap());
        h.insert("grpc-message", message.parse().unwrap());
        h
    }

    #[test]
    fn only_size_statuses_change() {
        let mut h = headers(
            "11",
            "Error,%20decoded%20message%20length%20too%20large:%20found%2070000%20bytes",
        );
        fix(&mut h);
        assert_eq!(h["grpc-status"], "8");
        let mut h = headers(
            "11",
            "Error, encoded message length too large: found 1 bytes",
        );
        fix(&mut h);
        assert_eq!(h["grpc-status"], "8");
        // A backend's own OUT_OF_RANGE, and other codes, stay as they are.
        let mut h = headers("11", "offset past the end of the log");
        fix(&mut h);
        assert_eq!(h["grpc-status"], "11");
        let mut h = headers("13", "message length too large");
        fix(&mut h);
        assert_eq!(h["grpc-status"], "13");
    }
}
