//! `app healthcheck`: the container's health probe. A `FROM scratch` image has no curl, so the
//! binary checks itself: `GET /healthz` on 127.0.0.1 at `PORT`, healthy iff the answer is 200.
//!
//! Plain blocking sockets with short timeouts: the probe must finish well inside Docker's and
//! ECS's health-check timeout even when the server hangs.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Connect, write and read each give up after this long.
const TIMEOUT: Duration = Duration::from_secs(2);

/// `Ok(())` when the server on 127.0.0.1:`port` answers `/healthz` with 200; else why not.
pub fn check(port: u16) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|error| format!("connecting to {addr}: {error}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|error| error.to_string())?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|error| error.to_string())?;
    stream
        .write_all(
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: app-healthcheck\r\nConnection: close\r\n\r\n",
        )
        .map_err(|error| format!("sending to {addr}: {error}"))?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < "HTTP/1.1 200".len() {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(count) => read += count,
            Err(error) => return Err(format!("reading from {addr}: {error}")),
        }
    }
    let status_line = String::from_utf8_lossy(&head[..read]);
    if status_line.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("{addr}/healthz answered `{}`", status_line.lines().next().unwrap_or("nothing")))
    }
}
