//! Runtime info: Version and Status, as critest's "Runtime info" specs check them.

use super::prelude::*;

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(
            "runtime::version",
            "Version reports a runtime name, version and CRI API v1",
            version
        )
        .critest("[k8s.io] Runtime info runtime should support returning runtime info runtime should return version info [Conformance]"),
        check!(
            "runtime::status",
            "Status reports RuntimeReady and NetworkReady as true",
            status
        )
        .critest("[k8s.io] Runtime info runtime should support returning runtime info runtime should return runtime conditions [Conformance]"),
    ]
}

async fn version(t: TestContext) -> CheckResult {
    let v = t
        .rt()
        .version(VersionRequest {
            version: "v1".into(),
        })
        .await
        .step("Version")?;
    ensure!(!v.runtime_name.is_empty(), "runtime_name is empty");
    ensure!(!v.runtime_version.is_empty(), "runtime_version is empty");
    ensure_eq!(v.runtime_api_version.as_str(), "v1", "runtime_api_version");
    Ok(())
}

async fn status(t: TestContext) -> CheckResult {
    let s = t
        .rt()
        .status(StatusRequest { verbose: false })
        .await
        .step("Status")?
        .status
        .ok_or_else(|| Failure::Fail("Status has no status".into()))?;
    for kind in ["RuntimeReady", "NetworkReady"] {
        let c = s.conditions.iter().find(|c| c.r#type == kind);
        ensure!(c.is_some(), "no {kind} condition in {:?}", s.conditions);
        ensure!(c.is_some_and(|c| c.status), "{kind} is false: {:?}", c);
    }
    Ok(())
}
