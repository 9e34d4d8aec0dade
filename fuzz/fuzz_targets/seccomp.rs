//! Seccomp profiles as the Docker shim hands them to Docker: the CRI `seccomp` field or the
//! legacy `seccomp_profile_path`, and a localhost profile's file contents (from the input, not
//! from disk).
#![no_main]
use anycri_core::api::SecurityProfile;
use anycri_docker::fuzzing::seccomp_opt_with;
use libfuzzer_sys::fuzz_target;

// Input: one byte for the `seccomp` field (`-`: none, the legacy path applies; `R`, `U`, `L`:
// RuntimeDefault, Unconfined, Localhost; any other: that profile type number), then the
// legacy path or `localhost_ref` up to a newline, then the profile file's bytes.
fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let (name, contents) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let name = String::from_utf8_lossy(name);
    let profile_type = match kind {
        b'-' => None,
        b'R' => Some(0),
        b'U' => Some(1),
        b'L' => Some(2),
        n => Some(i32::from(n)),
    };
    let profile = profile_type.map(|profile_type| SecurityProfile {
        profile_type,
        localhost_ref: name.to_string(),
    });
    let legacy = if profile.is_some() { "" } else { &name };
    let mut read = None;
    let opt = seccomp_opt_with(profile.as_ref(), legacy, |file| {
        read = Some(file.to_owned());
        String::from_utf8(contents.to_vec())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    });
    match (opt, read) {
        // A profile file's contents go to Docker as the same JSON object, compacted.
        (Ok(Some(opt)), Some(file)) => {
            let sent = opt.strip_prefix("seccomp=").expect("a seccomp= option");
            let sent: serde_json::Value = serde_json::from_str(sent).expect("JSON sent");
            let given: serde_json::Value = serde_json::from_slice(contents).expect("JSON given");
            assert!(sent.is_object());
            assert_eq!(sent, given);
            let expected = match &profile {
                Some(p) => p.localhost_ref.as_str(),
                None => legacy.strip_prefix("localhost/").expect("a localhost path"),
            };
            assert_eq!(file, expected);
        }
        (Ok(Some(opt)), None) => assert_eq!(opt, "seccomp=unconfined"),
        (Ok(None), read) => assert_eq!(read, None, "a file read for Docker's default"),
        (Err(_), _) => {}
    }
});
