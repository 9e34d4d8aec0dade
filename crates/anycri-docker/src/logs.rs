//! Container logs in the CRI format, written by the shim itself from Docker's output stream.
//!
//! cri-dockerd only symlinks Docker's JSON log file to the path the kubelet asked for, so
//! the kubelet reads a format it does not expect and `ReopenContainerLog` is unsupported
//! (log rotation breaks). Here, one writer task per container follows Docker's log stream
//! (`GET /containers/{id}/logs?follow=1&stdout=1&stderr=1&timestamps=1`) and appends
//! `<RFC 3339 nano timestamp> <stdout|stderr> <P|F> <content>\n` lines to the CRI log path:
//!
//! - **Timestamps** are Docker's (the time its log copier read the line), not the shim's.
//! - **Lines**: a message is split at each `\n`; each piece is a full (`F`) entry, and a last
//!   piece without `\n` is a partial (`P`) entry continued by the next entry of its stream.
//!   A `\r` is content (like containerd). Docker's log copier already holds a line without a
//!   newline back until its newline comes (`printf a; sleep 1; echo b` is one `F ab` entry);
//!   it cuts lines longer than its 16 KiB buffer into pieces without `\n`, which become `P`
//!   entries.
//! - **TTY** containers have one raw stream (bollard's `LogOutput::Console`), written as
//!   `stdout`; pieces of an over-long line that the raw stream glues together are split at
//!   the next piece's timestamp.
//! - **Resume**: Docker keeps the output (json-file or local driver, or the dual-logging
//!   cache), so a writer started again (after a shim restart) asks Docker for the output since
//!   the newest entry already in the file (or, if that file is empty, in its newest
//!   uncompressed rotation `<path>.<time>`), and skips messages whose timestamp is not newer
//!   (the `since` parameter has whole seconds), so nothing is written twice.
//! - **Rotation**: the kubelet renames the file, then calls `ReopenContainerLog`;
//!   [`LogManager::reopen`] makes the writer open (create) `path` again and returns once it
//!   has.
//! - **Errors** (disk full, Docker restarting) are logged once per container with
//!   `tracing::warn!`; the writer retries with a backoff, and ends when the container has
//!   exited (after writing all of its output) or is gone.

use std::{
    collections::HashMap,
    io::Write as _,
    os::unix::fs::{FileExt as _, OpenOptionsExt as _},
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anycri_core::{
    Error, ErrorKind, Result,
    logs::{LogStream, append_output, parse_line},
};
use bollard::{Docker, container::LogOutput, query_parameters::LogsOptionsBuilder};
use chrono::{DateTime, Utc};
use futures::{FutureExt as _, StreamExt as _};
use tokio::{
    io::AsyncWriteExt as _,
    sync::{mpsc, oneshot},
    task::AbortHandle,
};

use crate::error::status_code;

/// The first retry delay after a failure; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How much of a log file's end is read first to find its newest entry.
const TAIL_CHUNK: u64 = 64 * 1024;
/// The most of a log file's end read to find its newest entry.
const TAIL_MAX: u64 = 4 * 1024 * 1024;
/// Docker's `RFC3339NanoFixed` timestamp in UTC: `2006-01-02T15:04:05.000000000Z`.
const DOCKER_TS_LEN: usize = 30;
/// Docker cuts over-long lines at a multiple of this (its copier's buffer is 16 KiB).
const PIECE_ALIGN: usize = 1024;
/// The most log messages written in one batch.
const BATCH: usize = 256;

/// A reopen request: the writer answers once `path` is open again.
type ReopenAck = oneshot::Sender<Result<()>>;

struct WriterHandle {
    generation: u64,
    reopen: mpsc::UnboundedSender<ReopenAck>,
    task: AbortHandle,
}

type Writers = Arc<Mutex<HashMap<String, WriterHandle>>>;

fn lock(writers: &Writers) -> std::sync::MutexGuard<'_, HashMap<String, WriterHandle>> {
    writers.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The log writers of running containers, one task each.
pub(crate) struct LogManager {
    docker: Docker,
    writers: Writers,
    generation: AtomicU64,
}

impl LogManager {
    /// A manager with no writers, following logs through `docker`.
    pub fn new(docker: Docker) -> Self {
        LogManager {
            docker,
            writers: Arc::default(),
            generation: AtomicU64::new(0),
        }
    }

    /// Start writing `container_id`'s output to `path` in the CRI format (no-op when a
    /// writer runs already). Resumes after the last entry already in the file.
    pub fn start(&self, container_id: &str, path: PathBuf, tty: bool) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                container_id,
                "not writing the container's log: no Tokio runtime"
            );
            return;
        };
        let mut writers = lock(&self.writers);
        if writers
            .get(container_id)
            .is_some_and(|w| !w.task.is_finished())
        {
            return;
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let (reopen, requests) = mpsc::unbounded_channel();
        let writer = Writer {
            docker: self.docker.clone(),
            id: container_id.to_owned(),
            path,
            tty,
            requests,
            file: None,
            high_water: None,
            catch_up: None,
            warned: false,
        };
        let map = Arc::clone(&self.writers);
        let id = container_id.to_owned();
        // Spawned under the lock, so the task removes its own entry only after it is in.
        let task = runtime.spawn(async move {
            writer.run().await;
            let mut writers = lock(&map);
            if writers.get(&id).is_some_and(|w| w.generation == generation) {
                writers.remove(&id);
            }
        });
        writers.insert(
            container_id.to_owned(),
            WriterHandle {
                generation,
                reopen,
                task: task.abort_handle(),
            },
        );
    }

    /// Reopen the file (after the kubelet rotated it): returns once the writer has created
    /// and opened the file at its path again. FailedPrecondition when no writer runs for the
    /// container (it is not running).
    pub async fn reopen(&self, container_id: &str) -> Result<()> {
        let not_running = || {
            Error::failed_precondition(format!(
                "container {container_id} is not running: no log writer to reopen its log"
            ))
        };
        let sender = self.running_writer(container_id).ok_or_else(not_running)?;
        let (ack, done) = oneshot::channel();
        sender.send(ack).map_err(|_| not_running())?;
        done.await.map_err(|_| not_running())?
    }

    /// Stop the writer (the container is being removed).
    pub fn stop(&self, container_id: &str) {
        if let Some(w) = lock(&self.writers).remove(container_id) {
            w.task.abort();
        }
    }

    /// Wait, up to `limit`, until no writer runs for the container: for one that has exited,
    /// that is when its last output is in the file. Returns whether none runs any more.
    pub async fn wait_written(&self, container_id: &str, limit: Duration) -> bool {
        match self.running_writer(container_id) {
            // the writer owns the receiving end: it closes when the writer has returned
            Some(reopen) => tokio::time::timeout(limit, reopen.closed()).await.is_ok(),
            None => true,
        }
    }

    /// Whether a writer runs for the container.
    pub fn is_writing(&self, container_id: &str) -> bool {
        lock(&self.writers)
            .get(container_id)
            .is_some_and(|w| !w.task.is_finished())
    }

    /// The request channel of the container's running writer, if one runs.
    fn running_writer(&self, container_id: &str) -> Option<mpsc::UnboundedSender<ReopenAck>> {
        lock(&self.writers)
            .get(container_id)
            .filter(|w| !w.task.is_finished())
            .map(|w| w.reopen.clone())
    }
}

impl Drop for LogManager {
    fn drop(&mut self) {
        for (_, w) in lock(&self.writers).drain() {
            w.task.abort();
        }
    }
}

/// How one follow of Docker's log stream ended.
enum Outcome {
    /// The stream ended (the container exited, or Docker closed it).
    Ended,
    /// The container is gone.
    Gone,
    /// The manager dropped the writer.
    Stopped,
    /// A failure worth retrying.
    Failed(String),
    /// A failure retrying will not fix (Docker cannot read this container's logs).
    Permanent(String),
}

/// One container's writer task.
struct Writer {
    docker: Docker,
    id: String,
    path: PathBuf,
    tty: bool,
    requests: mpsc::UnboundedReceiver<ReopenAck>,
    file: Option<tokio::fs::File>,
    /// The newest timestamp in the file (written, or found there at start).
    high_water: Option<DateTime<Utc>>,
    /// While set, messages at or before it are already in the file and skipped.
    catch_up: Option<DateTime<Utc>>,
    warned: bool,
}

impl Writer {
    async fn run(mut self) {
        let path = self.path.clone();
        self.high_water = tokio::task::spawn_blocking(move || resume_point(&path))
            .await
            .ok()
            .flatten();
        let mut backoff = MIN_BACKOFF;
        loop {
            let before = self.high_water;
            let outcome = AssertUnwindSafe(self.follow())
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Outcome::Failed(format!("decoding Docker's log stream panicked: {why}"))
                });
            match outcome {
                Outcome::Stopped | Outcome::Gone => break,
                Outcome::Permanent(why) => {
                    tracing::warn!(container_id = %self.id, path = %self.path.display(),
                        "not writing the container's log: {why}");
                    break;
                }
                Outcome::Ended => match self.alive().await {
                    // Exited or removed: all of its output has been written.
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(why) => self.failed(&why),
                },
                Outcome::Failed(why) => self.failed(&why),
            }
            if self.high_water != before {
                backoff = MIN_BACKOFF;
            }
            if !self.pause(backoff).await {
                break;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        if let Some(mut file) = self.file.take() {
            let _ = file.flush().await;
        }
    }

    fn failed(&mut self, why: &str) {
        if self.warned {
            tracing::debug!(container_id = %self.id, "container log writer: {why}; retrying");
        } else {
            self.warned = true;
            tracing::warn!(container_id = %self.id, path = %self.path.display(),
                "writing the container's log: {why}; retrying while the container runs");
        }
    }

    /// Whether the container still runs (or is being restarted by Docker).
    async fn alive(&self) -> std::result::Result<bool, String> {
        match self.docker.inspect_container(&self.id, None).await {
            Ok(c) => Ok(c
                .state
                .is_some_and(|s| s.running == Some(true) || s.restarting == Some(true))),
            Err(e) if status_code(&e) == Some(404) => Ok(false),
            Err(e) => Err(format!("inspecting the container: {e}")),
        }
    }

    /// Wait `delay`, serving reopen requests meanwhile. False when the writer is stopped.
    async fn pause(&mut self, delay: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return true,
                request = self.requests.recv() => match request {
                    Some(ack) => self.serve_reopen(ack).await,
                    None => return false,
                },
            }
        }
    }

    async fn serve_reopen(&mut self, ack: ReopenAck) {
        let _ = ack.send(self.reopen().await);
    }

    /// Open `path` anew (the old file was renamed); on failure keep writing the old one.
    async fn reopen(&mut self) -> Result<()> {
        if let Some(file) = self.file.as_mut() {
            let _ = file.flush().await;
        }
        let file = open_log(self.path.clone()).await.map_err(|e| {
            Error::with_source(
                ErrorKind::Internal,
                format!(
                    "reopening the log of container {} at {}: {e}",
                    self.id,
                    self.path.display()
                ),
                e,
            )
        })?;
        self.file = Some(file);
        Ok(())
    }

    /// Follow Docker's log stream once, writing what it brings.
    async fn follow(&mut self) -> Outcome {
        if self.file.is_none() {
            match open_log(self.path.clone()).await {
                Ok(file) => self.file = Some(file),
                Err(e) => return Outcome::Failed(format!("opening {}: {e}", self.path.display())),
            }
        }
        self.catch_up = self.high_water;
        let since = self
            .high_water
            .map_or(0, |t| t.timestamp().clamp(0, i64::from(i32::MAX)) as i32);
        let options = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(since)
            .build();
        let mut stream = self
            .docker
            .logs(&self.id, Some(options))
            .ready_chunks(BATCH);
        let mut buf = Vec::new();
        loop {
            tokio::select! {
                batch = stream.next() => {
                    let Some(batch) = batch else { return Outcome::Ended };
                    buf.clear();
                    let mut newest = None;
                    let mut error = None;
                    for item in batch {
                        match item {
                            Ok(output) => self.render(output, &mut buf, &mut newest),
                            Err(e) => {
                                error = Some(e);
                                break;
                            }
                        }
                    }
                    if !buf.is_empty() {
                        if let Err(e) = self.write(&buf).await {
                            return Outcome::Failed(format!("writing {}: {e}", self.path.display()));
                        }
                        self.high_water = self.high_water.max(newest);
                    }
                    if let Some(e) = error {
                        return match status_code(&e) {
                            Some(404) => Outcome::Gone,
                            Some(501) => Outcome::Permanent(e.to_string()),
                            _ => Outcome::Failed(format!("following Docker's log stream: {e}")),
                        };
                    }
                }
                request = self.requests.recv() => match request {
                    Some(ack) => self.serve_reopen(ack).await,
                    None => return Outcome::Stopped,
                },
            }
        }
    }

    /// Append the CRI lines of one item of Docker's stream to `buf`.
    fn render(&mut self, output: LogOutput, buf: &mut Vec<u8>, newest: &mut Option<DateTime<Utc>>) {
        let (stream, bytes, raw) = match output {
            LogOutput::StdOut { message } => (LogStream::Stdout, message, false),
            LogOutput::StdErr { message } => (LogStream::Stderr, message, false),
            LogOutput::Console { message } => (LogStream::Stdout, message, true),
            LogOutput::StdIn { .. } => return,
        };
        let stream = if self.tty { LogStream::Stdout } else { stream };
        let messages = if raw {
            split_raw(&bytes)
        } else {
            vec![split_timestamp(&bytes)]
        };
        for (ts, content) in messages {
            let ts = ts.unwrap_or_else(|| newest.or(self.high_water).unwrap_or_else(Utc::now));
            if let Some(done) = self.catch_up {
                if ts <= done {
                    continue;
                }
                self.catch_up = None;
            }
            append_output(buf, &ts, stream, content);
            *newest = (*newest).max(Some(ts));
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let file = match self.file.as_mut() {
            Some(file) => file,
            None => self.file.insert(open_log(self.path.clone()).await?),
        };
        let result = async {
            file.write_all(bytes).await?;
            file.flush().await
        }
        .await;
        if result.is_err() {
            // Reopened (and a cut line ended) before the next write.
            self.file = None;
        }
        result
    }
}

/// Open (create) a log file for appending (never through a symlink), creating its
/// directory; a last line cut short
/// (by a crash or a full disk) is ended first, so the next entry starts on its own line.
async fn open_log(path: PathBuf) -> std::io::Result<tokio::fs::File> {
    let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // A symlink planted at the path is not followed (ELOOP): the writer never appends to
        // a file someone else chose.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o640)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)?;
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8];
            file.read_exact_at(&mut last, len - 1)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        Ok(file)
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(tokio::fs::File::from_std(file))
}

/// Split a message of Docker's stream, `<timestamp> <content>`, into both (no timestamp when
/// the message does not start with one).
fn split_timestamp(message: &[u8]) -> (Option<DateTime<Utc>>, &[u8]) {
    let Some(space) = message.iter().take(64).position(|&b| b == b' ') else {
        return (None, message);
    };
    match std::str::from_utf8(&message[..space])
        .ok()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    {
        Some(ts) => (Some(ts.with_timezone(&Utc)), &message[space + 1..]),
        None => (None, message),
    }
}

/// Split an item of a raw (TTY) stream into messages. Raw items are cut at newlines, so the
/// pieces of a line Docker cut (each `<timestamp> <piece>` without `\n`) arrive glued; a piece
/// is recognised by a Docker timestamp at a multiple of 1 KiB into the content.
fn split_raw(item: &[u8]) -> Vec<(Option<DateTime<Utc>>, &[u8])> {
    let mut messages = Vec::new();
    let mut rest = item;
    loop {
        let (ts, content) = split_timestamp(rest);
        let cut = ts.and_then(|ts| {
            (1..)
                .map(|k| k * PIECE_ALIGN)
                .take_while(|&at| at + DOCKER_TS_LEN < content.len())
                .find(|&at| {
                    content[at + DOCKER_TS_LEN] == b' '
                        && matches!(split_timestamp(&content[at..]).0, Some(next) if next >= ts)
                })
        });
        match cut {
            Some(at) => {
                messages.push((ts, &content[..at]));
                rest = &content[at..];
            }
            None => {
                messages.push((ts, content));
                return messages;
            }
        }
    }
}

/// The newest timestamp of the complete lines at the end of a log file. `tail` is the file's
/// end; unless `whole`, its first line may be cut and is ignored.
pub(crate) fn newest_timestamp(tail: &[u8], whole: bool) -> Option<DateTime<Utc>> {
    let end = tail.iter().rposition(|&b| b == b'\n')?;
    let mut lines = &tail[..end];
    if !whole {
        let first = lines.iter().position(|&b| b == b'\n')?;
        lines = &lines[first + 1..];
    }
    lines
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = String::from_utf8_lossy(line);
            let time = parse_line(&line).ok()?.time().ok()?;
            Some(time.with_timezone(&Utc))
        })
        .max()
}

/// The newest timestamp in the log file at `path`.
fn last_timestamp(path: &Path) -> Option<DateTime<Utc>> {
    let file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut chunk = TAIL_CHUNK;
    loop {
        let start = len.saturating_sub(chunk);
        let mut tail = vec![0; usize::try_from(len - start).ok()?];
        file.read_exact_at(&mut tail, start).ok()?;
        if let Some(ts) = newest_timestamp(&tail, start == 0) {
            return Some(ts);
        }
        if start == 0 || chunk >= TAIL_MAX {
            return None;
        }
        chunk *= 4;
    }
}

/// Where a writer resumes: the newest entry of the file at `path`, or, when it has none (it
/// was rotated and the shim restarted before reopening it), of its uncompressed rotations
/// (`<path>.<time>`, as the kubelet names them).
fn resume_point(path: &Path) -> Option<DateTime<Utc>> {
    if let Some(ts) = last_timestamp(path) {
        return Some(ts);
    }
    let dir = path.parent()?;
    let prefix = format!("{}.", path.file_name()?.to_str()?);
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && !name.ends_with(".gz") && !name.ends_with(".tmp")
        })
        .filter_map(|entry| last_timestamp(&entry.path()))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn lines(ts_: &str, stream: LogStream, content: &[u8]) -> String {
        let mut out = Vec::new();
        append_output(&mut out, &ts(ts_), stream, content);
        String::from_utf8(out).unwrap()
    }

    const T: &str = "2024-05-01T10:00:00.000000001Z";

    #[test]
    fn one_full_line() {
        assert_eq!(
            lines(T, LogStream::Stdout, b"hello world\n"),
            format!("{T} stdout F hello world\n")
        );
    }

    #[test]
    fn several_lines_and_a_partial_rest() {
        assert_eq!(
            lines(T, LogStream::Stderr, b"a\nb\nrest"),
            format!("{T} stderr F a\n{T} stderr F b\n{T} stderr P rest\n")
        );
        assert_eq!(
            lines(T, LogStream::Stdout, b"partial"),
            format!("{T} stdout P partial\n")
        );
    }

    #[test]
    fn empty_lines_and_empty_content() {
        assert_eq!(lines(T, LogStream::Stdout, b""), "");
        assert_eq!(
            lines(T, LogStream::Stdout, b"\n"),
            format!("{T} stdout F \n")
        );
        assert_eq!(
            lines(T, LogStream::Stdout, b"a\n\nb\n"),
            format!("{T} stdout F a\n{T} stdout F \n{T} stdout F b\n")
        );
        // The empty entry parses back with empty content.
        let text = lines(T, LogStream::Stdout, b"\n");
        let entry = parse_line(&text).unwrap();
        assert_eq!((entry.content, entry.partial), ("", false));
    }

    #[test]
    fn carriage_returns_are_content() {
        assert_eq!(
            lines(T, LogStream::Stdout, b"tty line\r\nnext\r"),
            format!("{T} stdout F tty line\r\n{T} stdout P next\r\n")
        );
    }

    #[test]
    fn timestamps_are_utc_nanoseconds() {
        assert_eq!(
            lines("2024-05-01T12:00:00.5+02:00", LogStream::Stdout, b"x\n"),
            "2024-05-01T10:00:00.500000000Z stdout F x\n"
        );
    }

    #[test]
    fn docker_messages_split_at_their_timestamp() {
        let (t, content) = split_timestamp(b"2024-05-01T10:00:00.123456789Z hello world\n");
        assert_eq!(t, Some(ts("2024-05-01T10:00:00.123456789Z")));
        assert_eq!(content, b"hello world\n");
        let (t, content) = split_timestamp(b"no timestamp here\n");
        assert_eq!((t, content), (None, &b"no timestamp here\n"[..]));
    }

    #[test]
    fn glued_raw_pieces_are_split() {
        let t1 = "2024-05-01T10:00:00.000000001Z";
        let t2 = "2024-05-01T10:00:00.000000002Z";
        let piece = "x".repeat(16 * 1024);
        let item = format!("{t1} {piece}{t2} tail\r\n");
        let got = split_raw(item.as_bytes());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (Some(ts(t1)), piece.as_bytes()));
        assert_eq!(got[1], (Some(ts(t2)), &b"tail\r\n"[..]));
        let mut out = Vec::new();
        for (t, content) in got {
            append_output(&mut out, &t.unwrap(), LogStream::Stdout, content);
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            format!("{t1} stdout P {piece}\n{t2} stdout F tail\r\n")
        );
        // A timestamp the program printed, not at a piece boundary, stays content.
        let item = format!("{t1} at {t2} something\n");
        assert_eq!(split_raw(item.as_bytes()).len(), 1);
    }

    #[test]
    fn resume_point_is_the_newest_complete_entry() {
        let text = "2024-05-01T10:00:00.000000001Z stdout F one\n\
                    2024-05-01T10:00:02.000000000Z stderr F two\n\
                    2024-05-01T10:00:01.000000000Z stdout F older, written later\n\
                    2024-05-01T10:00:03.000000000Z stdout F cut sh";
        assert_eq!(
            newest_timestamp(text.as_bytes(), true),
            Some(ts("2024-05-01T10:00:02Z"))
        );
        // A tail starting mid-line ignores its first line.
        let tail = &text[text.find("T10:00:00.000000001Z").unwrap()..];
        assert_eq!(
            newest_timestamp(tail.as_bytes(), false),
            Some(ts("2024-05-01T10:00:02Z"))
        );
        assert_eq!(newest_timestamp(b"", true), None);
        assert_eq!(newest_timestamp(b"garbage\n", true), None);
        assert_eq!(
            newest_timestamp(b"2024-05-01T10:00:00Z stdout P x", true),
            None
        );
    }

    #[test]
    fn resume_point_from_files_and_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        assert_eq!(resume_point(&path), None);
        std::fs::write(
            dir.path().join("0.log.20240501-100000"),
            "2024-05-01T10:00:00.000000001Z stdout F a\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("0.log.20240501-090000.gz"), "not read").unwrap();
        // Rotated, not yet reopened: the newest rotation counts.
        std::fs::write(&path, "").unwrap();
        assert_eq!(
            resume_point(&path),
            Some(ts("2024-05-01T10:00:00.000000001Z"))
        );
        // The file's own entries win.
        std::fs::write(&path, "2024-05-01T11:00:00Z stdout F b\n").unwrap();
        assert_eq!(resume_point(&path), Some(ts("2024-05-01T11:00:00Z")));
        // Long lines: found by reading more of the end.
        let long = "y".repeat(100 * 1024);
        std::fs::write(&path, format!("2024-05-01T12:00:00Z stdout F {long}\n")).unwrap();
        assert_eq!(last_timestamp(&path), Some(ts("2024-05-01T12:00:00Z")));
    }

    #[tokio::test]
    async fn open_log_creates_the_directory_and_ends_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pod/ctr/0.log");
        let mut file = open_log(path.clone()).await.unwrap();
        file.write_all(b"2024-05-01T10:00:00Z stdout F a\n2024-05-01T10:00:01Z stdout F cu")
            .await
            .unwrap();
        file.flush().await.unwrap();
        drop(file);
        let mut file = open_log(path.clone()).await.unwrap();
        file.write_all(b"2024-05-01T10:00:02Z stdout F b\n")
            .await
            .unwrap();
        file.flush().await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "2024-05-01T10:00:00Z stdout F a\n2024-05-01T10:00:01Z stdout F cu\n\
             2024-05-01T10:00:02Z stdout F b\n"
        );
    }

    #[tokio::test]
    async fn open_log_never_follows_a_planted_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = dir.path().join("pod/ctr/0.log");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = open_log(path.clone()).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::ELOOP), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        // A real file is created readable by owner and group only.
        let fresh = dir.path().join("pod/ctr/1.log");
        drop(open_log(fresh.clone()).await.unwrap());
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o007, 0, "no access for others: {mode:o}");
    }

    #[tokio::test]
    async fn reopen_without_a_writer_is_a_failed_precondition() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let docker =
            Docker::connect_with_unix(socket.to_str().unwrap(), 5, bollard::API_DEFAULT_VERSION)
                .unwrap();
        let logs = LogManager::new(docker);
        let err = logs.reopen("nope").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
        assert!(!logs.is_writing("nope"));
        logs.stop("nope");
    }

    fn _send_sync() {
        fn check<T: Send + Sync>() {}
        check::<LogManager>();
    }

    mod live {
        //! Against a real Docker (`DOCKER_ENDPOINT`, or the `scripts/runtime-env` env file).

        use std::time::Instant;

        use bollard::{
            exec::{CreateExecOptions, StartExecResults},
            models::ContainerCreateBody,
            query_parameters::{
                CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
                KillContainerOptionsBuilder, RemoveContainerOptionsBuilder,
            },
        };

        use super::*;

        const IMAGE: &str = "127.0.0.1:5000/anycri/busybox:1.0";
        const ENV_FILE: &str = "/var/tmp/anycri-env/env";

        fn endpoint() -> Option<String> {
            if let Ok(e) = std::env::var("DOCKER_ENDPOINT") {
                return Some(e);
            }
            let env = std::fs::read_to_string(ENV_FILE).ok()?;
            env.lines()
                .find_map(|l| l.strip_prefix("DOCKER_ENDPOINT="))
                .map(|v| v.trim().to_owned())
        }

        async fn docker() -> Option<Docker> {
            let required = std::env::var("ANYCRI_REQUIRE_LIVE").is_ok_and(|v| v == "1");
            let skip = |why: String| {
                assert!(!required, "ANYCRI_REQUIRE_LIVE=1 but {why}");
                eprintln!("skipping the live Docker log test: {why}");
                None
            };
            let Some(endpoint) = endpoint() else {
                return skip(format!("no DOCKER_ENDPOINT (env or {ENV_FILE})"));
            };
            let path = endpoint
                .strip_prefix("unix://")
                .unwrap_or(&endpoint)
                .to_owned();
            let docker = match Docker::connect_with_unix(&path, 120, bollard::API_DEFAULT_VERSION) {
                Ok(d) => d,
                Err(e) => return skip(format!("connecting to {path}: {e}")),
            };
            match docker.negotiate_version().await {
                Ok(d) => Some(d),
                Err(e) => skip(format!("Docker at {path}: {e}")),
            }
        }

        async fn ensure_image(docker: &Docker) {
            if docker.inspect_image(IMAGE).await.is_ok() {
                return;
            }
            let options = CreateImageOptionsBuilder::new().from_image(IMAGE).build();
            let mut pull = docker.create_image(Some(options), None, None);
            while let Some(progress) = pull.next().await {
                progress.expect("pulling the test image");
            }
        }

        /// Run `script` in the container (its output goes to the container's own stdout and
        /// stderr through /proc/1/fd).
        async fn exec(docker: &Docker, id: &str, script: &str) {
            let exec = docker
                .create_exec(
                    id,
                    CreateExecOptions {
                        cmd: Some(vec!["sh", "-c", script]),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            if let StartExecResults::Attached { mut output, .. } =
                docker.start_exec(&exec.id, None).await.unwrap()
            {
                while output.next().await.is_some() {}
            }
        }

        fn entries(path: &Path) -> Vec<(String, bool, String)> {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            // Complete lines only (the writer may be mid-write); not `lines()`: a `\r` before
            // the `\n` is content.
            let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
            complete
                .split_terminator('\n')
                .map(|l| {
                    let e = parse_line(l).unwrap_or_else(|e| panic!("{e}: {text}"));
                    e.time().unwrap();
                    (
                        e.stream.as_str().to_owned(),
                        e.partial,
                        e.content.to_owned(),
                    )
                })
                .collect()
        }

        fn entry(stream: &str, content: &str) -> (String, bool, String) {
            (stream.to_owned(), false, content.to_owned())
        }

        async fn wait_for(path: &Path, content: &str) {
            let start = Instant::now();
            while !entries(path).iter().any(|e| e.2 == content) {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "{content:?} never reached {}: {:?}",
                    path.display(),
                    std::fs::read_to_string(path)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }

        fn sorted(mut v: Vec<(String, bool, String)>) -> Vec<(String, bool, String)> {
            v.sort();
            v
        }

        /// Create a container running `script` (with a TTY if `tty`), run `scenario` on it,
        /// and remove it (also when the scenario fails).
        async fn with_container<F, Fut>(tag: &str, script: &str, tty: bool, scenario: F)
        where
            F: FnOnce(Docker, String) -> Fut,
            Fut: std::future::Future<Output = ()>,
        {
            let Some(docker) = docker().await else { return };
            ensure_image(&docker).await;
            let name = format!("anycri-logs-{tag}-{}", std::process::id());
            let remove = RemoveContainerOptionsBuilder::new().force(true).build();
            let _ = docker.remove_container(&name, Some(remove.clone())).await;
            let created = docker
                .create_container(
                    Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                    ContainerCreateBody {
                        image: Some(IMAGE.into()),
                        cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
                        tty: Some(tty),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let id = created.id;
            let result = AssertUnwindSafe(scenario(docker.clone(), id.clone()))
                .catch_unwind()
                .await;
            let removed = docker.remove_container(&id, Some(remove)).await;
            if let Err(panic) = result {
                std::panic::resume_unwind(panic);
            }
            removed.unwrap();
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn writes_rotates_and_resumes_cri_logs() {
            let script = "echo one; echo two >&2; printf partial; sleep 1; echo done; sleep 3600";
            with_container("plain", script, false, |docker, id| async move {
                scenario(&docker, &id).await
            })
            .await;
        }

        /// Docker cuts lines longer than 16 KiB: the pieces are `P` entries, joined back by a
        /// CRI log reader. A TTY's raw stream is `stdout`, its `\r` kept.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn long_lines_and_tty() {
            let script =
                "echo first; head -c 40000 /dev/zero | tr '\\0' a; echo; echo last; sleep 3600";
            for tty in [false, true] {
                let tag = if tty { "tty" } else { "long" };
                with_container(tag, script, tty, |docker, id| async move {
                    docker.start_container(&id, None).await.unwrap();
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("0.log");
                    let logs = LogManager::new(docker.clone());
                    logs.start(&id, path.clone(), tty);
                    let cr = if tty { "\r" } else { "" };
                    wait_for(&path, &format!("last{cr}")).await;
                    let got = entries(&path);
                    let pieces: Vec<_> = got.iter().map(|e| (e.1, e.2.len())).collect();
                    assert!(got.iter().all(|e| e.0 == "stdout"), "tty={tty}: {pieces:?}");
                    assert!(got.len() > 3, "the long line was cut: {pieces:?}");
                    // Joined as a CRI log reader does (not `parse_log`, whose `lines()`
                    // drops a `\r` before the `\n`).
                    let mut joiner = anycri_core::logs::LogJoiner::new();
                    let text = std::fs::read_to_string(&path).unwrap();
                    let joined: Vec<_> = text
                        .split_terminator('\n')
                        .filter_map(|l| joiner.push(parse_line(l).unwrap()))
                        .map(|l| l.content)
                        .collect();
                    let long = format!("{}{cr}", "a".repeat(40000));
                    let expected = [format!("first{cr}"), long, format!("last{cr}")];
                    assert!(joined == expected, "tty={tty}: {pieces:?}");
                })
                .await;
            }
        }

        async fn scenario(docker: &Docker, id: &str) {
            docker.start_container(id, None).await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("pod/ctr/0.log");
            let logs = LogManager::new(docker.clone());
            logs.start(id, path.clone(), false);
            logs.start(id, path.clone(), false); // no-op: one writer
            assert!(logs.is_writing(id));

            // Docker's copier holds `printf partial` back until its newline: one full line.
            wait_for(&path, "partialdone").await;
            let first = vec![
                entry("stdout", "one"),
                entry("stderr", "two"),
                entry("stdout", "partialdone"),
            ];
            assert_eq!(sorted(entries(&path)), sorted(first.clone()));

            // Rotation: rename, reopen, more output goes to the new file.
            let rotated = dir.path().join("pod/ctr/0.log.20240501-100000");
            std::fs::rename(&path, &rotated).unwrap();
            logs.reopen(id).await.unwrap();
            assert!(path.exists(), "reopen returns once the new file exists");
            exec(
                docker,
                id,
                "echo three > /proc/1/fd/1; echo four > /proc/1/fd/2",
            )
            .await;
            wait_for(&path, "three").await;
            wait_for(&path, "four").await;
            let second = vec![entry("stdout", "three"), entry("stderr", "four")];
            assert_eq!(sorted(entries(&path)), sorted(second.clone()));
            assert_eq!(sorted(entries(&rotated)), sorted(first));

            // A new manager (shim restart) resumes after the file's last entry.
            drop(logs);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let logs = LogManager::new(docker.clone());
            logs.start(id, path.clone(), false);
            exec(docker, id, "printf 'five\\r\\n' > /proc/1/fd/1").await;
            wait_for(&path, "five\r").await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut third = second;
            third.push(entry("stdout", "five\r"));
            assert_eq!(sorted(entries(&path)), sorted(third.clone()));

            // stop(): nothing more is written.
            logs.stop(id);
            assert!(!logs.is_writing(id));
            exec(docker, id, "echo six > /proc/1/fd/1").await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(sorted(entries(&path)), sorted(third.clone()));

            // Restarted, the writer catches up on "six"; when the container exits, the
            // writer ends and leaves the map.
            logs.start(id, path.clone(), false);
            wait_for(&path, "six").await;
            docker
                .kill_container(
                    id,
                    Some(KillContainerOptionsBuilder::new().signal("KILL").build()),
                )
                .await
                .unwrap();
            let start = Instant::now();
            while logs.is_writing(id) {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "the writer did not end"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            third.push(entry("stdout", "six"));
            assert_eq!(sorted(entries(&path)), sorted(third));
            let err = logs.reopen(id).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
        }
    }
}
