//! Following a container's CRI log file as it grows — what `kubectl logs -f` and
//! `crictl logs -f` do on a node. The follower reads the file the container's status names,
//! yields whole lines (partial entries joined), waits for more at end of file, reopens the
//! file when the runtime rotates it (`ReopenContainerLog`), and ends once the container has
//! stopped and its last line was read, or when the container is removed.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
//! use futures_util::TryStreamExt;
//! use anycri_core::{ContainerConfigBuilder, FollowOptions, PodSandboxConfigBuilder, RuntimeServiceExt, follow_container_log};
//! let runtime = anycri_fake::FakeRuntime::new();
//! runtime.add_image("busybox:1.36")?;
//! let logs = tempfile::tempdir().unwrap();
//! let pod = PodSandboxConfigBuilder::new("job", "default")
//!     .log_directory(logs.path().to_string_lossy())
//!     .build();
//! let job = ContainerConfigBuilder::new("job", "busybox:1.36").command(["sh", "-c", "echo one; echo two; echo three"]);
//! let ids = runtime.run_pod_and_container(pod, job.build()).await?;
//!
//! // `kubectl logs --tail 2 -f`: the last two lines, then new ones until the container ends.
//! let options = FollowOptions { tail: Some(2), ..Default::default() };
//! let lines: Vec<_> = follow_container_log(&runtime, &ids.container_id, options).await?.try_collect().await?;
//! let text: Vec<_> = lines.iter().map(|l| l.content.as_str()).collect();
//! assert_eq!(text, ["two", "three"]);
//! # Ok(()) }
//! ```

use std::{
    collections::VecDeque,
    os::unix::fs::MetadataExt,
    path::PathBuf,
    time::{Duration, Instant},
};

use crate::api::ContainerState;
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::io::AsyncReadExt;

use crate::{
    error::{Error, ErrorKind, Result},
    ext::RuntimeServiceExt,
    logs::{LogJoiner, LogLine},
    service::RuntimeService,
};

/// How to follow a log.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Start with only the last `n` lines already in the file (`None`: all of them).
    pub tail: Option<usize>,
    /// Keep waiting for new lines while the container runs (`false`: stop at end of file).
    pub follow: bool,
    /// How long to wait at end of file before looking again.
    pub poll_interval: Duration,
    /// How often, at most, to ask the runtime whether the container still runs.
    pub status_interval: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            tail: None,
            follow: true,
            poll_interval: Duration::from_millis(100),
            status_interval: Duration::from_secs(1),
        }
    }
}

/// The follower's state between two lines.
struct Follower<'a, R: ?Sized> {
    runtime: &'a R,
    container_id: String,
    path: PathBuf,
    options: FollowOptions,
    file: Option<(tokio::fs::File, u64)>,
    /// Bytes read but not yet ended by a newline.
    partial: Vec<u8>,
    joiner: LogJoiner,
    ready: VecDeque<LogLine>,
    last_status: Option<Instant>,
    started: bool,
    finished: bool,
}

fn io_error(path: &std::path::Path, e: std::io::Error) -> Error {
    let kind = if e.kind() == std::io::ErrorKind::NotFound {
        ErrorKind::NotFound
    } else {
        ErrorKind::Internal
    };
    Error::with_source(kind, format!("reading log file {}", path.display()), e)
}

impl<R: RuntimeService + ?Sized> Follower<'_, R> {
    async fn open(&mut self) -> Result<()> {
        let file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| io_error(&self.path, e))?;
        let ino = file
            .metadata()
            .await
            .map_err(|e| io_error(&self.path, e))?
            .ino();
        self.file = Some((file, ino));
        Ok(())
    }

    /// Read what the file has now; complete lines go to `ready`. Returns whether anything
    /// was read.
    async fn read_available(&mut self) -> Result<bool> {
        let Some((file, _)) = self.file.as_mut() else {
            return Ok(false);
        };
        let mut chunk = vec![0u8; 64 * 1024];
        let mut any = false;
        loop {
            let n = file
                .read(&mut chunk)
                .await
                .map_err(|e| io_error(&self.path, e))?;
            if n == 0 {
                break;
            }
            any = true;
            self.partial.extend_from_slice(&chunk[..n]);
        }
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(any);
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        let text = String::from_utf8_lossy(&complete);
        for raw in text.split_terminator('\n').filter(|l| !l.is_empty()) {
            if let Some(line) = self.joiner.push_line(raw)? {
                self.ready.push_back(line);
            }
        }
        Ok(any)
    }

    /// At end of file: reopen a rotated file, or decide the log is over.
    async fn at_end_of_file(&mut self) -> Result<()> {
        if !self.options.follow {
            self.finish();
            return Ok(());
        }
        // Rotated: the path now names another file (or none yet).
        let current = self.file.as_ref().map(|(_, ino)| *ino);
        match tokio::fs::metadata(&self.path).await {
            Ok(meta) if Some(meta.ino()) != current => {
                self.open().await?;
                return Ok(());
            }
            Ok(_) | Err(_) => {}
        }
        let due = self
            .last_status
            .is_none_or(|at| at.elapsed() >= self.options.status_interval);
        if due {
            self.last_status = Some(Instant::now());
            match self.runtime.get_container_status(&self.container_id).await {
                Ok(status) if status.state() == ContainerState::ContainerExited => {
                    // One last read: the runtime may have written the final lines after our
                    // previous one.
                    self.read_available().await?;
                    self.finish();
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    self.finish();
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        tokio::time::sleep(self.options.poll_interval).await;
        Ok(())
    }

    fn finish(&mut self) {
        self.finished = true;
        let joiner = std::mem::take(&mut self.joiner);
        self.ready.extend(joiner.finish());
    }

    async fn next_line(&mut self) -> Option<Result<LogLine>> {
        if !self.started {
            self.started = true;
            if let Err(e) = self.open().await {
                self.finished = true;
                return Some(Err(e));
            }
            if let Err(e) = self.read_available().await {
                self.finished = true;
                return Some(Err(e));
            }
            if let Some(n) = self.options.tail {
                while self.ready.len() > n {
                    self.ready.pop_front();
                }
            }
        }
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Some(Ok(line));
            }
            if self.finished {
                return None;
            }
            let step = match self.read_available().await {
                Ok(true) => Ok(()),
                Ok(false) => self.at_end_of_file().await,
                Err(e) => Err(e),
            };
            if let Err(e) = step {
                self.finished = true;
                return Some(Err(e));
            }
        }
    }
}

/// Follow the CRI log file of `container_id` (it must be on this host): the lines already
/// there (or the last `tail` of them), then new ones as they are written, until the
/// container has exited and its last line was read (or at end of file when
/// `options.follow` is false). Rotation by `ReopenContainerLog` is followed.
pub async fn follow_container_log<'a, R>(
    runtime: &'a R,
    container_id: &str,
    options: FollowOptions,
) -> Result<BoxStream<'a, Result<LogLine>>>
where
    R: RuntimeService + ?Sized,
{
    let status = runtime.get_container_status(container_id).await?;
    if status.log_path.is_empty() {
        return Err(Error::failed_precondition(format!(
            "container {container_id} has no log path"
        )));
    }
    let follower = Follower {
        runtime,
        container_id: container_id.to_owned(),
        path: PathBuf::from(&status.log_path),
        options,
        file: None,
        partial: Vec::new(),
        joiner: LogJoiner::new(),
        ready: VecDeque::new(),
        last_status: None,
        started: false,
        finished: false,
    };
    Ok(stream::unfold(follower, |mut f| async move {
        f.next_line().await.map(|line| (line, f))
    })
    .boxed())
}
