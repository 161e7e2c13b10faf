//! The HTTP/1.1 server: one listening socket, `WORKERS` threads each running its own
//! single-threaded Tokio runtime (like nginx's worker processes, without cross-thread wakeups),
//! and a graceful drain on SIGTERM.
//!
//! Every worker accepts from a duplicate of the one socket, so a second server on the same port
//! fails to bind instead of silently sharing it (as `SO_REUSEPORT` would allow). On SIGTERM or
//! SIGINT the workers stop accepting, the socket closes (new connections are refused, so a load
//! balancer moves on), idle keep-alive connections close, and requests in flight complete,
//! within [`DRAIN_TIMEOUT`]; then the process exits 0.

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::routes::Site;
use crate::settings::{DRAIN_TIMEOUT, Settings};
use crate::timeouts::{Timeouts, Watch};

/// Largest request head (request line and headers) read; beyond it the client gets 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// A bound socket, ready to serve.
pub struct Bound {
    listener: StdListener,
    addr: SocketAddr,
}

impl Bound {
    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Binds `settings.listen_addr()`. The error names the address, so "address in use" says which.
pub fn bind(settings: &Settings) -> io::Result<Bound> {
    let addr = settings.listen_addr();
    let bind = || -> io::Result<StdListener> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        // Lets a restarted server bind while old connections sit in TIME_WAIT; it does not let
        // two live listeners share the port.
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    };
    let listener = bind().map_err(|error| io::Error::new(error.kind(), format!("binding {addr}: {error}")))?;
    let addr = listener.local_addr()?;
    Ok(Bound { listener, addr })
}

/// Serves `site` on `bound` with `workers` threads until `shutdown` turns true, then drains.
/// Returns once every worker has finished; `Err` names what could not start.
pub fn serve(
    bound: Bound,
    site: Arc<Site>,
    workers: usize,
    timeouts: Timeouts,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut threads = Vec::with_capacity(workers);
    for index in 0..workers.max(1) {
        let listener = bound.listener.try_clone()?;
        let site = Arc::clone(&site);
        let shutdown = shutdown.clone();
        let thread = std::thread::Builder::new().name(format!("worker-{index}")).spawn(move || {
            let result = worker(listener, Arc::clone(&site), timeouts, shutdown);
            // Said at once: `serve` reports it only after the other workers end (at SIGTERM).
            if let Err(error) = &result {
                site.log().event("worker_failed", serde_json::json!({"worker": index, "error": error.to_string()}));
            }
            result
        })?;
        threads.push(thread);
    }
    // The workers hold duplicates; this one must not keep the socket open after they drop theirs.
    drop(bound);
    let mut result = Ok(());
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => result = Err(error),
            Err(_) => result = Err(io::Error::other("a worker thread panicked")),
        }
    }
    result
}

/// One worker: accept until shutdown, then wait for this worker's connections to finish.
fn worker(
    listener: StdListener,
    site: Arc<Site>,
    timeouts: Timeouts,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        let mut http = http1::Builder::new();
        // No hyper timer: the request and keep-alive timeouts are this worker's `Watch`.
        http.max_buf_size(MAX_HEAD_BYTES);
        let timers = Watch::new(timeouts);
        tokio::spawn(Arc::clone(&timers).run());
        // Every connection task holds a sender; when all are gone, the drain is complete.
        let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
        loop {
            let accepted = tokio::select! {
                biased;
                _ = stopped(&mut shutdown) => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors or a connection reset before accept: back off briefly
                    // rather than spin; the listener itself stays healthy.
                    site.log().event("accept_error", serde_json::json!({"error": error.to_string()}));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let remote: Arc<str> = Arc::from(peer.to_string());
            let connection_site = Arc::clone(&site);
            // The service: route, log, answer. Everything it returns was rendered at startup.
            let service = service_fn(move |request: Request<Incoming>| {
                let site = Arc::clone(&connection_site);
                let remote = Arc::clone(&remote);
                let started = Instant::now();
                async move {
                    #[cfg(feature = "test-slow-route")]
                    if let Some(delay) = crate::routes::test_slow_delay(&request) {
                        tokio::time::sleep(delay).await;
                    }
                    Ok::<_, Infallible>(site.respond(&request, &remote, started))
                }
            });
            let connection = http.serve_connection(TokioIo::new(timers.guard(stream)), service);
            let mut shutdown = shutdown.clone();
            let open = open_tx.clone();
            tokio::spawn(async move {
                let _open = open;
                let mut connection = std::pin::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => {}
                    _ = stopped(&mut shutdown) => {
                        // Finish the request in flight (if any), then close; idle ones close now.
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
            });
        }
        // Stop accepting: once every worker drops its duplicate, new connections are refused.
        drop(listener);
        drop(open_tx);
        if tokio::time::timeout(DRAIN_TIMEOUT, open_rx.recv()).await.is_err() {
            site.log().event("drain_timeout", serde_json::json!({"seconds": DRAIN_TIMEOUT.as_secs()}));
        }
        Ok(())
    })
}

/// Resolves once shutdown is requested (or its sender is gone, which also means stop).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
