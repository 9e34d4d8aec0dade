//! Docker's daemon.json given to `anycri migrate plan`.
#![no_main]
use anycri_migrate::{PlanOptions, TargetRuntime};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for options in [
        PlanOptions::new(TargetRuntime::Containerd),
        PlanOptions::new(TargetRuntime::Containerd).containerd_config_version(3),
        PlanOptions::new(TargetRuntime::Crio),
    ] {
        let _ = anycri_migrate::plan::plan(&text, &options);
    }
});
