//! Diagnostics from containerd's own API: its namespaces (Namespaces service) and the state
//! of its CRI plugin (Introspection service), so that "unknown service
//! runtime.v1.RuntimeService" can be explained: a containerd whose config disables the CRI
//! plugin (`disabled_plugins = ["cri"]`, as Docker's own containerd has) does not list it at
//! all, and one whose CRI plugin failed to start lists it with its init error.

use std::collections::HashMap;

use anycri_core::{Error, Result};
use containerd_client::services::v1::{
    ListNamespacesRequest, PluginsRequest, introspection_client::IntrospectionClient,
    namespaces_client::NamespacesClient,
};

use crate::ContainerdClient;

/// One containerd namespace (`k8s.io` holds the CRI's containers and images, `moby`
/// Docker's).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Namespace {
    /// Its name.
    pub name: String,
    /// Its labels (default settings of the namespace, e.g. a snapshotter).
    pub labels: HashMap<String, String>,
}

/// Whether the CRI plugin (`io.containerd.grpc.v1.cri`) runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CriPluginState {
    /// Loaded: the CRI is served on the socket.
    Loaded,
    /// Registered but its initialisation failed (containerd keeps running without it).
    Failed {
        /// The init error containerd reports.
        error: String,
    },
    /// Not among the plugins: disabled in the config (`disabled_plugins`), or not built in.
    Disabled,
}

/// The CRI plugin of a containerd, from its Introspection service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CriPlugin {
    /// Loaded, failed or disabled.
    pub state: CriPluginState,
    /// containerd's version, when its Version service answered.
    pub containerd_version: Option<String>,
}

impl CriPlugin {
    /// Whether the CRI is served.
    pub fn is_loaded(&self) -> bool {
        self.state == CriPluginState::Loaded
    }

    /// What is wrong and how to fix it, for an error message (None when loaded). `socket`
    /// names the containerd.
    pub fn explain(&self, socket: &str) -> Option<String> {
        let version = self
            .containerd_version
            .as_deref()
            .map_or(String::new(), |v| format!(" {v}"));
        match &self.state {
            CriPluginState::Loaded => None,
            CriPluginState::Disabled => Some(format!(
                "the containerd{version} at {socket} has its CRI plugin (io.containerd.grpc.v1.cri) \
                 disabled, so it does not serve the CRI: remove \"cri\" (or \
                 \"io.containerd.grpc.v1.cri\") from `disabled_plugins` in its config file \
                 (`containerd --config`, default /etc/containerd/config.toml; Docker's own \
                 containerd disables it on purpose: use a containerd of its own for the CRI) \
                 and restart containerd"
            )),
            CriPluginState::Failed { error } => Some(format!(
                "the CRI plugin (io.containerd.grpc.v1.cri) of the containerd{version} at \
                 {socket} failed to start: {error}; fix its section in containerd's config \
                 file (`containerd --config`, default /etc/containerd/config.toml) or the \
                 cause above, and restart containerd"
            )),
        }
    }
}

impl ContainerdClient {
    /// The namespaces (Namespaces service `List`), sorted by name.
    pub async fn namespaces(&self) -> Result<Vec<Namespace>> {
        let response = NamespacesClient::new(self.channel())
            .list(ListNamespacesRequest::default())
            .await
            .map_err(Error::from)?
            .into_inner();
        let mut out: Vec<Namespace> = response
            .namespaces
            .into_iter()
            .map(|n| Namespace {
                name: n.name,
                labels: n.labels,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The state of the CRI plugin (Introspection service `Plugins`, filter
    /// `type==io.containerd.grpc.v1,id==cri`). An error means this is no containerd (or
    /// one that does not answer).
    pub async fn cri_plugin(&self) -> Result<CriPlugin> {
        let plugins = IntrospectionClient::new(self.channel())
            .plugins(PluginsRequest {
                filters: vec!["type==io.containerd.grpc.v1,id==cri".into()],
            })
            .await
            .map_err(Error::from)?
            .into_inner()
            .plugins;
        let state = match plugins.into_iter().find(|p| p.id == "cri") {
            None => CriPluginState::Disabled,
            Some(p) => match p.init_err {
                Some(e) if e.code != 0 || !e.message.is_empty() => {
                    CriPluginState::Failed { error: e.message }
                }
                _ => CriPluginState::Loaded,
            },
        };
        let containerd_version = self.version().await.ok().map(|(v, _)| v);
        Ok(CriPlugin {
            state,
            containerd_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanations() {
        let disabled = CriPlugin {
            state: CriPluginState::Disabled,
            containerd_version: Some("1.6.20~ds1".into()),
        };
        let text = disabled.explain("unix:///x.sock").unwrap();
        assert!(text.contains("disabled"), "{text}");
        assert!(text.contains("disabled_plugins"), "{text}");
        assert!(text.contains("1.6.20~ds1 at unix:///x.sock"), "{text}");
        let failed = CriPlugin {
            state: CriPluginState::Failed {
                error: "invalid plugin config".into(),
            },
            containerd_version: None,
        };
        let text = failed.explain("unix:///x.sock").unwrap();
        assert!(
            text.contains("failed to start: invalid plugin config"),
            "{text}"
        );
        let loaded = CriPlugin {
            state: CriPluginState::Loaded,
            containerd_version: None,
        };
        assert!(loaded.is_loaded() && loaded.explain("x").is_none());
    }
}
