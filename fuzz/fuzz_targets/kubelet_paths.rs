//! A container's log_path and its pod's log_directory, from a CRI client: whatever is
//! accepted stays inside the directory.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (dir, path) = text.split_once('\n').unwrap_or(("/var/log/pods/p", &text));
    if let Ok(Some(joined)) = anycri_core::kubelet::log_file_path(dir, path) {
        assert!(joined.starts_with(dir), "{joined:?} left {dir:?}");
    }
});
