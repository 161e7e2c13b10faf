//! `cargo xtask gitflow`: the gitflow Lambda's package and the repository's branches.
//!
//! - `gitflow init` gives a fresh repository its two branches: one initial commit of the project's
//!   tracked files (HEAD's tree, read with `git archive`) on develop, then main at the same commit.
//!   CreateCommit takes at most 100 files and about 6 MB per call, so a large tree becomes a short
//!   chain of commits. It is idempotent: existing branches are kept, a missing one is created
//!   from the other, and a repository with neither (but other branches) is refused.
//! - `gitflow build` builds the Lambda's package (`lambda.rs`) and prints its path and SHA-256;
//!   `deploy` builds, uploads and deploys it as part of its plan.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, Result, bail};
use aws_sdk_codecommit::operation::get_repository::GetRepositoryError;
use aws_sdk_codecommit::primitives::Blob;
use aws_sdk_codecommit::types::{FileModeTypeEnum, PutFileEntry};
use serde::Serialize;
use xshell::{Shell, cmd};

use crate::Ctx;
use crate::aws::{Aws, AwsResultExt, Endpoint};
use crate::config::{Config, SourceProvider, Target};
use crate::lambda;
use crate::project;

/// Arguments of `cargo xtask gitflow`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Create the develop and main branches in the CodeCommit repository, with an initial commit
    /// of the project's tracked files; keeps branches that exist.
    Init(InitArgs),
    /// Build the gitflow Lambda as a static `bootstrap` and zip it; prints the zip's path and SHA-256.
    Build(BuildArgs),
}

#[derive(clap::Args)]
struct InitArgs {
    #[command(flatten)]
    target: Target,
    /// Show what would be created, without changing the repository.
    #[arg(long)]
    dry_run: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct BuildArgs {
    /// Print the package as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Command::Build(args) => {
            let package = lambda::build(ctx)?;
            ctx.printer.status(
                "Packaged",
                format!("{} ({} bytes, sha256 {})", package.zip_path.display(), package.zip_size, package.sha256),
            );
            if args.json {
                ctx.printer.json(&package)?;
            }
            Ok(())
        }
        Command::Init(args) => run_init(ctx, args).await,
    }
}

// ---- gitflow init ----

/// CodeCommit's CreateCommit limits: 100 files per commit, 6 MB per file, and about 7 MB of file
/// content per request (base64 in JSON). Chunks stay well below the request limit.
pub const MAX_FILES_PER_COMMIT: usize = 100;
pub const MAX_FILE_BYTES: usize = 6 * 1024 * 1024;
pub const MAX_COMMIT_BYTES: usize = 5 * 1024 * 1024;

/// One file of the initial commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoFile {
    pub path: String,
    pub bytes: Vec<u8>,
    pub mode: FileMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileMode {
    Normal,
    Executable,
    /// `bytes` is the link's target.
    Symlink,
}

/// What `gitflow init` asks for.
pub struct InitRequest<'a> {
    pub repository: &'a str,
    pub develop_branch: &'a str,
    pub main_branch: &'a str,
    pub files: &'a [RepoFile],
    /// First line of the initial commit, e.g. `Initial commit of web at 5b93623`.
    pub message: String,
    pub dry_run: bool,
}

/// What `gitflow init` found and did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InitReport {
    pub repository: String,
    pub plan: InitPlan,
    /// Commits created, in order.
    pub commits: Vec<String>,
    /// Branches created.
    pub branches: Vec<String>,
    pub dry_run: bool,
}

/// What the repository needs, from the branches it has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum InitPlan {
    /// Both branches exist.
    Nothing,
    /// An empty repository: commit the files to develop, then create main there.
    CommitBoth,
    /// Create develop at main's head.
    DevelopFromMain { commit: String },
    /// Create main at develop's head.
    MainFromDevelop { commit: String },
}

/// Decides from the existing branches (`name -> head commit`); refuses a repository that has
/// branches but neither of ours, since where to start the history is the owner's choice.
pub fn plan_init(branches: &BTreeMap<String, String>, develop: &str, main: &str) -> Result<InitPlan> {
    match (branches.get(develop), branches.get(main)) {
        (Some(_), Some(_)) => Ok(InitPlan::Nothing),
        (None, Some(commit)) => Ok(InitPlan::DevelopFromMain { commit: commit.clone() }),
        (Some(commit), None) => Ok(InitPlan::MainFromDevelop { commit: commit.clone() }),
        (None, None) if branches.is_empty() => Ok(InitPlan::CommitBoth),
        (None, None) => {
            let names: Vec<&str> = branches.keys().map(String::as_str).collect();
            bail!(
                "the repository has branches {} but neither `{main}` nor `{develop}`; create `{main}` from the branch you want with `aws codecommit create-branch --branch-name {main} --commit-id <commit>`, then rerun `cargo xtask gitflow init`",
                names.join(", ")
            )
        }
    }
}

/// Splits `files` (sorted by path) into CreateCommit-sized chunks; fails on a file over 6 MB.
pub fn chunk_files(files: &[RepoFile], max_files: usize, max_bytes: usize) -> Result<Vec<Vec<&RepoFile>>> {
    let mut sorted: Vec<&RepoFile> = files.iter().collect();
    sorted.sort_by(|left, right| left.path.cmp(&right.path));
    let mut chunks: Vec<Vec<&RepoFile>> = Vec::new();
    let mut current: Vec<&RepoFile> = Vec::new();
    let mut current_bytes = 0;
    for file in sorted {
        if file.bytes.len() > MAX_FILE_BYTES {
            bail!(
                "`{}` is {} bytes; CodeCommit's CreateCommit takes files up to 6 MB: push the history with git instead (`git push <clone URL> HEAD:refs/heads/develop`)",
                file.path,
                file.bytes.len()
            );
        }
        if !current.is_empty() && (current.len() == max_files || current_bytes + file.bytes.len() > max_bytes) {
            chunks.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current_bytes += file.bytes.len();
        current.push(file);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    Ok(chunks)
}

/// Runs `gitflow init` against `client` (the tools account, tools region).
pub async fn init(client: &aws_sdk_codecommit::Client, request: &InitRequest<'_>) -> Result<InitReport> {
    let repository = request.repository;
    match client.get_repository().repository_name(repository).send().await {
        Ok(_) => {}
        Err(error)
            if matches!(error.as_service_error(), Some(GetRepositoryError::RepositoryDoesNotExistException(_))) =>
        {
            bail!(
                "CodeCommit repository `{repository}` does not exist: deploy the `source` stack first (`cargo xtask deploy`)"
            )
        }
        Err(error) => {
            return Err(error).aws(client).with_context(|| format!("reading CodeCommit repository `{repository}`"));
        }
    }
    let branches = branch_heads(client, repository).await?;
    let plan = plan_init(&branches, request.develop_branch, request.main_branch)?;
    let mut report = InitReport {
        repository: repository.to_string(),
        plan: plan.clone(),
        commits: Vec::new(),
        branches: Vec::new(),
        dry_run: request.dry_run,
    };
    if request.dry_run {
        return Ok(report);
    }
    match plan {
        InitPlan::Nothing => {}
        InitPlan::DevelopFromMain { commit } => {
            create_branch(client, repository, request.develop_branch, &commit).await?;
            report.branches.push(request.develop_branch.to_string());
        }
        InitPlan::MainFromDevelop { commit } => {
            create_branch(client, repository, request.main_branch, &commit).await?;
            report.branches.push(request.main_branch.to_string());
        }
        InitPlan::CommitBoth => {
            // The commits go to develop and main is created last, at the complete tree, so the
            // pipeline (started when main appears) never sees a partial tree.
            let chunks = chunk_files(request.files, MAX_FILES_PER_COMMIT, MAX_COMMIT_BYTES)?;
            if chunks.is_empty() {
                bail!("there are no files to commit: `git archive HEAD` gave an empty tree");
            }
            let total = chunks.len();
            let mut parent: Option<String> = None;
            for (index, chunk) in chunks.into_iter().enumerate() {
                let message = match total {
                    1 => format!("{}\n\nCreated by `cargo xtask gitflow init`.\n", request.message),
                    _ => format!(
                        "{} ({}/{total})\n\nCreated by `cargo xtask gitflow init`.\n",
                        request.message,
                        index + 1
                    ),
                };
                let commit = create_commit(client, repository, request.develop_branch, parent.as_deref(), &chunk, &message)
                    .await
                    .with_context(|| match index {
                        0 => format!("creating the initial commit on `{}`", request.develop_branch),
                        _ => format!(
                            "creating commit {} of {total} on `{develop}`; `{develop}` now holds part of the tree: delete it (`aws codecommit delete-branch --repository-name {repository} --branch-name {develop}`) and rerun `cargo xtask gitflow init`",
                            index + 1,
                            develop = request.develop_branch
                        ),
                    })?;
                report.commits.push(commit.clone());
                parent = Some(commit);
            }
            report.branches.push(request.develop_branch.to_string());
            let head = parent.expect("at least one chunk");
            create_branch(client, repository, request.main_branch, &head).await?;
            report.branches.push(request.main_branch.to_string());
            // The first branch of a repository becomes its default; the default should be main.
            client
                .update_default_branch()
                .repository_name(repository)
                .default_branch_name(request.main_branch)
                .send()
                .await
                .aws(client)
                .with_context(|| format!("making `{}` the default branch of `{repository}`", request.main_branch))?;
        }
    }
    Ok(report)
}

async fn branch_heads(client: &aws_sdk_codecommit::Client, repository: &str) -> Result<BTreeMap<String, String>> {
    let mut names = Vec::new();
    let mut pages = client.list_branches().repository_name(repository).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.aws(client).with_context(|| format!("listing the branches of `{repository}`"))?;
        names.extend(page.branches.unwrap_or_default());
    }
    let mut heads = BTreeMap::new();
    for name in names {
        let output = client
            .get_branch()
            .repository_name(repository)
            .branch_name(&name)
            .send()
            .await
            .aws(client)
            .with_context(|| format!("reading branch `{name}` of `{repository}`"))?;
        let commit = output.branch.and_then(|branch| branch.commit_id).unwrap_or_default();
        heads.insert(name, commit);
    }
    Ok(heads)
}

async fn create_commit(
    client: &aws_sdk_codecommit::Client,
    repository: &str,
    branch: &str,
    parent: Option<&str>,
    files: &[&RepoFile],
    message: &str,
) -> Result<String> {
    let mut request = client
        .create_commit()
        .repository_name(repository)
        .branch_name(branch)
        .author_name("cargo xtask gitflow init")
        .commit_message(message);
    if let Some(parent) = parent {
        request = request.parent_commit_id(parent);
    }
    for file in files {
        let mode = match file.mode {
            FileMode::Normal => FileModeTypeEnum::Normal,
            FileMode::Executable => FileModeTypeEnum::Executable,
            FileMode::Symlink => FileModeTypeEnum::Symlink,
        };
        let entry = PutFileEntry::builder()
            .file_path(&file.path)
            .file_mode(mode)
            .file_content(Blob::new(file.bytes.clone()))
            .build()
            .with_context(|| format!("preparing `{}` for CreateCommit", file.path))?;
        request = request.put_files(entry);
    }
    let output =
        request.send().await.aws(client).with_context(|| format!("committing to `{branch}` of `{repository}`"))?;
    output.commit_id.with_context(|| format!("CreateCommit on `{branch}` returned no commit id"))
}

async fn create_branch(
    client: &aws_sdk_codecommit::Client,
    repository: &str,
    branch: &str,
    commit: &str,
) -> Result<()> {
    client
        .create_branch()
        .repository_name(repository)
        .branch_name(branch)
        .commit_id(commit)
        .send()
        .await
        .aws(client)
        .with_context(|| format!("creating branch `{branch}` of `{repository}` at {commit}"))?;
    Ok(())
}

/// The tracked files at HEAD, as `git archive` gives them (the committed tree, not the working
/// copy).
pub fn tracked_files(root: &std::path::Path) -> Result<Vec<RepoFile>> {
    let sh = Shell::new()?;
    sh.change_dir(root);
    let output = cmd!(sh, "git archive --format=tar HEAD")
        .quiet()
        .output()
        .context("running `git archive HEAD`; `gitflow init` needs a git checkout with at least one commit")?;
    let mut files = Vec::new();
    let mut tar = tar::Archive::new(output.stdout.as_slice());
    for entry in tar.entries().context("reading the output of `git archive`")? {
        let mut entry = entry.context("reading an entry of `git archive`")?;
        let kind = entry.header().entry_type();
        let path = entry.path().context("reading a path of `git archive`")?.to_string_lossy().into_owned();
        let mode = match kind {
            tar::EntryType::Regular if entry.header().mode().unwrap_or(0o644) & 0o111 != 0 => FileMode::Executable,
            tar::EntryType::Regular => FileMode::Normal,
            tar::EntryType::Symlink => FileMode::Symlink,
            // Directories are implied by paths; the global pax header carries the commit id.
            _ => continue,
        };
        let bytes = match mode {
            FileMode::Symlink => {
                let target = entry.link_name().context("reading a symlink of `git archive`")?.unwrap_or_default();
                target.to_string_lossy().into_owned().into_bytes()
            }
            _ => {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).with_context(|| format!("reading `{path}` from `git archive`"))?;
                bytes
            }
        };
        files.push(RepoFile { path, bytes, mode });
    }
    Ok(files)
}

async fn run_init(ctx: &Ctx, args: InitArgs) -> Result<()> {
    let config_path = ctx.root.join(&args.target.config);
    let config = Config::load(&config_path)?;
    if args.target.local {
        bail!(
            "`gitflow init --local` is not possible: the local emulator (moto) serves no CodeCommit branch or commit API; run it against AWS"
        );
    }
    if config.source.provider != SourceProvider::CodeCommit {
        bail!(
            "`gitflow init` creates branches in CodeCommit, but {} sets `source.provider` to CodeConnections: create `{}` and `{}` in your Git provider",
            config_path.display(),
            config.gitflow.main_branch,
            config.gitflow.develop_branch
        );
    }
    let revision = project::revision(&ctx.root)?;
    if revision.dirty.is_some() {
        ctx.printer.warn("the working tree has uncommitted changes; `gitflow init` commits HEAD's tree without them");
    }
    let files = tracked_files(&ctx.root)?;
    let aws = Aws::new(&config, Endpoint::Aws).await;
    let client = aws.codecommit(&config.tools.account, &config.tools.region).await?;
    let request = InitRequest {
        repository: &config.source.repository,
        develop_branch: &config.gitflow.develop_branch,
        main_branch: &config.gitflow.main_branch,
        files: &files,
        message: format!("Initial commit of {} at {}", config.app, revision.commit),
        dry_run: args.dry_run,
    };
    let progress =
        ctx.printer.progress("Initializing", format!("branches of CodeCommit repository `{}`", request.repository));
    let report = init(&client, &request).await?;
    let summary = match (&report.plan, report.dry_run) {
        (InitPlan::Nothing, _) => {
            format!("`{}` and `{}` exist; nothing to do", request.develop_branch, request.main_branch)
        }
        (InitPlan::CommitBoth, true) => format!(
            "would commit {} files to `{}` and create `{}` there",
            files.len(),
            request.develop_branch,
            request.main_branch
        ),
        (InitPlan::DevelopFromMain { commit }, true) => {
            format!("would create `{}` at {commit}", request.develop_branch)
        }
        (InitPlan::MainFromDevelop { commit }, true) => format!("would create `{}` at {commit}", request.main_branch),
        (_, false) => format!(
            "created {} in `{}` ({} commit(s))",
            report.branches.join(" and "),
            report.repository,
            report.commits.len()
        ),
    };
    progress.finish(if report.dry_run { "Planned" } else { "Initialized" }, summary);
    if args.json {
        ctx.printer.json(&report)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, size: usize) -> RepoFile {
        RepoFile { path: path.into(), bytes: vec![b'x'; size], mode: FileMode::Normal }
    }

    #[test]
    fn plans_from_existing_branches() {
        let heads = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(name, commit)| (name.to_string(), commit.to_string())).collect()
        };
        type Heads = BTreeMap<String, String>;
        let cases: Vec<(Heads, Result<InitPlan, &str>)> = vec![
            (heads(&[]), Ok(InitPlan::CommitBoth)),
            (heads(&[("main", "m"), ("develop", "d")]), Ok(InitPlan::Nothing)),
            (heads(&[("main", "m")]), Ok(InitPlan::DevelopFromMain { commit: "m".into() })),
            (heads(&[("develop", "d"), ("feature", "f")]), Ok(InitPlan::MainFromDevelop { commit: "d".into() })),
            (heads(&[("master", "x")]), Err("has branches master but neither `main` nor `develop`")),
        ];
        for (branches, expect) in cases {
            let got = plan_init(&branches, "develop", "main");
            match (got, expect) {
                (Ok(got), Ok(expect)) => assert_eq!(got, expect),
                (Err(error), Err(part)) => assert!(error.to_string().contains(part), "{error}"),
                (got, expect) => panic!("{branches:?}: got {got:?}, expected {expect:?}"),
            }
        }
    }

    #[test]
    fn chunks_respect_createcommit_limits() {
        let paths = |chunks: &[Vec<&RepoFile>]| -> Vec<Vec<String>> {
            chunks.iter().map(|chunk| chunk.iter().map(|file| file.path.clone()).collect()).collect()
        };
        let files = vec![file("c", 1), file("a", 1), file("b", 1)];
        assert_eq!(paths(&chunk_files(&files, 2, 100).unwrap()), [vec!["a", "b"], vec!["c"]]);
        let files = vec![file("a", 40), file("b", 40), file("c", 40)];
        assert_eq!(paths(&chunk_files(&files, 100, 100).unwrap()), [vec!["a", "b"], vec!["c"]]);
        // A file larger than the per-commit budget (but under 6 MB) gets a commit of its own.
        let files = vec![file("a", 10), file("big", 150), file("c", 10)];
        assert_eq!(paths(&chunk_files(&files, 100, 100).unwrap()), [vec!["a"], vec!["big"], vec!["c"]]);
        assert!(chunk_files(&[], 100, 100).unwrap().is_empty());
        let error = chunk_files(&[file("huge.bin", MAX_FILE_BYTES + 1)], 100, MAX_COMMIT_BYTES).unwrap_err();
        assert!(error.to_string().contains("`huge.bin` is 6291457 bytes"), "{error}");
        let many: Vec<RepoFile> = (0..250).map(|n| file(&format!("f{n:03}"), 10)).collect();
        let chunks = chunk_files(&many, MAX_FILES_PER_COMMIT, MAX_COMMIT_BYTES).unwrap();
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [100, 100, 50]);
    }

    #[test]
    fn tracked_files_are_heads_tree() {
        let files = tracked_files(&project::root()).unwrap();
        let manifest = files.iter().find(|file| file.path == "Cargo.toml").expect("Cargo.toml is tracked");
        assert!(String::from_utf8_lossy(&manifest.bytes).contains("[workspace]"));
        assert!(files.iter().all(|file| !file.path.starts_with("target/")), "target/ is not tracked");
        assert!(files.iter().all(|file| file.mode != FileMode::Symlink || !file.bytes.is_empty()));
    }
}
