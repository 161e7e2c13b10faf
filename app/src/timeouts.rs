//! Connection timeouts without a timer per request.
//!
//! - The request timeout: from a request's first byte (or from accept, for the first request)
//!   until its response goes out. A client that trickles a request head, or opens connections and
//!   sends nothing, is cut off: the slow-header defence.
//! - The keep-alive timeout: an idle connection between requests closes after it. It defaults
//!   above the ALB's idle timeout (30 s in `cfn/workload/alb.yaml`): a target that closes idle
//!   connections before the load balancer does makes it answer 502 now and then.
//!
//! hyper's own `header_read_timeout` covers the first only, runs from the end of one response (so
//! it also closes idle connections after it, before the ALB), arms a timer for every request and
//! reads ahead once more per request to start it; `cargo xtask bench app` measured that at about a
//! tenth of the requests per second. Here each connection's stream is wrapped instead: a read
//! after a response starts the request clock and a write stops it, each by storing a coarse tick
//! (an atomic counter). One task per worker advances the tick every [`TICK`] and closes the
//! connections past their deadline: it marks them expired and wakes them, and their next read or
//! write fails with `TimedOut`, which ends the connection. A deadline is never early and at most
//! two ticks late.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How often a worker's clock advances and its connections are checked.
pub const TICK: Duration = Duration::from_millis(250);

/// The two limits; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub request: Duration,
    pub keep_alive: Duration,
}

/// One worker's clock and connections. Everything here runs on the worker's thread; the atomics
/// make the types `Send` for `tokio::spawn`, not shared.
pub struct Watch {
    now: AtomicU64,
    request_ticks: u64,
    keep_alive_ticks: u64,
    connections: Mutex<Vec<Weak<State>>>,
}

/// One connection's phase.
struct State {
    /// The tick at which the current phase began.
    since: AtomicU64,
    /// A request is under way: bytes came in after the last response went out.
    busy: AtomicBool,
    expired: AtomicBool,
    /// The connection task's waker, from its last read or write that had to wait.
    waker: Mutex<Option<Waker>>,
}

impl Watch {
    pub fn new(timeouts: Timeouts) -> Arc<Watch> {
        let ticks = |limit: Duration| limit.as_millis().div_ceil(TICK.as_millis()).max(1) as u64;
        Arc::new(Watch {
            now: AtomicU64::new(0),
            request_ticks: ticks(timeouts.request),
            keep_alive_ticks: ticks(timeouts.keep_alive),
            connections: Mutex::new(Vec::new()),
        })
    }

    /// Wraps an accepted stream; its first request's clock starts now.
    pub fn guard<S>(self: &Arc<Self>, inner: S) -> Guarded<S> {
        let state = Arc::new(State {
            since: AtomicU64::new(self.now.load(Relaxed)),
            busy: AtomicBool::new(true),
            expired: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        self.connections.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::downgrade(&state));
        Guarded { inner, watch: Arc::clone(self), state }
    }

    /// Advances the clock one tick and expires the connections past their limit; forgets the
    /// closed ones. Returns how many it expired.
    pub fn tick(&self) -> usize {
        let now = self.now.fetch_add(1, Relaxed) + 1;
        let mut expired = 0;
        self.connections.lock().unwrap_or_else(PoisonError::into_inner).retain(|weak| {
            let Some(state) = weak.upgrade() else { return false };
            let limit = if state.busy.load(Relaxed) { self.request_ticks } else { self.keep_alive_ticks };
            if now - state.since.load(Relaxed) > limit && !state.expired.swap(true, Relaxed) {
                expired += 1;
                if let Some(waker) = state.waker.lock().unwrap_or_else(PoisonError::into_inner).take() {
                    waker.wake();
                }
            }
            true
        });
        expired
    }

    /// Ticks every [`TICK`], forever: spawn it on the worker's runtime.
    pub async fn run(self: Arc<Self>) {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            self.tick();
        }
    }

    /// Connections open (and not yet forgotten by a tick).
    #[cfg(test)]
    fn open(&self) -> usize {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|weak| weak.strong_count() > 0)
            .count()
    }
}

/// A stream under a [`Watch`].
pub struct Guarded<S> {
    inner: S,
    watch: Arc<Watch>,
    state: Arc<State>,
}

impl<S> Guarded<S> {
    fn check(&self) -> io::Result<()> {
        if self.state.expired.load(Relaxed) {
            let which = if self.state.busy.load(Relaxed) { "request" } else { "keep-alive" };
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{which} timeout")));
        }
        Ok(())
    }

    fn park(&self, waker: &Waker) {
        let mut stored = self.state.waker.lock().unwrap_or_else(PoisonError::into_inner);
        match stored.as_ref() {
            Some(known) if known.will_wake(waker) => {}
            _ => *stored = Some(waker.clone()),
        }
    }

    /// A read after a response starts the request clock.
    fn read_some(&self) {
        if !self.state.busy.load(Relaxed) {
            self.state.since.store(self.watch.now.load(Relaxed), Relaxed);
            self.state.busy.store(true, Relaxed);
        }
    }

    /// Every write (re)starts the idle clock: the connection is idle from its last response on,
    /// also when hyper answers pipelined requests from its buffer without reading.
    fn wrote_some(&self) {
        self.state.since.store(self.watch.now.load(Relaxed), Relaxed);
        self.state.busy.store(false, Relaxed);
    }

    fn wrote<T>(&self, written: Poll<io::Result<T>>, waker: &Waker) -> Poll<io::Result<T>> {
        match &written {
            Poll::Ready(Ok(_)) => self.wrote_some(),
            Poll::Pending => self.park(waker),
            Poll::Ready(Err(_)) => {}
        }
        written
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &read {
            Poll::Ready(Ok(())) if buf.filled().len() > before => this.read_some(),
            Poll::Pending => this.park(cx.waker()),
            _ => {}
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(written, cx.waker())
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(written, cx.waker())
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn watch(request_ms: u64, keep_alive_ms: u64) -> Arc<Watch> {
        Watch::new(Timeouts {
            request: Duration::from_millis(request_ms),
            keep_alive: Duration::from_millis(keep_alive_ms),
        })
    }

    #[test]
    fn limits_round_up_to_whole_ticks() {
        let watch = watch(1, 20_000);
        assert_eq!((watch.request_ticks, watch.keep_alive_ticks), (1, 80));
    }

    #[tokio::test]
    async fn a_request_that_never_completes_expires_after_its_limit_and_not_before() {
        let watch = watch(500, 10_000); // two ticks
        let (client, server) = tokio::io::duplex(64);
        let mut guarded = watch.guard(server);
        drop(client);
        assert_eq!(watch.tick(), 0);
        assert_eq!(watch.tick(), 0, "two ticks are not yet past the limit");
        assert_eq!(watch.tick(), 1);
        assert_eq!(watch.tick(), 0, "expired once");
        let error = guarded.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(error.to_string().contains("request timeout"), "{error}");
    }

    #[tokio::test]
    async fn a_response_switches_to_the_keep_alive_limit_and_the_next_request_back() {
        let watch = watch(250, 1_000); // one tick, four ticks
        let (mut client, server) = tokio::io::duplex(64);
        let mut guarded = watch.guard(server);
        client.write_all(b"GET").await.unwrap();
        let mut buffer = [0u8; 8];
        assert_eq!(guarded.read(&mut buffer).await.unwrap(), 3);
        guarded.write_all(b"200").await.unwrap();
        for _ in 0..4 {
            assert_eq!(watch.tick(), 0, "idle within the keep-alive limit");
        }
        client.write_all(b"GET").await.unwrap();
        assert_eq!(guarded.read(&mut buffer).await.unwrap(), 3);
        assert_eq!(watch.tick(), 0);
        assert_eq!(watch.tick(), 1, "the second request has the request limit");
        let error = guarded.write_all(b"late").await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn expiry_wakes_a_waiting_read_and_closed_connections_are_forgotten() {
        let watch = watch(250, 250);
        let (_client, server) = tokio::io::duplex(64);
        let mut guarded = watch.guard(server);
        let reader = tokio::spawn(async move { guarded.read(&mut [0u8; 8]).await.map_err(|error| error.kind()) });
        tokio::task::yield_now().await;
        while !reader.is_finished() {
            watch.tick();
            tokio::task::yield_now().await;
        }
        assert_eq!(reader.await.unwrap(), Err(io::ErrorKind::TimedOut));
        watch.tick();
        assert_eq!(watch.open(), 0);
        assert!(watch.connections.lock().unwrap().is_empty());
    }
}
