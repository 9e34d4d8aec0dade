//! Name/value header blocks: the [`Headers`] type, their SPDY/3 wire form (a count, then
//! length-prefixed names and NUL-joined values) and the two zlib contexts a connection keeps,
//! one per direction, primed with the SPDY/3 dictionary and sync-flushed after every block.

use bytes::{Buf, BufMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::dictionary::spdy3_dictionary;
use crate::error::{Result, SpdyError};

/// The headers of a SYN_STREAM, SYN_REPLY or HEADERS frame, in the order they were added.
///
/// Names are case-insensitive and kept lowercase (SPDY/3 requires lowercase names on the
/// wire); a name may carry several values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    /// An empty header set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to the single value `value`, replacing any values it had.
    pub fn insert(&mut self, name: impl AsRef<str>, value: impl Into<String>) -> &mut Self {
        let name = name.as_ref().to_ascii_lowercase();
        self.entries.retain(|(n, _)| *n != name);
        self.entries.push((name, value.into()));
        self
    }

    /// Adds one more value for `name`.
    pub fn append(&mut self, name: impl AsRef<str>, value: impl Into<String>) -> &mut Self {
        self.entries
            .push((name.as_ref().to_ascii_lowercase(), value.into()));
        self
    }

    /// The first value of `name` (case-insensitive), if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (case-insensitive), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every (name, value) pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The number of (name, value) pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no header at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The uncompressed SPDY/3 name/value block: one entry per distinct name, its values
    /// joined with NUL, in first-appearance order.
    pub fn encode_block(&self) -> Result<Vec<u8>> {
        let mut names: Vec<&str> = Vec::new();
        for (name, _) in &self.entries {
            if name.is_empty() || name.contains('\0') {
                return Err(SpdyError::InvalidInput(format!(
                    "header name {name:?} is empty or contains NUL"
                )));
            }
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        let mut out = Vec::new();
        out.put_u32(len_u32(names.len())?);
        for name in names {
            let values: Vec<&str> = self.get_all(name).collect();
            let joined = values.join("\0");
            out.put_u32(len_u32(name.len())?);
            out.put_slice(name.as_bytes());
            out.put_u32(len_u32(joined.len())?);
            out.put_slice(joined.as_bytes());
        }
        Ok(out)
    }

    /// Parses an uncompressed name/value block. Errors describe what is wrong; the caller
    /// decides whether that resets a stream (the compression context is still in step).
    pub fn decode_block(mut block: &[u8]) -> std::result::Result<Headers, String> {
        let count = take_u32(&mut block).ok_or("header block shorter than its count")?;
        // Each pair takes at least 8 bytes, so a count beyond that is a lie, not a reason
        // to allocate.
        if count as usize > block.len() / 8 {
            return Err(format!(
                "header block claims {count} pairs in {} bytes",
                block.len()
            ));
        }
        let mut headers = Headers::new();
        let mut seen: Vec<String> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let name = take_str(&mut block).ok_or("truncated header name")?;
            if name.is_empty() {
                return Err("empty header name".into());
            }
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(format!("header name {name:?} is not lowercase"));
            }
            if seen.contains(&name) {
                return Err(format!("header {name:?} appears twice"));
            }
            let value = take_str(&mut block).ok_or("truncated header value")?;
            for v in value.split('\0') {
                headers.entries.push((name.clone(), v.to_owned()));
            }
            seen.push(name);
        }
        if !block.is_empty() {
            return Err(format!(
                "{} stray bytes after the header block",
                block.len()
            ));
        }
        Ok(headers)
    }
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut h = Headers::new();
        for (k, v) in iter {
            h.append(k, v);
        }
        h
    }
}

fn len_u32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| SpdyError::InvalidInput("header too long".into()))
}

fn take_u32(buf: &mut &[u8]) -> Option<u32> {
    (buf.len() >= 4).then(|| buf.get_u32())
}

fn take_str(buf: &mut &[u8]) -> Option<String> {
    let len = take_u32(buf)? as usize;
    if buf.len() < len {
        return None;
    }
    let s = String::from_utf8_lossy(&buf[..len]).into_owned();
    buf.advance(len);
    Some(s)
}

/// The sending direction's zlib context: one per connection, every block sync-flushed so the
/// peer can inflate it on its own.
pub struct HeaderCompressor {
    zlib: Compress,
}

impl std::fmt::Debug for HeaderCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderCompressor").finish_non_exhaustive()
    }
}

impl Default for HeaderCompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderCompressor {
    /// A fresh context primed with the SPDY/3 dictionary.
    pub fn new() -> Self {
        let mut zlib = Compress::new(Compression::default(), true);
        // Cannot fail on a fresh zlib-format stream.
        let _ = zlib.set_dictionary(spdy3_dictionary());
        Self { zlib }
    }

    /// Compresses one header block and appends it to `out`.
    pub fn compress(&mut self, block: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let start_in = self.zlib.total_in();
        loop {
            let consumed = (self.zlib.total_in() - start_in) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(block.len() - consumed + 256);
            }
            self.zlib
                .compress_vec(&block[consumed..], out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Compression(e.to_string()))?;
            let consumed = (self.zlib.total_in() - start_in) as usize;
            // Done once all input is in and zlib stopped with room to spare (nothing pending).
            if consumed == block.len() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

/// The receiving direction's zlib context, with a cap on the inflated size of a block.
pub struct HeaderDecompressor {
    zlib: Decompress,
    max_block: usize,
}

impl std::fmt::Debug for HeaderDecompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderDecompressor")
            .field("max_block", &self.max_block)
            .finish_non_exhaustive()
    }
}

impl HeaderDecompressor {
    /// A fresh context that refuses blocks inflating to more than `max_block` bytes.
    pub fn new(max_block: usize) -> Self {
        Self {
            zlib: Decompress::new(true),
            max_block,
        }
    }

    /// Inflates one compressed header block. Any error leaves the context unusable: the
    /// caller must end the connection.
    pub fn decompress(&mut self, input: &[u8]) -> Result<Vec<u8>> {
        let start_in = self.zlib.total_in();
        let mut out = Vec::with_capacity((input.len() * 4).clamp(64, self.max_block + 1));
        loop {
            let consumed = (self.zlib.total_in() - start_in) as usize;
            if out.len() == out.capacity() {
                if out.len() > self.max_block {
                    return Err(SpdyError::TooLarge {
                        what: "header block",
                        size: out.len(),
                        limit: self.max_block,
                    });
                }
                let grow = out.len().max(256).min(self.max_block + 1 - out.len());
                out.reserve_exact(grow);
            }
            let before = (self.zlib.total_in(), self.zlib.total_out());
            match self
                .zlib
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => {
                    return Err(SpdyError::Compression(
                        "peer ended its header compression stream".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.zlib
                        .set_dictionary(spdy3_dictionary())
                        .map_err(|e| SpdyError::Compression(format!("dictionary: {e}")))?;
                    continue;
                }
                Err(e) => return Err(SpdyError::Compression(e.to_string())),
            }
            if out.len() > self.max_block {
                return Err(SpdyError::TooLarge {
                    what: "header block",
                    size: out.len(),
                    limit: self.max_block,
                });
            }
            let consumed = (self.zlib.total_in() - start_in) as usize;
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if (self.zlib.total_in(), self.zlib.total_out()) == before && out.len() < out.capacity()
            {
                return Err(SpdyError::Compression(
                    "header block does not inflate".into(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_case_insensitive_and_multi_valued() {
        let mut h = Headers::new();
        h.insert("StreamType", "error")
            .append("X-A", "1")
            .append("x-a", "2");
        assert_eq!(h.get("streamtype"), Some("error"));
        assert_eq!(h.get_all("X-a").collect::<Vec<_>>(), ["1", "2"]);
        h.insert("streamtype", "data");
        assert_eq!(h.get_all("streamtype").collect::<Vec<_>>(), ["data"]);
    }

    #[test]
    fn block_round_trip_joins_values_with_nul() {
        let h: Headers = [("port", "80"), ("x", "a"), ("x", "b")]
            .into_iter()
            .collect();
        let block = h.encode_block().unwrap();
        assert_eq!(&block[..4], &2u32.to_be_bytes());
        assert!(block.windows(3).any(|w| w == b"a\0b"));
        assert_eq!(Headers::decode_block(&block).unwrap(), h);
    }

    #[test]
    fn bad_blocks_are_rejected() {
        let good = Headers::from_iter([("a", "b")]).encode_block().unwrap();
        for cut in 0..good.len() {
            assert!(Headers::decode_block(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = good.clone();
        extra.push(0);
        assert!(Headers::decode_block(&extra).is_err());
        let upper = [
            &1u32.to_be_bytes()[..],
            &1u32.to_be_bytes(),
            b"A",
            &0u32.to_be_bytes(),
        ]
        .concat();
        assert!(
            Headers::decode_block(&upper)
                .unwrap_err()
                .contains("lowercase")
        );
        let dup = [
            &2u32.to_be_bytes()[..],
            &1u32.to_be_bytes(),
            b"a",
            &0u32.to_be_bytes(),
            &1u32.to_be_bytes(),
            b"a",
            &0u32.to_be_bytes(),
        ]
        .concat();
        assert!(Headers::decode_block(&dup).unwrap_err().contains("twice"));
        let huge_count = u32::MAX.to_be_bytes();
        assert!(Headers::decode_block(&huge_count).is_err());
        assert!(Headers::from_iter([("", "x")]).encode_block().is_err());
    }

    #[test]
    fn one_context_per_direction_spans_blocks() {
        let mut c = HeaderCompressor::new();
        let mut d = HeaderDecompressor::new(1 << 16);
        for i in 0..50 {
            let h = Headers::from_iter([("streamtype", "data"), ("requestid", &*i.to_string())]);
            let mut wire = Vec::new();
            c.compress(&h.encode_block().unwrap(), &mut wire).unwrap();
            assert!(wire.ends_with(&[0, 0, 0xff, 0xff]), "sync flush marker");
            let plain = d.decompress(&wire).unwrap();
            assert_eq!(Headers::decode_block(&plain).unwrap(), h);
        }
    }

    #[test]
    fn inflated_size_is_capped() {
        let mut c = HeaderCompressor::new();
        let mut d = HeaderDecompressor::new(1024);
        let h = Headers::from_iter([("big", "x".repeat(100_000))]);
        let mut wire = Vec::new();
        c.compress(&h.encode_block().unwrap(), &mut wire).unwrap();
        assert!(wire.len() < 2000, "compresses well: {}", wire.len());
        assert!(matches!(
            d.decompress(&wire),
            Err(SpdyError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_does_not_inflate() {
        let mut d = HeaderDecompressor::new(1024);
        assert!(d.decompress(b"\xff\xff\xff\xff\xff\xff garbage").is_err());
        // A zlib stream without the dictionary flag is refused only if it is corrupt; an
        // empty input yields an empty (and then invalid) block rather than a hang.
        let mut d = HeaderDecompressor::new(1024);
        assert_eq!(d.decompress(b"").unwrap(), Vec::<u8>::new());
    }
}
