//! Docker container names in cri-dockerd's scheme (`k8s_<container>_<pod>_<ns>_<uid>_<n>`),
//! read from whatever Docker lists: a name that parses names the same container again.
#![no_main]
use anycri_docker::labels;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = String::from_utf8_lossy(data);
    if let Ok((container, pod)) = labels::parse_container_name(&name)
        && let Ok(again) = labels::container_name(&container, &pod)
    {
        assert_eq!(
            labels::parse_container_name(&again).ok(),
            Some((container, pod)),
            "{again:?} from {name:?}"
        );
    }
    let _ = labels::parse_sandbox_name(&name);
});
