//! An independent SPDY/3.1 client for tests (feature `spdy-client`), written from the spec:
//! frames are assembled byte by byte and header blocks are built and (de)compressed with this
//! module's own zlib contexts and its own copy of the SPDY/3 dictionary — nothing of
//! `anycri-spdy` is used, so it checks that crate and the streaming server from the outside.
//! [`upgrade`] performs the HTTP/1.1 `Upgrade: SPDY/3.1` request the kubelet's clients send.
//!
//! It is a test tool: a peer that breaks the protocol makes it panic with a message.

use std::collections::HashMap;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Control frame type SYN_STREAM.
pub const SYN_STREAM: u16 = 1;
/// Control frame type SYN_REPLY.
pub const SYN_REPLY: u16 = 2;
/// Control frame type RST_STREAM.
pub const RST_STREAM: u16 = 3;
/// Control frame type PING.
pub const PING: u16 = 6;
/// Control frame type GOAWAY.
pub const GOAWAY: u16 = 7;

/// One frame as read from the connection.
#[derive(Debug)]
pub enum RxFrame {
    /// A control frame (version checked to be 3).
    Control {
        /// The frame type.
        kind: u16,
        /// The flags byte.
        flags: u8,
        /// The payload after the 8-byte header.
        payload: Vec<u8>,
    },
    /// A data frame.
    Data {
        /// The stream ID.
        stream: u32,
        /// FLAG_FIN.
        fin: bool,
        /// The payload.
        data: Vec<u8>,
    },
}

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let word: [u8; 4] = bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .unwrap_or_else(|| panic!("frame too short for a 32-bit field at {at}"));
    u32::from_be_bytes(word)
}

/// The client end of a SPDY/3.1 connection over `T`, recording what the server sends.
pub struct SpdyTestClient<T> {
    /// The connection (write raw bytes or shut it down through it).
    pub io: T,
    deflate: Compress,
    inflate: Decompress,
    dictionary: Vec<u8>,
    /// Data received per stream.
    pub data: HashMap<u32, Vec<u8>>,
    /// Streams the server finished (FIN on data or on SYN_REPLY), in order.
    pub fins: Vec<u32>,
    /// Streams the server answered with SYN_REPLY, in order.
    pub replies: Vec<u32>,
    /// Streams the server opened (SYN_STREAM), with their headers.
    pub server_streams: Vec<(u32, Vec<(String, String)>)>,
    /// RST_STREAM frames received: (stream ID, status).
    pub resets: Vec<(u32, u32)>,
    /// PING IDs received.
    pub pings: Vec<u32>,
    /// GOAWAY received: (last good stream ID, status).
    pub goaway: Option<(u32, u32)>,
    /// The DICTID of the server's first header block.
    pub dict_id: Option<u32>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> SpdyTestClient<T> {
    /// A client over an established connection (after the HTTP upgrade, if any).
    pub fn new(io: T) -> Self {
        let dictionary = crate::spdy_dictionary::dictionary();
        let mut deflate = Compress::new(Compression::best(), true);
        deflate
            .set_dictionary(&dictionary)
            .expect("zlib accepts the SPDY/3 dictionary");
        Self {
            io,
            deflate,
            inflate: Decompress::new(true),
            dictionary,
            data: HashMap::new(),
            fins: Vec::new(),
            replies: Vec::new(),
            server_streams: Vec::new(),
            resets: Vec::new(),
            pings: Vec::new(),
            goaway: None,
            dict_id: None,
        }
    }

    /// A name/value block per SPDY/3 section 2.6.10, compressed and sync-flushed.
    pub fn header_block(&mut self, pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&be32(pairs.len() as u32));
        for (name, value) in pairs {
            raw.extend_from_slice(&be32(name.len() as u32));
            raw.extend_from_slice(name.as_bytes());
            raw.extend_from_slice(&be32(value.len() as u32));
            raw.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 1024);
        let before = self.deflate.total_in();
        self.deflate
            .compress_vec(&raw, &mut out, FlushCompress::Sync)
            .expect("deflate");
        assert_eq!(self.deflate.total_in() - before, raw.len() as u64);
        assert!(out.len() < out.capacity(), "output buffer was large enough");
        out
    }

    /// A control frame of `kind` with `flags` and `payload`.
    pub fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x80, 0x03, (kind >> 8) as u8, kind as u8, flags];
        f.extend_from_slice(&be32(payload.len() as u32)[1..]);
        f.extend_from_slice(payload);
        f
    }

    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.expect("write to the server");
    }

    /// Opens stream `id` (odd) with the header `pairs` (lowercase names, as SPDY/3 requires).
    pub async fn syn_stream(&mut self, id: u32, pairs: &[(&str, &str)], fin: bool) {
        let block = self.header_block(pairs);
        let mut payload = Vec::new();
        payload.extend_from_slice(&be32(id));
        payload.extend_from_slice(&be32(0));
        payload.push(0); // priority 0
        payload.push(0); // slot
        payload.extend_from_slice(&block);
        let frame = Self::control(SYN_STREAM, u8::from(fin), &payload);
        self.send(&frame).await;
    }

    /// Sends a data frame on stream `id`.
    pub async fn data(&mut self, id: u32, fin: bool, data: &[u8]) {
        let mut f = be32(id).to_vec();
        f.push(u8::from(fin));
        f.extend_from_slice(&be32(data.len() as u32)[1..]);
        f.extend_from_slice(data);
        self.send(&f).await;
    }

    /// Sends a PING with `id`.
    pub async fn ping(&mut self, id: u32) {
        let frame = Self::control(PING, 0, &be32(id));
        self.send(&frame).await;
    }

    /// Resets stream `id` with `status`.
    pub async fn rst(&mut self, id: u32, status: u32) {
        let frame = Self::control(RST_STREAM, 0, &[be32(id), be32(status)].concat());
        self.send(&frame).await;
    }

    /// Reads one frame; `None` at EOF (or when the server reset the connection).
    pub async fn read_frame(&mut self) -> Option<RxFrame> {
        let mut head = [0u8; 8];
        match self.io.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                return None;
            }
            Err(e) => panic!("read: {e}"),
        }
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        let mut payload = vec![0u8; len];
        self.io
            .read_exact(&mut payload)
            .await
            .expect("a complete frame");
        if head[0] & 0x80 != 0 {
            assert_eq!(
                u16::from_be_bytes([head[0] & 0x7f, head[1]]),
                3,
                "version 3"
            );
            Some(RxFrame::Control {
                kind: u16::from_be_bytes([head[2], head[3]]),
                flags: head[4],
                payload,
            })
        } else {
            Some(RxFrame::Data {
                stream: u32_at(&head, 0),
                fin: head[4] & 1 != 0,
                data: payload,
            })
        }
    }

    /// Inflates one header block from the server into name/value pairs.
    pub fn inflate_block(&mut self, compressed: &[u8]) -> Vec<(String, String)> {
        if self.dict_id.is_none() {
            // zlib header: CMF, FLG with FDICT, then DICTID.
            assert_eq!(
                compressed.get(1).copied().unwrap_or(0) & 0x20,
                0x20,
                "server primes zlib with a dictionary"
            );
            self.dict_id = Some(u32_at(compressed, 2));
        }
        let mut out = Vec::with_capacity(64 * 1024);
        let mut pos = 0;
        loop {
            let before = self.inflate.total_in();
            match self
                .inflate
                .decompress_vec(&compressed[pos..], &mut out, FlushDecompress::Sync)
            {
                Ok(_) => {
                    pos += (self.inflate.total_in() - before) as usize;
                    if pos == compressed.len() {
                        break;
                    }
                }
                Err(e) if e.needs_dictionary().is_some() => {
                    pos += (self.inflate.total_in() - before) as usize;
                    self.inflate
                        .set_dictionary(&self.dictionary)
                        .expect("the server's DICTID is the SPDY/3 dictionary's");
                }
                Err(e) => panic!("server header block does not inflate: {e}"),
            }
        }
        let mut p = &out[..];
        let mut take = |n: usize| {
            assert!(n <= p.len(), "header block truncated");
            let (a, b) = p.split_at(n);
            p = b;
            a.to_vec()
        };
        let count = u32_at(&take(4), 0);
        let mut pairs = Vec::new();
        for _ in 0..count {
            let n = u32_at(&take(4), 0) as usize;
            let name = String::from_utf8(take(n)).expect("UTF-8 header name");
            let n = u32_at(&take(4), 0) as usize;
            let value = String::from_utf8(take(n)).expect("UTF-8 header value");
            pairs.push((name, value));
        }
        pairs
    }

    /// Reads and records one frame; false at EOF.
    pub async fn pump(&mut self) -> bool {
        let Some(frame) = self.read_frame().await else {
            return false;
        };
        match frame {
            RxFrame::Data { stream, fin, data } => {
                self.data
                    .entry(stream)
                    .or_default()
                    .extend_from_slice(&data);
                if fin {
                    self.fins.push(stream);
                }
            }
            RxFrame::Control {
                kind: SYN_REPLY,
                flags,
                payload,
            } => {
                let id = u32_at(&payload, 0);
                let headers = self.inflate_block(&payload[4..]);
                assert!(headers.is_empty(), "kubelet-style empty reply: {headers:?}");
                self.replies.push(id);
                if flags & 1 != 0 {
                    self.fins.push(id);
                }
            }
            RxFrame::Control {
                kind: SYN_STREAM,
                payload,
                ..
            } => {
                let id = u32_at(&payload, 0);
                let headers = self.inflate_block(&payload[10..]);
                self.server_streams.push((id, headers));
            }
            RxFrame::Control {
                kind: RST_STREAM,
                payload,
                ..
            } => {
                self.resets.push((u32_at(&payload, 0), u32_at(&payload, 4)));
            }
            RxFrame::Control {
                kind: PING,
                payload,
                ..
            } => {
                self.pings.push(u32_at(&payload, 0));
            }
            RxFrame::Control {
                kind: GOAWAY,
                payload,
                ..
            } => {
                assert_eq!(payload.len(), 8, "GOAWAY payload");
                self.goaway = Some((u32_at(&payload, 0), u32_at(&payload, 4)));
            }
            RxFrame::Control { .. } => {} // WINDOW_UPDATE, SETTINGS: allowed, not needed here
        }
        true
    }

    /// Pumps frames until `done`; panics naming `what` if the connection ends first.
    pub async fn pump_until(&mut self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        while !done(self) {
            assert!(
                self.pump().await,
                "connection ended while waiting for {what}"
            );
        }
    }

    /// Pumps frames until the server closes the connection.
    pub async fn pump_to_eof(&mut self) {
        while self.pump().await {}
    }

    /// What the server sent on stream `id`, as text (empty if nothing).
    pub fn text(&self, id: u32) -> String {
        String::from_utf8_lossy(self.data.get(&id).map_or(&[][..], |d| d)).into_owned()
    }
}

/// The answer to an HTTP/1.1 upgrade request.
#[derive(Debug)]
pub struct UpgradeResponse {
    /// The status code (101 when the upgrade happened).
    pub status: u16,
    /// The response headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body of a refusal (by `Content-Length`); empty after a 101.
    pub body: String,
    /// The connection, positioned right after the response head (and body).
    pub io: TcpStream,
}

impl UpgradeResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A SPDY client on the upgraded connection.
    pub fn into_client(self) -> SpdyTestClient<TcpStream> {
        SpdyTestClient::new(self.io)
    }
}

/// Connects to `addr` and sends `POST <path>` with `Connection: Upgrade`,
/// `Upgrade: SPDY/3.1`, one `X-Stream-Protocol-Version` header per entry of `protocols`, and
/// `extra` headers; reads the response head (byte by byte, so nothing after it is consumed).
pub async fn upgrade(
    addr: std::net::SocketAddr,
    path: &str,
    protocols: &[&str],
    extra: &[(&str, &str)],
) -> std::io::Result<UpgradeResponse> {
    let mut io = TcpStream::connect(addr).await?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0\r\n"
    );
    for p in protocols {
        request.push_str(&format!("X-Stream-Protocol-Version: {p}\r\n"));
    }
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    io.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 {
            return Err(std::io::Error::other("response head too long"));
        }
        head.push(io.read_u8().await?);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; if status == 101 { 0 } else { length }];
    io.read_exact(&mut body).await?;
    Ok(UpgradeResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        io,
    })
}
