//! Kubernetes manifest files given to `anycri migrate check -f`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = anycri_migrate::manifests::scan_text("fuzz.yaml", &text);
});
