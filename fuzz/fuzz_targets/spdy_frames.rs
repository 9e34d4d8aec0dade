//! SPDY/3.1 frames and header blocks from a streaming client.
#![no_main]
use anycri_spdy::frame::{FrameDecoder, FrameLimits};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = FrameDecoder::new(FrameLimits::default());
    let mut buf = BytesMut::from(data);
    // Every frame in the bytes, until more are needed or one is refused.
    while let Ok(Some(_)) = decoder.decode(&mut buf) {}
    let _ = anycri_spdy::Headers::decode_block(data);
});
