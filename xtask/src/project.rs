//! Facts about this checkout: where the project root is, which commit it is at, and whether the
//! tree has changes that the commit does not name.
//!
//! Every path the xtask touches is relative to the project root found here (from
//! `CARGO_MANIFEST_DIR`), never to the caller's working directory, so `cargo xtask` behaves the same
//! from any subfolder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
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

/// The commit the tree is at, when it was made, and a suffix that tells the working tree's changes
/// apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revision {
    /// The first 12 hex digits of the commit id.
    pub commit: String,
    /// The full commit id.
    pub commit_full: String,
    /// The commit's author time in UTC (`2026-11-27T18:55:00Z`); in CodeBuild without `.git`, the
    /// time the pipeline passes (`GBG_SOURCE_TIME`), else the build's.
    pub time: String,
    /// `Some(hash)` when tracked or untracked files differ from the commit: the first 8 hex digits
    /// of a SHA-256 over the diff and the untracked files' contents.
    pub dirty: Option<String>,
    /// Where the commit came from.
    pub source: RevisionSource,
}

/// Where [`Revision`] learnt the commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevisionSource {
    /// `git` in the project root (its own `.git`, not a parent folder's).
    Git,
    /// `CODEBUILD_RESOLVED_SOURCE_VERSION`: CodeBuild's source as CodePipeline's `CODE_ZIP` delivers
    /// it has no `.git`.
    CodeBuild,
}

/// The variable CodeBuild sets to the commit it builds. For a CodePipeline source it is the source
/// revision CodePipeline passes, the commit id for CodeCommit and CodeConnections sources
/// (https://docs.aws.amazon.com/codebuild/latest/userguide/build-env-ref-env-vars.html); AWS's
/// own ECS pipeline tutorial tags its images with it
/// (https://docs.aws.amazon.com/codepipeline/latest/userguide/ecs-cd-pipeline.html).
pub const CODEBUILD_COMMIT_VAR: &str = "CODEBUILD_RESOLVED_SOURCE_VERSION";
/// The commit, which the pipeline's build action passes too (`#{SourceVariables.CommitId}`): AWS
/// says CODEBUILD_RESOLVED_SOURCE_VERSION "may not always be available" for a CodePipeline source.
pub const SOURCE_COMMIT_VAR: &str = "GBG_SOURCE_COMMIT";
/// The commit's time, which the pipeline's build action passes from the source action's
/// `#{SourceVariables.AuthorDate}` (cfn/tools/pipeline.yaml); CodeBuild itself has no such variable.
pub const SOURCE_TIME_VAR: &str = "GBG_SOURCE_TIME";

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

/// Reads the revision of the tree at `root`: from git when `root` is the top of a git checkout,
/// else from CodeBuild's variables. A tree with neither is refused: every image and release is
/// tagged with its commit, and the registries' tags are immutable, so a made-up tag would block
/// the next release.
pub fn revision(root: &Path) -> Result<Revision> {
    let sh = Shell::new()?;
    sh.change_dir(root);
    if is_git_top(&sh, root) {
        return git_revision(&sh, root);
    }
    let environment = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
    // CodeBuild's variable first; the pipeline's own (#{SourceVariables.CommitId}) where CodeBuild
    // left it unset or set it to something that is no commit id.
    let commit = match environment(CODEBUILD_COMMIT_VAR) {
        Some(value) if is_commit_id(&value) => Some(value),
        other => environment(SOURCE_COMMIT_VAR).or(other),
    };
    from_codebuild(root, commit, environment(SOURCE_TIME_VAR), now_utc())
}

/// True when `root` is the top folder of a git work tree. A tree exported into a folder of another
/// checkout (the pipeline rehearsal's, under `target/`) is not: git would answer with the outer
/// checkout's commit.
fn is_git_top(sh: &Shell, root: &Path) -> bool {
    let Ok(top) = cmd!(sh, "git rev-parse --show-toplevel").quiet().ignore_stderr().read() else {
        return false;
    };
    let canonical = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    canonical(Path::new(top.trim())) == canonical(root)
}

fn git_revision(sh: &Shell, root: &Path) -> Result<Revision> {
    let commit_full = cmd!(sh, "git rev-parse HEAD").quiet().read().context("reading `git rev-parse HEAD`")?;
    let commit = commit_full.chars().take(12).collect::<String>();
    // The author date, as the pipeline passes it (#{SourceVariables.AuthorDate}): a rebased or
    // merged commit keeps one time, so its image is the same bytes here and in CodeBuild.
    let time = cmd!(sh, "git show -s --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%ad HEAD")
        .env("TZ", "UTC")
        .quiet()
        .read()
        .context("reading the commit's time with `git show`")?
        .trim()
        .to_string();
    let diff = cmd!(sh, "git diff HEAD --binary").quiet().read().context("reading `git diff HEAD`")?;
    let untracked =
        cmd!(sh, "git ls-files --others --exclude-standard -z").quiet().read().context("listing untracked files")?;
    let clean = Revision { commit, commit_full, time, dirty: None, source: RevisionSource::Git };
    if diff.is_empty() && untracked.is_empty() {
        return Ok(clean);
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
    Ok(Revision { dirty: Some(hash[..8].to_string()), ..clean })
}

/// The revision of a tree without `.git` from CodeBuild's variables (pure, for the tests).
fn from_codebuild(root: &Path, commit: Option<String>, time: Option<String>, now: String) -> Result<Revision> {
    let Some(commit_full) = commit else {
        bail!(
            "{} is not a git checkout and {CODEBUILD_COMMIT_VAR} is not set, so there is no commit to tag the image \
             and the release with (the registries' tags are immutable: a made-up tag would block the next release). \
             Run from a git clone, or set {CODEBUILD_COMMIT_VAR}=<full commit id> (CodeBuild sets it; so does \
             `cargo xtask pipeline run --local`) or {SOURCE_COMMIT_VAR} (the pipeline's build action passes it)",
            root.display()
        );
    };
    let commit_full = commit_full.trim().to_ascii_lowercase();
    if !is_commit_id(&commit_full) {
        bail!(
            "{CODEBUILD_COMMIT_VAR} is `{commit_full}`, not a commit id (7 to 64 hex digits); the pipeline's source \
             action must deliver a git commit (CodeCommit or CodeConnections)"
        );
    }
    let time = match time {
        Some(time) => check_time(&time)?,
        None => now,
    };
    let commit = commit_full.chars().take(12).collect();
    Ok(Revision { commit, commit_full, time, dirty: None, source: RevisionSource::CodeBuild })
}

/// 7 to 64 hex digits.
fn is_commit_id(value: &str) -> bool {
    let value = value.trim();
    (7..=64).contains(&value.len()) && value.chars().all(|digit| digit.is_ascii_hexdigit())
}

/// `GBG_SOURCE_TIME` as the source action gives it (ISO 8601, `2026-11-27T18:55:00Z`, or with an
/// offset or fractions of a second), normalized to UTC.
fn check_time(time: &str) -> Result<String> {
    use time::format_description::well_known::Iso8601;
    let parsed = time::OffsetDateTime::parse(time.trim(), &Iso8601::DEFAULT).with_context(|| {
        format!("{SOURCE_TIME_VAR} is `{time}`, not a time like 2026-11-27T18:55:00Z; the pipeline passes the source's AuthorDate")
    })?;
    Ok(format_utc(parsed))
}

pub fn now_utc() -> String {
    format_utc(time::OffsetDateTime::now_utc())
}

fn format_utc(time: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time.to_offset(time::UtcOffset::UTC).format(&format).expect("a UTC time formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_dirty_trees_apart() {
        let clean = Revision {
            commit: "abc".into(),
            commit_full: "abcdef".into(),
            time: "2026-01-01T00:00:00Z".into(),
            dirty: None,
            source: RevisionSource::Git,
        };
        assert_eq!(clean.tag(), "abc");
        let dirty = Revision { dirty: Some("12345678".into()), ..clean };
        assert_eq!(dirty.tag(), "abc-12345678");
    }

    #[test]
    fn root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn codebuild_gives_the_commit_without_git() {
        let root = Path::new("/codebuild/output/src1/src");
        let now = "2026-12-03T10:00:00Z".to_string();
        let commit = "0123456789ABCDEF0123456789abcdef01234567".to_string();
        let revision = from_codebuild(root, Some(commit.clone()), None, now.clone()).unwrap();
        assert_eq!(revision.commit_full, commit.to_ascii_lowercase());
        assert_eq!(revision.tag(), "0123456789ab");
        assert_eq!(revision.time, now);
        assert_eq!(revision.source, RevisionSource::CodeBuild);
        let timed =
            from_codebuild(root, Some(commit.clone()), Some("2026-11-27T19:55:00+01:00".into()), now.clone()).unwrap();
        assert_eq!(timed.time, "2026-11-27T18:55:00Z");

        let missing = format!("{:#}", from_codebuild(root, None, None, now.clone()).unwrap_err());
        assert!(missing.contains(CODEBUILD_COMMIT_VAR) && missing.contains("/codebuild/output/src1/src"), "{missing}");
        let bad = format!("{:#}", from_codebuild(root, Some("main".into()), None, now.clone()).unwrap_err());
        assert!(bad.contains("`main`, not a commit id"), "{bad}");
        let bad_time = format!("{:#}", from_codebuild(root, Some(commit), Some("yesterday".into()), now).unwrap_err());
        assert!(bad_time.contains(SOURCE_TIME_VAR), "{bad_time}");
    }

    #[test]
    fn a_tree_inside_another_checkout_is_not_git() {
        let outer = std::env::temp_dir().join(format!("gbg-revision-{}", std::process::id()));
        let inner = outer.join("target").join("export");
        std::fs::create_dir_all(&inner).unwrap();
        let sh = Shell::new().unwrap();
        sh.change_dir(&outer);
        cmd!(sh, "git init -q").run().unwrap();
        sh.change_dir(&inner);
        assert!(!is_git_top(&sh, &inner));
        sh.change_dir(&outer);
        assert!(is_git_top(&sh, &outer));
        std::fs::remove_dir_all(&outer).unwrap();
    }
}
