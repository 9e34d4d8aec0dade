//! The CRI ↔ Docker translation, as pure functions: a `ContainerConfig` or a
//! `PodSandboxConfig` in, the body of Docker's container create out, and a Docker inspect
//! back to a CRI `ContainerStatus`. They call no daemon and await nothing; what they need
//! besides the CRI message (the sandbox as Docker reports it, what the host and engine
//! allow, the host's files) comes in as plain arguments, so each mapping is checked by table
//! tests. The `*_impl` functions of `container.rs` and `sandbox.rs` validate, gather those
//! facts, translate, call Docker and record.

mod container;
mod sandbox;
mod status;

pub use container::seccomp_opt_with;
pub(crate) use container::{ContainerFacts, RealHostFiles, create_body, mount_sources};
pub(crate) use sandbox::{PauseContainer, SandboxFacts, pause_container};
pub(crate) use status::{
    StatusFacts, container_status, inspect_state, needs_oom_event, running_pid, summary_state,
};
