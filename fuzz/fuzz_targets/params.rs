//! Files users give the bench and the conformance suite: benchmark parameters (anycri's
//! YAML or TOML, critest's `--benchmarking-params-file`), test images (anycri's JSON,
//! critest's `--test-images-file` YAML) and the reports `anycri conformance summary` reads;
//! what anycri writes back from a parsed file reads the same.
#![no_main]
use anycri_bench::{ParamsFile, config::slice};
use anycri_conformance::{Report, comparison_markdown};
use anycri_images::{CritestImageList, TestImages};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    bench_params(&text);
    test_images(&text);
    report(&text);
});

fn bench_params(text: &str) {
    for toml in [false, true] {
        let Ok(file) = ParamsFile::parse(text, toml) else {
            continue;
        };
        let config = file.into_config();
        let _ = config.validate();
        let _ = config.selected();
        let _ = config.timeout();
        // results.json carries the configuration; `anycri bench report` reads it back.
        let json = serde_json::to_string(&config).expect("the configuration to JSON");
        let back: anycri_bench::BenchConfig =
            serde_json::from_str(&json).expect("the configuration from JSON");
        assert_eq!(back, config);
        // Each scenario's iterations, split over the rounds, add up to what was asked.
        if config.rounds <= 1000 {
            for total in [
                config.container_lifecycle.iterations,
                config.pod_lifecycle.iterations,
                config.image_lifecycle.iterations,
                config.event_latency.iterations,
            ] {
                let sum: u64 = (0..config.rounds)
                    .map(|r| u64::from(slice(total, config.rounds, r)))
                    .sum();
                assert_eq!(sum, u64::from(total), "{} rounds", config.rounds);
            }
        }
    }
}

fn test_images(text: &str) {
    if let Ok(images) = TestImages::parse(text) {
        let _ = images.all_references();
        // `anycri conformance images --output-file` writes JSON that reads back the same.
        let json = images.to_json().expect("test images to JSON");
        assert_eq!(
            TestImages::parse(&json).ok().as_ref(),
            Some(&images),
            "{json}"
        );
        // The list given to critest reads back the same.
        let list = images.to_critest();
        let yaml = list.to_yaml().expect("critest list to YAML");
        assert_eq!(
            CritestImageList::from_yaml(&yaml).ok().as_ref(),
            Some(&list),
            "{yaml}"
        );
    }
    // critest's file over a base set, as `--test-images-file` does with `--registry-prefix`.
    if let Ok(list) = CritestImageList::from_yaml(text) {
        let mut base = anycri_conformance::images::with_registry_prefix("127.0.0.1:5000/anycri");
        let _ = base.apply_critest(&list);
        let _ = TestImages::from_critest(&list);
    }
}

fn report(text: &str) {
    let Ok(report) = serde_json::from_str::<Report>(text) else {
        return;
    };
    let _ = report.unexplained_failures().count();
    let _ = report.to_junit();
    let _ = report.to_markdown();
    let _ = report.summary_table();
    let _ = comparison_markdown(&[(report.runtime.clone(), report.clone())]);
    let again: Report = serde_json::from_str(&report.to_json()).expect("a written report reads");
    assert_eq!(again.checks.len(), report.checks.len());
}
