//! CRI log files and Docker json-file lines, as read from a container's log.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = anycri_core::logs::parse_log(&text);
    for line in text.lines() {
        let _ = anycri_core::logs::parse_line(line);
        let _ = anycri_core::logs::JsonLogEntry::parse(line);
    }
});
