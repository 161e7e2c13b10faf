//! The site's image: the app's static binary, then its `FROM scratch` image through the Docker
//! Engine API, tagged `<app>:<tag>` (the commit, plus a content hash for a dirty tree, so a
//! tag is never reused for different content).
//!
//! The binary is built with `-C target-feature=+crt-static` for an explicit
//! `--target x86_64-unknown-linux-gnu` (so the flags do not reach build scripts) and with the
//! checkout's paths remapped, so the same commit builds the same bytes in any clone. The commit and
//! the commit's time reach the binary as `GBG_GIT_COMMIT` and `GBG_BUILD_TIME` (see the app's
//! `build_info`); using the commit time rather than the wall clock keeps rebuilds of an unchanged
//! tree free and the image identical. The build context is two files in memory: the Dockerfile and
//! the binary.
//!
//! [`build`] is the one entry point: `cargo xtask image`, push, deploy, release and the local
//! stack call it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use xshell::{Shell, cmd};

use crate::Ctx;
use crate::config::Config;
use crate::docker::{self, BuildRequest, ContextFile, Docker};
use crate::output::Verbosity;
use crate::project;

/// The target the site is built for: Fargate and the local engine run x86-64 Linux.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// What to build; paths are relative to the project root.
#[derive(Clone, Debug)]
pub struct Options {
    pub config: PathBuf,
    /// `None`: the project's `Dockerfile`.
    pub dockerfile: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Options {
        Options { config: PathBuf::from("deploy.toml"), dockerfile: None }
    }
}

/// A built image.
#[derive(Clone, Debug, Serialize)]
pub struct BuiltImage {
    /// `sha256:...`.
    pub id: String,
    /// The repository name: the config's `app`.
    pub app: String,
    /// The immutable tag: `<commit>` or `<commit>-<content hash>`.
    pub tag: String,
    /// `<app>:<tag>`.
    pub reference: String,
    /// Bytes, as the engine counts them.
    pub size: u64,
    /// The static binary inside it.
    pub binary: PathBuf,
    pub binary_size: u64,
    /// What `/version` answers.
    pub commit: String,
    pub build_time: String,
}

/// Builds the static binary and the image for the checkout at `ctx.root`.
pub async fn build(ctx: &Ctx, options: &Options) -> Result<BuiltImage> {
    let config_path = ctx.root.join(&options.config);
    let config = Config::load(&config_path)?;
    // The engine first: no point compiling for a minute to learn that Docker is not running.
    let docker = Docker::connect().await?;
    let revision = project::revision(&ctx.root)?;
    let tag = revision.tag();
    let reference = format!("{}:{tag}", config.app);
    let build_time = revision.time.clone();

    let binary = compile(ctx, &tag, &build_time)?;
    let binary_bytes =
        std::fs::read(&binary).with_context(|| format!("reading the built binary {}", binary.display()))?;

    let dockerfile_path = match &options.dockerfile {
        Some(path) => ctx.root.join(path),
        None => ctx.root.join("Dockerfile"),
    };
    let mut dockerfile = std::fs::read(&dockerfile_path)
        .with_context(|| format!("reading {}; it must exist to build the image", dockerfile_path.display()))?;
    let labels = [
        ("org.opencontainers.image.title", config.app.as_str()),
        ("org.opencontainers.image.version", tag.as_str()),
        ("org.opencontainers.image.revision", revision.commit_full.as_str()),
        ("org.opencontainers.image.created", build_time.as_str()),
        (LABEL_APP, config.app.as_str()),
    ];
    // One LABEL instruction appended to the Dockerfile: the engine's `labels` build option would
    // add a build step (and an intermediate container) per label.
    dockerfile.extend_from_slice(label_instruction(&labels).as_bytes());
    let context = docker::tar_context(&[
        ContextFile { path: "Dockerfile".into(), bytes: dockerfile, mode: 0o644 },
        ContextFile { path: "app".into(), bytes: binary_bytes.clone(), mode: 0o755 },
    ])?;
    let request = BuildRequest { context, tag: &reference, dockerfile: "Dockerfile" };
    let id = docker.build_image(request, &ctx.printer).await?;
    let Some(facts) = docker.image(&id).await? else {
        bail!("the Docker engine built {reference} ({id}) but cannot find it now; run `cargo xtask image` again");
    };
    Ok(BuiltImage {
        id,
        app: config.app,
        tag: tag.clone(),
        reference,
        size: facts.size,
        binary,
        binary_size: binary_bytes.len() as u64,
        commit: tag,
        build_time,
    })
}

/// The label naming the app an image or container belongs to.
pub const LABEL_APP: &str = "gbg.app";

/// Where `cargo build --release --target` puts the app.
pub fn binary_path() -> PathBuf {
    project::target_dir().join(TARGET).join("release").join("app")
}

/// `cargo build --release` of the app as a static binary, for [`TARGET`].
fn compile(ctx: &Ctx, commit: &str, build_time: &str) -> Result<PathBuf> {
    ctx.printer.status("Compiling", format!("app (release, static, {TARGET}) at {commit}"));
    let sh = Shell::new()?;
    sh.change_dir(&ctx.root);
    let quiet = (ctx.printer.verbosity() == Verbosity::Quiet).then_some("--quiet");
    let mut args = vec!["--release", "--locked", "-p", "app"];
    args.extend(quiet);
    static_build(&sh, &ctx.root, &args)
        .env("GBG_GIT_COMMIT", commit)
        .env("GBG_BUILD_TIME", build_time)
        .quiet()
        .run()
        .context("building the app's static binary; fix the compile error above, then run `cargo xtask image` again")?;
    let binary = binary_path();
    if !binary.is_file() {
        bail!("cargo reported success but {} is missing", binary.display());
    }
    Ok(binary)
}

/// `cargo build --target` [`TARGET`] `<args>` of a static binary (the site's, the gitflow
/// Lambda's) that depends neither on where the tree is nor on the caller's RUSTFLAGS. `--target`
/// keeps the flags away from build scripts and proc macros, which must stay dynamic.
pub fn static_build<'a>(sh: &'a Shell, root: &Path, args: &[&str]) -> xshell::Cmd<'a> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    cmd!(sh, "{cargo} build --target {TARGET} {args...}")
        .env("RUSTFLAGS", rustflags(root))
        // These would override RUSTFLAGS or add features.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
}

/// Static linking, and the checkout's and cargo's paths remapped so the binary does not depend on
/// where the tree is.
fn rustflags(root: &Path) -> String {
    let mut flags = vec!["-C target-feature=+crt-static".to_string()];
    flags.push(format!("--remap-path-prefix={}=/build", root.display()));
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    if let Some(cargo_home) = cargo_home {
        flags.push(format!("--remap-path-prefix={}=/cargo", cargo_home.display()));
    }
    flags.join(" ")
}

/// `\nLABEL "key"="value" ...\n`, each part quoted for the Dockerfile parser.
fn label_instruction(labels: &[(&str, &str)]) -> String {
    let quote = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " "));
    let pairs: Vec<String> = labels.iter().map(|(key, value)| format!("{}={}", quote(key), quote(value))).collect();
    format!("\nLABEL {}\n", pairs.join(" "))
}

/// `1.8 MB`, `512 kB`, `93 B` (decimal units, like `docker image ls`).
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.2} GB", bytes as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_sizes() {
        let check = |bytes: u64, expect: &str| assert_eq!(human_bytes(bytes), expect);
        check(93, "93 B");
        check(1_500, "1.5 kB");
        check(1_834_567, "1.8 MB");
        check(2_500_000_000, "2.50 GB");
    }

    #[test]
    fn labels_are_one_quoted_instruction() {
        let check = |labels: &[(&str, &str)], expect: &str| assert_eq!(label_instruction(labels), expect);
        check(&[("a", "1")], "\nLABEL \"a\"=\"1\"\n");
        check(&[("a.b", "x y"), ("c", "say \"hi\"\\")], "\nLABEL \"a.b\"=\"x y\" \"c\"=\"say \\\"hi\\\"\\\\\"\n");
    }

    #[test]
    fn rustflags_link_statically_and_remap_the_root() {
        let flags = rustflags(Path::new("/src/gbg"));
        assert!(flags.starts_with("-C target-feature=+crt-static "), "{flags}");
        assert!(flags.contains("--remap-path-prefix=/src/gbg=/build"), "{flags}");
    }
}
