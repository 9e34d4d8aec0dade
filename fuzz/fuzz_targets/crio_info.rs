//! CRI-O's info endpoint bodies as the gRPC backend reads them: `GET /info` and
//! `GET /containers/<id>` (JSON; what decodes encodes back to the same value) and
//! `GET /config` (TOML text, kept as it is).
#![no_main]
use anycri_grpc::crio;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = crio::decode_info(data) {
        let json = serde_json::to_vec(&info).expect("CrioInfo to JSON");
        assert_eq!(crio::decode_info(&json).ok(), Some(info));
    }
    if let Ok(container) = crio::decode_container_info(data) {
        let json = serde_json::to_vec(&container).expect("CrioContainerInfo to JSON");
        assert_eq!(crio::decode_container_info(&json).ok(), Some(container));
    }
    if let Ok(config) = crio::decode_config(data) {
        assert_eq!(config.as_bytes(), data);
    }
});
