//! `connections.max.idle.ms`: a connection that moves no byte for that long
//! is closed.
//!
//! As in Kafka's `Selector`, any progress counts as activity — a partial
//! read or write too — so a client sending a byte a second is not idle
//! (it holds only the bytes of its request received so far; the defence
//! against many of them is `max.connections.per.ip`). A client that stops
//! reading its responses makes no progress once its socket buffers are
//! full, and is closed. Unlike Kafka, the time the broker itself spends on
//! a request (a handler, a delayed fetch, a quota's mute) does not count:
//! a connection is never closed as idle because it waited for the broker.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When a connection last moved bytes, and whether the broker is working
/// on one of its requests.
pub(crate) struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last progress.
    last_ms: AtomicU64,
    busy: AtomicBool,
}

impl Activity {
    /// A connection that has just made progress.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            busy: AtomicBool::new(false),
        })
    }

    /// Bytes moved now.
    pub(crate) fn touch(&self) {
        let ms = Instant::now().saturating_duration_since(self.start).as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The broker starts (`true`) or ends (`false`) its work on a request.
    pub(crate) fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::Relaxed);
        self.touch();
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Resolves once the connection has been idle — no progress, the broker
/// not busy with it — for `max`.
pub(crate) async fn expired(activity: &Activity, max: Duration) {
    loop {
        let now = Instant::now();
        let deadline = activity.last() + max;
        if deadline <= now && !activity.busy.load(Ordering::Relaxed) {
            return;
        }
        // While the broker is busy, look again after `max`.
        let wake = if deadline > now { deadline } else { now + max };
        tokio::time::sleep_until(wake).await;
    }
}

/// A stream whose reads and writes record their progress in an [`Activity`].
pub(crate) struct Tracked<S> {
    /// The stream.
    pub(crate) inner: S,
    /// Where progress is recorded.
    pub(crate) activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time (tokio's paused clock is not enabled in this workspace):
    // generous margins.
    const MAX: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn progress_and_busy_time_keep_a_connection_alive() {
        let activity = Activity::new();
        let expiry = expired(&activity, MAX);
        tokio::pin!(expiry);
        // Progress every 100 ms: never idle.
        for _ in 0..8 {
            assert!(tokio::time::timeout(Duration::from_millis(100), &mut expiry)
                .await
                .is_err());
            activity.touch();
        }
        // The broker works on a request for three idle times: not idle either.
        activity.set_busy(true);
        assert!(tokio::time::timeout(MAX * 3, &mut expiry).await.is_err());
        activity.set_busy(false);
        let idle_from = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), &mut expiry)
            .await
            .unwrap();
        assert!(idle_from.elapsed() >= MAX, "{:?}", idle_from.elapsed());
    }

    #[tokio::test]
    async fn a_silent_connection_expires_after_the_idle_time() {
        let activity = Activity::new();
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), expired(&activity, MAX))
            .await
            .unwrap();
        assert!(started.elapsed() >= MAX, "{:?}", started.elapsed());
    }
}
