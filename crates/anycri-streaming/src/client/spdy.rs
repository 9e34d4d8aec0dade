//! The SPDY/3.1 transport of the exec and attach client, as kubectl and critest connect: an
//! HTTP/1.1 `POST` with `Upgrade: SPDY/3.1` offering the remote command protocols v4 to v1
//! in `X-Stream-Protocol-Version`, then one SPDY stream per channel, opened by the client
//! (`error` first, then `stdin`, `stdout`, `stderr` and, with a terminal on v3 and later,
//! `resize`). Closing stdin is a FIN on its stream, which every CRI streaming server passes on
//! to the process. The session it returns is the same [`ExecSession`] as over WebSocket: the
//! stdin writer and resizes go through the session's frame queue to a task that writes them
//! on their streams, and stdout and stderr are copied into the session's pipes.

use std::time::Duration;

use anycri_core::{Error, Result};
use anycri_spdy::{
    Headers, SpdySession, SpdyStream, UPGRADE_PROTOCOL,
    k8s::{
        HEADER_PROTOCOL_VERSION, HEADER_STREAM_TYPE, RemoteCommandProtocol, STREAM_TYPE_ERROR,
        STREAM_TYPE_RESIZE, STREAM_TYPE_STDERR, STREAM_TYPE_STDIN, STREAM_TYPE_STDOUT,
        SUPPORTED_REMOTE_COMMAND_PROTOCOLS,
    },
};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
};

use super::{ExecOptions, ExecSession, ReadOutcome, Transport, http_error};
use crate::{
    mux::{ChannelWriter, Frame, PIPE, QUEUE},
    protocol,
};

/// How long the server has to answer the upgrade and each stream's SYN_STREAM.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of an error body or an exit status this client reads.
const MAX_STATUS: usize = 64 * 1024;

/// Connect to an exec or attach URL over SPDY/3.1.
pub(super) async fn connect_exec(url: &str, options: ExecOptions) -> Result<ExecSession> {
    let (session, protocol) = tokio::time::timeout(HANDSHAKE_TIMEOUT, upgrade(url))
        .await
        .map_err(|_| {
            Error::deadline_exceeded(format!(
                "streaming URL {url}: no answer to the SPDY upgrade within {HANDSHAKE_TIMEOUT:?}"
            ))
        })??;
    let open = |kind: &'static str| {
        let session = &session;
        async move {
            let mut headers = Headers::new();
            headers.insert(HEADER_STREAM_TYPE, kind);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, session.open_stream(headers, false)).await
            {
                Ok(Ok(stream)) => Ok(stream),
                Ok(Err(e)) => Err(Error::unavailable(format!(
                    "streaming URL {url}: opening the {kind} stream: {e}"
                ))),
                Err(_) => Err(Error::deadline_exceeded(format!(
                    "streaming URL {url}: the server did not accept the {kind} stream \
                     (do the session's options match the request the URL was made for?)"
                ))),
            }
        }
    };
    // The order kubectl uses; the server waits until it has every stream it expects.
    let error = open(STREAM_TYPE_ERROR).await?;
    let stdin = match options.stdin {
        true => Some(open(STREAM_TYPE_STDIN).await?),
        false => None,
    };
    let stdout = match options.stdout {
        true => Some(open(STREAM_TYPE_STDOUT).await?),
        false => None,
    };
    let stderr = match options.stderr && !options.tty {
        true => Some(open(STREAM_TYPE_STDERR).await?),
        false => None,
    };
    let resize = match options.tty && protocol.supports_resize() {
        true => Some(open(STREAM_TYPE_RESIZE).await?),
        false => None,
    };

    let pipe = |stream: Option<SpdyStream>| match stream {
        Some(stream) => {
            let (r, w) = tokio::io::simplex(PIPE);
            (Some(r), Some((stream, w)))
        }
        None => (None, None),
    };
    let (stdout, stdout_copy) = pipe(stdout);
    let (stderr, stderr_copy) = pipe(stderr);
    let reader = tokio::spawn(read_streams(error, stdout_copy, stderr_copy));
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(write_streams(session, rx, stdin, resize));
    // The exit status's format: JSON from v4, plain text before (as the WebSocket v1 form).
    let status_format = if protocol == RemoteCommandProtocol::V4 {
        protocol::by_name(protocol::V4_CHANNEL, protocol::EXEC_PROTOCOLS)
    } else {
        protocol::by_name(protocol::V1_CHANNEL, protocol::EXEC_PROTOCOLS)
    }
    .unwrap_or(protocol::DEFAULT_PROTOCOL);
    Ok(ExecSession {
        stdin: options
            .stdin
            .then(|| ChannelWriter::new(tx.clone(), protocol::STDIN, true)),
        stdout,
        stderr,
        protocol: status_format,
        name: protocol.name(),
        transport: Transport::Spdy,
        tx,
        reader,
    })
}

/// The HTTP upgrade: the session on the upgraded connection and the protocol the server
/// chose.
async fn upgrade(url: &str) -> Result<(SpdySession, RemoteCommandProtocol)> {
    let url = &*super::with_scheme(url);
    let uri: http::Uri = url
        .parse()
        .map_err(|e| Error::invalid_argument(format!("streaming URL {url:?}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(Error::invalid_argument(format!(
            "streaming URL {url:?}: only http:// (plain) URLs are supported"
        )));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| Error::invalid_argument(format!("streaming URL {url:?} has no host")))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| Error::unavailable(format!("streaming URL {url}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| Error::unavailable(format!("streaming URL {url}: {e}")))?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    let mut request = http::Request::post(
        uri.path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_owned(),
    )
    .header(http::header::HOST, authority.as_str())
    .header(http::header::CONNECTION, "Upgrade")
    .header(http::header::UPGRADE, UPGRADE_PROTOCOL);
    for offer in SUPPORTED_REMOTE_COMMAND_PROTOCOLS {
        request = request.header(HEADER_PROTOCOL_VERSION, *offer);
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| Error::internal(format!("building the upgrade request: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| Error::unavailable(format!("streaming URL {url}: {e}")))?;
    let status = response.status();
    if status != http::StatusCode::SWITCHING_PROTOCOLS {
        let body = Limited::new(response.into_body(), MAX_STATUS)
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
            .unwrap_or_default();
        return Err(http_error(url, status.as_u16(), &body));
    }
    let chosen = response
        .headers()
        .get(HEADER_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // A server that answers without naming a protocol speaks v1 (the kubelet's rule).
    let protocol = if chosen.is_empty() {
        RemoteCommandProtocol::V1
    } else {
        RemoteCommandProtocol::from_name(&chosen).ok_or_else(|| {
            Error::unavailable(format!(
                "streaming URL {url}: the server chose an unknown protocol {chosen:?}"
            ))
        })?
    };
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| Error::unavailable(format!("streaming URL {url}: upgrading: {e}")))?;
    Ok((SpdySession::client(TokioIo::new(upgraded)), protocol))
}

/// Read the exit status from the error stream while copying stdout and stderr into their
/// pipes; done when all three have ended.
async fn read_streams<W>(
    mut error: SpdyStream,
    stdout: Option<(SpdyStream, W)>,
    stderr: Option<(SpdyStream, W)>,
) -> ReadOutcome
where
    W: AsyncWrite + Unpin,
{
    let status = async {
        let mut status = Vec::new();
        let mut buf = [0u8; 4096];
        let failure = loop {
            match error.read(&mut buf).await {
                Ok(0) => break None,
                Ok(n) if status.len() + n > MAX_STATUS => {
                    break Some(format!("an exit status longer than {MAX_STATUS} bytes"));
                }
                Ok(n) => status.extend_from_slice(&buf[..n]),
                Err(e) if is_reset(&e) => break None,
                Err(e) => break Some(format!("reading the exit status: {e}")),
            }
        };
        (status, failure)
    };
    let ((status, failure), (), ()) = tokio::join!(status, copy(stdout), copy(stderr));
    ReadOutcome {
        status: (!status.is_empty()).then_some(status),
        error: failure,
    }
}

/// The kubelet's streaming server (containerd's and CRI-O's too) ends a session by resetting
/// every stream rather than closing it, right after writing the status; spdystream's readers
/// (kubectl's) take a reset as the end of the stream, and so does this client.
fn is_reset(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::ConnectionReset
}

/// Copy a stream into its pipe; once nobody reads the pipe, keep reading the stream and drop
/// what comes (a stream nobody drains would stall the whole session).
async fn copy<W>(pair: Option<(SpdyStream, W)>)
where
    W: AsyncWrite + Unpin,
{
    let Some((mut stream, pipe)) = pair else {
        return;
    };
    let mut pipe = Some(pipe);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // A reset (see `is_reset`) or a closed connection ends the stream too.
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(w) = pipe.as_mut()
            && w.write_all(&buf[..n]).await.is_err()
        {
            pipe = None;
        }
    }
    if let Some(mut w) = pipe {
        let _ = w.shutdown().await;
    }
}

/// Write what the session queues — stdin bytes, stdin's close, terminal sizes — on their
/// streams, in order. When every sender is gone (the session was waited for or dropped),
/// close the connection: the server then knows the client has left.
async fn write_streams(
    session: SpdySession,
    mut rx: mpsc::Receiver<Frame>,
    mut stdin: Option<SpdyStream>,
    mut resize: Option<SpdyStream>,
) {
    while let Some(frame) = rx.recv().await {
        let (stream, data) = match frame {
            Frame::Data(protocol::STDIN, data) => (&mut stdin, Some(data)),
            Frame::Data(protocol::RESIZE, data) => (&mut resize, Some(data)),
            Frame::CloseChannel(protocol::STDIN) => (&mut stdin, None),
            _ => continue,
        };
        let Some(s) = stream.as_mut() else { continue };
        let ok = match data {
            Some(data) => s.write_all(&data).await.is_ok(),
            None => s.shutdown().await.is_ok(),
        };
        if !ok {
            // The server reset the stream or the connection is gone: later writes go nowhere.
            *stream = None;
        }
    }
    session.close().await;
}
