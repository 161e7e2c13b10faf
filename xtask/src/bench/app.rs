//! `cargo xtask bench app`: the site against nginx serving the same page, measured side by side.
//!
//! Both servers run natively on loopback, pinned with `taskset` to the same CPUs with the same
//! number of workers (nginx worker processes, app worker threads); wrk runs pinned to the other
//! CPUs, so the load generator never steals the servers' cycles. With two CPUs that is one for the
//! servers, one for wrk. Natively rather than in containers: Docker's userland proxy and log
//! driver would be measured too, and they are not what we compare.
//!
//! nginx gets its best configuration for one small file, not the sample's defaults: `sendfile off`
//! (for a page this small, `pread` into the response buffer and one `writev` send the response as
//! one packet; `sendfile` sends headers and body as two packets, or needs `TCP_NOPUSH` and two more
//! syscalls per request to cork them), `open_file_cache` (no open/stat/close per request),
//! unlimited keep-alive requests, the same response headers as the app, and a JSON access log
//! buffered like the app's. Measured with strace here: nginx makes three syscalls per keep-alive
//! request (recvfrom, pread, writev), the app two (recvfrom, writev). Both logs go to `/dev/null`, so each server
//! formats every line and neither waits on the disk.
//!
//! The machine may be shared, so rounds alternate between the servers (nginx, app, app, nginx,
//! ...) and the ratios are medians of per-round ratios: load that comes and goes hits both sides.
//! Besides requests per second the bench reports requests per CPU-second of the server (from the
//! scheduler's per-thread run time), which is less sensitive to other load on the machine.
//!
//! Also measured: the image size, the time from `docker run` (create and start) to the first 200
//! on `/` through the published port (median of three), and the servers' resident memory under
//! load. The last line is `bench app: rps_ratio=R p99_ratio=P image_bytes=N start_ms=S`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use xshell::{Shell, cmd};

use super::{free_port, median};
use crate::Ctx;
use crate::docker::{ContainerSpec, Docker};
use crate::http;
use crate::local::site;
use crate::output::table;
use crate::project;
use crate::site_image::{self, LABEL_APP};

/// Arguments of `cargo xtask bench app`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds of each measured wrk run (1 to 600).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub duration: u32,
    /// Measured runs per server, alternating between nginx and the app (1 to 100).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Connections wrk keeps open (1 to 4096: nginx is measured with 4096 connections per worker,
    /// and more would measure refused connections).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub connections: u32,
    /// The topology file (its `app` names the image).
    #[arg(long, default_value = "deploy.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Everything measured, as `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub nginx: Figures,
    pub app: Figures,
    /// Median of per-round app/nginx requests per second.
    pub rps_ratio: f64,
    /// Median of per-round app/nginx p99 latency (below 1: the app's tail is shorter).
    pub p99_ratio: f64,
    /// Median of per-round app/nginx requests per server CPU-second.
    pub cpu_efficiency_ratio: f64,
    pub image: String,
    pub image_bytes: u64,
    /// `docker run` to the first 200 on `/`, median of three, in milliseconds.
    pub start_ms: u64,
    pub setup: Setup,
    pub rounds: Vec<Round>,
}

/// One server's medians over the rounds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Figures {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub requests_per_cpu_second: f64,
    /// Highest resident memory seen under load (all processes of the server).
    pub rss_max_bytes: u64,
}

/// How the run was arranged.
#[derive(Clone, Debug, Serialize)]
pub struct Setup {
    pub server_cpus: String,
    pub client_cpus: String,
    pub workers: usize,
    pub wrk_threads: usize,
    pub connections: u32,
    pub duration_seconds: u32,
    pub page_bytes: usize,
}

/// One measured run of one server.
#[derive(Clone, Debug, Serialize)]
pub struct Round {
    pub server: &'static str,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub requests: u64,
    pub cpu_seconds: f64,
    pub rss_max_bytes: u64,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    require_tools()?;
    let cpus = split_cpus(&allowed_cpus()?);
    if cpus.server == cpus.client {
        ctx.printer.warn("only one CPU is available: the servers and wrk share it, so the figures are rough");
    }
    let built = site_image::build(ctx, &site_image::Options { config: args.config.clone(), dockerfile: None }).await?;
    let dir = project::target_dir().join("bench").join("app");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let workers = cpus.server.len();
    let app = Server::start_app(&built.binary, &cpus.server, workers, &dir).await?;
    let page = site::get(app.port, "/").await.context("fetching the app's page")?;
    if page.status != 200 {
        bail!("the app answered {} for /; see {}", page.status, dir.join("app.stderr").display());
    }
    let nginx = Server::start_nginx(&dir, &page, &cpus.server, workers).await?;
    let nginx_page = site::get(nginx.port, "/").await.context("fetching nginx's page")?;
    if nginx_page.status != 200 || nginx_page.body != page.body {
        bail!(
            "nginx does not serve the app's page (status {}, {} bytes instead of {}); see {}",
            nginx_page.status,
            nginx_page.body.len(),
            page.body.len(),
            dir.join("nginx").join("error.log").display()
        );
    }
    let setup = Setup {
        server_cpus: cpu_list_arg(&cpus.server),
        client_cpus: cpu_list_arg(&cpus.client),
        workers,
        wrk_threads: cpus.client.len(),
        connections: args.connections,
        duration_seconds: args.duration,
        page_bytes: page.body.len(),
    };
    ctx.printer.status(
        "Measuring",
        format!(
            "{} rounds of {}s per server: servers on CPU {} ({} worker{}), wrk on CPU {} ({} connections)",
            args.rounds,
            args.duration,
            setup.server_cpus,
            workers,
            if workers == 1 { "" } else { "s" },
            setup.client_cpus,
            args.connections
        ),
    );
    let wrk = Wrk { cpus: setup.client_cpus.clone(), threads: setup.wrk_threads, connections: args.connections };
    // Warm both up (page cache, allocator, connection setup) before anything counts.
    wrk.run(nginx.port, 1, &nginx).await?;
    wrk.run(app.port, 1, &app).await?;
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        // Alternate the order so that drifting background load favours neither side.
        let order = if round % 2 == 0 { [&nginx, &app] } else { [&app, &nginx] };
        for server in order {
            let measured = wrk.run(server.port, args.duration, server).await?;
            ctx.printer.detail(
                "Round",
                format!(
                    "{} {}: {:.0} req/s, p50 {}, p99 {}",
                    round + 1,
                    measured.server,
                    measured.rps,
                    micros(measured.p50_us),
                    micros(measured.p99_us)
                ),
            );
            rounds.push(measured);
        }
    }
    app.stop().await;
    nginx.stop().await;

    let docker = Docker::connect().await?;
    let mut starts = Vec::new();
    for _ in 0..3 {
        starts.push(start_to_first_200(&docker, &built.reference, &built.app).await?);
    }
    let start_ms = median(&starts.iter().map(|millis| *millis as f64).collect::<Vec<_>>()).round() as u64;

    let report = summarize(rounds, &built.reference, built.size, start_ms, setup);
    print_report(ctx, &report);
    if args.json {
        ctx.printer.json(&report)?;
    }
    Ok(())
}

/// The tools the bench runs, each with how to install it.
fn require_tools() -> Result<()> {
    let sh = Shell::new()?;
    for (tool, probe, package) in
        [("wrk", "-v", "wrk"), ("nginx", "-v", "nginx"), ("taskset", "--version", "util-linux")]
    {
        let found = cmd!(sh, "{tool} {probe}").quiet().ignore_stdout().ignore_stderr().ignore_status().output();
        if found.is_err() {
            bail!("`{tool}` is not on PATH; install it with `sudo apt-get install {package}`");
        }
    }
    Ok(())
}

/// Which CPUs serve and which load.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cpus {
    server: Vec<usize>,
    client: Vec<usize>,
}

/// The first half of the allowed CPUs (at least one) for the servers, the rest for wrk; with a
/// single CPU both share it.
fn split_cpus(allowed: &[usize]) -> Cpus {
    match allowed.len() {
        0 => Cpus { server: vec![0], client: vec![0] },
        1 => Cpus { server: allowed.to_vec(), client: allowed.to_vec() },
        count => {
            let (server, client) = allowed.split_at(count / 2);
            Cpus { server: server.to_vec(), client: client.to_vec() }
        }
    }
}

/// The CPUs this process may run on (`Cpus_allowed_list`, which honours taskset and cgroups).
fn allowed_cpus() -> Result<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .context("/proc/self/status has no Cpus_allowed_list")?;
    parse_cpu_list(list.trim())
}

/// `0-3,8,10-11` -> `[0, 1, 2, 3, 8, 10, 11]`.
fn parse_cpu_list(list: &str) -> Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|part| !part.is_empty()) {
        let parse = |text: &str| text.parse::<usize>().with_context(|| format!("bad CPU list `{list}`"));
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(parse(first)?..=parse(last)?),
            None => cpus.push(parse(part)?),
        }
    }
    Ok(cpus)
}

/// `[0, 1]` -> `0,1` (taskset's `-c` syntax).
fn cpu_list_arg(cpus: &[usize]) -> String {
    cpus.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// A server process under measurement.
struct Server {
    name: &'static str,
    /// A long-running child that the bench samples (/proc) and signals while wrk runs: xshell only
    /// runs commands to completion, so this is one of the few places that spawns directly.
    child: Child,
    port: u16,
}

impl Server {
    async fn start_app(binary: &Path, cpus: &[usize], workers: usize, dir: &Path) -> Result<Server> {
        let port = free_port()?;
        let stderr = std::fs::File::create(dir.join("app.stderr"))?;
        let child = Command::new("taskset")
            .arg("-c")
            .arg(cpu_list_arg(cpus))
            .arg(binary)
            .env("PORT", port.to_string())
            .env("WORKERS", workers.to_string())
            // The access log is formatted and written for every request, to nowhere.
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let server = Server { name: "app", child, port };
        server.wait_ready("/healthz", &dir.join("app.stderr")).await?;
        Ok(server)
    }

    async fn start_nginx(dir: &Path, page: &http::Response, cpus: &[usize], workers: usize) -> Result<Server> {
        let port = free_port()?;
        let nginx_dir = dir.join("nginx");
        for sub in ["html", "tmp"] {
            std::fs::create_dir_all(nginx_dir.join(sub))?;
        }
        std::fs::write(nginx_dir.join("html").join("index.html"), &page.body)?;
        let config = nginx_config(&nginx_dir, port, workers, page, running_as_root());
        let config_path = nginx_dir.join("nginx.conf");
        std::fs::write(&config_path, config)?;
        let error_log = nginx_dir.join("error.log");
        let child = Command::new("taskset")
            .arg("-c")
            .arg(cpu_list_arg(cpus))
            .arg("nginx")
            .arg("-p")
            .arg(&nginx_dir)
            .arg("-c")
            .arg(&config_path)
            .arg("-e")
            .arg(&error_log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx")?;
        let server = Server { name: "nginx", child, port };
        server.wait_ready("/", &error_log).await?;
        Ok(server)
    }

    async fn wait_ready(&self, path: &str, log: &Path) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(reply) = site::get(self.port, path).await
                && reply.status == 200
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not answer on port {} within 10 s; see {}", self.name, self.port, log.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's processes: the one started and its children (nginx's workers).
    fn pids(&self) -> Vec<u32> {
        let root = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{root}/task/{root}/children")).unwrap_or_default();
        std::iter::once(root).chain(children.split_whitespace().filter_map(|pid| pid.parse().ok())).collect()
    }

    /// Nanoseconds on CPU of every thread of every process of the server.
    fn cpu_nanos(&self) -> u64 {
        let mut total = 0;
        for pid in self.pids() {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
            for task in tasks.flatten() {
                let schedstat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
                total += schedstat.split_whitespace().next().and_then(|nanos| nanos.parse::<u64>().ok()).unwrap_or(0);
            }
        }
        total
    }

    /// Resident memory of all the server's processes.
    fn rss_bytes(&self) -> u64 {
        self.pids()
            .iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter_map(|status| {
                let line = status.lines().find(|line| line.starts_with("VmRSS:"))?.to_string();
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .map(|kilobytes| kilobytes * 1024)
            .sum()
    }

    /// SIGTERM (the app drains; nginx stops), then SIGKILL if it lingers.
    async fn stop(mut self) {
        if let Ok(sh) = Shell::new() {
            let pid = self.child.id().to_string();
            let _ = cmd!(sh, "kill -TERM {pid}").quiet().ignore_stderr().run();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The nginx configuration for the comparison; see the module docs for the choices.
fn nginx_config(dir: &Path, port: u16, workers: usize, page: &http::Response, as_root: bool) -> String {
    let dir = dir.display();
    let mut config = String::new();
    config
        .push_str("# Generated by `cargo xtask bench app`: nginx serving the app's page, tuned for one small file.\n");
    if as_root {
        // Root's workers would switch to `nobody`, who may not read the checkout; this is a
        // loopback-only benchmark server.
        config.push_str("user root;\n");
    }
    let _ = write!(
        config,
        r#"worker_processes {workers};
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    types {{ text/html html; }}
    default_type application/octet-stream;
    charset utf-8;
    log_format json escape=json '{{"time":"$time_iso8601","remote":"$remote_addr:$remote_port","method":"$request_method","path":"$request_uri","status":$status,"bytes":$body_bytes_sent,"seconds":"$request_time","ua":"$http_user_agent"}}';
    access_log /dev/null json buffer=32k flush=250ms;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    sendfile off;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=16 inactive=60s;
    open_file_cache_valid 60s;
    server_tokens off;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        root {dir}/html;
        index index.html;
"#
    );
    for name in
        ["content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options", "cache-control"]
    {
        if let Some(value) = page.header(name) {
            let _ = writeln!(config, "        add_header {name} \"{}\" always;", value.replace('"', "\\\""));
        }
    }
    config.push_str("    }\n}\n");
    config
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("Uid:"))?.to_string();
            line.split_whitespace().nth(2).map(|effective| effective == "0")
        })
        .unwrap_or(false)
}

/// wrk, pinned to the client CPUs.
struct Wrk {
    cpus: String,
    threads: usize,
    connections: u32,
}

impl Wrk {
    /// Runs wrk against `port` for `seconds` while sampling the server's memory.
    async fn run(&self, port: u16, seconds: u32, server: &Server) -> Result<Round> {
        let url = format!("http://127.0.0.1:{port}/");
        let (cpus, threads, connections) = (self.cpus.clone(), self.threads.to_string(), self.connections.to_string());
        let duration = format!("{seconds}s");
        let cpu_before = server.cpu_nanos();
        let wrk = tokio::task::spawn_blocking(move || -> Result<String> {
            let sh = Shell::new()?;
            let output = cmd!(
                sh,
                "taskset -c {cpus} wrk --threads {threads} --connections {connections} --duration {duration} --latency {url}"
            )
            .quiet()
            .read()
            .context("running wrk")?;
            Ok(output)
        });
        let mut rss_max = 0;
        while !wrk.is_finished() {
            rss_max = rss_max.max(server.rss_bytes());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let output = wrk.await.context("waiting for wrk")??;
        let cpu_seconds = server.cpu_nanos().saturating_sub(cpu_before) as f64 / 1e9;
        let parsed = parse_wrk(&output).with_context(|| format!("reading wrk's output:\n{output}"))?;
        if parsed.errors > 0 {
            bail!("wrk saw {} failed or non-2xx responses from {}:\n{output}", parsed.errors, server.name);
        }
        Ok(Round {
            server: server.name,
            rps: parsed.rps,
            p50_us: parsed.p50_us,
            p99_us: parsed.p99_us,
            requests: parsed.requests,
            cpu_seconds,
            rss_max_bytes: rss_max,
        })
    }
}

/// What wrk printed.
#[derive(Clone, Debug, PartialEq)]
struct WrkOutput {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    requests: u64,
    /// Non-2xx/3xx responses plus read, write and timeout errors.
    errors: u64,
}

fn parse_wrk(output: &str) -> Result<WrkOutput> {
    let mut parsed = WrkOutput { rps: f64::NAN, p50_us: f64::NAN, p99_us: f64::NAN, requests: 0, errors: 0 };
    for line in output.lines().map(str::trim) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["Requests/sec:", value] => parsed.rps = value.parse()?,
            ["50%", value] => parsed.p50_us = duration_us(value)?,
            ["99%", value] => parsed.p99_us = duration_us(value)?,
            [count, "requests", "in", ..] => parsed.requests = count.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", count] => parsed.errors += count.parse::<u64>()?,
            ["Socket", "errors:", ..] => {
                // `Socket errors: connect 0, read 0, write 0, timeout 0`
                for pair in fields[2..].chunks(2) {
                    if let [_, count] = pair {
                        parsed.errors += count.trim_end_matches(',').parse::<u64>()?;
                    }
                }
            }
            _ => {}
        }
    }
    if parsed.rps.is_nan() || parsed.p50_us.is_nan() || parsed.p99_us.is_nan() {
        bail!("no Requests/sec or latency distribution");
    }
    Ok(parsed)
}

/// wrk's `812.00us`, `1.23ms`, `2.00s`, `1.50m` in microseconds.
fn duration_us(text: &str) -> Result<f64> {
    let split = text.find(|character: char| character.is_ascii_alphabetic()).context("a unit")?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse()?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        other => bail!("unknown unit `{other}` in `{text}`"),
    };
    Ok(number * scale)
}

/// `docker run` of the image to the first 200 on `/` through the published port.
async fn start_to_first_200(docker: &Docker, reference: &str, app: &str) -> Result<u64> {
    let port = free_port()?;
    let name = format!("gbg-bench-{}-{port}", std::process::id());
    let spec = ContainerSpec {
        name: name.clone(),
        image: reference.to_string(),
        env: vec!["PORT=8080".into()],
        labels: [(LABEL_APP.to_string(), app.to_string()), ("gbg.role".to_string(), "bench".to_string())].into(),
        publish: Some((8080, site::HOST_IP.into(), port)),
        health_interval: None,
        hardened: true,
    };
    let started = Instant::now();
    let result = async {
        docker.run(&spec).await?;
        loop {
            if let Ok(reply) = site::get(port, "/").await
                && reply.status == 200
            {
                return Ok(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("container {name} did not answer 200 on / within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    .await;
    docker.remove_container(&name).await?;
    Ok(result?.as_millis() as u64)
}

fn summarize(rounds: Vec<Round>, image: &str, image_bytes: u64, start_ms: u64, setup: Setup) -> Report {
    let figures = |server: &str| {
        let mine: Vec<&Round> = rounds.iter().filter(|round| round.server == server).collect();
        let pick = |value: fn(&Round) -> f64| median(&mine.iter().map(|round| value(round)).collect::<Vec<_>>());
        Figures {
            rps: pick(|round| round.rps),
            p50_us: pick(|round| round.p50_us),
            p99_us: pick(|round| round.p99_us),
            requests_per_cpu_second: pick(efficiency),
            rss_max_bytes: mine.iter().map(|round| round.rss_max_bytes).max().unwrap_or(0),
        }
    };
    // Pair the i-th nginx round with the i-th app round: they ran back to back.
    let nginx_rounds: Vec<&Round> = rounds.iter().filter(|round| round.server == "nginx").collect();
    let app_rounds: Vec<&Round> = rounds.iter().filter(|round| round.server == "app").collect();
    let ratio = |value: fn(&Round) -> f64| {
        let ratios: Vec<f64> =
            nginx_rounds.iter().zip(&app_rounds).map(|(nginx, app)| value(app) / value(nginx)).collect();
        median(&ratios)
    };
    Report {
        nginx: figures("nginx"),
        app: figures("app"),
        rps_ratio: ratio(|round| round.rps),
        p99_ratio: ratio(|round| round.p99_us),
        cpu_efficiency_ratio: ratio(efficiency),
        image: image.to_string(),
        image_bytes,
        start_ms,
        setup,
        rounds,
    }
}

fn efficiency(round: &Round) -> f64 {
    if round.cpu_seconds > 0.0 { round.requests as f64 / round.cpu_seconds } else { f64::NAN }
}

fn micros(us: f64) -> String {
    if us >= 1000.0 { format!("{:.2} ms", us / 1000.0) } else { format!("{us:.0} us") }
}

fn print_report(ctx: &Ctx, report: &Report) {
    let row = |name: &str, figures: &Figures| {
        vec![
            name.to_string(),
            format!("{:.0}", figures.rps),
            micros(figures.p50_us),
            micros(figures.p99_us),
            format!("{:.0}", figures.requests_per_cpu_second),
            site_image::human_bytes(figures.rss_max_bytes),
        ]
    };
    let rows = vec![
        ["", "requests/s", "p50", "p99", "requests/CPU-s", "RSS under load"].map(String::from).to_vec(),
        row("nginx", &report.nginx),
        row("app", &report.app),
        vec![
            "app/nginx".into(),
            format!("{:.2}", report.rps_ratio),
            String::new(),
            format!("{:.2}", report.p99_ratio),
            format!("{:.2}", report.cpu_efficiency_ratio),
            String::new(),
        ],
    ];
    ctx.printer.text(table(&rows).trim_end());
    ctx.printer.text(format!(
        "image {} is {} ({} bytes); docker run to first 200: {} ms (median of 3)",
        report.image,
        site_image::human_bytes(report.image_bytes),
        report.image_bytes,
        report.start_ms
    ));
    ctx.printer.text(format!(
        "bench app: rps_ratio={:.2} p99_ratio={:.2} image_bytes={} start_ms={}",
        report.rps_ratio, report.p99_ratio, report.image_bytes, report.start_ms
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "Running 3s test @ http://127.0.0.1:18772/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.66ms  215.31us   6.02ms   88.41%
    Req/Sec    37.47k     1.12k   39.10k    70.00%
  Latency Distribution
     50%    1.66ms
     75%    1.75ms
     90%    1.88ms
     99%    2.63ms
  111822 requests in 3.00s, 119.10MB read
Requests/sec:  37274.63
Transfer/sec:     39.70MB
";

    #[test]
    fn parses_wrk_output() {
        let parsed = parse_wrk(WRK_OUTPUT).unwrap();
        assert_eq!(parsed, WrkOutput { rps: 37274.63, p50_us: 1660.0, p99_us: 2630.0, requests: 111822, errors: 0 });
        let with_errors = WRK_OUTPUT.replace(
            "Requests/sec",
            "  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec",
        );
        assert_eq!(parse_wrk(&with_errors).unwrap().errors, 7);
        assert!(parse_wrk("wrk: connection refused").is_err());
    }

    #[test]
    fn reads_wrk_durations() {
        let check = |text: &str, expect: f64| assert_eq!(duration_us(text).unwrap(), expect, "{text}");
        check("812.00us", 812.0);
        check("1.23ms", 1230.0);
        check("2.00s", 2_000_000.0);
        check("1.50m", 90_000_000.0);
        assert!(duration_us("5h").is_err());
    }

    #[test]
    fn splits_cpus_between_servers_and_wrk() {
        let check = |list: &str, server: &[usize], client: &[usize]| {
            let cpus = split_cpus(&parse_cpu_list(list).unwrap());
            assert_eq!((cpus.server.as_slice(), cpus.client.as_slice()), (server, client), "{list}");
        };
        check("0-1", &[0], &[1]);
        check("0", &[0], &[0]);
        check("0-3", &[0, 1], &[2, 3]);
        check("2,5-7", &[2, 5], &[6, 7]);
        check("0-2", &[0], &[1, 2]);
        assert!(parse_cpu_list("a-b").is_err());
        assert_eq!(cpu_list_arg(&[0, 2]), "0,2");
    }

    #[test]
    fn medians_and_ratios_pair_rounds() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let round = |server: &'static str, rps: f64, p99_us: f64| Round {
            server,
            rps,
            p50_us: 1.0,
            p99_us,
            requests: rps as u64,
            cpu_seconds: 1.0,
            rss_max_bytes: 10,
        };
        let rounds = vec![
            round("nginx", 100.0, 10.0),
            round("app", 150.0, 5.0),
            round("app", 120.0, 10.0),
            round("nginx", 100.0, 10.0),
            round("nginx", 50.0, 4.0),
            round("app", 200.0, 2.0),
        ];
        let setup = Setup {
            server_cpus: "0".into(),
            client_cpus: "1".into(),
            workers: 1,
            wrk_threads: 1,
            connections: 64,
            duration_seconds: 3,
            page_bytes: 649,
        };
        let report = summarize(rounds, "web:abc", 1_700_000, 300, setup);
        // Per-round rps ratios 1.5, 1.2, 4.0 (median 1.5); p99 ratios 0.5, 1.0, 0.5 (median 0.5).
        assert_eq!(report.rps_ratio, 1.5);
        assert_eq!(report.p99_ratio, 0.5);
        assert_eq!(report.app.rps, 150.0);
        assert_eq!(report.nginx.rps, 100.0);
        assert_eq!(report.app.rss_max_bytes, 10);
    }

    #[test]
    fn nginx_config_serves_the_page_with_the_apps_headers() {
        let page = http::Response {
            status: 200,
            headers: [
                ("content-security-policy".into(), "default-src 'none'".into()),
                ("x-content-type-options".into(), "nosniff".into()),
            ]
            .into(),
            body: b"<html></html>".to_vec(),
        };
        let config = nginx_config(Path::new("/tmp/bench"), 9000, 2, &page, false);
        assert!(config.contains("worker_processes 2;"));
        assert!(config.contains("listen 127.0.0.1:9000 backlog=1024;"));
        assert!(config.contains("add_header content-security-policy \"default-src 'none'\" always;"));
        assert!(config.contains("access_log /dev/null json buffer=32k flush=250ms;"));
        assert!(!config.contains("user root"));
        assert!(config.contains("sendfile off;") && config.contains("open_file_cache max=16"));
        assert!(nginx_config(Path::new("/tmp/bench"), 9000, 1, &page, true).contains("user root;"));
    }
}
