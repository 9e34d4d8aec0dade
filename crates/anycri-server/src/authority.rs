//! grpc-core's unix-socket `:authority`, made acceptable to h2. Since grpc-core 1.57
//! (grpc/grpc#33571) a client of `unix:/run/x.sock` with default options (Python's grpcio, C++,
//! Ruby, PHP, C#) sends the socket path, percent-encoded, as `:authority` (`%2Frun%2Fx.sock`).
//! h2, under tonic, parses it with the `http` crate, which refuses it, and resets every such
//! call with PROTOCOL_ERROR (hyperium/h2#442); grpc-go (containerd, CRI-O) answers it. So
//! [`AuthorityFix`] sits between each accepted connection and tonic: it passes every byte through
//! unchanged except the client's header blocks, which it HPACK-decodes with `loona-hpack`
//! (keeping the client's dynamic table), and from the first block whose authority h2 would
//! refuse on, it replaces such an authority with `localhost` (what grpc-go sends over a unix
//! socket) and re-encodes every block without touching h2's dynamic table, so h2's decoder never
//! depends on ours. A connection whose authorities are all valid (grpc-go, grpc-java, tonic:
//! the kubelet, crictl, anycri itself) goes through byte for byte.

use std::{
    fmt, io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use loona_hpack::{Decoder, decoder::DecoderError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::{codegen::http::uri::Authority, transport::server::Connected};

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEAD_LEN: usize = 9;
/// Frame types and flags (RFC 9113 §6.2, §6.10).
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
const PRIORITY_LEN: usize = 5;
/// The largest frame sent on to h2: SETTINGS_MAX_FRAME_SIZE's initial value, which every peer
/// accepts (`serve_unix` does not raise it).
const MAX_FRAME_LEN: usize = 16_384;
/// The largest dynamic table a client may ask for: SETTINGS_HEADER_TABLE_SIZE's initial value,
/// which h2 keeps (`serve_unix` does not change it), so both decoders refuse the same updates.
const HEADER_TABLE_SIZE: usize = 4_096;
/// The largest header block held, compressed or decoded: h2, under hyper's 16 KiB header list
/// limit, refuses far smaller ones, so only an abusive client reaches it.
const MAX_BLOCK_LEN: usize = 1 << 20;
/// HPACK's per-field overhead in a header list's size (RFC 7541 §4.1).
const FIELD_OVERHEAD: usize = 32;
/// Bytes read from the connection at a time while frames are being looked at.
const SCRATCH_LEN: usize = 8 * 1024;
const AUTHORITY: &[u8] = b":authority";
/// What replaces an authority h2 would refuse: what grpc-go sends over a unix socket.
const REPLACEMENT: &[u8] = b"localhost";

/// A server-side connection that makes grpc-core's unix-socket `:authority` acceptable to h2
/// (see the module docs). Reads are rewritten header block by header block; writes go through
/// untouched. [`serve_unix`](crate::serve_unix) wraps every connection it accepts in one; wrap
/// the connections of your own tonic server the same way:
///
/// ```no_run
/// # async fn example(listener: tokio::net::UnixListener) {
/// use futures::TryStreamExt;
/// use tokio_stream::wrappers::UnixListenerStream;
///
/// let incoming = UnixListenerStream::new(listener).map_ok(anycri_server::AuthorityFix::new);
/// # let _ = incoming;
/// # }
/// ```
pub struct AuthorityFix<IO> {
    inner: IO,
    rewriter: Rewriter,
    /// Rewritten bytes not yet read, from `sent` on.
    out: Vec<u8>,
    sent: usize,
    scratch: Box<[u8]>,
    /// Why the client's stream could not be passed on; every read after it fails.
    failed: Option<Malformed>,
}

impl<IO> AuthorityFix<IO> {
    /// Wrap a connection that has just been accepted (nothing read from it yet).
    pub fn new(inner: IO) -> Self {
        AuthorityFix {
            inner,
            rewriter: Rewriter::new(),
            out: Vec::new(),
            sent: 0,
            scratch: vec![0; SCRATCH_LEN].into_boxed_slice(),
            failed: None,
        }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &IO {
        &self.inner
    }
}

impl<IO: fmt::Debug> fmt::Debug for AuthorityFix<IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorityFix")
            .field("inner", &self.inner)
            .field("rewriting", &self.rewriter.transcoding)
            .finish_non_exhaustive()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for AuthorityFix<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.sent < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.sent);
                buf.put_slice(&this.out[this.sent..this.sent + n]);
                this.sent += n;
                if this.sent == this.out.len() {
                    this.out.clear();
                    this.sent = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = this.failed {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
            }
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            // Bytes that go through as they are (a DATA frame's payload, say) skip the copy.
            if this.rewriter.forward_len() >= buf.remaining() {
                let before = buf.filled().len();
                ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                this.rewriter.forwarded(buf.filled().len() - before);
                return Poll::Ready(Ok(()));
            }
            let n = {
                let mut read = ReadBuf::new(&mut this.scratch);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
                read.filled().len()
            };
            if n == 0 {
                // The client went away; an unfinished frame held here is dropped, so h2 sees
                // the connection end between frames.
                return Poll::Ready(Ok(()));
            }
            if let Err(e) = this.rewriter.feed(&this.scratch[..n], &mut this.out) {
                // The frames before the malformed one still go to h2 first.
                tracing::debug!(error = %e, "failing a client connection");
                this.failed = Some(e);
            }
        }
    }
}

#[deny(clippy::missing_trait_methods)]
impl<IO: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<IO: Connected> Connected for AuthorityFix<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Why a client's byte stream cannot be passed on: its connection fails.
#[derive(Debug, Clone, Copy)]
enum Malformed {
    Frame(&'static str),
    Hpack(DecoderError),
    TooLarge,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Frame(what) => write!(f, "malformed HTTP/2 frames: {what}"),
            Malformed::Hpack(e) => write!(f, "a header block HPACK cannot decode: {e}"),
            Malformed::TooLarge => write!(f, "a header block over {MAX_BLOCK_LEN} bytes"),
        }
    }
}

impl std::error::Error for Malformed {}

/// A header field: name and value.
type Field = (Vec<u8>, Vec<u8>);

/// Where the rewriter is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Within the connection preface, this many bytes of it seen.
    Preface(usize),
    /// Within a frame header (`Rewriter::head`).
    Head,
    /// Within the payload of a frame that goes through as it is, this many bytes left.
    Forward(usize),
    /// Within the payload of a HEADERS or CONTINUATION frame, this many bytes left.
    Collect(usize),
    /// Not an HTTP/2 client: everything goes through, for h2 to refuse.
    Verbatim,
}

/// A header block whose CONTINUATION frames are still coming, or complete.
struct Block {
    stream: [u8; 4],
    /// END_STREAM and PRIORITY as the HEADERS frame had them.
    flags: u8,
    priority: Option<[u8; PRIORITY_LEN]>,
    /// The HPACK bytes, padding and priority stripped.
    fragment: Vec<u8>,
    /// The frames as the client sent them.
    raw: Vec<u8>,
}

/// The client-to-server half of the connection, sans I/O: bytes in, the bytes h2 should see
/// out.
struct Rewriter {
    step: Step,
    head: [u8; FRAME_HEAD_LEN],
    head_len: usize,
    payload: Vec<u8>,
    block: Option<Block>,
    decoder: Decoder<'static>,
    /// Whether header blocks are being re-encoded (from the first one that needed it on).
    transcoding: bool,
}

impl Rewriter {
    fn new() -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(HEADER_TABLE_SIZE);
        Rewriter {
            step: Step::Preface(0),
            head: [0; FRAME_HEAD_LEN],
            head_len: 0,
            payload: Vec::new(),
            block: None,
            decoder,
            transcoding: false,
        }
    }

    /// How many of the next bytes go through unchanged without being fed.
    fn forward_len(&self) -> usize {
        match self.step {
            Step::Forward(left) => left,
            Step::Verbatim => usize::MAX,
            _ => 0,
        }
    }

    /// `n` of the bytes [`forward_len`](Self::forward_len) announced went through.
    fn forwarded(&mut self, n: usize) {
        if let Step::Forward(left) = self.step {
            self.step = if n >= left {
                Step::Head
            } else {
                Step::Forward(left - n)
            };
        }
    }

    /// Take in `input` from the client, append what h2 should see to `out`.
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Malformed> {
        while !input.is_empty() {
            match self.step {
                Step::Preface(seen) => {
                    let n = (PREFACE.len() - seen).min(input.len());
                    let (now, rest) = input.split_at(n);
                    out.extend_from_slice(now);
                    input = rest;
                    self.step = if now != &PREFACE[seen..seen + n] {
                        Step::Verbatim
                    } else if seen + n == PREFACE.len() {
                        Step::Head
                    } else {
                        Step::Preface(seen + n)
                    };
                }
                Step::Head => {
                    let n = (FRAME_HEAD_LEN - self.head_len).min(input.len());
                    let (now, rest) = input.split_at(n);
                    self.head[self.head_len..self.head_len + n].copy_from_slice(now);
                    self.head_len += n;
                    input = rest;
                    if self.head_len == FRAME_HEAD_LEN {
                        self.head_len = 0;
                        self.start_frame(out)?;
                    }
                }
                Step::Forward(left) => {
                    let n = left.min(input.len());
                    let (now, rest) = input.split_at(n);
                    out.extend_from_slice(now);
                    input = rest;
                    self.forwarded(n);
                }
                Step::Collect(left) => {
                    let n = left.min(input.len());
                    let (now, rest) = input.split_at(n);
                    self.payload.extend_from_slice(now);
                    input = rest;
                    if n == left {
                        self.end_frame(out)?;
                    } else {
                        self.step = Step::Collect(left - n);
                    }
                }
                Step::Verbatim => {
                    out.extend_from_slice(input);
                    break;
                }
            }
        }
        Ok(())
    }

    /// A frame header is complete: forward it, or collect a header block frame.
    fn start_frame(&mut self, out: &mut Vec<u8>) -> Result<(), Malformed> {
        let [l0, l1, l2, kind, ..] = self.head;
        let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
        let stream = stream_id(&self.head);
        let collect = match (&self.block, kind) {
            (None, HEADERS) => true,
            (Some(block), CONTINUATION) if block.stream == stream => true,
            (Some(_), _) => {
                return Err(Malformed::Frame(
                    "a header block interrupted by another frame",
                ));
            }
            // A CONTINUATION without a HEADERS frame, for h2 to refuse.
            (None, _) => false,
        };
        if !collect {
            out.extend_from_slice(&self.head);
            self.step = if len == 0 {
                Step::Head
            } else {
                Step::Forward(len)
            };
            return Ok(());
        }
        let held = self.block.as_ref().map_or(0, |b| b.raw.len());
        if held + FRAME_HEAD_LEN + len > MAX_BLOCK_LEN {
            return Err(Malformed::TooLarge);
        }
        self.payload.clear();
        self.step = Step::Collect(len);
        if len == 0 {
            self.end_frame(out)?;
        }
        Ok(())
    }

    /// A HEADERS or CONTINUATION frame is complete: add it to its block, and pass the block on
    /// once it ends.
    fn end_frame(&mut self, out: &mut Vec<u8>) -> Result<(), Malformed> {
        self.step = Step::Head;
        let flags = self.head[4];
        let payload = &self.payload[..];
        let mut block = match self.block.take() {
            Some(mut block) => {
                block.fragment.extend_from_slice(payload);
                block
            }
            None => headers_frame(stream_id(&self.head), flags, payload)?,
        };
        block.raw.extend_from_slice(&self.head);
        block.raw.extend_from_slice(payload);
        if flags & END_HEADERS == 0 {
            self.block = Some(block);
            return Ok(());
        }
        let mut fields = self.decode(&block.fragment)?;
        let invalid = fields
            .iter()
            .find(|(name, value)| name == AUTHORITY && !valid_authority(value));
        if !self.transcoding {
            let Some((_, authority)) = invalid else {
                out.extend_from_slice(&block.raw);
                return Ok(());
            };
            tracing::debug!(
                authority = %String::from_utf8_lossy(authority),
                "a client sends an authority h2 refuses (grpc-core over a unix socket?): \
                 rewriting it to localhost from here on",
            );
            self.transcoding = true;
        }
        for (name, value) in &mut fields {
            if name == AUTHORITY && !valid_authority(value) {
                *value = REPLACEMENT.to_vec();
            }
        }
        write_frames(&block, &encode(&fields), out);
        Ok(())
    }

    /// Decode one header block, updating the client's dynamic table.
    fn decode(&mut self, fragment: &[u8]) -> Result<Vec<Field>, Malformed> {
        let mut fields = Vec::new();
        let mut size = 0usize;
        self.decoder
            .decode_with_cb(fragment, |name, value| {
                // A field can be a one-byte reference to a 4 KiB table entry: the decoded size
                // is bounded too.
                size = size.saturating_add(name.len() + value.len() + FIELD_OVERHEAD);
                if size <= MAX_BLOCK_LEN {
                    fields.push((name.into_owned(), value.into_owned()));
                }
            })
            .map_err(Malformed::Hpack)?;
        if size > MAX_BLOCK_LEN {
            return Err(Malformed::TooLarge);
        }
        Ok(fields)
    }
}

/// The stream identifier of a frame header, reserved bit cleared.
fn stream_id(head: &[u8; FRAME_HEAD_LEN]) -> [u8; 4] {
    [head[5] & 0x7f, head[6], head[7], head[8]]
}

/// The start of a header block from a HEADERS frame's payload (RFC 9113 §6.2).
fn headers_frame(stream: [u8; 4], flags: u8, payload: &[u8]) -> Result<Block, Malformed> {
    let mut body = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        let (&n, rest) = body.split_first().ok_or(Malformed::Frame(
            "a padded HEADERS frame without its pad length",
        ))?;
        pad = usize::from(n);
        body = rest;
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        if body.len() < PRIORITY_LEN {
            return Err(Malformed::Frame(
                "a HEADERS frame too short for its priority",
            ));
        }
        let (fields, rest) = body.split_at(PRIORITY_LEN);
        let mut p = [0; PRIORITY_LEN];
        p.copy_from_slice(fields);
        priority = Some(p);
        body = rest;
    }
    let Some(len) = body.len().checked_sub(pad) else {
        return Err(Malformed::Frame(
            "a HEADERS frame's padding longer than the frame",
        ));
    };
    Ok(Block {
        stream,
        flags: flags & (END_STREAM | PRIORITY),
        priority,
        fragment: body[..len].to_vec(),
        raw: Vec::new(),
    })
}

/// Whether h2 takes `value` as an `:authority` (it parses it the same way).
fn valid_authority(value: &[u8]) -> bool {
    Authority::try_from(value).is_ok()
}

/// `fields` as HPACK that leaves the decoder's dynamic table alone: every field a literal
/// without indexing, names too, nothing Huffman-coded. A few dozen bytes more a call over a
/// local socket buy an encoder with no state and no tables to get wrong.
fn encode(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        // 0000 0000: literal without indexing, new name (RFC 7541 §6.2.2).
        out.push(0);
        put_string(&mut out, name);
        put_string(&mut out, value);
    }
    out
}

/// A string literal, not Huffman-coded (RFC 7541 §5.2).
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_integer(out, s.len(), 7, 0);
    out.extend_from_slice(s);
}

/// An integer with a `prefix`-bit prefix after `high` (RFC 7541 §5.1).
fn put_integer(out: &mut Vec<u8>, mut value: usize, prefix: u8, high: u8) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(high | value as u8);
        return;
    }
    out.push(high | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A header block as HEADERS and CONTINUATION frames of at most [`MAX_FRAME_LEN`], END_HEADERS
/// on the last, no padding, the HEADERS frame's priority and END_STREAM kept.
fn write_frames(block: &Block, encoded: &[u8], out: &mut Vec<u8>) {
    let priority_len = if block.priority.is_some() {
        PRIORITY_LEN
    } else {
        0
    };
    let (first, rest) = encoded.split_at(encoded.len().min(MAX_FRAME_LEN - priority_len));
    let end = |last: bool| if last { END_HEADERS } else { 0 };
    put_head(
        out,
        priority_len + first.len(),
        HEADERS,
        block.flags | end(rest.is_empty()),
        block.stream,
    );
    if let Some(priority) = block.priority {
        out.extend_from_slice(&priority);
    }
    out.extend_from_slice(first);
    let mut chunks = rest.chunks(MAX_FRAME_LEN).peekable();
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        put_head(out, chunk.len(), CONTINUATION, end(last), block.stream);
        out.extend_from_slice(chunk);
    }
}

fn put_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: [u8; 4]) {
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream);
}

#[cfg(test)]
mod tests {
    //! The rewriter on hand-made client streams (their HPACK from `loona-hpack`'s encoder,
    //! which indexes every new field, and from RFC 7541's examples), checked frame by frame and
    //! by a real h2 server behind an `AuthorityFix`.

    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;

    const SETTINGS: u8 = 0x4;
    const DATA: u8 = 0x0;
    const PING: u8 = 0x6;
    const SOCKET_AUTHORITY: &str = "%2Ftmp%2Fanycri%2Fcri.sock";

    type Fields = Vec<Field>;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_head(&mut out, payload.len(), kind, flags, stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// The preface and an empty SETTINGS frame, as every client starts.
    fn start() -> Vec<u8> {
        let mut out = PREFACE.to_vec();
        out.extend(frame(SETTINGS, 0, 0, &[]));
        out
    }

    /// A gRPC request's fields.
    fn request(authority: &str, path: &str, extra: &[(&str, &str)]) -> Fields {
        let mut fields: Fields = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        .iter()
        .chain(extra)
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
        fields.dedup();
        fields
    }

    /// HPACK as a client's encoder writes it, dynamic table and all.
    fn client_block(encoder: &mut loona_hpack::Encoder<'_>, fields: &Fields) -> Vec<u8> {
        encoder.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])))
    }

    /// The rewriter's output for `input` fed `chunk` bytes at a time.
    fn rewrite(input: &[u8], chunk: usize) -> Result<Vec<u8>, Malformed> {
        let mut rewriter = Rewriter::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            rewriter.feed(piece, &mut out)?;
        }
        Ok(out)
    }

    /// The frames after the preface: (type, flags, stream, payload).
    fn frames(mut bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
        bytes = bytes.strip_prefix(PREFACE).expect("the preface");
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
            let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
            out.push((bytes[3], bytes[4], stream, bytes[9..9 + len].to_vec()));
            bytes = &bytes[9 + len..];
        }
        out
    }

    /// Whether `block` leaves a decoder's dynamic table alone: only literals without indexing
    /// with literal names and values, nothing Huffman-coded (what `encode` writes).
    fn stateless(mut block: &[u8]) -> bool {
        fn string(block: &mut &[u8]) -> bool {
            let Some((&first, rest)) = block.split_first() else {
                return false;
            };
            let (mut len, mut rest) = (usize::from(first & 0x7f), rest);
            if first & 0x80 != 0 {
                return false;
            }
            if len == 0x7f {
                let mut shift = 0;
                loop {
                    let Some((&b, r)) = rest.split_first() else {
                        return false;
                    };
                    rest = r;
                    len += usize::from(b & 0x7f) << shift;
                    shift += 7;
                    if b & 0x80 == 0 {
                        break;
                    }
                }
            }
            if rest.len() < len {
                return false;
            }
            *block = &rest[len..];
            true
        }
        while let Some((&kind, rest)) = block.split_first() {
            block = rest;
            if kind != 0 || !string(&mut block) || !string(&mut block) {
                return false;
            }
        }
        true
    }

    /// The fields of a rewritten header block, decoded as h2 would from a fresh table.
    fn decoded(block: &[u8]) -> Fields {
        assert!(
            stateless(block),
            "{block:02x?} uses the dynamic table or Huffman"
        );
        Decoder::new().decode(block).unwrap()
    }

    /// The requests h2's server accepts from `client` (bytes from the preface on), with an
    /// `AuthorityFix` in between or not, waiting for at most `n`.
    async fn accepted(client: Vec<u8>, fix: bool, n: usize) -> Vec<http::Request<h2::RecvStream>> {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let (mut read, mut write) = tokio::io::split(client_io);
        tokio::spawn(async move {
            write.write_all(&client).await.unwrap();
            // Keep the connection open while the server reads.
            std::future::pending::<()>().await;
        });
        tokio::spawn(async move { tokio::io::copy(&mut read, &mut tokio::io::sink()).await });
        if fix {
            accept(AuthorityFix::new(server_io), n).await
        } else {
            accept(server_io, n).await
        }
    }

    async fn accept<IO: AsyncRead + AsyncWrite + Unpin>(
        io: IO,
        n: usize,
    ) -> Vec<http::Request<h2::RecvStream>> {
        let mut conn = h2::server::handshake(io).await.unwrap();
        let mut requests = Vec::new();
        while requests.len() < n {
            match tokio::time::timeout(Duration::from_secs(2), conn.accept()).await {
                Ok(Some(Ok((request, _respond)))) => requests.push(request),
                _ => break,
            }
        }
        requests
    }

    fn authority<B>(request: &http::Request<B>) -> Option<&str> {
        request.uri().authority().map(|a| a.as_str())
    }

    #[tokio::test]
    async fn h2_alone_refuses_a_percent_encoded_authority() {
        let mut encoder = loona_hpack::Encoder::new();
        let mut client = start();
        let bad = client_block(&mut encoder, &request(SOCKET_AUTHORITY, "/a", &[]));
        client.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &bad));
        let good = client_block(&mut encoder, &request("localhost", "/b", &[]));
        client.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &good));

        let requests = accepted(client, false, 1).await;
        let paths: Vec<_> = requests.iter().map(|r| r.uri().path()).collect();
        assert_eq!(paths, ["/b"], "h2 resets the first call, takes the second");
    }

    #[tokio::test]
    async fn dynamic_table_references_across_requests() {
        let mut encoder = loona_hpack::Encoder::new();
        let extra = [("x-call", "one"), ("user-agent", "grpc-python/1.85")];
        let first = client_block(&mut encoder, &request(SOCKET_AUTHORITY, "/a", &extra));
        let second = client_block(&mut encoder, &request(SOCKET_AUTHORITY, "/a", &extra));
        // The second block refers to the first's entries (index 62 on: bytes >= 0xbe; the
        // encoder writes no Huffman, so no literal byte is that high).
        assert!(second.len() < first.len() && second.iter().any(|&b| b >= 0xbe));
        let mut client = start();
        client.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &first));
        client.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &second));

        let out = rewrite(&client, client.len()).unwrap();
        let blocks: Vec<_> = frames(&out)
            .into_iter()
            .filter(|f| f.0 == HEADERS)
            .collect();
        assert_eq!(blocks.len(), 2);
        for (i, (_, flags, stream, payload)) in blocks.iter().enumerate() {
            assert_eq!(
                (*flags, *stream),
                (END_HEADERS | END_STREAM, 2 * i as u32 + 1)
            );
            let want = request("localhost", "/a", &extra);
            assert_eq!(decoded(payload), want);
        }

        let requests = accepted(client, true, 2).await;
        assert_eq!(requests.len(), 2);
        for request in &requests {
            assert_eq!(authority(request), Some("localhost"));
            assert_eq!(request.uri().path(), "/a");
            assert_eq!(request.headers()["x-call"], "one");
            assert_eq!(request.headers()["user-agent"], "grpc-python/1.85");
        }
    }

    #[tokio::test]
    async fn continuation_padding_and_priority() {
        let mut encoder = loona_hpack::Encoder::new();
        let fields = request(SOCKET_AUTHORITY, "/runtime.v1.RuntimeService/Version", &[]);
        let block = client_block(&mut encoder, &fields);
        let (a, rest) = block.split_at(10);
        let (b, c) = rest.split_at(20);
        // HEADERS: pad length 7, priority (exclusive, on stream 0, weight 16), first part, padding.
        let priority = [0x80, 0, 0, 0, 15];
        let mut payload = vec![7];
        payload.extend(priority);
        payload.extend(a);
        payload.extend([0; 7]);
        let mut client = start();
        client.extend(frame(HEADERS, PADDED | PRIORITY | END_STREAM, 1, &payload));
        client.extend(frame(CONTINUATION, 0, 1, b));
        client.extend(frame(CONTINUATION, END_HEADERS, 1, c));
        client.extend(frame(PING, 0, 0, b"pingping"));

        let out = rewrite(&client, client.len()).unwrap();
        for chunk in [1, 2, 9, 100] {
            assert_eq!(
                rewrite(&client, chunk).unwrap(),
                out,
                "fed {chunk} at a time"
            );
        }
        let frames = frames(&out);
        assert_eq!(frames.len(), 3, "{frames:?}");
        assert_eq!(frames[0], (SETTINGS, 0, 0, vec![]));
        let (kind, flags, stream, payload) = &frames[1];
        assert_eq!(
            (*kind, *flags, *stream),
            (HEADERS, PRIORITY | END_STREAM | END_HEADERS, 1)
        );
        assert_eq!(payload[..PRIORITY_LEN], priority);
        let want = request("localhost", "/runtime.v1.RuntimeService/Version", &[]);
        assert_eq!(decoded(&payload[PRIORITY_LEN..]), want);
        assert_eq!(frames[2], (PING, 0, 0, b"pingping".to_vec()));

        let requests = accepted(client, true, 1).await;
        assert_eq!(requests.len(), 1);
        assert_eq!(authority(&requests[0]), Some("localhost"));
        assert_eq!(
            requests[0].uri().path(),
            "/runtime.v1.RuntimeService/Version"
        );
    }

    #[tokio::test]
    async fn valid_authorities_go_through_byte_for_byte() {
        let mut encoder = loona_hpack::Encoder::new();
        let mut client = start();
        for (i, authority) in ["localhost", "127.0.0.1:10010", "cri"].iter().enumerate() {
            let stream = 2 * i as u32 + 1;
            let block = client_block(&mut encoder, &request(authority, "/p", &[]));
            let (a, b) = block.split_at(block.len() / 2);
            let mut padded = vec![3];
            padded.extend(a);
            padded.extend([0; 3]);
            client.extend(frame(HEADERS, PADDED, stream, &padded));
            client.extend(frame(CONTINUATION, END_HEADERS, stream, b));
            client.extend(frame(DATA, END_STREAM, stream, &[0, 0, 0, 0, 0]));
        }
        client.extend(frame(PING, 0, 0, b"pingping"));
        for chunk in [1, 5, client.len()] {
            assert_eq!(
                rewrite(&client, chunk).unwrap(),
                client,
                "fed {chunk} at a time"
            );
        }
        let requests = accepted(client, true, 3).await;
        let authorities: Vec<_> = requests.iter().map(authority).collect();
        assert_eq!(
            authorities,
            [Some("localhost"), Some("127.0.0.1:10010"), Some("cri")]
        );
    }

    /// RFC 7541 C.4: requests with Huffman-coded strings and dynamic table references; an
    /// invalid authority between them switches the connection to re-encoding.
    #[tokio::test]
    async fn huffman_and_the_clients_table_survive_the_switch() {
        let hex = |s: &str| -> Vec<u8> {
            let s: String = s.split_whitespace().collect();
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        // :method GET, :scheme http, :path /, :authority www.example.com (indexed as 62)
        let c41 = hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff");
        // the same with :authority from the table, and cache-control: no-cache (indexed)
        let c42 = hex("8286 84be 5886 a8eb 1064 9cbf");
        let bad = encode(&[
            (b":method".to_vec(), b"GET".to_vec()),
            (b":scheme".to_vec(), b"http".to_vec()),
            (b":path".to_vec(), b"/bad".to_vec()),
            (b":authority".to_vec(), SOCKET_AUTHORITY.as_bytes().to_vec()),
        ]);
        let mut client = start();
        client.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &c41));
        client.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &bad));
        client.extend(frame(HEADERS, END_HEADERS | END_STREAM, 5, &c42));

        let out = rewrite(&client, 3).unwrap();
        let frames = frames(&out);
        assert_eq!(frames[1].3, c41, "before the switch: as the client sent it");
        let third = decoded(&frames[3].3);
        assert!(third.contains(&(b":authority".to_vec(), b"www.example.com".to_vec())));
        assert!(third.contains(&(b"cache-control".to_vec(), b"no-cache".to_vec())));

        let requests = accepted(client, true, 3).await;
        let seen: Vec<_> = requests
            .iter()
            .map(|r| (authority(r), r.headers().get("cache-control").cloned()))
            .collect();
        assert_eq!(
            seen,
            [
                (Some("www.example.com"), None),
                (Some("localhost"), None),
                (Some("www.example.com"), Some("no-cache".parse().unwrap())),
            ]
        );
    }

    #[tokio::test]
    async fn blocks_over_the_frame_size_are_split() {
        let mut encoder = loona_hpack::Encoder::new();
        let big = "x".repeat(40_000);
        let block = client_block(
            &mut encoder,
            &request(SOCKET_AUTHORITY, "/p", &[("x-big", &big)]),
        );
        let mut client = start();
        let (a, b) = block.split_at(block.len() / 2);
        client.extend(frame(HEADERS, END_STREAM, 1, a));
        client.extend(frame(CONTINUATION, END_HEADERS, 1, b));

        let out = rewrite(&client, 4096).unwrap();
        let frames = frames(&out);
        let shape: Vec<_> = frames[1..].iter().map(|f| (f.0, f.1, f.3.len())).collect();
        let total: usize = frames[1..].iter().map(|f| f.3.len()).sum();
        assert_eq!(
            shape,
            [
                (HEADERS, END_STREAM, MAX_FRAME_LEN),
                (CONTINUATION, 0, MAX_FRAME_LEN),
                (CONTINUATION, END_HEADERS, total - 2 * MAX_FRAME_LEN),
            ]
        );
        let joined: Vec<u8> = frames[1..].iter().flat_map(|f| f.3.clone()).collect();
        assert_eq!(
            decoded(&joined),
            request("localhost", "/p", &[("x-big", &big)])
        );

        let requests = accepted(client, true, 1).await;
        assert_eq!(requests.len(), 1);
        assert_eq!(authority(&requests[0]), Some("localhost"));
        assert_eq!(requests[0].headers()["x-big"], big.as_str());
    }

    #[test]
    fn not_http2_goes_through() {
        let http1 = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(rewrite(http1, 4).unwrap(), http1);
        let almost = b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n\x00\x00\x00\x01";
        assert_eq!(rewrite(almost, 1).unwrap(), almost);
    }

    #[test]
    fn malformed_streams_fail() {
        let with = |frames: &[Vec<u8>]| -> Vec<u8> {
            let mut client = start();
            frames.iter().for_each(|f| client.extend(f));
            client
        };
        let mut too_big_table = Vec::new();
        put_integer(&mut too_big_table, HEADER_TABLE_SIZE + 1, 5, 0x20);
        too_big_table.push(0x82);
        let cases = [
            (
                "index out of range",
                with(&[frame(HEADERS, END_HEADERS, 1, &[0xff, 0x7f])]),
            ),
            (
                "string past the block",
                with(&[frame(HEADERS, END_HEADERS, 1, &[0x00, 0x0a, b'a'])]),
            ),
            (
                "table size update too large",
                with(&[frame(HEADERS, END_HEADERS, 1, &too_big_table)]),
            ),
            (
                "padding past the frame",
                with(&[frame(HEADERS, END_HEADERS | PADDED, 1, &[9, 0x82])]),
            ),
            (
                "padded, empty",
                with(&[frame(HEADERS, END_HEADERS | PADDED, 1, &[])]),
            ),
            (
                "priority cut short",
                with(&[frame(HEADERS, END_HEADERS | PRIORITY, 1, &[0, 0])]),
            ),
            (
                "block interrupted",
                with(&[frame(HEADERS, 0, 1, &[0x82]), frame(DATA, 0, 1, b"x")]),
            ),
            (
                "continuation on another stream",
                with(&[
                    frame(HEADERS, 0, 1, &[0x82]),
                    frame(CONTINUATION, END_HEADERS, 3, &[0x84]),
                ]),
            ),
        ];
        for (what, client) in cases {
            assert!(rewrite(&client, client.len()).is_err(), "{what}");
            assert!(rewrite(&client, 1).is_err(), "{what}, a byte at a time");
        }
        // A block that never ends is refused once it passes the limit.
        let mut client = start();
        client.extend(frame(HEADERS, 0, 1, &[0x82]));
        let filler = frame(CONTINUATION, 0, 1, &[0x82; MAX_FRAME_LEN]);
        for _ in 0..MAX_BLOCK_LEN / MAX_FRAME_LEN - 1 {
            client.extend(&filler);
        }
        assert!(rewrite(&client, 65_536).is_ok(), "under the limit: waiting");
        client.extend(&filler);
        assert!(matches!(rewrite(&client, 65_536), Err(Malformed::TooLarge)));

        // So is one that decodes to too much: one-byte references to a 4 KiB entry.
        let mut entry = vec![0x40]; // literal with incremental indexing, new name
        put_string(&mut entry, b"x-big");
        put_string(&mut entry, &[b'a'; 4_000]);
        let mut client = start();
        client.extend(frame(HEADERS, END_HEADERS, 1, &entry));
        client.extend(frame(HEADERS, END_HEADERS, 3, &[0xbe; 300]));
        assert!(matches!(rewrite(&client, 4096), Err(Malformed::TooLarge)));
    }

    /// Random header blocks, frame flags and lengths: errors, never a panic.
    #[test]
    fn garbage_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut client = start();
            for _ in 0..next() % 4 + 1 {
                let len = (next() % 48) as usize;
                let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                let kind = [HEADERS, CONTINUATION, DATA][(next() % 3) as usize];
                let flags = next() as u8;
                client.extend(frame(kind, flags, (next() % 4) as u32, &payload));
            }
            let _ = rewrite(&client, (next() % 16 + 1) as usize);
        }
    }

    /// The wrapper over a connection: a malformed block fails the read with InvalidData (and
    /// every read after it); a stream cut inside a frame ends cleanly.
    #[tokio::test]
    async fn the_connection_fails_cleanly() {
        async fn read_all(client: Vec<u8>) -> (Vec<u8>, io::Result<usize>) {
            let (mut client_io, server_io): (DuplexStream, DuplexStream) =
                tokio::io::duplex(1 << 16);
            client_io.write_all(&client).await.unwrap();
            drop(client_io);
            let mut fix = AuthorityFix::new(server_io);
            let mut got = Vec::new();
            let mut buf = [0; 64];
            let end = loop {
                match fix.read(&mut buf).await {
                    Ok(0) => break Ok(0),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        assert!(fix.read(&mut buf).await.is_err(), "a later read fails too");
                        break Err(e);
                    }
                }
            };
            (got, end)
        }

        let mut bad = start();
        bad.extend(frame(HEADERS, END_HEADERS, 1, &[0xff, 0x7f]));
        let (got, end) = read_all(bad).await;
        assert_eq!(
            got,
            start(),
            "the frames before the malformed one go through"
        );
        assert_eq!(end.unwrap_err().kind(), io::ErrorKind::InvalidData);

        let mut cut = start();
        let block = encode(&request(SOCKET_AUTHORITY, "/p", &[]));
        cut.extend(&frame(HEADERS, END_HEADERS, 1, &block)[..20]);
        let (got, end) = read_all(cut).await;
        assert_eq!(got, start(), "the unfinished frame is held back");
        assert_eq!(end.unwrap(), 0);
    }
}
