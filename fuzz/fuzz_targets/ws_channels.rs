//! Kubernetes channel-protocol WebSocket messages (binary and base64) and exit statuses.
#![no_main]
use anycri_streaming::protocol::{self, EXEC_PROTOCOLS, PORT_FORWARD_PROTOCOLS};
use libfuzzer_sys::fuzz_target;
use tokio_tungstenite::tungstenite::Message;

fuzz_target!(|data: &[u8]| {
    for p in EXEC_PROTOCOLS.iter().chain(PORT_FORWARD_PROTOCOLS) {
        let _ = protocol::decode(*p, Message::Binary(bytes::Bytes::copy_from_slice(data)));
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = protocol::decode(*p, Message::Text(text.into()));
        }
        let _ = protocol::parse_status(*p, data);
    }
});
