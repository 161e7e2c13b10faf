//! Programs the xtask builds from crates.io at a pinned version: cfn-guard, AWS's CloudFormation
//! Guard, which runs the Guard rules of `cargo xtask lint` (`cfn/guard/*.guard`).
//!
//! Each is installed with `cargo install --locked` into `target/tools` (under `CARGO_TARGET_DIR`
//! when set), only when it is missing there or reports another version, so every machine (a
//! developer's, CI, CodeBuild) runs the same build of it and nothing outside the project changes.
//! Building cfn-guard from source takes about four and a half minutes on two cores, once: the
//! build folder is removed afterwards, the binary stays. A lock file keeps concurrent lints and
//! tests from installing twice.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::output::Printer;
use crate::project;

/// A binary of a crates.io package, pinned to one version.
#[derive(Clone, Copy, Debug)]
pub struct CargoTool {
    /// The package on crates.io.
    pub package: &'static str,
    /// The exact version installed (`cargo install --version` with a bare version means `=`).
    pub version: &'static str,
    /// The binary the package installs.
    pub bin: &'static str,
}

/// cfn-guard 3.2.1, the CloudFormation Guard CLI (`cfn-guard validate`).
pub const CFN_GUARD: CargoTool = CargoTool { package: "cfn-guard", version: "3.2.1", bin: "cfn-guard" };

impl CargoTool {
    /// Where the binary is installed: `target/tools/bin/<bin>`.
    pub fn path(&self) -> PathBuf {
        tools_dir().join("bin").join(self.bin)
    }

    /// The binary if it is installed and reports the pinned version, without installing anything.
    pub fn existing(&self) -> Option<PathBuf> {
        let path = self.path();
        if !path.is_file() {
            return None;
        }
        let sh = Shell::new().ok()?;
        let output = cmd!(sh, "{path} --version").quiet().ignore_stderr().read().ok()?;
        // `cfn-guard --version` prints `cfn-guard 3.2.1`.
        (output.split_whitespace().last() == Some(self.version)).then_some(path)
    }

    /// Returns the binary, installing it first when it is missing or of another version.
    pub fn ensure(&self, printer: &Printer) -> Result<PathBuf> {
        if let Some(path) = self.existing() {
            return Ok(path);
        }
        let dir = tools_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock_path = dir.join(".install.lock");
        let lock = std::fs::File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
        // Held until this function returns: a second lint or test waits here, then finds the
        // binary that the first one installed.
        lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
        if let Some(path) = self.existing() {
            return Ok(path);
        }

        let CargoTool { package, version, bin } = *self;
        let build = dir.join("build");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let progress = printer.progress(
            "Installing",
            format!("{package} {version} into {} (built from crates.io, about 5 minutes once)", dir.display()),
        );
        let sh = Shell::new()?;
        // `--target-dir` keeps the build out of the project's own target folder, and out of
        // CARGO_TARGET_DIR, which the calling cargo may be using.
        cmd!(sh, "{cargo} install --locked --quiet {package} --version {version} --root {dir} --target-dir {build}")
            .quiet()
            .run()
            .with_context(|| {
                format!(
                    "installing {package} {version} with `cargo install` (crates.io must be reachable); to install it \
                     by hand: `cargo install --locked {package} --version {version} --root {}`",
                    dir.display()
                )
            })?;
        if build.exists() {
            std::fs::remove_dir_all(&build)
                .with_context(|| format!("removing the build folder {}", build.display()))?;
        }
        let Some(path) = self.existing() else {
            bail!(
                "`cargo install` finished but {} does not report version {version}: remove {} and run the command again",
                self.path().display(),
                dir.display()
            );
        };
        progress.finish("Installed", format!("{bin} {version} in {}", dir.display()));
        Ok(path)
    }
}

/// `target/tools`, or `$CARGO_TARGET_DIR/tools`.
fn tools_dir() -> PathBuf {
    project::target_dir().join("tools")
}
