//! Testing a tool with the mockall mocks (`anycri` feature `mock`): where the fake behaves
//! like a healthy runtime, a mock answers whatever the test scripts, in order, and checks
//! the calls it receives: a runtime that is restarting, one that is up but not ready, one
//! that refuses the caller.
//!
//! The tool here waits for a node's runtime to be ready (Status: RuntimeReady and
//! NetworkReady), as an agent does at start: it rides out a runtime that is down for a
//! while, and gives up on errors that waiting cannot fix.
//!
//! ```sh
//! cargo test --example test_with_mock   # the tests at the bottom
//! cargo run --example test_with_mock [-- ENDPOINT]
//! ```
//!
//! In your crate: `anycri = { version = "...", features = ["mock"] }` under
//! `[dev-dependencies]`.

use std::time::Duration;

use anycri::{Error, Result, RuntimeService, api::StatusRequest};

/// The tool: poll `Status` every `poll` until every condition holds; Unavailable (the
/// runtime is starting or restarting) and unmet conditions are waited out, other errors
/// returned at once, and after `timeout` the last reason is a DeadlineExceeded error.
pub async fn wait_until_ready(
    runtime: &dyn RuntimeService,
    timeout: Duration,
    poll: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let why = match runtime.status(StatusRequest { verbose: false }).await {
            Ok(response) => {
                let conditions = response.status.map(|s| s.conditions).unwrap_or_default();
                match conditions.iter().find(|c| !c.status) {
                    None if !conditions.is_empty() => return Ok(()),
                    None => "no conditions reported".to_string(),
                    Some(c) => format!("{} is false: {}", c.r#type, c.message),
                }
            }
            Err(e) if e.kind() == anycri::ErrorKind::Unavailable => e.to_string(),
            Err(e) => return Err(e.context("waiting for the runtime")),
        };
        if tokio::time::Instant::now() + poll > deadline {
            return Err(Error::deadline_exceeded(format!(
                "the runtime is not ready after {timeout:?}: {why}"
            )));
        }
        tokio::time::sleep(poll).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let endpoint = std::env::args().nth(1).unwrap_or_else(|| "fake://".into());
    let runtime = anycri::connect(&endpoint).await?.runtime;
    wait_until_ready(&*runtime, Duration::from_secs(30), Duration::from_secs(1)).await?;
    println!("{endpoint} is ready");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anycri::{
        ErrorKind, MockRuntimeService,
        api::{RuntimeCondition, RuntimeStatus, StatusResponse},
    };

    const POLL: Duration = Duration::from_millis(1);

    /// A Status answer with NetworkReady as given.
    fn status(network_ready: bool) -> StatusResponse {
        let condition = |kind: &str, status: bool| RuntimeCondition {
            r#type: kind.into(),
            status,
            reason: if status { "" } else { "NetworkPluginNotReady" }.into(),
            message: if status {
                ""
            } else {
                "cni config uninitialized"
            }
            .into(),
        };
        StatusResponse {
            status: Some(RuntimeStatus {
                conditions: vec![
                    condition("RuntimeReady", true),
                    condition("NetworkReady", network_ready),
                ],
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn waits_out_a_restart_and_an_unready_network() {
        let mut runtime = MockRuntimeService::new();
        // Answers in order: down twice, up without network, ready. A fifth call would fail
        // the test (`times(4)`), as would a verbose Status.
        let mut calls = 0;
        runtime
            .expect_status()
            .withf(|request| !request.verbose)
            .times(4)
            .returning(move |_| {
                calls += 1;
                match calls {
                    1 | 2 => Err(Error::unavailable("connection refused")),
                    3 => Ok(status(false)),
                    _ => Ok(status(true)),
                }
            });

        wait_until_ready(&runtime, Duration::from_secs(5), POLL)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn gives_up_at_once_on_an_error_waiting_cannot_fix() {
        let mut runtime = MockRuntimeService::new();
        runtime
            .expect_status()
            .times(1)
            .returning(|_| Err(Error::permission_denied("socket is root:root 0660")));

        let err = wait_until_ready(&runtime, Duration::from_secs(5), POLL)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(
            err.message().starts_with("waiting for the runtime: "),
            "{err}"
        );
    }

    #[tokio::test]
    async fn times_out_with_the_last_reason() {
        let mut runtime = MockRuntimeService::new();
        runtime.expect_status().returning(|_| Ok(status(false)));

        let err = wait_until_ready(&runtime, Duration::from_millis(50), POLL)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
        assert!(err.message().contains("cni config uninitialized"), "{err}");
    }
}
