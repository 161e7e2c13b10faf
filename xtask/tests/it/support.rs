//! Shared helpers of the integration tests: a context, unique names, free ports, a private
//! `deploy.toml` per test, the `xtask` binary, the project venv, an emulator per test, and guards
//! that remove what a test started even when it fails.
//!
//! Other agents and CI jobs use the same Docker engine at the same time, so every test works
//! under its own app name (`it-<pid>-<n>-<time>`): its image tags and container names cannot
//! collide with anyone's.

use std::path::PathBuf;
use std::process::{Child, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xtask::Ctx;
use xtask::docker::Docker;
use xtask::output::{Printer, Verbosity};
use xtask::venv::Venv;

/// A context on the real project root, printing plainly (captured by the test harness).
pub fn ctx() -> Ctx {
    Ctx { root: xtask::project::root(), printer: Printer::plain(Verbosity::Normal) }
}

/// A name no other test or agent uses: `<prefix>-<hex of pid and time><n>`, lowercase, valid as a
/// Docker repository and container name.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
    // Short: the config allows at most 22 characters for an app (its bucket names must fit S3's 63).
    let salt = (u128::from(std::process::id()) ^ millis) & 0xff_ffff;
    format!("{prefix}-{salt:x}{count}")
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A scratch folder for one test under `target/it/`.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = xtask::project::target_dir().join("it").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of the project's `deploy.toml` with `app` replaced, so images and containers are the
/// test's own. Returns its absolute path.
pub fn config_with_app(app: &str) -> PathBuf {
    let original = std::fs::read_to_string(xtask::project::root().join("deploy.toml")).unwrap();
    let mut replaced = false;
    let text: String = original
        .lines()
        .map(|line| {
            if !replaced && line.trim_start().starts_with("app =") {
                replaced = true;
                format!("app = \"{app}\"\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    assert!(replaced, "deploy.toml has no `app =` line to replace");
    let path = scratch_dir(app).join("deploy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The engine, or a failure that says how to get one (never a skip).
pub async fn docker() -> Docker {
    match Docker::connect().await {
        Ok(docker) => docker,
        Err(error) => panic!("these tests need a running Docker engine: {error:#}"),
    }
}

/// Removes containers and image tags when dropped, also when the test panics.
#[derive(Default)]
pub struct Cleanup {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Cleanup {
    pub fn container(&mut self, name: impl Into<String>) {
        self.containers.push(name.into());
    }

    pub fn image(&mut self, reference: impl Into<String>) {
        self.images.push(reference.into());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let containers = std::mem::take(&mut self.containers);
        let images = std::mem::take(&mut self.images);
        // Drop cannot await, and the test's runtime may be gone: clean up on a runtime of our own.
        let cleaned = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let Ok(docker) = Docker::connect().await else { return };
                for name in containers {
                    let _ = docker.remove_container(&name).await;
                }
                for reference in images {
                    let _ = docker.remove_image(&reference).await;
                }
            });
        });
        let _ = cleaned.join();
    }
}

/// Output of one `cargo xtask ...` run.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the real `xtask` binary with `args` and extra environment, from the project root, through
/// xshell (a finite run needs no hand-made `Command`).
pub fn run_xtask(args: &[&str], env: &[(&str, &str)]) -> Run {
    let sh = xshell::Shell::new().unwrap();
    sh.change_dir(xtask::project::root());
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let mut command = xshell::cmd!(sh, "{xtask} {args...}").quiet().ignore_status();
    for (name, value) in env {
        command = command.env(name, value);
    }
    let output = command.output().unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The project venv, created once per test run if missing (about two minutes on a fresh machine).
pub fn venv() -> &'static Venv {
    static VENV: OnceLock<Venv> = OnceLock::new();
    VENV.get_or_init(|| {
        Venv::ensure(&Printer::plain(Verbosity::Quiet)).unwrap_or_else(|error| {
            panic!("the tests need the project venv; `cargo xtask test` provisions it: {error:#}")
        })
    })
}

/// A scratch folder under target/, removed when dropped.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let path =
            xtask::project::target_dir().join("it").join(format!("{name}-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&path).expect("creating a scratch folder");
        Scratch { path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A `moto_server` of its own for one test, stopped when dropped.
pub struct Moto {
    pub port: u16,
    pub url: String,
    child: Child,
    _scratch: Scratch,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_on(free_port())
    }

    /// An emulator on a given port (e.g. to restart one where the config points).
    pub fn start_on(port: u16) -> Moto {
        let venv = venv();
        let scratch = Scratch::new("moto");
        let args = ["-H".to_string(), "127.0.0.1".to_string(), "-p".to_string(), port.to_string()];
        let child = xtask::local::daemon::spawn(
            &venv.bin("moto_server"),
            &args,
            &scratch.path.join("moto.log"),
            &scratch.path.join("moto.pid"),
        )
        .expect("starting moto_server from the project venv");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !xtask::local::moto::probe(port).unwrap_or(false) {
            assert!(Instant::now() < deadline, "moto_server did not answer on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { port, url: xtask::local::moto::url(port), child, _scratch: scratch }
    }

    /// Stops the emulator now (for tests of what happens when it goes away).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// stderr as text, for assertions and failure messages.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
