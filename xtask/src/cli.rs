//! Values of the command line, checked where clap reads them: a bad one is refused before any
//! file is read, any AWS call made or anything changed, with clap's exit code 2 and a message
//! naming the flag, the value and the accepted form.
//!
//! Typed values (`Digest`, `ImageReference`, `ImageTag`, `ReleaseId`) parse with `FromStr`, so a
//! field of that type needs no `value_parser`; paths use the parsers below. What can only be
//! checked against the config (a workload's name) is checked right after the config is loaded,
//! still before the first AWS call, as an [`output::Usage`](crate::output::Usage) error, which
//! `main` also turns into exit 2.
//!
//! Bounds shared by several commands live here with the reason for each.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::config::{self, Config, Workload};
use crate::output::Usage;

/// The longest `--timeout` of `release` and `rollback`, in minutes: 5 days, the time after which
/// CodePipeline itself gives up on a CodeDeploy (ECS blue/green) action (CodePipeline quotas,
/// "Length of time before an action times out"). A deployment may legitimately take two days
/// and more (the config allows a 2880-minute termination wait), so the bound is AWS's own;
/// anything longer is a typo, such as seconds given for minutes.
pub const TIMEOUT_MINUTES_MAX: u64 = 5 * 24 * 60;

/// An image digest, as registries print it: `sha256:` and 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest(String);

impl Digest {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Digest {
    type Err = String;

    fn from_str(text: &str) -> Result<Digest, String> {
        const FORM: &str = "expected sha256: and 64 lowercase hex digits, as `cargo xtask push` prints it";
        let Some(hex) = text.strip_prefix("sha256:") else {
            return Err(format!("a digest starts with `sha256:`; {FORM}"));
        };
        if let Some(digit) = hex.chars().find(|digit| !matches!(digit, '0'..='9' | 'a'..='f')) {
            return Err(format!("`{digit}` is not a lowercase hex digit; {FORM}"));
        }
        if hex.len() != 64 {
            return Err(format!("{} hex digits, not 64; {FORM}", hex.len()));
        }
        Ok(Digest(text.to_string()))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// An image pinned by digest: `<registry>/<repository>@sha256:<64 hex digits>`. A tag alone is
/// refused: it can be moved, and a service must run exactly the image that was checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageReference {
    /// Everything before the `@`.
    pub name: String,
    pub digest: Digest,
}

impl FromStr for ImageReference {
    type Err = String;

    fn from_str(text: &str) -> Result<ImageReference, String> {
        const FORM: &str = "expected <registry>/<repository>@sha256:<64 hex digits>, e.g. \
                            222222222222.dkr.ecr.ap-south-1.amazonaws.com/web@sha256:… from `cargo xtask push`";
        let Some((name, digest)) = text.split_once('@') else {
            return Err(format!("not pinned by digest (a tag can move); {FORM}"));
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("no repository before `@`; {FORM}"));
        }
        let digest = digest.parse::<Digest>().map_err(|problem| format!("after `@`: {problem}"))?;
        Ok(ImageReference { name: name.to_string(), digest })
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}@{}", self.name, self.digest)
    }
}

/// A Docker image tag: 1 to 128 ASCII letters, digits, `_`, `.` and `-`, not starting with `.`
/// or `-` (the Docker reference grammar).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageTag(String);

impl ImageTag {
    /// The longest tag Docker and ECR accept.
    pub const MAX: usize = 128;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ImageTag {
    type Err = String;

    fn from_str(text: &str) -> Result<ImageTag, String> {
        const FORM: &str = "a tag is 1 to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-` \
                            (e.g. the commit, as `cargo xtask image` tags it)";
        let allowed = |character: char| character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '-');
        if let Some(character) = text.chars().find(|character| !allowed(*character)) {
            return Err(format!("`{}` is not allowed in a tag; {FORM}", character.escape_default()));
        }
        if text.is_empty() || text.starts_with(['.', '-']) || text.len() > ImageTag::MAX {
            return Err(FORM.to_string());
        }
        Ok(ImageTag(text.to_string()))
    }
}

impl fmt::Display for ImageTag {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A release id: the 16 lowercase hex digits that name a release manifest (`manifest.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseId(String);

impl ReleaseId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ReleaseId {
    type Err = String;

    fn from_str(text: &str) -> Result<ReleaseId, String> {
        let hex = text.len() == 16 && text.chars().all(|digit| matches!(digit, '0'..='9' | 'a'..='f'));
        if !hex {
            return Err("a release id is 16 lowercase hex digits: the `id` that `cargo xtask package --json` and \
                        `release --json` print"
                .to_string());
        }
        Ok(ReleaseId(text.to_string()))
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

pub use crate::config::boolish;

/// `--image-digest` and `--image-version`, the image flags of `package`, `release` and
/// `ci build`: an image already pushed to every workload's registry instead of this checkout's.
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageArgs {
    /// Use this image, already pushed to every workload's ECR repository (`sha256:...`, as
    /// `cargo xtask push` prints it), instead of building and pushing this checkout's image.
    #[arg(long, value_name = "DIGEST")]
    pub image_digest: Option<Digest>,
    /// With --image-digest: the image's version (its tag); default: the checkout's revision.
    #[arg(long, value_name = "TAG", requires = "image_digest")]
    pub image_version: Option<ImageTag>,
}

impl ImageArgs {
    /// The image's version: `--image-version`, else the revision of the checkout at `root`.
    pub fn version(&self, root: &std::path::Path) -> anyhow::Result<String> {
        match &self.image_version {
            Some(version) => Ok(version.to_string()),
            None => Ok(crate::project::revision(root)?.tag()),
        }
    }

    /// The flags again, as a child `cargo xtask` step takes them (`ci build` passes them on).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(digest) = &self.image_digest {
            args.extend(["--image-digest".to_string(), digest.to_string()]);
        }
        if let Some(version) = &self.image_version {
            args.extend(["--image-version".to_string(), version.to_string()]);
        }
        args
    }
}

/// A git revision as `--ref` takes it. Only its form is checked here (git would read a leading
/// `-` as an option); whether the repository has it is checked before the rehearsal starts.
pub fn git_ref(text: &str) -> Result<String, String> {
    const FORM: &str = "name a commit, branch or tag of this repository, e.g. --ref main";
    if text.is_empty() || text.starts_with('-') {
        return Err(format!("a git revision neither is empty nor starts with `-`; {FORM}"));
    }
    if text.chars().any(|character| character.is_whitespace() || character.is_control()) {
        return Err(format!("a git revision has no spaces or control characters; {FORM}"));
    }
    Ok(text.to_string())
}

/// A parser for a file that must exist, as given (relative to the current directory); `fix` ends
/// its message.
pub fn existing_file(fix: &'static str) -> impl Fn(&str) -> Result<PathBuf, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let path = PathBuf::from(text);
        if path.is_dir() {
            return Err(format!("a folder, not a file; {fix}"));
        }
        if !path.is_file() {
            return Err(format!("no such file; {fix}"));
        }
        Ok(path)
    }
}

/// A parser for a path taken from the project root (absolute or relative to it) that must
/// exist: a file when `file_only`, else a file or a folder; `fix` ends its message. The value is
/// kept as given: the command joins it to the root itself.
pub fn project_path(
    file_only: bool,
    fix: &'static str,
) -> impl Fn(&str) -> Result<PathBuf, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let path = PathBuf::from(text);
        let root = crate::project::root();
        let resolved = root.join(&path);
        if file_only && resolved.is_dir() {
            return Err(format!("a folder, not a file; {fix}"));
        }
        if !resolved.exists() {
            return Err(format!(
                "no such file or folder (relative paths start at the project root, {}); {fix}",
                root.display()
            ));
        }
        Ok(path)
    }
}

/// A folder to write into: created when missing, refused when a file is in the way (which would
/// otherwise be found only after everything was uploaded).
pub fn out_dir(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if path.exists() && !path.is_dir() {
        return Err("a file is in the way; name a folder (it is created when missing)".to_string());
    }
    Ok(path)
}

/// The workload `name` of `config`, or the usage error that names the workloads there are (and
/// the nearest one, for a typo). `flag` names the argument as the user typed it.
pub fn workload<'a>(config: &'a Config, flag: &str, name: &str) -> Result<&'a Workload, Usage> {
    if let Some(workload) = config.workload(name) {
        return Ok(workload);
    }
    let names: Vec<&str> = config.workloads.iter().map(|workload| workload.name.as_str()).collect();
    let listed = format!("its workloads are {} (`cargo xtask config check` shows them)", names.join(", "));
    let fix = match config::suggest(name, names.iter().copied()) {
        Some(near) => format!("did you mean `{near}`? {listed}"),
        None => listed,
    };
    Err(Usage::new(format!("{flag} `{name}`"), format!("{} has no such workload", config.path.display()), fix))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// Parses `input` as `T`: `Ok` must display as the input; `Err` must contain `expect`.
    #[track_caller]
    fn check<T: FromStr<Err = String> + fmt::Display>(input: &str, expect: Result<(), &str>) {
        match (input.parse::<T>(), expect) {
            (Ok(value), Ok(())) => assert_eq!(value.to_string(), input),
            (Err(problem), Err(text)) => assert!(problem.contains(text), "{input:?}: expected {text:?} in {problem:?}"),
            (Ok(_), Err(text)) => panic!("{input:?} was accepted; expected an error with {text:?}"),
            (Err(problem), Ok(())) => panic!("{input:?} was refused: {problem}"),
        }
    }

    #[test]
    fn digests() {
        check::<Digest>(&format!("sha256:{HEX}"), Ok(()));
        check::<Digest>(HEX, Err("starts with `sha256:`"));
        check::<Digest>("sha256:abc", Err("3 hex digits, not 64"));
        check::<Digest>(&format!("sha256:{}", HEX.to_uppercase()), Err("`A` is not a lowercase hex digit"));
        check::<Digest>(&format!("sha256:{HEX}0"), Err("65 hex digits"));
        check::<Digest>("", Err("sha256:"));
    }

    #[test]
    fn image_references() {
        check::<ImageReference>(&format!("222222222222.dkr.ecr.ap-south-1.amazonaws.com/web@sha256:{HEX}"), Ok(()));
        check::<ImageReference>(&format!("127.0.0.1:5000/web@sha256:{HEX}"), Ok(()));
        check::<ImageReference>("web:latest", Err("not pinned by digest"));
        check::<ImageReference>(&format!("@sha256:{HEX}"), Err("no repository"));
        check::<ImageReference>("web@sha256:abc", Err("after `@`: 3 hex digits"));
        check::<ImageReference>(&format!("web@@sha256:{HEX}"), Err("after `@`"));
    }

    #[test]
    fn image_tags() {
        check::<ImageTag>("3f2a9c1", Ok(()));
        check::<ImageTag>("3f2a9c1-0123abcd", Ok(()));
        check::<ImageTag>("v1.2_rc", Ok(()));
        check::<ImageTag>("", Err("1 to 128"));
        check::<ImageTag>("-x", Err("not starting with"));
        check::<ImageTag>(".x", Err("not starting with"));
        check::<ImageTag>("has space", Err("` ` is not allowed"));
        check::<ImageTag>("web:latest", Err("`:` is not allowed"));
        check::<ImageTag>(&"a".repeat(129), Err("1 to 128"));
        check::<ImageTag>(&"a".repeat(128), Ok(()));
    }

    #[test]
    fn release_ids() {
        check::<ReleaseId>("0123456789abcdef", Ok(()));
        check::<ReleaseId>("0123456789ABCDEF", Err("16 lowercase hex digits"));
        check::<ReleaseId>("0123", Err("16 lowercase hex digits"));
        check::<ReleaseId>("releases/manifests/0123456789abcdef.json", Err("16 lowercase hex digits"));
    }

    #[test]
    fn boolish_words() {
        for (input, expect) in [("1", Some(true)), ("TRUE", Some(true)), ("on", Some(true)), ("0", Some(false))] {
            assert_eq!(boolish(input).ok(), expect, "{input}");
        }
        for (input, expect) in [("off", Some(false)), ("", Some(false)), ("maybe", None), ("2", None)] {
            assert_eq!(boolish(input).ok(), expect, "{input}");
        }
        assert!(boolish("maybe").unwrap_err().contains("expected 1, true, yes or on"));
    }

    #[test]
    fn git_refs() {
        assert_eq!(git_ref("main"), Ok("main".to_string()));
        assert_eq!(git_ref("feature/x"), Ok("feature/x".to_string()));
        assert!(git_ref("").is_err());
        assert!(git_ref("--upload-pack=x").unwrap_err().contains("starts with `-`"));
        assert!(git_ref("my branch").unwrap_err().contains("no spaces"));
    }

    #[test]
    fn paths() {
        let here = env!("CARGO_MANIFEST_DIR");
        let manifest = format!("{here}/Cargo.toml");
        let existing = existing_file("fix it");
        assert_eq!(existing(&manifest), Ok(PathBuf::from(&manifest)));
        assert_eq!(existing(here), Err("a folder, not a file; fix it".to_string()));
        assert_eq!(existing(&format!("{here}/no-such-file")), Err("no such file; fix it".to_string()));

        let project = project_path(false, "fix it");
        assert_eq!(project("cfn"), Ok(PathBuf::from("cfn")));
        assert_eq!(project("Dockerfile"), Ok(PathBuf::from("Dockerfile")));
        assert!(project("cfn/no-such.yaml").unwrap_err().starts_with("no such file or folder"));
        let file = project_path(true, "fix it");
        assert_eq!(file("Dockerfile"), Ok(PathBuf::from("Dockerfile")));
        assert!(file("cfn").unwrap_err().starts_with("a folder, not a file"));

        assert_eq!(out_dir(here), Ok(PathBuf::from(here)));
        assert_eq!(out_dir(&format!("{here}/not-yet")), Ok(Path::new(here).join("not-yet")));
        assert!(out_dir(&manifest).unwrap_err().contains("a file is in the way"));
    }

    #[test]
    fn unknown_workloads_name_the_value_and_the_choices() {
        let text = "app = \"web\"\n[tools]\naccount = \"111111111111\"\nregion = \"ap-south-1\"\n\
                    [[workloads]]\nname = \"india\"\naccount = \"222222222222\"\nregion = \"ap-south-1\"\n\
                    [[workloads]]\nname = \"europe\"\naccount = \"333333333333\"\nregion = \"eu-central-1\"\n";
        let config = Config::parse(Path::new("deploy.toml"), text).unwrap();
        assert_eq!(workload(&config, "workload", "india").unwrap().name, "india");
        assert_eq!(
            workload(&config, "workload", "europ").unwrap_err().to_string(),
            "workload `europ`: deploy.toml has no such workload; did you mean `europe`? its workloads are india, \
             europe (`cargo xtask config check` shows them)"
        );
        assert_eq!(
            workload(&config, "workload", "mars").unwrap_err().to_string(),
            "workload `mars`: deploy.toml has no such workload; its workloads are india, europe (`cargo xtask config \
             check` shows them)"
        );
    }
}
