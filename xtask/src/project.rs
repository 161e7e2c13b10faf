//! Facts about this checkout: where the project root is, which commit it is at, and whether the
//! tree has changes that the commit does not name.
//!
//! Every path the xtask touches is relative to the project root found here (from
//! `CARGO_MANIFEST_DIR`), never to the caller's working directory, so `cargo xtask` behaves the same
//! from any subfolder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

/// The project root: the folder holding the workspace `Cargo.toml`.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Where the xtask keeps generated things: `target/` under the root, or `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() { dir } else { root().join(dir) }
        }
        None => root().join("target"),
    }
}

/// The commit the tree is at, and a suffix that tells the working tree's changes apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revision {
    /// `git rev-parse --short=12 HEAD`, or `nogit` outside a git checkout.
    pub commit: String,
    /// The full commit id, or `nogit`.
    pub commit_full: String,
    /// `Some(hash)` when tracked or untracked files differ from the commit: the first 8 hex digits
    /// of a SHA-256 over the diff and the untracked files' contents.
    pub dirty: Option<String>,
}

impl Revision {
    /// The immutable tag for images and releases: `<commit>` for a clean tree, `<commit>-<hash>`
    /// for a dirty one, so a changed tree never reuses a tag.
    pub fn tag(&self) -> String {
        match &self.dirty {
            Some(hash) => format!("{}-{hash}", self.commit),
            None => self.commit.clone(),
        }
    }
}

/// Reads the revision of the checkout at `root`.
pub fn revision(root: &Path) -> Result<Revision> {
    let sh = Shell::new()?;
    sh.change_dir(root);
    let Ok(commit_full) = cmd!(sh, "git rev-parse HEAD").quiet().ignore_stderr().read() else {
        return Ok(Revision { commit: "nogit".into(), commit_full: "nogit".into(), dirty: None });
    };
    let commit = commit_full.chars().take(12).collect::<String>();
    let diff = cmd!(sh, "git diff HEAD --binary").quiet().read().context("reading `git diff HEAD`")?;
    let untracked =
        cmd!(sh, "git ls-files --others --exclude-standard -z").quiet().read().context("listing untracked files")?;
    if diff.is_empty() && untracked.is_empty() {
        return Ok(Revision { commit, commit_full, dirty: None });
    }
    let mut hasher = Sha256::new();
    hasher.update(diff.as_bytes());
    for path in untracked.split('\0').filter(|path| !path.is_empty()) {
        hasher.update(path.as_bytes());
        // An untracked path may be a broken symlink or vanish meanwhile: hash what is readable.
        if let Ok(bytes) = std::fs::read(root.join(path)) {
            hasher.update(&bytes);
        }
    }
    let hash = hex::encode(hasher.finalize());
    Ok(Revision { commit, commit_full, dirty: Some(hash[..8].to_string()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_dirty_trees_apart() {
        let clean = Revision { commit: "abc".into(), commit_full: "abcdef".into(), dirty: None };
        assert_eq!(clean.tag(), "abc");
        let dirty = Revision { dirty: Some("12345678".into()), ..clean };
        assert_eq!(dirty.tag(), "abc-12345678");
    }

    #[test]
    fn root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}
