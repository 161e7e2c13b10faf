//! The server's settings, from the environment (the container's only configuration channel).
//!
//! - `PORT`: the TCP port on 0.0.0.0 (default 8080: above 1024, so the non-root user of the image
//!   may bind it; the same container port as the templates and `deploy.toml`). `0` picks a free
//!   port; the `listening` log line names it.
//! - `WORKERS`: worker threads (default: the CPUs this process may run on, which honours
//!   `taskset` and container CPU sets).
//!
//! The address is an IP literal: a `FROM scratch` image has no resolver files.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The default `PORT`.
pub const DEFAULT_PORT: u16 = 8080;

/// How long in-flight requests may take to finish after SIGTERM (ECS waits 30 s by default
/// before it kills the task).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub port: u16,
    pub workers: usize,
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
        Ok(Settings { port, workers })
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
}
