//! `anycri info`: the runtime's name, version, handlers, conditions and capabilities (as
//! `anycri::discover` finds them), with containerd's namespaces when the runtime is a
//! containerd on a unix socket. When such a containerd has no CRI (Docker's own), the
//! connection fails, and [`explain_without_cri`] still shows its namespaces before the error.

use anycri::{Error, Result, RuntimeInfo};

use crate::{Ctx, Format, output};

/// Print what the runtime is and can do; `endpoint` is the `-r` the user gave, if any.
pub async fn run(ctx: &Ctx, endpoint: Option<&str>) -> Result<i32> {
    let info = anycri::discover(ctx.runtime.as_ref()).await?;
    let namespaces = containerd_namespaces(endpoint, &info).await;
    if ctx.format != Format::Table {
        let caps: serde_json::Map<_, _> = info
            .capabilities
            .entries()
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::Bool(*v)))
            .collect();
        let mut value = serde_json::json!({
            "runtimeName": info.runtime_name,
            "runtimeVersion": info.runtime_version,
            "runtimeApiVersion": info.runtime_api_version,
            "flavour": serde_json::to_value(&info.flavour).unwrap_or_default(),
            "cgroupDriver": serde_json::to_value(info.cgroup_driver).unwrap_or_default(),
            "handlers": info.handlers.iter().map(|h| &h.name).collect::<Vec<_>>(),
            "conditions": info.conditions.iter().map(|c| serde_json::json!({
                "type": c.kind, "status": c.status, "reason": c.reason, "message": c.message
            })).collect::<Vec<_>>(),
            "capabilities": caps,
            "capabilityReasons": info.capability_reasons,
        });
        if let Some(ns) = &namespaces {
            value["containerdNamespaces"] = ns.clone().into();
        }
        output::print_structured(ctx.format, &value)?;
    } else {
        output::print_info(&info);
        if let Some(ns) = &namespaces {
            out!("containerd namespaces: {}", ns.join(", "));
        }
    }
    Ok(0)
}

/// After connecting to `endpoint` failed with `error` (a containerd whose CRI is disabled),
/// print the containerd's namespaces when they can be read; `explicit` is the `-o` given.
/// The error is the command's answer either way.
pub async fn explain_without_cri(
    endpoint: Option<&str>,
    explicit: Option<Format>,
    error: Error,
) -> Result<i32> {
    if let Some(uri) = endpoint.filter(|u| u.starts_with("unix://"))
        && let Ok(client) = anycri::grpc::anycri_containerd::ContainerdClient::connect(uri).await
        && let Ok(namespaces) = client.namespaces().await
    {
        let names: Vec<String> = namespaces.into_iter().map(|n| n.name).collect();
        if explicit.is_some_and(|f| f != Format::Table) {
            output::print_structured(
                explicit.unwrap_or(Format::Json),
                &serde_json::json!({
                    "error": error.to_string(),
                    "containerdNamespaces": names,
                }),
            )?;
        } else {
            out!("containerd namespaces: {}", names.join(", "));
        }
    }
    Err(error)
}

/// containerd's namespaces (the CRI's `k8s.io`, Docker's `moby`, ...) when the runtime is a
/// containerd on a unix socket; `None` otherwise or when they cannot be read.
async fn containerd_namespaces(endpoint: Option<&str>, info: &RuntimeInfo) -> Option<Vec<String>> {
    if info.flavour != anycri::RuntimeFlavour::Containerd {
        return None;
    }
    let endpoint = match endpoint {
        Some(uri) => uri.to_owned(),
        None => anycri::DEFAULT_ENDPOINTS
            .iter()
            .find(|e| {
                e.contains("containerd")
                    && std::path::Path::new(e.trim_start_matches("unix://")).exists()
            })?
            .to_string(),
    };
    if !endpoint.starts_with("unix://") {
        return None;
    }
    let client = anycri::grpc::anycri_containerd::ContainerdClient::connect(&endpoint)
        .await
        .ok()?;
    let namespaces = client.namespaces().await.ok()?;
    Some(namespaces.into_iter().map(|n| n.name).collect())
}
