//! SPDY/3.1 frames and their codec.
//!
//! A frame is an 8-byte header plus a payload of at most 2^24-1 bytes. Control frames carry
//! the control bit, the version (3) and a type; data frames carry a stream ID. [`FrameCodec`]
//! turns bytes into [`Frame`]s and back, owning the connection's two header-compression
//! contexts and enforcing this side's size limits. Decoding distinguishes errors that only
//! concern one stream ([`Decoded::StreamError`], answered with RST_STREAM) from those that end
//! the connection ([`SpdyError`], answered with GOAWAY).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Result, SpdyError};
use crate::headers::{HeaderCompressor, HeaderDecompressor, Headers};

/// The SPDY version this crate speaks.
pub const SPDY_VERSION: u16 = 3;
/// The largest payload a frame can carry (24-bit length).
pub const MAX_FRAME_PAYLOAD: usize = (1 << 24) - 1;
/// Size of every frame header.
pub const FRAME_HEADER_LEN: usize = 8;

/// Control frame type codes.
pub mod frame_type {
    /// SYN_STREAM.
    pub const SYN_STREAM: u16 = 1;
    /// SYN_REPLY.
    pub const SYN_REPLY: u16 = 2;
    /// RST_STREAM.
    pub const RST_STREAM: u16 = 3;
    /// SETTINGS.
    pub const SETTINGS: u16 = 4;
    /// PING.
    pub const PING: u16 = 6;
    /// GOAWAY.
    pub const GOAWAY: u16 = 7;
    /// HEADERS.
    pub const HEADERS: u16 = 8;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u16 = 9;
}

/// FLAG_FIN on SYN_STREAM, SYN_REPLY, HEADERS and data frames.
pub const FLAG_FIN: u8 = 0x01;
/// FLAG_UNIDIRECTIONAL on SYN_STREAM.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// FLAG_SETTINGS_CLEAR_SETTINGS on SETTINGS.
pub const FLAG_CLEAR_SETTINGS: u8 = 0x01;

/// The status code of a RST_STREAM frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RstStatus {
    /// 1: PROTOCOL_ERROR.
    ProtocolError,
    /// 2: INVALID_STREAM.
    InvalidStream,
    /// 3: REFUSED_STREAM.
    RefusedStream,
    /// 4: UNSUPPORTED_VERSION.
    UnsupportedVersion,
    /// 5: CANCEL.
    Cancel,
    /// 6: INTERNAL_ERROR.
    InternalError,
    /// 7: FLOW_CONTROL_ERROR.
    FlowControlError,
    /// 8: STREAM_IN_USE.
    StreamInUse,
    /// 9: STREAM_ALREADY_CLOSED.
    StreamAlreadyClosed,
    /// 10: INVALID_CREDENTIALS (SPDY/3 only).
    InvalidCredentials,
    /// 11: FRAME_TOO_LARGE.
    FrameTooLarge,
    /// Any other code.
    Other(u32),
}

impl RstStatus {
    /// The wire code.
    pub fn code(self) -> u32 {
        match self {
            RstStatus::ProtocolError => 1,
            RstStatus::InvalidStream => 2,
            RstStatus::RefusedStream => 3,
            RstStatus::UnsupportedVersion => 4,
            RstStatus::Cancel => 5,
            RstStatus::InternalError => 6,
            RstStatus::FlowControlError => 7,
            RstStatus::StreamInUse => 8,
            RstStatus::StreamAlreadyClosed => 9,
            RstStatus::InvalidCredentials => 10,
            RstStatus::FrameTooLarge => 11,
            RstStatus::Other(c) => c,
        }
    }

    /// The status for a wire code.
    pub fn from_code(code: u32) -> Self {
        match code {
            1 => RstStatus::ProtocolError,
            2 => RstStatus::InvalidStream,
            3 => RstStatus::RefusedStream,
            4 => RstStatus::UnsupportedVersion,
            5 => RstStatus::Cancel,
            6 => RstStatus::InternalError,
            7 => RstStatus::FlowControlError,
            8 => RstStatus::StreamInUse,
            9 => RstStatus::StreamAlreadyClosed,
            10 => RstStatus::InvalidCredentials,
            11 => RstStatus::FrameTooLarge,
            c => RstStatus::Other(c),
        }
    }
}

/// The status code of a GOAWAY frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GoAwayStatus {
    /// 0: OK, a normal end.
    Ok,
    /// 1: PROTOCOL_ERROR.
    ProtocolError,
    /// 2: INTERNAL_ERROR.
    InternalError,
    /// Any other code.
    Other(u32),
}

impl GoAwayStatus {
    /// The wire code.
    pub fn code(self) -> u32 {
        match self {
            GoAwayStatus::Ok => 0,
            GoAwayStatus::ProtocolError => 1,
            GoAwayStatus::InternalError => 2,
            GoAwayStatus::Other(c) => c,
        }
    }

    /// The status for a wire code.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => GoAwayStatus::Ok,
            1 => GoAwayStatus::ProtocolError,
            2 => GoAwayStatus::InternalError,
            c => GoAwayStatus::Other(c),
        }
    }
}

/// One entry of a SETTINGS frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Entry flags (0x1 PERSIST_VALUE, 0x2 PERSISTED).
    pub flags: u8,
    /// The setting ID (24 bits), e.g. 4 MAX_CONCURRENT_STREAMS, 7 INITIAL_WINDOW_SIZE.
    pub id: u32,
    /// The value.
    pub value: u32,
}

/// A decoded SPDY/3.1 frame.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// SYN_STREAM: opens a stream.
    SynStream {
        /// The new stream's ID (odd from clients, even from servers).
        stream_id: u32,
        /// The stream this one is associated with (server push), 0 if none.
        associated_to: u32,
        /// Priority, 0 (highest) to 7.
        priority: u8,
        /// Credential slot (SPDY/3), normally 0.
        slot: u8,
        /// FLAG_FIN: the sender sends no data on this stream.
        fin: bool,
        /// FLAG_UNIDIRECTIONAL: the receiver may not send on this stream.
        unidirectional: bool,
        /// The stream's headers.
        headers: Headers,
    },
    /// SYN_REPLY: accepts a stream the peer opened.
    SynReply {
        /// The stream.
        stream_id: u32,
        /// FLAG_FIN.
        fin: bool,
        /// Reply headers.
        headers: Headers,
    },
    /// RST_STREAM: aborts a stream.
    RstStream {
        /// The stream.
        stream_id: u32,
        /// Why.
        status: RstStatus,
    },
    /// SETTINGS.
    Settings {
        /// FLAG_SETTINGS_CLEAR_SETTINGS.
        clear: bool,
        /// The entries.
        entries: Vec<Setting>,
    },
    /// PING: echoed by the receiver when the sender's parity differs from its own.
    Ping {
        /// The ping ID (odd from clients, even from servers).
        id: u32,
    },
    /// GOAWAY: no new streams after `last_good_stream_id`.
    GoAway {
        /// The last stream the sender accepted.
        last_good_stream_id: u32,
        /// Why.
        status: GoAwayStatus,
    },
    /// HEADERS: more headers for an open stream.
    Headers {
        /// The stream.
        stream_id: u32,
        /// FLAG_FIN.
        fin: bool,
        /// The additional headers.
        headers: Headers,
    },
    /// WINDOW_UPDATE: flow-control credit (stream 0 is the whole session in SPDY/3.1).
    WindowUpdate {
        /// The stream, or 0 for the session.
        stream_id: u32,
        /// The credit in bytes (31 bits).
        delta: u32,
    },
    /// A data frame.
    Data {
        /// The stream.
        stream_id: u32,
        /// FLAG_FIN: the sender's last frame on this stream.
        fin: bool,
        /// The payload.
        data: Bytes,
    },
    /// A control frame of a type this crate does not know (e.g. SPDY/3's CREDENTIAL); the
    /// spec says to ignore it.
    Unknown {
        /// Its type code.
        frame_type: u16,
    },
}

/// The result of decoding one frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A well-formed frame.
    Frame(Frame),
    /// A frame that is wrong in a way that concerns one stream only: the connection goes on,
    /// the stream is answered with RST_STREAM.
    StreamError {
        /// The stream.
        stream_id: u32,
        /// The status to send.
        status: RstStatus,
        /// What was wrong.
        reason: String,
    },
}

/// Size limits a decoder enforces.
#[derive(Clone, Copy, Debug)]
pub struct FrameLimits {
    /// Largest accepted control frame payload.
    pub max_control_payload: usize,
    /// Largest accepted data frame payload.
    pub max_data_payload: usize,
    /// Largest accepted inflated header block.
    pub max_header_block: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        Self {
            max_control_payload: 256 * 1024,
            max_data_payload: MAX_FRAME_PAYLOAD,
            max_header_block: 256 * 1024,
        }
    }
}

/// Encodes and decodes frames on one connection (both directions), with the connection's
/// two header-compression contexts. [`FrameCodec::into_parts`] splits it for a reader and a
/// writer task.
#[derive(Debug)]
pub struct FrameCodec {
    decoder: FrameDecoder,
    encoder: FrameEncoder,
}

impl FrameCodec {
    /// A codec with fresh compression contexts and the given limits.
    pub fn new(limits: FrameLimits) -> Self {
        Self {
            decoder: FrameDecoder::new(limits),
            encoder: FrameEncoder::new(),
        }
    }

    /// See [`FrameDecoder::decode`].
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>> {
        self.decoder.decode(src)
    }

    /// See [`FrameEncoder::encode`].
    pub fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<()> {
        self.encoder.encode(frame, dst)
    }

    /// The receiving and sending halves.
    pub fn into_parts(self) -> (FrameDecoder, FrameEncoder) {
        (self.decoder, self.encoder)
    }
}

/// The receiving half: frame parsing, limits and the inbound zlib context.
#[derive(Debug)]
pub struct FrameDecoder {
    limits: FrameLimits,
    decompressor: HeaderDecompressor,
}

impl FrameDecoder {
    /// A decoder with a fresh inbound compression context.
    pub fn new(limits: FrameLimits) -> Self {
        Self {
            limits,
            decompressor: HeaderDecompressor::new(limits.max_header_block),
        }
    }

    /// Decodes one frame from the front of `src` if it is complete (consuming it), returns
    /// `Ok(None)` if more bytes are needed. A frame header announcing more than the limits
    /// is refused before its payload is buffered.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>> {
        if src.len() < FRAME_HEADER_LEN {
            return Ok(None);
        }
        let word = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        let flags = src[4];
        let len = u32::from_be_bytes([0, src[5], src[6], src[7]]) as usize;
        let control = word & 0x8000_0000 != 0;
        let (limit, what) = if control {
            (self.limits.max_control_payload, "control frame")
        } else {
            (self.limits.max_data_payload, "data frame")
        };
        if len > limit {
            return Err(SpdyError::TooLarge {
                what,
                size: len,
                limit,
            });
        }
        if control {
            let version = ((word >> 16) & 0x7fff) as u16;
            if version != SPDY_VERSION {
                return Err(SpdyError::Protocol(format!(
                    "unsupported SPDY version {version}"
                )));
            }
        }
        if src.len() < FRAME_HEADER_LEN + len {
            src.reserve(FRAME_HEADER_LEN + len - src.len());
            return Ok(None);
        }
        src.advance(FRAME_HEADER_LEN);
        let payload = src.split_to(len).freeze();
        if control {
            self.decode_control((word & 0xffff) as u16, flags, payload)
                .map(Some)
        } else {
            let stream_id = word & 0x7fff_ffff;
            if stream_id == 0 {
                return Err(SpdyError::Protocol("data frame on stream 0".into()));
            }
            Ok(Some(Decoded::Frame(Frame::Data {
                stream_id,
                fin: flags & FLAG_FIN != 0,
                data: payload,
            })))
        }
    }

    fn decode_control(&mut self, kind: u16, flags: u8, mut p: Bytes) -> Result<Decoded> {
        let need = |p: &Bytes, n: usize, name: &str| {
            if p.len() < n {
                Err(SpdyError::Protocol(format!(
                    "{name} frame payload is {} bytes, needs {n}",
                    p.len()
                )))
            } else {
                Ok(())
            }
        };
        let exact = |p: &Bytes, n: usize, name: &str| {
            if p.len() != n {
                Err(SpdyError::Protocol(format!(
                    "{name} frame payload is {} bytes, must be {n}",
                    p.len()
                )))
            } else {
                Ok(())
            }
        };
        let frame = match kind {
            frame_type::SYN_STREAM => {
                need(&p, 10, "SYN_STREAM")?;
                let stream_id = p.get_u32() & 0x7fff_ffff;
                let associated_to = p.get_u32() & 0x7fff_ffff;
                let priority = p.get_u8() >> 5;
                let slot = p.get_u8();
                if stream_id == 0 {
                    return Err(SpdyError::Protocol("SYN_STREAM with stream ID 0".into()));
                }
                let headers = match self.headers(&p)? {
                    Ok(h) => h,
                    Err(reason) => return Ok(stream_error(stream_id, reason)),
                };
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    slot,
                    fin: flags & FLAG_FIN != 0,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers,
                }
            }
            frame_type::SYN_REPLY | frame_type::HEADERS => {
                let name = if kind == frame_type::SYN_REPLY {
                    "SYN_REPLY"
                } else {
                    "HEADERS"
                };
                need(&p, 4, name)?;
                let stream_id = p.get_u32() & 0x7fff_ffff;
                if stream_id == 0 {
                    return Err(SpdyError::Protocol(format!("{name} with stream ID 0")));
                }
                let headers = match self.headers(&p)? {
                    Ok(h) => h,
                    Err(reason) => return Ok(stream_error(stream_id, reason)),
                };
                let fin = flags & FLAG_FIN != 0;
                if kind == frame_type::SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        fin,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        fin,
                        headers,
                    }
                }
            }
            frame_type::RST_STREAM => {
                exact(&p, 8, "RST_STREAM")?;
                let stream_id = p.get_u32() & 0x7fff_ffff;
                let status = RstStatus::from_code(p.get_u32());
                if stream_id == 0 {
                    return Err(SpdyError::Protocol("RST_STREAM with stream ID 0".into()));
                }
                Frame::RstStream { stream_id, status }
            }
            frame_type::SETTINGS => {
                need(&p, 4, "SETTINGS")?;
                let count = p.get_u32() as usize;
                if count.checked_mul(8) != Some(p.len()) {
                    return Err(SpdyError::Protocol(format!(
                        "SETTINGS claims {count} entries in {} bytes",
                        p.len()
                    )));
                }
                let entries = (0..count)
                    .map(|_| {
                        let word = p.get_u32();
                        Setting {
                            flags: (word >> 24) as u8,
                            id: word & 0x00ff_ffff,
                            value: p.get_u32(),
                        }
                    })
                    .collect();
                Frame::Settings {
                    clear: flags & FLAG_CLEAR_SETTINGS != 0,
                    entries,
                }
            }
            frame_type::PING => {
                exact(&p, 4, "PING")?;
                Frame::Ping { id: p.get_u32() }
            }
            frame_type::GOAWAY => {
                exact(&p, 8, "GOAWAY")?;
                Frame::GoAway {
                    last_good_stream_id: p.get_u32() & 0x7fff_ffff,
                    status: GoAwayStatus::from_code(p.get_u32()),
                }
            }
            frame_type::WINDOW_UPDATE => {
                exact(&p, 8, "WINDOW_UPDATE")?;
                let stream_id = p.get_u32() & 0x7fff_ffff;
                let delta = p.get_u32() & 0x7fff_ffff;
                if delta == 0 {
                    return Ok(stream_error(stream_id, "WINDOW_UPDATE with delta 0".into()));
                }
                Frame::WindowUpdate { stream_id, delta }
            }
            other => Frame::Unknown { frame_type: other },
        };
        Ok(Decoded::Frame(frame))
    }

    /// Inflates and parses a header block: the outer error ends the connection (the zlib
    /// context is broken), the inner one only the stream.
    fn headers(&mut self, compressed: &[u8]) -> Result<std::result::Result<Headers, String>> {
        let block = self.decompressor.decompress(compressed)?;
        Ok(Headers::decode_block(&block))
    }
}

/// The sending half: frame serialisation and the outbound zlib context.
#[derive(Debug, Default)]
pub struct FrameEncoder {
    compressor: HeaderCompressor,
}

impl FrameEncoder {
    /// An encoder with a fresh outbound compression context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes `frame` onto the end of `dst`. Header blocks go through the connection's
    /// compression context, so frames must be encoded in the order they are sent.
    pub fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<()> {
        let control = |dst: &mut BytesMut, kind: u16, flags: u8, len: usize| -> Result<()> {
            if len > MAX_FRAME_PAYLOAD {
                return Err(SpdyError::TooLarge {
                    what: "control frame",
                    size: len,
                    limit: MAX_FRAME_PAYLOAD,
                });
            }
            dst.reserve(FRAME_HEADER_LEN + len);
            dst.put_u32(0x8000_0000 | (u32::from(SPDY_VERSION) << 16) | u32::from(kind));
            dst.put_u32((u32::from(flags) << 24) | len as u32);
            Ok(())
        };
        let fin_flag = |fin: bool| if fin { FLAG_FIN } else { 0 };
        match frame {
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                slot,
                fin,
                unidirectional,
                headers,
            } => {
                let block = self.compress(headers)?;
                let flags = fin_flag(*fin)
                    | if *unidirectional {
                        FLAG_UNIDIRECTIONAL
                    } else {
                        0
                    };
                control(dst, frame_type::SYN_STREAM, flags, 10 + block.len())?;
                dst.put_u32(stream_id & 0x7fff_ffff);
                dst.put_u32(associated_to & 0x7fff_ffff);
                dst.put_u8((priority & 0x07) << 5);
                dst.put_u8(*slot);
                dst.put_slice(&block);
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            }
            | Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                let kind = if matches!(frame, Frame::SynReply { .. }) {
                    frame_type::SYN_REPLY
                } else {
                    frame_type::HEADERS
                };
                let block = self.compress(headers)?;
                control(dst, kind, fin_flag(*fin), 4 + block.len())?;
                dst.put_u32(stream_id & 0x7fff_ffff);
                dst.put_slice(&block);
            }
            Frame::RstStream { stream_id, status } => {
                control(dst, frame_type::RST_STREAM, 0, 8)?;
                dst.put_u32(stream_id & 0x7fff_ffff);
                dst.put_u32(status.code());
            }
            Frame::Settings { clear, entries } => {
                let flags = if *clear { FLAG_CLEAR_SETTINGS } else { 0 };
                control(dst, frame_type::SETTINGS, flags, 4 + 8 * entries.len())?;
                dst.put_u32(entries.len() as u32);
                for e in entries {
                    dst.put_u32((u32::from(e.flags) << 24) | (e.id & 0x00ff_ffff));
                    dst.put_u32(e.value);
                }
            }
            Frame::Ping { id } => {
                control(dst, frame_type::PING, 0, 4)?;
                dst.put_u32(*id);
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                control(dst, frame_type::GOAWAY, 0, 8)?;
                dst.put_u32(last_good_stream_id & 0x7fff_ffff);
                dst.put_u32(status.code());
            }
            Frame::WindowUpdate { stream_id, delta } => {
                control(dst, frame_type::WINDOW_UPDATE, 0, 8)?;
                dst.put_u32(stream_id & 0x7fff_ffff);
                dst.put_u32(delta & 0x7fff_ffff);
            }
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                if data.len() > MAX_FRAME_PAYLOAD {
                    return Err(SpdyError::TooLarge {
                        what: "data frame",
                        size: data.len(),
                        limit: MAX_FRAME_PAYLOAD,
                    });
                }
                dst.reserve(FRAME_HEADER_LEN + data.len());
                dst.put_u32(stream_id & 0x7fff_ffff);
                dst.put_u32((u32::from(fin_flag(*fin)) << 24) | data.len() as u32);
                dst.put_slice(data);
            }
            Frame::Unknown { frame_type } => {
                return Err(SpdyError::InvalidInput(format!(
                    "cannot encode unknown control frame type {frame_type}"
                )));
            }
        }
        Ok(())
    }

    fn compress(&mut self, headers: &Headers) -> Result<Vec<u8>> {
        let block = headers.encode_block()?;
        let mut out = Vec::with_capacity(block.len() / 2 + 64);
        self.compressor.compress(&block, &mut out)?;
        Ok(out)
    }
}

fn stream_error(stream_id: u32, reason: String) -> Decoded {
    Decoded::StreamError {
        stream_id,
        status: RstStatus::ProtocolError,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_frames() -> Vec<Frame> {
        let h: Headers = [("streamtype", "stdout"), ("port", "8080")]
            .into_iter()
            .collect();
        vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 3,
                slot: 0,
                fin: false,
                unidirectional: true,
                headers: h.clone(),
            },
            Frame::SynReply {
                stream_id: 1,
                fin: true,
                headers: Headers::new(),
            },
            Frame::RstStream {
                stream_id: 7,
                status: RstStatus::Cancel,
            },
            Frame::RstStream {
                stream_id: 7,
                status: RstStatus::Other(99),
            },
            Frame::Settings {
                clear: true,
                entries: vec![
                    Setting {
                        flags: 1,
                        id: 4,
                        value: 100,
                    },
                    Setting {
                        flags: 0,
                        id: 7,
                        value: 65536,
                    },
                ],
            },
            Frame::Ping { id: 2 },
            Frame::GoAway {
                last_good_stream_id: 9,
                status: GoAwayStatus::ProtocolError,
            },
            Frame::Headers {
                stream_id: 3,
                fin: false,
                headers: h,
            },
            Frame::WindowUpdate {
                stream_id: 0,
                delta: 65536,
            },
            Frame::Data {
                stream_id: 5,
                fin: true,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 5,
                fin: false,
                data: Bytes::new(),
            },
        ]
    }

    #[test]
    fn every_frame_type_round_trips_through_one_context_per_direction() {
        let mut sender = FrameEncoder::new();
        let mut receiver = FrameDecoder::new(FrameLimits::default());
        let mut wire = BytesMut::new();
        for f in all_frames() {
            sender.encode(&f, &mut wire).unwrap();
        }
        for f in all_frames() {
            assert_eq!(receiver.decode(&mut wire).unwrap(), Some(Decoded::Frame(f)));
        }
        assert!(wire.is_empty());
        assert_eq!(receiver.decode(&mut wire).unwrap(), None);
    }

    #[test]
    fn known_wire_bytes() {
        let mut wire = BytesMut::new();
        let mut enc = FrameEncoder::new();
        enc.encode(&Frame::Ping { id: 1 }, &mut wire).unwrap();
        assert_eq!(&wire[..], &[0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
        wire.clear();
        enc.encode(
            &Frame::Data {
                stream_id: 3,
                fin: true,
                data: Bytes::from_static(b"ab"),
            },
            &mut wire,
        )
        .unwrap();
        assert_eq!(&wire[..], &[0, 0, 0, 3, 1, 0, 0, 2, b'a', b'b']);
        wire.clear();
        enc.encode(
            &Frame::RstStream {
                stream_id: 1,
                status: RstStatus::RefusedStream,
            },
            &mut wire,
        )
        .unwrap();
        assert_eq!(
            &wire[..],
            &[0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 3]
        );
    }

    #[test]
    fn truncated_frames_wait_for_more_bytes() {
        for f in all_frames() {
            let mut wire = BytesMut::new();
            FrameEncoder::new().encode(&f, &mut wire).unwrap();
            for cut in 0..wire.len() {
                let mut part = BytesMut::from(&wire[..cut]);
                let mut dec = FrameDecoder::new(FrameLimits::default());
                assert_eq!(dec.decode(&mut part).unwrap(), None, "{f:?} cut at {cut}");
                assert_eq!(part.len(), cut, "nothing consumed");
            }
        }
    }

    fn decode_one(bytes: &[u8]) -> Result<Option<Decoded>> {
        FrameDecoder::new(FrameLimits::default()).decode(&mut BytesMut::from(bytes))
    }

    #[test]
    fn corrupt_frames_are_connection_errors() {
        // Wrong version.
        assert!(matches!(
            decode_one(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]),
            Err(SpdyError::Protocol(_))
        ));
        // Fixed-size frames with the wrong length.
        assert!(decode_one(&[0x80, 3, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1]).is_err());
        assert!(decode_one(&[0x80, 3, 0, 6, 0, 0, 0, 2, 0, 0]).is_err());
        assert!(decode_one(&[0x80, 3, 0, 7, 0, 0, 0, 4, 0, 0, 0, 1]).is_err());
        // SETTINGS whose count does not match its length.
        assert!(decode_one(&[0x80, 3, 0, 4, 0, 0, 0, 4, 0, 0, 0, 9]).is_err());
        // Stream 0 where a stream is required.
        assert!(decode_one(&[0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode_one(&[0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]).is_err());
        // A SYN_STREAM too short for its fixed fields, and one whose header block is not zlib.
        assert!(decode_one(&[0x80, 3, 0, 1, 0, 0, 0, 4, 0, 0, 0, 1]).is_err());
        let mut bad = vec![0x80, 3, 0, 1, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        bad.extend_from_slice(b"garbage!");
        assert!(matches!(decode_one(&bad), Err(SpdyError::Compression(_))));
    }

    #[test]
    fn oversized_frames_are_refused_before_buffering() {
        let limits = FrameLimits {
            max_control_payload: 100,
            max_data_payload: 1000,
            max_header_block: 100,
        };
        let mut dec = FrameDecoder::new(limits);
        let mut data = BytesMut::from(&[0, 0, 0, 1, 0, 0, 0x03, 0xe9][..]);
        assert!(matches!(
            dec.decode(&mut data),
            Err(SpdyError::TooLarge { size: 1001, .. })
        ));
        let mut ctl = BytesMut::from(&[0x80, 3, 0, 1, 0, 0, 0, 101][..]);
        assert!(matches!(
            dec.decode(&mut ctl),
            Err(SpdyError::TooLarge { size: 101, .. })
        ));
        // A header block that inflates past the limit.
        let big: Headers = [("x", "y".repeat(1000))].into_iter().collect();
        let mut wire = BytesMut::new();
        FrameEncoder::new()
            .encode(
                &Frame::SynReply {
                    stream_id: 1,
                    fin: false,
                    headers: big,
                },
                &mut wire,
            )
            .unwrap();
        assert!(matches!(
            FrameDecoder::new(limits).decode(&mut wire),
            Err(SpdyError::TooLarge {
                what: "header block",
                ..
            })
        ));
    }

    #[test]
    fn bad_header_content_only_resets_the_stream() {
        let mut enc = HeaderCompressor::new();
        let block = [
            &1u32.to_be_bytes()[..],
            &4u32.to_be_bytes(),
            b"Port",
            &2u32.to_be_bytes(),
            b"80",
        ]
        .concat();
        let mut compressed = Vec::new();
        enc.compress(&block, &mut compressed).unwrap();
        let mut frame = vec![0x80, 3, 0, 1, 0];
        frame.extend_from_slice(&((10 + compressed.len()) as u32).to_be_bytes()[1..]);
        frame.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 0, 0, 0]);
        frame.extend_from_slice(&compressed);
        match decode_one(&frame).unwrap() {
            Some(Decoded::StreamError {
                stream_id: 5,
                status: RstStatus::ProtocolError,
                ..
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_control_frames_are_skipped() {
        let mut wire = BytesMut::from(
            &[
                0x80, 3, 0, 10, 0, 0, 0, 3, 1, 2, 3, 0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 2,
            ][..],
        );
        let mut dec = FrameDecoder::new(FrameLimits::default());
        assert_eq!(
            dec.decode(&mut wire).unwrap(),
            Some(Decoded::Frame(Frame::Unknown { frame_type: 10 }))
        );
        assert_eq!(
            dec.decode(&mut wire).unwrap(),
            Some(Decoded::Frame(Frame::Ping { id: 2 }))
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for round in 0..2000 {
            let mut bytes = Vec::new();
            let len = (round % 64) + 8;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push(seed as u8);
            }
            // Make about half of them look like SPDY/3 control frames with a small length.
            if round % 2 == 0 {
                bytes[0] = 0x80;
                bytes[1] = 3;
                bytes[2] = 0;
                bytes[3] %= 12;
                bytes[5] = 0;
                bytes[6] = 0;
                bytes[7] = (len - 8) as u8;
            }
            let mut buf = BytesMut::from(&bytes[..]);
            let mut dec = FrameDecoder::new(FrameLimits::default());
            while let Ok(Some(_)) = dec.decode(&mut buf) {}
        }
    }
}
