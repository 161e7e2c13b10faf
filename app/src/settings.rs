//! The server's settings, from the environment (the container's only configuration channel).
//!
//! - `PORT`: the TCP port on 0.0.0.0 (default 8080: above 1024, so the non-root user of the image
//!   may bind it; the same container port as the templates and `deploy.toml`). `0` picks a free
//!   port; the `listening` log line names it.
//! - `WORKERS`: worker threads (default: the CPUs this process may run on, which honours
//!   `taskset` and container CPU sets).
//! - `REQUEST_TIMEOUT`: seconds a client has from a request's first byte to its response (default
//!   20); `KEEPALIVE_TIMEOUT`: seconds an idle connection stays open between requests (default
//!   75, above the ALB's idle timeout). See `timeouts.rs`.
//!
//! The address is an IP literal: a `FROM scratch` image has no resolver files.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::timeouts::Timeouts;

/// The default `PORT`.
pub const DEFAULT_PORT: u16 = 8080;

/// How long in-flight requests may take to finish after SIGTERM (ECS waits 30 s by default
/// before it kills the task).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

/// The default `REQUEST_TIMEOUT` and `KEEPALIVE_TIMEOUT`.
pub const DEFAULT_TIMEOUTS: Timeouts =
    Timeouts { request: Duration::from_secs(20), keep_alive: Duration::from_secs(75) };

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub port: u16,
    pub workers: usize,
    pub timeouts: Timeouts,
}

impl Settings {
    /// Reads the settings through `lookup` (the process environment in production).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let port = match lookup("PORT") {
            None => DEFAULT_PORT,
            Some(text) => match text.trim().parse::<u16>() {
                Ok(port) => port,
                _ => return Err(format!("PORT must be a TCP port (0-65535; 0 picks a free one), not `{text}`")),
            },
        };
        let workers = match lookup("WORKERS") {
            None => std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            Some(text) => match text.trim().parse::<usize>() {
                Ok(workers) if (1..=256).contains(&workers) => workers,
                _ => return Err(format!("WORKERS must be a number of threads (1-256), not `{text}`")),
            },
        };
        let seconds = |name: &str, default: Duration| match lookup(name) {
            None => Ok(default),
            Some(text) => match text.trim().parse::<u64>() {
                Ok(seconds) if (1..=3600).contains(&seconds) => Ok(Duration::from_secs(seconds)),
                _ => Err(format!("{name} must be a number of seconds (1-3600), not `{text}`")),
            },
        };
        let timeouts = Timeouts {
            request: seconds("REQUEST_TIMEOUT", DEFAULT_TIMEOUTS.request)?,
            keep_alive: seconds("KEEPALIVE_TIMEOUT", DEFAULT_TIMEOUTS.keep_alive)?,
        };
        Ok(Settings { port, workers, timeouts })
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Settings, String> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Where the server listens: all IPv4 interfaces.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, self.port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_port_and_workers() {
        let check = |port: Option<&str>, workers: Option<&str>, expect: Result<(u16, Option<usize>), &str>| {
            let lookup = |name: &str| match name {
                "PORT" => port.map(str::to_string),
                "WORKERS" => workers.map(str::to_string),
                _ => None,
            };
            let got = Settings::from_lookup(lookup);
            match expect {
                Ok((port, workers)) => {
                    let settings = got.unwrap();
                    assert_eq!(settings.port, port);
                    if let Some(workers) = workers {
                        assert_eq!(settings.workers, workers);
                    }
                    assert!(settings.workers >= 1);
                }
                Err(fragment) => assert!(got.unwrap_err().contains(fragment)),
            }
        };
        check(None, None, Ok((8080, None)));
        check(Some("9000"), Some("2"), Ok((9000, Some(2))));
        check(Some(" 80 "), None, Ok((80, None)));
        check(Some("0"), None, Ok((0, None)));
        check(Some("70000"), None, Err("PORT must be"));
        check(Some("http"), None, Err("`http`"));
        check(None, Some("0"), Err("WORKERS must be"));
    }

    #[test]
    fn reads_the_timeouts() {
        let settings = |request: Option<&str>, keep_alive: Option<&str>| {
            Settings::from_lookup(|name: &str| match name {
                "REQUEST_TIMEOUT" => request.map(str::to_string),
                "KEEPALIVE_TIMEOUT" => keep_alive.map(str::to_string),
                _ => None,
            })
        };
        assert_eq!(settings(None, None).unwrap().timeouts, DEFAULT_TIMEOUTS);
        let set = settings(Some("5"), Some(" 90 ")).unwrap().timeouts;
        assert_eq!((set.request, set.keep_alive), (Duration::from_secs(5), Duration::from_secs(90)));
        assert!(settings(Some("0"), None).unwrap_err().contains("REQUEST_TIMEOUT must be"));
        assert!(settings(None, Some("1m")).unwrap_err().contains("KEEPALIVE_TIMEOUT must be a number of seconds"));
        // The keep-alive default outlasts the load balancer's idle timeout (cfn/workload/alb.yaml).
        let alb = include_str!("../../cfn/workload/alb.yaml");
        let line = alb.lines().skip_while(|line| !line.contains("idle_timeout.timeout_seconds")).nth(1).unwrap();
        let alb_idle: u64 = line.trim().trim_start_matches("Value:").trim().trim_matches('"').parse().unwrap();
        assert!(DEFAULT_TIMEOUTS.keep_alive > Duration::from_secs(alb_idle), "{alb_idle}");
    }
}
