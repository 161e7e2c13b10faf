//! What the integration tests share: the project venv, an emulator per test on a free port,
//! scratch folders, and running the real `xtask` binary.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use xtask::output::{Printer, Verbosity};
use xtask::venv::Venv;

/// The project venv, created once per test run if missing (about two minutes on a fresh machine).
pub fn venv() -> &'static Venv {
    static VENV: OnceLock<Venv> = OnceLock::new();
    VENV.get_or_init(|| {
        Venv::ensure(&Printer::plain(Verbosity::Quiet)).unwrap_or_else(|error| {
            panic!("the tests need the project venv; `cargo xtask test` provisions it: {error:#}")
        })
    })
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port()
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
