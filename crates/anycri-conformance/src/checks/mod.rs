//! The checks, one module per area, in the order the report lists them. Each module has a
//! `checks()` function returning its registrations; the check functions themselves are short
//! async fns over a [`TestContext`] that read like the behaviour they specify.

mod container;
mod exec_sync;
mod extras;
mod idempotence;
mod image;
mod logs;
mod multi;
mod network;
mod oom;
mod pod;
mod runtime;
mod security;
mod stats;
mod streaming;
mod volume;

use std::{future::Future, time::Duration};

use crate::{context::Failure, registry::Check};

/// Every check, in report order.
pub(crate) fn all() -> Vec<Check> {
    [
        runtime::checks(),
        pod::checks(),
        container::checks(),
        exec_sync::checks(),
        logs::checks(),
        stats::checks(),
        volume::checks(),
        oom::checks(),
        multi::checks(),
        idempotence::checks(),
        image::checks(),
        network::checks(),
        streaming::checks(),
        security::checks(),
        extras::checks(),
    ]
    .concat()
}

/// What every check module uses.
mod prelude {
    pub(crate) use std::time::Duration;

    pub(crate) use anycri::{Error, ErrorKind, ImageServiceExt, RuntimeServiceExt, api::*};

    pub(crate) use super::{expect_err, poll};
    pub(crate) use crate::{
        context::{CheckResult, Failure, Running, Step, TestContext},
        features::Need,
        images::ImageKind,
        registry::{Check, check},
    };
}

/// The error of a call that must fail; a success fails the check.
pub(crate) fn expect_err<T: std::fmt::Debug>(
    result: anycri::Result<T>,
    what: &str,
) -> Result<anycri::Error, Failure> {
    match result {
        Ok(v) => Err(Failure::Fail(format!(
            "{what} succeeded but must fail (answer: {v:?})"
        ))),
        Err(e) => Ok(e),
    }
}

/// Poll `f` until it returns Some (up to `limit`, checking every 100 ms); a wait for the
/// runtime to catch up, not a timing assertion. Fails with `what` when it never does.
pub(crate) async fn poll<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Failure>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure::Fail(format!("{what} (waited {limit:?})")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
