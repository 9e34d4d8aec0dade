//! Many channels over one WebSocket: [`ChannelWriter`] is an `AsyncWrite` whose bytes become
//! frames of one channel, queued in order on one bounded queue that a single writer task
//! ([`write_loop`]) turns into WebSocket messages — so everything written before a status
//! frame reaches the peer before it. [`PortIo`] joins an incoming pipe and a
//! `ChannelWriter` into one read-write stream. Used by the server and the client alike.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, SimplexStream},
    sync::mpsc,
};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::PollSender;

use crate::protocol::{self, ChannelProtocol};

/// Largest payload of one frame.
pub const MAX_FRAME: usize = 32 * 1024;
/// Frames queued ahead of the socket.
pub const QUEUE: usize = 64;
/// Bytes buffered in each incoming pipe.
pub const PIPE: usize = 256 * 1024;

/// What the writer task sends.
#[derive(Debug)]
pub enum Frame {
    /// Bytes on a channel (may be empty).
    Data(u8, Bytes),
    /// The v5 close signal for a channel.
    CloseChannel(u8),
}

/// An `AsyncWrite` that sends each write as frames of one channel.
#[derive(Debug)]
pub struct ChannelWriter {
    tx: PollSender<Frame>,
    channel: u8,
    close_signal: bool,
}

impl ChannelWriter {
    /// A writer on `channel`; shutting it down sends the v5 close signal when
    /// `close_signal` is set.
    pub fn new(tx: mpsc::Sender<Frame>, channel: u8, close_signal: bool) -> Self {
        ChannelWriter {
            tx: PollSender::new(tx),
            channel,
            close_signal,
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the stream's connection is closed",
    )
}

impl AsyncWrite for ChannelWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.tx.poll_reserve(cx)).map_err(|_| gone())?;
        let n = buf.len().min(MAX_FRAME);
        let frame = Frame::Data(self.channel, Bytes::copy_from_slice(&buf[..n]));
        self.tx.send_item(frame).map_err(|_| gone())?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.tx.is_closed() {
            return Poll::Ready(Ok(()));
        }
        if self.close_signal && ready!(self.tx.poll_reserve(cx)).is_ok() {
            let frame = Frame::CloseChannel(self.channel);
            let _ = self.tx.send_item(frame);
        }
        self.tx.close();
        Poll::Ready(Ok(()))
    }
}

/// The next channel frame from a WebSocket: `Ok(None)` at a close message or the end of the
/// stream, `Err` with the transport's error; malformed frames and messages that carry none
/// (pings, ...) are skipped. The one read step of every channel reader, server and client.
pub async fn next_frame<S>(
    stream: &mut S,
    protocol: ChannelProtocol,
) -> Result<Option<(u8, Bytes)>, tungstenite::Error>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    while let Some(message) = stream.next().await {
        let message = match message {
            Ok(Message::Close(_)) => return Ok(None),
            Ok(m) => m,
            Err(e) => return Err(e),
        };
        match protocol::decode(protocol, message) {
            Ok(Some(frame)) => return Ok(Some(frame)),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "ignoring a malformed streaming frame"),
        }
    }
    Ok(None)
}

/// Send queued frames as messages of `protocol` until every sender is gone or the socket
/// fails, then send a close message. Batches what is queued into one flush.
pub async fn write_loop<S>(mut sink: S, mut rx: mpsc::Receiver<Frame>, protocol: ChannelProtocol)
where
    S: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    let encode = |frame: Frame| match frame {
        Frame::Data(channel, data) => protocol::encode(protocol, channel, &data),
        Frame::CloseChannel(channel) => protocol::encode(protocol, protocol::CLOSE, &[channel]),
    };
    'outer: while let Some(frame) = rx.recv().await {
        if sink.feed(encode(frame)).await.is_err() {
            break;
        }
        while let Ok(frame) = rx.try_recv() {
            if sink.feed(encode(frame)).await.is_err() {
                break 'outer;
            }
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    // A peer that stopped reading must not hold the session open.
    let _ = tokio::time::timeout(Duration::from_secs(5), sink.close()).await;
}

/// A forwarded connection seen as one stream: reads come from a pipe the connection's reader
/// fills, writes go out as frames.
#[derive(Debug)]
pub struct PortIo {
    /// Incoming bytes.
    pub read: ReadHalf<SimplexStream>,
    /// Outgoing bytes.
    pub write: ChannelWriter,
}

impl AsyncRead for PortIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for PortIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.write).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn writes_become_ordered_bounded_frames() {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let mut out = ChannelWriter::new(tx.clone(), protocol::STDOUT, false);
        let mut err = ChannelWriter::new(tx, protocol::STDERR, true);
        out.write_all(b"one").await.unwrap();
        err.write_all(b"two").await.unwrap();
        out.write_all(&vec![7u8; MAX_FRAME + 10]).await.unwrap();
        err.shutdown().await.unwrap();
        drop((out, err));
        let mut frames = Vec::new();
        while let Some(f) = rx.recv().await {
            frames.push(match f {
                Frame::Data(c, d) => (c, d.len(), d.first().copied()),
                Frame::CloseChannel(c) => (255, c as usize, None),
            });
        }
        assert_eq!(
            frames,
            vec![
                (1, 3, Some(b'o')),
                (2, 3, Some(b't')),
                (1, MAX_FRAME, Some(7)),
                (1, 10, Some(7)),
                (255, 2, None),
            ]
        );
    }

    #[tokio::test]
    async fn writing_after_the_connection_is_gone_fails() {
        let (tx, rx) = mpsc::channel(QUEUE);
        drop(rx);
        let mut out = ChannelWriter::new(tx, protocol::STDOUT, false);
        let err = out.write_all(b"x").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
