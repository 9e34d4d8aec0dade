//! A SPDY/3.1 session over any byte stream, and its streams.
//!
//! [`SpdySession::server`] / [`SpdySession::client`] start two tasks on the current tokio
//! runtime: a reader that decodes frames and dispatches them to streams, and a writer that owns
//! the outbound compression context and writes every frame in the order it was queued (one
//! FIFO, so a SYN_REPLY always precedes its stream's data and a FIN or RST follows it).
//! Each stream is a [`SpdyStream`], an `AsyncRead + AsyncWrite`.
//!
//! Flow control follows what moby/spdystream (the Go implementation behind kubectl, the kubelet
//! and critest) does: windows announced by the peer are ignored when sending. When receiving,
//! this side credits what the application has consumed with WINDOW_UPDATE frames (which
//! spdystream ignores and strict SPDY/3.1 peers need), and it stops reading the connection
//! while a stream holds more than [`SessionConfig::max_stream_buffer`] unread bytes — the same
//! back-pressure spdystream applies.
//!
//! The session ends when the peer closes the connection, on a protocol error (GOAWAY with
//! PROTOCOL_ERROR), on [`SpdySession::close`], or when the session handle and every stream have
//! been dropped (GOAWAY with OK).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::{CancellationToken, PollSemaphore};

use crate::error::{Result, SpdyError};
use crate::frame::{
    Decoded, Frame, FrameCodec, FrameDecoder, FrameEncoder, FrameLimits, GoAwayStatus, RstStatus,
};
use crate::headers::Headers;

/// Which end of the connection this session is; it decides stream and ping ID parity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Opens odd-numbered streams and pings (kubectl, the streaming client).
    Client,
    /// Opens even-numbered streams and pings (the kubelet, the streaming server).
    Server,
}

impl Role {
    fn parity(self) -> u32 {
        match self {
            Role::Client => 1,
            Role::Server => 0,
        }
    }
}

/// Limits and buffer sizes of a session.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Frame and header block size limits applied to what the peer sends.
    pub limits: FrameLimits,
    /// Unread bytes one stream may hold before the session stops reading the connection.
    pub max_stream_buffer: usize,
    /// Streams the peer may have open at once; more are refused (RST_STREAM REFUSED_STREAM).
    pub max_concurrent_streams: usize,
    /// Streams the peer opened that wait for [`SpdySession::accept`]; more are refused.
    pub accept_backlog: usize,
    /// Largest DATA frame this side sends (a write is split into frames of at most this size).
    pub max_write_frame: usize,
    /// Bytes of DATA queued for the writer before stream writes wait.
    pub max_queued_write: usize,
    /// Consumed bytes after which a WINDOW_UPDATE is sent for a stream and for the session.
    pub window_update_threshold: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            limits: FrameLimits::default(),
            max_stream_buffer: 1024 * 1024,
            max_concurrent_streams: 1000,
            accept_backlog: 128,
            max_write_frame: 64 * 1024,
            max_queued_write: 1024 * 1024,
            window_update_threshold: 32 * 1024,
        }
    }
}

enum Outgoing {
    Frame(Frame, Option<OwnedSemaphorePermit>),
    Shutdown,
}

struct StreamState {
    recv: VecDeque<Bytes>,
    recv_len: usize,
    recv_fin: bool,
    /// Set when the peer reset the stream.
    peer_reset: Option<RstStatus>,
    /// Set when this side reset the stream.
    local_reset: bool,
    sent_fin: bool,
    read_waker: Option<Waker>,
    unacked: u32,
    reply_tx: Option<oneshot::Sender<Result<Headers>>>,
    extra_headers: Headers,
}

impl StreamState {
    fn new(recv_fin: bool, sent_fin: bool) -> Self {
        Self {
            recv: VecDeque::new(),
            recv_len: 0,
            recv_fin,
            peer_reset: None,
            local_reset: false,
            sent_fin,
            read_waker: None,
            unacked: 0,
            reply_tx: None,
            extra_headers: Headers::new(),
        }
    }

    fn wake(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
    }
}

struct State {
    streams: HashMap<u32, StreamState>,
    next_local_id: u32,
    last_remote_id: u32,
    next_ping_id: u32,
    pings: HashMap<u32, oneshot::Sender<()>>,
    goaway_received: Option<GoAwayStatus>,
    goaway_sent: bool,
    /// Why the connection ended, once it has.
    closed: Option<String>,
    handles: usize,
    session_unacked: u32,
}

struct Shared {
    role: Role,
    config: SessionConfig,
    state: Mutex<State>,
    out: mpsc::UnboundedSender<Outgoing>,
    write_budget: Arc<Semaphore>,
    /// Stops the reader task.
    cancel: CancellationToken,
    /// Signalled when a stream's unread buffer shrinks (or the stream goes away).
    drained: Notify,
    /// Becomes true when the writer has finished (the connection is fully done).
    done: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than stopping; keep going with the data as it is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, frame: Frame) {
        // Fails only after the writer is gone, when nothing can be sent anyway.
        let _ = self.out.send(Outgoing::Frame(frame, None));
    }

    /// Marks the connection closed, wakes everything waiting on it and tells the writer to
    /// finish after what is queued (optionally sending GOAWAY first).
    fn close_with(&self, st: &mut State, reason: String, goaway: Option<GoAwayStatus>) {
        if st.closed.is_some() {
            return;
        }
        if let Some(status) = goaway {
            if !st.goaway_sent {
                st.goaway_sent = true;
                self.send(Frame::GoAway {
                    last_good_stream_id: st.last_remote_id,
                    status,
                });
            }
        }
        st.closed = Some(reason);
        for s in st.streams.values_mut() {
            if let Some(tx) = s.reply_tx.take() {
                let _ = tx.send(Err(SpdyError::Closed));
            }
            s.wake();
        }
        st.pings.clear();
        let _ = self.out.send(Outgoing::Shutdown);
        self.cancel.cancel();
        self.drained.notify_waiters();
    }

    fn release_handle(&self, st: &mut State) {
        st.handles -= 1;
        if st.handles == 0 {
            self.close_with(
                st,
                "session and all streams dropped".into(),
                Some(GoAwayStatus::Ok),
            );
        }
    }
}

/// A SPDY/3.1 session (one connection) — see the module documentation.
pub struct SpdySession {
    shared: Arc<Shared>,
    incoming: mpsc::Receiver<SpdyStream>,
}

impl std::fmt::Debug for SpdySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpdySession")
            .field("role", &self.shared.role)
            .finish_non_exhaustive()
    }
}

impl SpdySession {
    /// The server end of a connection (after the HTTP upgrade to `SPDY/3.1`), with default
    /// limits. Must be called inside a tokio runtime.
    pub fn server<T>(io: T) -> Self
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::new(io, Role::Server, SessionConfig::default())
    }

    /// The client end of a connection, with default limits. Must be called inside a tokio
    /// runtime.
    pub fn client<T>(io: T) -> Self
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::new(io, Role::Client, SessionConfig::default())
    }

    /// A session of the given role and configuration over `io`.
    pub fn new<T>(io: T, role: Role, config: SessionConfig) -> Self
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (out, out_rx) = mpsc::unbounded_channel();
        let (accept_tx, incoming) = mpsc::channel(config.accept_backlog.max(1));
        let (done, _) = watch::channel(false);
        let first_local = if role == Role::Client { 1 } else { 2 };
        let shared = Arc::new(Shared {
            role,
            config,
            state: Mutex::new(State {
                streams: HashMap::new(),
                next_local_id: first_local,
                last_remote_id: 0,
                next_ping_id: first_local,
                pings: HashMap::new(),
                goaway_received: None,
                goaway_sent: false,
                closed: None,
                handles: 1,
                session_unacked: 0,
            }),
            out,
            write_budget: Arc::new(Semaphore::new(config.max_queued_write.max(1))),
            cancel: CancellationToken::new(),
            drained: Notify::new(),
            done,
        });
        let (decoder, encoder) = FrameCodec::new(config.limits).into_parts();
        let (rd, wr) = tokio::io::split(io);
        tokio::spawn(write_loop(shared.clone(), wr, encoder, out_rx));
        tokio::spawn(read_loop(shared.clone(), rd, decoder, accept_tx));
        Self { shared, incoming }
    }

    /// This session's role.
    pub fn role(&self) -> Role {
        self.shared.role
    }

    /// The next stream the peer opened, already answered with SYN_REPLY; `None` once the
    /// connection is closed or the peer sent GOAWAY.
    pub async fn accept(&mut self) -> Option<SpdyStream> {
        let mut stream = self.incoming.recv().await?;
        stream.send_reply();
        Some(stream)
    }

    /// The next stream the peer opened, not yet answered: look at its headers, then call
    /// [`SpdyStream::send_reply`] to accept it or [`SpdyStream::reset`] (or drop it) to
    /// reject it, as the kubelet does for port-forward streams with bad headers.
    pub async fn accept_unreplied(&mut self) -> Option<SpdyStream> {
        self.incoming.recv().await
    }

    /// Opens a stream with `headers` and waits for the peer's SYN_REPLY. `fin` opens it
    /// half-closed (this side sends no data). Wrap in `tokio::time::timeout` to bound the wait.
    pub async fn open_stream(&self, headers: Headers, fin: bool) -> Result<SpdyStream> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut st = self.shared.lock();
            if st.closed.is_some() {
                return Err(SpdyError::Closed);
            }
            if let Some(status) = st.goaway_received {
                return Err(SpdyError::GoingAway(status));
            }
            let id = st.next_local_id;
            if id > 0x7fff_ffff {
                return Err(SpdyError::Protocol("stream IDs exhausted".into()));
            }
            st.next_local_id += 2;
            let mut state = StreamState::new(false, fin);
            state.reply_tx = Some(tx);
            st.streams.insert(id, state);
            st.handles += 1;
            // Queued under the lock so stream IDs go out in increasing order.
            self.shared.send(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                slot: 0,
                fin,
                unidirectional: false,
                headers: headers.clone(),
            });
            id
        };
        let mut stream = SpdyStream::new(self.shared.clone(), id, headers);
        match rx.await {
            Ok(Ok(reply)) => {
                stream.reply_headers = Some(reply);
                Ok(stream)
            }
            Ok(Err(e)) => {
                stream.forget();
                Err(e)
            }
            Err(_) => {
                stream.forget();
                Err(SpdyError::Closed)
            }
        }
    }

    /// Sends a PING and waits for its echo; returns the round-trip time.
    pub async fn ping(&self) -> Result<Duration> {
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if st.closed.is_some() {
                return Err(SpdyError::Closed);
            }
            let id = st.next_ping_id;
            st.next_ping_id = if id > 0x7fff_fffd { id & 1 | 2 } else { id + 2 };
            st.pings.insert(id, tx);
            self.shared.send(Frame::Ping { id });
        }
        let start = Instant::now();
        rx.await.map_err(|_| SpdyError::Closed)?;
        Ok(start.elapsed())
    }

    /// Sends GOAWAY (status OK): the peer may open no more streams, the open ones go on.
    pub fn go_away(&mut self) {
        let mut st = self.shared.lock();
        if st.closed.is_none() && !st.goaway_sent {
            st.goaway_sent = true;
            self.shared.send(Frame::GoAway {
                last_good_stream_id: st.last_remote_id,
                status: GoAwayStatus::Ok,
            });
        }
        drop(st);
        self.incoming.close();
    }

    /// Ends the connection: what streams have queued is written, then GOAWAY (status OK), then
    /// the connection is shut down. Streams still open fail their next read (unless the peer
    /// had finished them) and write. Waits until the connection is fully closed.
    pub async fn close(&self) {
        {
            let mut st = self.shared.lock();
            self.shared.close_with(
                &mut st,
                "closed by this side".into(),
                Some(GoAwayStatus::Ok),
            );
        }
        self.closed().await;
    }

    /// Waits until the connection has ended (for any reason) and its writer has finished.
    pub async fn closed(&self) {
        let mut rx = self.shared.done.subscribe();
        // Errors only if the sender is gone, which means done as well.
        let _ = rx.wait_for(|done| *done).await;
    }

    /// Why the connection ended, if it has.
    pub fn close_reason(&self) -> Option<String> {
        self.shared.lock().closed.clone()
    }

    /// The GOAWAY status the peer sent, if any.
    pub fn peer_goaway(&self) -> Option<GoAwayStatus> {
        self.shared.lock().goaway_received
    }
}

impl Drop for SpdySession {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        self.shared.release_handle(&mut st);
    }
}

/// One SPDY stream: read what the peer sends, write DATA frames; `shutdown` sends FIN.
/// Dropping it before `shutdown` sends RST_STREAM CANCEL, unless the peer had finished the
/// stream and everything was read (then FIN); dropping a stream never answered refuses it.
pub struct SpdyStream {
    shared: Arc<Shared>,
    id: u32,
    headers: Headers,
    reply_headers: Option<Headers>,
    needs_reply: bool,
    budget: PollSemaphore,
    /// False once this handle no longer owns the stream's state (dropped or reset).
    live: bool,
}

impl std::fmt::Debug for SpdyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpdyStream")
            .field("id", &self.id)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl SpdyStream {
    fn new(shared: Arc<Shared>, id: u32, headers: Headers) -> Self {
        let budget = PollSemaphore::new(shared.write_budget.clone());
        Self {
            shared,
            id,
            headers,
            reply_headers: None,
            needs_reply: false,
            budget,
            live: true,
        }
    }

    /// The stream ID.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The headers the stream was opened with (the peer's SYN_STREAM for accepted streams,
    /// this side's for opened ones).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The peer's SYN_REPLY headers, for streams this side opened.
    pub fn reply_headers(&self) -> Option<&Headers> {
        self.reply_headers.as_ref()
    }

    /// Headers the peer added later with HEADERS frames.
    pub fn extra_headers(&self) -> Headers {
        let st = self.shared.lock();
        st.streams
            .get(&self.id)
            .map(|s| s.extra_headers.clone())
            .unwrap_or_default()
    }

    /// Aborts the stream with RST_STREAM `status`; later reads and writes fail.
    pub fn reset(&mut self, status: RstStatus) {
        let mut guard = self.shared.lock();
        let st = &mut *guard;
        if let Some(s) = st.streams.get_mut(&self.id) {
            if !s.local_reset && s.peer_reset.is_none() && st.closed.is_none() {
                s.local_reset = true;
                s.wake();
                self.shared.send(Frame::RstStream {
                    stream_id: self.id,
                    status,
                });
            }
        }
    }

    /// Answers a stream from [`SpdySession::accept_unreplied`] with an empty SYN_REPLY (a
    /// no-op for streams already answered or opened by this side).
    pub fn send_reply(&mut self) {
        if std::mem::take(&mut self.needs_reply) {
            self.shared.send(Frame::SynReply {
                stream_id: self.id,
                fin: false,
                headers: Headers::new(),
            });
        }
    }

    /// Drops the stream's state without telling the peer (it already knows).
    fn forget(&mut self) {
        let mut st = self.shared.lock();
        st.streams.remove(&self.id);
        if self.live {
            self.live = false;
            self.shared.release_handle(&mut st);
        }
    }
}

impl Drop for SpdyStream {
    fn drop(&mut self) {
        if !self.live {
            return;
        }
        let mut st = self.shared.lock();
        if let Some(s) = st.streams.remove(&self.id) {
            // A stream never answered is refused. One the peer has finished, with nothing left
            // unread, is closed gracefully (FIN) like a dropped socket; any other unfinished
            // stream is cancelled.
            let active = !s.local_reset && s.peer_reset.is_none() && st.closed.is_none();
            if active && self.needs_reply {
                self.shared.send(Frame::RstStream {
                    stream_id: self.id,
                    status: RstStatus::RefusedStream,
                });
            } else if active && !s.sent_fin {
                if s.recv_fin && s.recv.is_empty() {
                    self.shared.send(Frame::Data {
                        stream_id: self.id,
                        fin: true,
                        data: Bytes::new(),
                    });
                } else {
                    self.shared.send(Frame::RstStream {
                        stream_id: self.id,
                        status: RstStatus::Cancel,
                    });
                }
            }
            self.shared.drained.notify_waiters();
        }
        self.shared.release_handle(&mut st);
    }
}

fn io_err(kind: io::ErrorKind, msg: String) -> io::Error {
    io::Error::new(kind, msg)
}

impl AsyncRead for SpdyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let shared = &this.shared;
        let mut guard = shared.lock();
        let st = &mut *guard;
        let closed = st.closed.clone();
        let Some(s) = st.streams.get_mut(&this.id) else {
            return Poll::Ready(Err(io_err(
                io::ErrorKind::NotConnected,
                format!("spdy stream {} is gone", this.id),
            )));
        };
        if s.local_reset {
            return Poll::Ready(Err(io_err(
                io::ErrorKind::ConnectionAborted,
                format!("spdy stream {} was reset by this side", this.id),
            )));
        }
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if let Some(front) = s.recv.front_mut() {
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front.split_to(n));
            if front.is_empty() {
                s.recv.pop_front();
            }
            let was_full = s.recv_len > shared.config.max_stream_buffer;
            s.recv_len -= n;
            if was_full && s.recv_len <= shared.config.max_stream_buffer {
                shared.drained.notify_waiters();
            }
            // Credit consumed bytes (saturating: a peer that ignores windows may send more).
            let n32 = u32::try_from(n).unwrap_or(u32::MAX);
            let threshold = shared.config.window_update_threshold;
            s.unacked = s.unacked.saturating_add(n32);
            if s.unacked >= threshold && !s.recv_fin && closed.is_none() {
                let delta = std::mem::take(&mut s.unacked).min(0x7fff_ffff);
                shared.send(Frame::WindowUpdate {
                    stream_id: this.id,
                    delta,
                });
            }
            st.session_unacked = st.session_unacked.saturating_add(n32);
            if st.session_unacked >= threshold && closed.is_none() {
                let delta = std::mem::take(&mut st.session_unacked).min(0x7fff_ffff);
                shared.send(Frame::WindowUpdate {
                    stream_id: 0,
                    delta,
                });
            }
            return Poll::Ready(Ok(()));
        }
        if s.recv_fin {
            return Poll::Ready(Ok(()));
        }
        if let Some(status) = s.peer_reset {
            return Poll::Ready(Err(io_err(
                io::ErrorKind::ConnectionReset,
                format!("spdy stream {} reset by peer ({status:?})", this.id),
            )));
        }
        if let Some(reason) = closed {
            return Poll::Ready(Err(io_err(
                io::ErrorKind::ConnectionAborted,
                format!("spdy connection closed: {reason}"),
            )));
        }
        s.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl SpdyStream {
    /// Checks that the stream can still send; the error says why not.
    fn check_writable(&self) -> io::Result<()> {
        let st = self.shared.lock();
        if let Some(reason) = &st.closed {
            return Err(io_err(
                io::ErrorKind::BrokenPipe,
                format!("spdy connection closed: {reason}"),
            ));
        }
        match st.streams.get(&self.id) {
            None => Err(io_err(io::ErrorKind::NotConnected, "stream is gone".into())),
            Some(s) if s.local_reset || s.peer_reset.is_some() => Err(io_err(
                io::ErrorKind::BrokenPipe,
                format!("spdy stream {} was reset", self.id),
            )),
            Some(s) if s.sent_fin => Err(io_err(
                io::ErrorKind::BrokenPipe,
                format!("spdy stream {} is closed for writing", self.id),
            )),
            Some(_) => Ok(()),
        }
    }

    fn poll_permit(
        &mut self,
        cx: &mut Context<'_>,
        n: usize,
    ) -> Poll<io::Result<OwnedSemaphorePermit>> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        match ready!(self.budget.poll_acquire_many(cx, n)) {
            Some(permit) => Poll::Ready(Ok(permit)),
            None => Poll::Ready(Err(io_err(io::ErrorKind::BrokenPipe, "writer gone".into()))),
        }
    }
}

impl AsyncWrite for SpdyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        this.check_writable()?;
        let n = buf
            .len()
            .min(this.shared.config.max_write_frame.max(1))
            .min(this.shared.config.max_queued_write.max(1));
        let permit = ready!(this.poll_permit(cx, n))?;
        // The stream may have been reset or closed while waiting for budget.
        this.check_writable()?;
        let frame = Frame::Data {
            stream_id: this.id,
            fin: false,
            data: Bytes::copy_from_slice(&buf[..n]),
        };
        this.shared
            .out
            .send(Outgoing::Frame(frame, Some(permit)))
            .map_err(|_| io_err(io::ErrorKind::BrokenPipe, "writer gone".into()))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The writer task writes and flushes whatever is queued without being asked.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut st = this.shared.lock();
        if let Some(reason) = &st.closed {
            return Poll::Ready(Err(io_err(
                io::ErrorKind::BrokenPipe,
                format!("spdy connection closed: {reason}"),
            )));
        }
        let Some(s) = st.streams.get_mut(&this.id) else {
            return Poll::Ready(Err(io_err(
                io::ErrorKind::NotConnected,
                "stream is gone".into(),
            )));
        };
        if s.sent_fin || s.local_reset || s.peer_reset.is_some() {
            return Poll::Ready(Ok(()));
        }
        s.sent_fin = true;
        this.shared.send(Frame::Data {
            stream_id: this.id,
            fin: true,
            data: Bytes::new(),
        });
        Poll::Ready(Ok(()))
    }
}

/// How long the reader may go on after a write failed (see `write_loop`).
const WRITE_FAILURE_DRAIN: Duration = Duration::from_secs(2);

async fn write_loop<W>(
    shared: Arc<Shared>,
    mut wr: W,
    mut encoder: FrameEncoder,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) where
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut shutdown = false;
    let mut failure: Option<String> = None;
    'outer: while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Batch whatever else is already queued into one write.
        while let Some(msg) = next.take() {
            match msg {
                Outgoing::Frame(frame, _permit) => {
                    if let Err(e) = encoder.encode(&frame, &mut buf) {
                        failure = Some(format!("encoding a frame: {e}"));
                        break 'outer;
                    }
                }
                Outgoing::Shutdown => {
                    shutdown = true;
                    break;
                }
            }
            if buf.len() >= 256 * 1024 {
                break;
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = wr.write_all(&buf).await {
            failure = Some(format!("writing: {e}"));
            break;
        }
        buf.clear();
        if let Err(e) = wr.flush().await {
            failure = Some(format!("flushing: {e}"));
            break;
        }
        if shutdown {
            break;
        }
    }
    if shutdown {
        let _ = wr.shutdown().await;
    }
    if failure
        .as_deref()
        .is_some_and(|f| !f.starts_with("encoding"))
    {
        // The peer may have closed right after its last frames: the kubelet's streaming
        // server writes the exit status, resets every stream and closes, and a frame this
        // side sent meanwhile fails with a reset. What it sent is still to be read: let the
        // reader take it in (it closes the session at the end of the input), for a while.
        let _ = tokio::time::timeout(WRITE_FAILURE_DRAIN, shared.cancel.cancelled()).await;
    }
    {
        let mut st = shared.lock();
        let reason = failure.unwrap_or_else(|| "connection closed".into());
        shared.close_with(&mut st, reason, None);
    }
    rx.close();
    shared.write_budget.close();
    shared.done.send_replace(true);
}

async fn read_loop<R>(
    shared: Arc<Shared>,
    mut rd: R,
    mut decoder: FrameDecoder,
    accept_tx: mpsc::Sender<SpdyStream>,
) where
    R: AsyncRead + Unpin,
{
    let mut reader = Reader {
        shared: shared.clone(),
        accept_tx: Some(accept_tx),
    };
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let outcome: std::result::Result<String, SpdyError> = 'read: loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(decoded)) => {
                    if let Err(e) = reader.handle(decoded).await {
                        break 'read Err(e);
                    }
                }
                Ok(None) => break,
                Err(e) => break 'read Err(e),
            }
        }
        if shared.cancel.is_cancelled() {
            break Ok("closed by this side".into());
        }
        buf.reserve(32 * 1024);
        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => break Ok("closed by this side".into()),
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) if buf.is_empty() => break Ok("peer closed the connection".into()),
                Ok(0) => break Err(SpdyError::Protocol(format!(
                    "connection ended inside a frame ({} bytes pending)", buf.len()))),
                Ok(_) => {}
                Err(e) => break Err(SpdyError::Io(e)),
            },
        }
    };
    // Drop the accept queue first so `accept` returns None.
    reader.accept_tx = None;
    let mut st = shared.lock();
    match outcome {
        Ok(reason) => shared.close_with(&mut st, reason, None),
        Err(e) => {
            tracing::debug!(error = %e, "spdy connection failed");
            let goaway = match e {
                SpdyError::Io(_) => None,
                ref other => Some(other.goaway_status()),
            };
            shared.close_with(&mut st, e.to_string(), goaway);
        }
    }
}

struct Reader {
    shared: Arc<Shared>,
    accept_tx: Option<mpsc::Sender<SpdyStream>>,
}

impl Reader {
    fn is_remote(&self, id: u32) -> bool {
        id & 1 != self.shared.role.parity()
    }

    fn rst(&self, stream_id: u32, status: RstStatus) {
        self.shared.send(Frame::RstStream { stream_id, status });
    }

    async fn handle(&mut self, decoded: Decoded) -> Result<()> {
        let frame = match decoded {
            Decoded::Frame(f) => f,
            Decoded::StreamError {
                stream_id,
                status,
                reason,
            } => {
                tracing::debug!(stream_id, %reason, "spdy stream error");
                let mut st = self.shared.lock();
                if self.is_remote(stream_id) && stream_id > st.last_remote_id {
                    st.last_remote_id = stream_id;
                }
                if let Some(s) = st.streams.get_mut(&stream_id) {
                    s.local_reset = true;
                    if let Some(tx) = s.reply_tx.take() {
                        let _ = tx.send(Err(SpdyError::Protocol(reason)));
                    }
                    s.wake();
                }
                drop(st);
                self.rst(stream_id, status);
                return Ok(());
            }
        };
        match frame {
            Frame::SynStream {
                stream_id,
                fin,
                unidirectional,
                headers,
                ..
            } => self.on_syn_stream(stream_id, fin, unidirectional, headers)?,
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => {
                let mut st = self.shared.lock();
                if let Some(s) = st.streams.get_mut(&stream_id) {
                    if let Some(tx) = s.reply_tx.take() {
                        s.recv_fin |= fin;
                        let _ = tx.send(Ok(headers));
                    }
                }
            }
            Frame::RstStream { stream_id, status } => {
                let mut st = self.shared.lock();
                if let Some(s) = st.streams.get_mut(&stream_id) {
                    s.peer_reset = Some(status);
                    if let Some(tx) = s.reply_tx.take() {
                        let _ = tx.send(Err(SpdyError::StreamReset { stream_id, status }));
                    }
                    s.wake();
                    // Data that arrived before the reset is still read out, then reads fail
                    // with ConnectionReset: spdystream delivers it so, and the kubelet's
                    // server relies on it (it writes the exit status, then resets every
                    // stream). Held data stays bounded by `max_stream_buffer`.
                    self.shared.drained.notify_waiters();
                }
            }
            Frame::Settings { .. } | Frame::WindowUpdate { .. } | Frame::Unknown { .. } => {
                // Windows are not enforced on sending, as in spdystream; see module docs.
            }
            Frame::Ping { id } => {
                if id & 1 != self.shared.role.parity() {
                    self.shared.send(Frame::Ping { id });
                } else if let Some(tx) = self.shared.lock().pings.remove(&id) {
                    let _ = tx.send(());
                }
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                let mut st = self.shared.lock();
                st.goaway_received = Some(status);
                for (id, s) in st.streams.iter_mut() {
                    if !self.is_remote(*id) && *id > last_good_stream_id {
                        if let Some(tx) = s.reply_tx.take() {
                            let _ = tx.send(Err(SpdyError::GoingAway(status)));
                        }
                    }
                }
                drop(st);
                self.accept_tx = None;
            }
            Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                let mut st = self.shared.lock();
                if let Some(s) = st.streams.get_mut(&stream_id) {
                    for (n, v) in headers.iter() {
                        s.extra_headers.append(n, v);
                    }
                    if fin {
                        s.recv_fin = true;
                        s.wake();
                    }
                }
            }
            Frame::Data {
                stream_id,
                fin,
                data,
            } => self.on_data(stream_id, fin, data).await,
        }
        Ok(())
    }

    fn on_syn_stream(
        &mut self,
        id: u32,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    ) -> Result<()> {
        if !self.is_remote(id) {
            self.rst(id, RstStatus::ProtocolError);
            return Ok(());
        }
        let stream = {
            let mut st = self.shared.lock();
            if id <= st.last_remote_id {
                return Err(SpdyError::Protocol(format!(
                    "SYN_STREAM {id} does not follow stream {}",
                    st.last_remote_id
                )));
            }
            st.last_remote_id = id;
            let open_remote = st.streams.keys().filter(|k| self.is_remote(**k)).count();
            if st.goaway_sent
                || st.closed.is_some()
                || self.accept_tx.is_none()
                || open_remote >= self.shared.config.max_concurrent_streams
            {
                drop(st);
                self.rst(id, RstStatus::RefusedStream);
                return Ok(());
            }
            st.streams.insert(id, StreamState::new(fin, unidirectional));
            st.handles += 1;
            let mut s = SpdyStream::new(self.shared.clone(), id, headers);
            s.needs_reply = true;
            s
        };
        if let Some(tx) = &self.accept_tx {
            if let Err(e) = tx.try_send(stream) {
                // Backlog full or nobody accepting: the stream's Drop refuses it.
                drop(e);
            }
        }
        Ok(())
    }

    async fn on_data(&mut self, id: u32, fin: bool, data: Bytes) {
        {
            let mut st = self.shared.lock();
            let never_opened = if self.is_remote(id) {
                id > st.last_remote_id
            } else {
                id >= st.next_local_id
            };
            let Some(s) = st.streams.get_mut(&id) else {
                drop(st);
                if never_opened {
                    self.rst(id, RstStatus::InvalidStream);
                }
                // Otherwise the stream is already gone here; its late data is dropped.
                return;
            };
            if s.local_reset || s.peer_reset.is_some() {
                return;
            }
            if s.recv_fin {
                s.local_reset = true;
                s.wake();
                drop(st);
                self.rst(id, RstStatus::StreamAlreadyClosed);
                return;
            }
            if !data.is_empty() {
                s.recv_len += data.len();
                s.recv.push_back(data);
            }
            s.recv_fin |= fin;
            s.wake();
        }
        // Back-pressure: hold the connection while this stream's reader is behind.
        loop {
            let notified = self.shared.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.shared.lock();
                if st.closed.is_some() {
                    return;
                }
                match st.streams.get(&id) {
                    Some(s) if s.recv_len > self.shared.config.max_stream_buffer => {}
                    _ => return,
                }
            }
            notified.await;
        }
    }
}
