//! What is running: the crate version, the git commit and the build time, fixed at compile time.
//!
//! `cargo xtask image` sets `GBG_GIT_COMMIT` (the image tag: the short commit, plus a content hash
//! when the tree is dirty) and `GBG_BUILD_TIME` (the commit's time in UTC, like
//! `SOURCE_DATE_EPOCH`, so the same tree always builds the same binary and image). Cargo tracks
//! both variables (`option_env!`), so changing them rebuilds the crate. A plain `cargo build`
//! without them says `unknown`.

/// The running build, as `/version` and the page show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: &'static str,
    pub commit: &'static str,
    pub build_time: &'static str,
}

/// This binary's build.
pub const BUILD: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    commit: match option_env!("GBG_GIT_COMMIT") {
        Some(commit) => commit,
        None => "unknown",
    },
    build_time: match option_env!("GBG_BUILD_TIME") {
        Some(time) => time,
        None => "unknown",
    },
};
