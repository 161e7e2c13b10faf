//! The served site: one page (the repository's `index.html`, compiled in), `/healthz` and
//! `/version`, from one static binary that runs in an empty (`FROM scratch`) image.
//!
//! Every response is rendered once at startup: the page with the running version filled in, its
//! strong ETag and the Content-Security-Policy hashes of its inline styles. Serving a request is a
//! table lookup plus one access-log line; no request ever reaches the filesystem, since there is
//! nothing on disk to serve. The pieces:
//! - [`build_info`]: version, commit and build time, fixed at compile time;
//! - [`page`]: renders the page and derives its ETag and CSP;
//! - [`routes`]: maps a request to a pre-rendered response;
//! - [`access_log`]: one buffered JSON line per request on stdout;
//! - [`server`]: the listener, the worker threads and the graceful drain on SIGTERM;
//! - [`timeouts`]: the request and keep-alive timeouts, without a timer per request;
//! - [`healthcheck`]: the container's health probe (`app healthcheck`).

pub mod access_log;
pub mod build_info;
pub mod clock;
pub mod healthcheck;
pub mod page;
pub mod routes;
pub mod server;
pub mod settings;
pub mod timeouts;
