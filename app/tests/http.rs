//! The real binary over real TCP: status codes, headers, HEAD, 304, 404, traversal attempts,
//! oversized requests, the access log, the health probe, and a SIGTERM that lets a slow request
//! finish before the process exits.
//!
//! Each test starts its own server on a port the kernel picks (`PORT=0`; the `listening` log line
//! names it), so tests run in parallel with each other and with other users of the machine. The
//! binary is built with the test-only slow route (`test-slow-route`, enabled through this crate's
//! dev-dependency on itself; release builds do not have it).
//!
//! Requests are written by hand on plain sockets: an HTTP client library would normalise
//! `/../` and `%2e%2e` before they ever reached the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xshell::{Shell, cmd};

/// A running `app` with its stdout (the access log) collected line by line.
struct Server {
    child: Child,
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start() -> Server {
        Server::start_with(&[])
    }

    fn start_with(env: &[(&str, &str)]) -> Server {
        // A long-running child that must be signalled: xshell runs commands to completion only.
        let mut command = Command::new(env!("CARGO_BIN_EXE_app"));
        command.env("PORT", "0").env("WORKERS", "2").stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("starting the app binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (port, lines) = read_log(stdout);
        Server { child, port, lines }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    fn request(&self, raw: &str) -> Reply {
        request(self.addr(), raw.as_bytes())
    }

    fn get(&self, target: &str) -> Reply {
        self.request(&format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"))
    }

    fn terminate(&self) {
        let sh = Shell::new().unwrap();
        let pid = self.child.id().to_string();
        cmd!(sh, "kill -TERM {pid}").run().expect("sending SIGTERM");
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the app did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log lines so far, parsed.
    fn log(&self) -> Vec<serde_json::Value> {
        self.lines.lock().unwrap().iter().map(|line| serde_json::from_str(line).expect(line)).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the `listening` line for the port, then keeps collecting lines in the background.
fn read_log(stdout: ChildStdout) -> (u16, Arc<Mutex<Vec<String>>>) {
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first).expect("reading the app's first log line");
    let event: serde_json::Value = serde_json::from_str(&first).unwrap_or_else(|_| panic!("not JSON: {first}"));
    assert_eq!(event["event"], "listening", "{first}");
    let addr = event["addr"].as_str().unwrap();
    let port = addr.rsplit(':').next().unwrap().parse().unwrap();
    let lines = Arc::new(Mutex::new(vec![first.trim_end().to_string()]));
    let collected = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { break };
            collected.lock().unwrap().push(line);
        }
    });
    (port, lines)
}

/// A response as read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// Writes `raw`, reads until the server closes, parses one response.
fn request(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connecting to the app");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(raw).unwrap();
    let mut bytes = Vec::new();
    // A server may close early on a bad request while we still write; what it answered is read.
    let _ = stream.read_to_end(&mut bytes);
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Reply {
    let split = bytes.windows(4).position(|window| window == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_string(), value.trim().to_string())
        })
        .collect();
    Reply { status, headers, body: bytes[split + 4..].to_vec() }
}

fn assert_security_headers(reply: &Reply) {
    let csp = reply.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
}

#[test]
fn serves_the_page_health_and_version() {
    let server = Server::start();
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(page.header("content-length"), Some(page.body.len().to_string().as_str()));
    assert_security_headers(&page);
    let etag = page.header("etag").expect("an ETag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "a strong ETag: {etag}");
    let html = page.text();
    assert!(html.contains("<title>Sample ECS Deployment using CodePipeline</title>"));
    assert!(html.contains("Congratulations"));
    assert!(!html.contains("{{"), "placeholders left in the page");

    let health = server.get("/healthz");
    assert_eq!((health.status, health.text().as_str()), (200, "ok"));
    assert_eq!(health.header("cache-control"), Some("no-store"));
    assert_security_headers(&health);

    let version = server.get("/version");
    assert_eq!(version.status, 200);
    assert_eq!(version.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&version.body).unwrap();
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    let commit = json["commit"].as_str().unwrap();
    assert!(html.contains(&format!("commit {commit}")), "the page shows the running commit {commit}");
    assert!(json["build_time"].is_string());
}

#[test]
fn head_has_the_get_headers_and_no_body() {
    let server = Server::start();
    let get = server.get("/");
    let head = server.request("HEAD / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD sent a body: {:?}", head.text());
    assert_eq!(head.header("content-length"), get.header("content-length"));
    assert_eq!(head.header("etag"), get.header("etag"));
    assert_eq!(head.header("content-type"), get.header("content-type"));
}

#[test]
fn if_none_match_gives_304() {
    let server = Server::start();
    let etag = server.get("/").header("etag").unwrap().to_string();
    let check = |if_none_match: &str, status: u16| {
        let reply = server.request(&format!(
            "GET / HTTP/1.1\r\nHost: test\r\nIf-None-Match: {if_none_match}\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(reply.status, status, "If-None-Match: {if_none_match}");
        if status == 304 {
            assert!(reply.body.is_empty());
            assert_eq!(reply.header("etag"), Some(etag.as_str()));
        }
    };
    check(&etag, 304);
    check(&format!("\"stale\", {etag}"), 304);
    check("*", 304);
    check("\"stale\"", 200);
}

#[test]
fn unknown_paths_and_traversal_attempts_are_404() {
    let server = Server::start();
    let check = |target: &str, status: u16| {
        let reply = server.get(target);
        assert_eq!(reply.status, status, "GET {target}");
        assert!(!reply.text().contains("root:"), "GET {target} leaked a file");
        assert_security_headers(&reply);
    };
    check("/nope", 404);
    check("/index.html", 404);
    check("/../etc/passwd", 404);
    check("/../../../../etc/passwd", 404);
    check("/%2e%2e/%2e%2e/etc/passwd", 404);
    check("/%2E%2E%2Fetc%2Fpasswd", 404);
    check("//etc/passwd", 404);
    check("/./healthz", 404);
    check("/..%2f..%2fCargo.toml", 404);
    check("/Cargo.toml", 404);
    check("/app", 404);
    // Methods other than GET and HEAD on a real path are refused with the allowed ones named.
    let post = server.request("POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[test]
fn oversized_requests_are_refused_and_the_server_keeps_serving() {
    let server = Server::start();
    let long_target = format!("/{}", "a".repeat(4 * 1024));
    assert_eq!(server.get(&long_target).status, 414);
    let huge_target = format!("/{}", "a".repeat(64 * 1024));
    assert_eq!(server.get(&huge_target).status, 431);
    let huge_header =
        format!("GET / HTTP/1.1\r\nHost: test\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "b".repeat(64 * 1024));
    assert_eq!(server.request(&huge_header).status, 431);
    assert_eq!(server.get("/healthz").status, 200, "the server must survive oversized requests");
}

#[test]
fn logs_one_json_line_per_request() {
    let mut server = Server::start();
    server.request("GET /?from=test HTTP/1.1\r\nHost: test\r\nUser-Agent: it \"quoted\"\r\nConnection: close\r\n\r\n");
    server.get("/nope");
    server.terminate();
    assert!(server.wait(Duration::from_secs(10)).success());
    // The collector thread may still be reading the last lines after the exit.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().iter().any(|line| line["event"] == "stopped") {
        assert!(Instant::now() < deadline, "no `stopped` line: {:?}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let requests: Vec<_> = server.log().into_iter().filter(|line| line.get("status").is_some()).collect();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let first = &requests[0];
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/?from=test");
    assert_eq!(first["status"], 200);
    assert_eq!(first["ua"], "it \"quoted\"");
    assert!(first["bytes"].as_u64().unwrap() > 100);
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    assert!(first["remote"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(requests[1]["status"], 404);
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits_zero() {
    let mut server = Server::start_with(&[("WORKERS", "1")]);
    let addr = server.addr();
    let slow = std::thread::spawn(move || {
        let started = Instant::now();
        let reply = request(addr, b"GET /__test/slow?ms=1500 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        (reply, started.elapsed())
    });
    // Wait until the slow request is inside the server, then stop it.
    std::thread::sleep(Duration::from_millis(400));
    server.terminate();
    // New connections are refused at once: the listener closed.
    let deadline = Instant::now() + Duration::from_secs(1);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (reply, elapsed) = slow.join().unwrap();
    assert_eq!(reply.status, 200, "the request in flight was cut");
    assert_eq!(reply.text(), "slow request done\n");
    assert!(elapsed >= Duration::from_millis(1400), "it did take its time: {elapsed:?}");
    let status = server.wait(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sigterm_does_not_wait_for_idle_keep_alive_connections() {
    let mut server = Server::start();
    let mut idle = TcpStream::connect(server.addr()).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut buffer = [0u8; 512];
    let read = idle.read(&mut buffer).unwrap();
    assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    server.terminate();
    let status = server.wait(Duration::from_secs(5));
    assert!(status.success());
    assert!(started.elapsed() < Duration::from_secs(3), "an idle connection held the drain: {:?}", started.elapsed());
}

/// Reads one response to a keep-alive request (its body is `Content-Length` long).
fn read_response(stream: &mut TcpStream) -> Reply {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer).expect("reading a response");
        assert!(read > 0, "the server closed the connection mid-response");
        bytes.extend_from_slice(&buffer[..read]);
        if let Some(split) = bytes.windows(4).position(|window| window == b"\r\n\r\n") {
            let reply = parse(&bytes);
            let length: usize = reply.header("content-length").unwrap_or("0").parse().unwrap();
            if bytes.len() >= split + 4 + length {
                return reply;
            }
        }
    }
}

/// Reads until the server closes the connection; returns how long that took.
fn time_until_closed(stream: &mut TcpStream, started: Instant) -> Duration {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}"),
    }
    started.elapsed()
}

#[test]
fn a_request_head_that_never_ends_is_cut_off_and_the_server_keeps_serving() {
    let server = Server::start_with(&[("REQUEST_TIMEOUT", "1")]);
    let started = Instant::now();
    // A slow-header client, and one that connects and sends nothing.
    let mut trickling = TcpStream::connect(server.addr()).unwrap();
    trickling.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n").unwrap();
    let mut silent = TcpStream::connect(server.addr()).unwrap();
    for (name, stream) in [("trickling", &mut trickling), ("silent", &mut silent)] {
        let elapsed = time_until_closed(stream, started);
        assert!(elapsed >= Duration::from_secs(1), "{name}: cut before the request timeout: {elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{name}: not cut off within the timeout and a tick: {elapsed:?}");
    }
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn idle_keep_alive_connections_outlive_the_request_timeout_then_close() {
    let server = Server::start_with(&[("REQUEST_TIMEOUT", "1"), ("KEEPALIVE_TIMEOUT", "3")]);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
    stream.write_all(request).unwrap();
    assert_eq!(read_response(&mut stream).status, 200);
    // Idle for longer than the request timeout, within the keep-alive timeout: still open.
    std::thread::sleep(Duration::from_millis(1800));
    stream.write_all(request).unwrap();
    let reply = read_response(&mut stream);
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));
    let idle_since = Instant::now();
    let elapsed = time_until_closed(&mut stream, idle_since);
    assert!(elapsed >= Duration::from_secs(3), "closed before the keep-alive timeout: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "not closed within the keep-alive timeout and a tick: {elapsed:?}");
}

#[test]
fn healthcheck_probes_the_local_server() {
    let server = Server::start();
    let sh = Shell::new().unwrap();
    let app = env!("CARGO_BIN_EXE_app");
    let port = server.port.to_string();
    cmd!(sh, "{app} healthcheck").env("PORT", &port).quiet().run().expect("healthy server reported unhealthy");
    // A port nobody listens on: bind one, learn it, close it.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let output = cmd!(sh, "{app} healthcheck").env("PORT", &free).quiet().ignore_status().output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unhealthy"));
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let server = Server::start();
    let sh = Shell::new().unwrap();
    let app = env!("CARGO_BIN_EXE_app");
    let port = server.port.to_string();
    let output = cmd!(sh, "{app}").env("PORT", &port).quiet().ignore_status().output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("0.0.0.0:{port}")) && stderr.contains("PORT"), "{stderr}");
}

#[test]
fn bad_settings_exit_2() {
    let sh = Shell::new().unwrap();
    let app = env!("CARGO_BIN_EXE_app");
    let output = cmd!(sh, "{app}").env("PORT", "http").quiet().ignore_status().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("PORT must be"));
    // Commands that do not serve or probe do not read the settings.
    let version = cmd!(sh, "{app} version").env("PORT", "http").quiet().output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("app "), "{version:?}");
}
