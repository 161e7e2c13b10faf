//! The local AWS emulator: `moto_server` from the project venv on 127.0.0.1, started once and left
//! running so that `deploy --local`, `status --local`, `plan --local` and `destroy --local` follow
//! each other; `cargo xtask local down` stops it.
//!
//! Its state is in memory: stopping it forgets every stack. Its log is `target/local/moto.log`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::http;
use crate::local::daemon;
use crate::output::Printer;
use crate::venv::Venv;

/// A running emulator.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Emulator {
    pub url: String,
    pub port: u16,
    /// Whether this call started it (false: it was already running).
    pub started: bool,
}

pub fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn pid_file() -> PathBuf {
    daemon::state_dir().join("moto.pid")
}

fn log_file() -> PathBuf {
    daemon::state_dir().join("moto.log")
}

/// Whether an emulator answers on `port`. A different program on the port is an error that names
/// it, rather than a silent "not running".
pub fn probe(port: u16) -> Result<bool> {
    let Ok(response) = http::get(&format!("{}/moto-api/", url(port)), Duration::from_secs(2)) else {
        return Ok(false);
    };
    if response.status == 200 && response.text().to_ascii_lowercase().contains("moto") {
        return Ok(true);
    }
    bail!(
        "port {port} on 127.0.0.1 answers HTTP {} but is not the moto emulator: stop what listens there, or set `emulator_port` under [local] in the config",
        response.status
    )
}

/// Returns the emulator on `port`, starting it (and the venv it runs from) when nothing answers.
pub fn ensure(printer: &Printer, port: u16) -> Result<Emulator> {
    if probe(port)? {
        return Ok(Emulator { url: url(port), port, started: false });
    }
    let venv = Venv::ensure(printer)?;
    let progress = printer.progress("Starting", format!("AWS emulator (moto) on 127.0.0.1:{port}"));
    let program = venv.bin("moto_server");
    let args = ["-H".to_string(), "127.0.0.1".to_string(), "-p".to_string(), port.to_string()];
    let mut child = daemon::spawn(&program, &args, &log_file(), &pid_file())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("the emulator exited at start ({status}); its log is {}; is port {port} free?", log_file().display());
        }
        if probe(port).unwrap_or(false) {
            progress.finish("Started", format!("AWS emulator at {}", url(port)));
            return Ok(Emulator { url: url(port), port, started: true });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the emulator did not answer on port {port} within 30 s; its log is {}", log_file().display())
}

/// Stops the emulator this checkout started. Returns whether one was stopped.
pub fn stop() -> Result<bool> {
    daemon::stop(&pid_file())
}
