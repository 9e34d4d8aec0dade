//! The values of anycri's live test environment, for the project's own tests, examples and
//! benches: `scripts/runtime-env up` prints them as `KEY=value` lines and writes them to
//! `<env dir>/env`; a variable in the process environment wins over the file. Live tests that
//! find no runtime skip with a printed reason, or fail when `ANYCRI_REQUIRE_LIVE=1` (CI).
//! Beside the values, what live tests share: [`Daemon`] for the processes they start,
//! [`docker`] for the docker CLI, [`runtime_env`] for the script, [`grpc_client`] for a CRI
//! daemon just started.

use std::path::PathBuf;

/// The environment directory (`ANYCRI_ENV_DIR`, default `/var/tmp/anycri-env`).
pub fn env_dir() -> PathBuf {
    PathBuf::from(std::env::var("ANYCRI_ENV_DIR").unwrap_or_else(|_| "/var/tmp/anycri-env".into()))
}

/// The value of `key`: from the process environment, else from the environment's file.
pub fn env_value(key: &str) -> Option<String> {
    if let Ok(v) = std::env::var(key)
        && !v.is_empty()
    {
        return Some(v);
    }
    let text = std::fs::read_to_string(env_dir().join("env")).ok()?;
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

/// Whether a missing live runtime is a failure (`ANYCRI_REQUIRE_LIVE=1`, set by CI).
pub fn live_required() -> bool {
    std::env::var("ANYCRI_REQUIRE_LIVE").is_ok_and(|v| v == "1")
}

/// Skip (print why) or, under `ANYCRI_REQUIRE_LIVE=1`, fail.
pub fn skip_or_fail(reason: &str) {
    if live_required() {
        panic!("live runtime required (ANYCRI_REQUIRE_LIVE=1) but unavailable: {reason}");
    }
    eprintln!("SKIPPED: {reason} (start it with `scripts/runtime-env up`)");
}

/// The values of `keys` ([`env_value`]), or `None` after [`skip_or_fail`] names the first
/// one unknown.
pub fn live_values<const N: usize>(keys: [&str; N]) -> Option<[String; N]> {
    let mut values = Vec::with_capacity(N);
    for key in keys {
        match env_value(key) {
            Some(v) => values.push(v),
            None => {
                skip_or_fail(&format!("{key} unknown"));
                return None;
            }
        }
    }
    values.try_into().ok()
}

mod grpc;
mod process;

pub use grpc::grpc_client;
pub use process::{Daemon, docker, docker_raw, runtime_env};

#[cfg(feature = "spdy-client")]
pub mod spdy_client;
#[cfg(feature = "spdy-client")]
mod spdy_dictionary;
