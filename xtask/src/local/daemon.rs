//! Long-running helper processes of the local stack (the emulator, the registries): started
//! detached so they outlive the `cargo xtask` that started them, found again through a pid file,
//! stopped on `cargo xtask local down`.
//!
//! This is the one place in the xtask that spawns a process with `std::process::Command`: xshell
//! runs commands to completion, and these must keep running in their own process group after we
//! exit. Short commands go through xshell everywhere else.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};
use serde::Serialize;
use xshell::{Shell, cmd};

use crate::project;

/// One running piece of the local stack: a row of `local status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartStatus {
    /// `site`, `emulator`, `registry`.
    pub part: String,
    /// The container or process name.
    pub name: String,
    /// `healthy`, `running`, `exited`, ...
    pub state: String,
    /// Where it answers, when it does.
    pub url: Option<String>,
    /// What it runs (image, version, region).
    pub detail: String,
}

/// Where the local stack keeps its state: `GBG_LOCAL_DIR`, else `target/local`. Tests point it at
/// a temporary folder so that parallel runs never share state.
pub fn state_dir() -> PathBuf {
    match std::env::var_os("GBG_LOCAL_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => project::target_dir().join("local"),
    }
}

/// Starts `program args` in its own process group with stdin closed and stdout and stderr appended
/// to `log`; records its pid in `pid_file`. The caller waits for readiness.
pub fn spawn(program: &Path, args: &[String], log: &Path, pid_file: &Path) -> Result<Child> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let out =
        File::options().create(true).append(true).open(log).with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    std::fs::write(pid_file, child.id().to_string()).with_context(|| format!("writing {}", pid_file.display()))?;
    Ok(child)
}

/// Stops the process named in `pid_file`, if it still runs, and removes the file. Returns whether
/// a process was stopped.
pub fn stop(pid_file: &Path) -> Result<bool> {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return Ok(false);
    };
    let pid = text.trim().to_string();
    let _ = std::fs::remove_file(pid_file);
    if pid.parse::<u32>().is_err() || !Path::new("/proc").join(&pid).exists() {
        return Ok(false);
    }
    let sh = Shell::new()?;
    // SIGTERM to the process group: the emulator's server threads and any children go with it.
    let group = format!("-{pid}");
    cmd!(sh, "kill -TERM -- {group}")
        .quiet()
        .ignore_stderr()
        .run()
        .or_else(|_| cmd!(sh, "kill -TERM {pid}").quiet().run())?;
    for _ in 0..50 {
        if !Path::new("/proc").join(&pid).exists() || is_zombie(&pid) {
            return Ok(true);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    cmd!(sh, "kill -KILL -- {group}").quiet().ignore_stderr().run().ok();
    Ok(true)
}

fn is_zombie(pid: &str) -> bool {
    std::fs::read_to_string(Path::new("/proc").join(pid).join("stat"))
        .map(|stat| stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
        .unwrap_or(true)
}
