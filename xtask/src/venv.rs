//! The project's Python virtual environment: moto (the local AWS emulator), cfn-lint and checkov
//! (template linters) and awscli (the original runbook, for the deploy benchmark).
//!
//! It lives in `target/venv` and holds exactly the versions frozen in `xtask/requirements.txt`,
//! installed with `pip install --no-deps` so no resolver runs and every machine gets the same
//! tools. A stamp file records the hash of the requirements it was built from; when the file
//! changes, the venv is rebuilt. Creating it takes about two minutes on a fresh machine.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

use crate::output::Printer;
use crate::project;

/// A ready venv.
#[derive(Clone, Debug)]
pub struct Venv {
    dir: PathBuf,
}

impl Venv {
    /// Where the venv lives.
    pub fn dir() -> PathBuf {
        project::target_dir().join("venv")
    }

    /// The venv if it is already installed and current, without installing anything.
    pub fn existing() -> Option<Venv> {
        let dir = Venv::dir();
        let stamp = std::fs::read_to_string(dir.join(STAMP)).ok()?;
        (stamp.trim() == requirements_hash().ok()?).then_some(Venv { dir })
    }

    /// Returns the venv, creating or refreshing it first when it is missing or stale.
    pub fn ensure(printer: &Printer) -> Result<Venv> {
        if let Some(venv) = Venv::existing() {
            return Ok(venv);
        }
        let dir = Venv::dir();
        let requirements = requirements_path();
        let hash = requirements_hash()?;
        let python = python()?;
        let progress = printer
            .progress("Installing", format!("Python tools into {} (moto, cfn-lint, checkov, awscli)", dir.display()));
        let sh = Shell::new()?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing the stale venv {}", dir.display()))?;
        }
        cmd!(sh, "{python} -m venv {dir}").quiet().ignore_stdout().run().with_context(|| {
            format!("creating a venv with `{python} -m venv`; on Debian install it with `apt-get install python3-venv`")
        })?;
        let pip = dir.join("bin/pip");
        cmd!(sh, "{pip} install --quiet --disable-pip-version-check --no-deps -r {requirements}")
            .quiet()
            .run()
            .with_context(|| {
                format!("installing {} into {}; PyPI must be reachable", requirements.display(), dir.display())
            })?;
        std::fs::write(dir.join(STAMP), &hash)?;
        progress.finish("Installed", format!("Python tools in {}", dir.display()));
        Ok(Venv { dir })
    }

    /// The path of an executable installed in the venv, e.g. `bin("cfn-lint")`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

const STAMP: &str = ".gbg-requirements.sha256";

fn requirements_path() -> PathBuf {
    project::root().join("xtask/requirements.txt")
}

fn requirements_hash() -> Result<String> {
    let path = requirements_path();
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&text)))
}

/// The Python to build the venv with: `GBG_PYTHON`, else `python3` on PATH.
fn python() -> Result<String> {
    if let Some(python) = std::env::var_os("GBG_PYTHON") {
        return Ok(python.to_string_lossy().into_owned());
    }
    let sh = Shell::new()?;
    if cmd!(sh, "python3 --version").quiet().ignore_stdout().ignore_stderr().run().is_err() {
        bail!(
            "python3 is not on PATH: install Python 3 with venv support (`apt-get install python3 python3-venv`) or set GBG_PYTHON"
        );
    }
    Ok("python3".to_string())
}
