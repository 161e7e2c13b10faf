//! `buildspec.yaml` as CodeBuild reads it, and its phases run as CodeBuild runs them: version 0.2,
//! `env.variables`, the phases `install`, `pre_build`, `build` and `post_build` in that order,
//! every command of every phase in one shell instance (an `export` in one command holds in the
//! next), a failed command failing its phase and skipping the later ones, and the `artifacts`
//! section naming the files exported (https://docs.aws.amazon.com/codebuild/latest/userguide/build-spec-ref.html).
//! Keys the rehearsal does not implement are refused with their name, never ignored.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use xshell::{Shell, cmd};

/// The phases, in the order CodeBuild runs them.
pub const PHASES: [&str; 4] = ["install", "pre_build", "build", "post_build"];

/// A parsed buildspec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buildspec {
    pub variables: Vec<(String, String)>,
    /// In [`PHASES`] order; a phase the file lacks is absent.
    pub phases: Vec<Phase>,
    pub base_directory: Option<String>,
    pub files: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase {
    pub name: String,
    pub commands: Vec<String>,
    /// `runtime-versions` (install only): what CodeBuild's image switches to.
    pub runtime_versions: Vec<(String, String)>,
}

impl Buildspec {
    pub fn parse(text: &str, origin: &Path) -> Result<Buildspec> {
        let documents = crate::template::parse_yaml(origin, text)?;
        let [document] = documents.as_slice() else {
            bail!("{} holds {} YAML documents; a buildspec is one", origin.display(), documents.len());
        };
        let origin = origin.display();
        let map = document.as_object().with_context(|| format!("{origin} is not a mapping"))?;
        for key in map.keys() {
            if !matches!(key.as_str(), "version" | "env" | "phases" | "artifacts" | "cache" | "reports") {
                bail!("{origin}: the rehearsal does not implement the buildspec key `{key}`");
            }
        }
        if scalar(&document["version"]).as_deref() != Some("0.2") {
            bail!("{origin}: version is {}, the rehearsal implements buildspec version 0.2", document["version"]);
        }
        let mut variables = Vec::new();
        if let Some(env) = document.get("env") {
            for (key, value) in env.as_object().with_context(|| format!("{origin}: env is not a mapping"))? {
                match key.as_str() {
                    "variables" => {
                        let entries =
                            value.as_object().with_context(|| format!("{origin}: env.variables is not a mapping"))?;
                        for (name, value) in entries {
                            let value = scalar(value)
                                .with_context(|| format!("{origin}: env.variables.{name} is not a scalar"))?;
                            variables.push((name.clone(), value));
                        }
                    }
                    "shell" if value == "bash" => {}
                    other => bail!("{origin}: the rehearsal does not implement env.{other}"),
                }
            }
        }
        let mut phases = Vec::new();
        let declared = document["phases"].as_object().with_context(|| format!("{origin}: phases is not a mapping"))?;
        for name in declared.keys() {
            if !PHASES.contains(&name.as_str()) {
                bail!("{origin}: `{name}` is not a buildspec phase ({})", PHASES.join(", "));
            }
        }
        for name in PHASES {
            let Some(phase) = declared.get(name) else { continue };
            let mut commands = Vec::new();
            let mut runtime_versions = Vec::new();
            for (key, value) in
                phase.as_object().with_context(|| format!("{origin}: phases.{name} is not a mapping"))?
            {
                match key.as_str() {
                    "commands" => {
                        for command in value
                            .as_array()
                            .with_context(|| format!("{origin}: phases.{name}.commands is not a list"))?
                        {
                            commands.push(
                                scalar(command)
                                    .with_context(|| format!("{origin}: a command of {name} is not a string"))?,
                            );
                        }
                    }
                    "runtime-versions" if name == "install" => {
                        for (runtime, version) in value.as_object().into_iter().flatten() {
                            runtime_versions.push((runtime.clone(), scalar(version).unwrap_or_default()));
                        }
                    }
                    other => bail!("{origin}: the rehearsal does not implement phases.{name}.{other}"),
                }
            }
            phases.push(Phase { name: name.to_string(), commands, runtime_versions });
        }
        let artifacts = &document["artifacts"];
        let files = match &artifacts["files"] {
            Value::Array(files) => files.iter().filter_map(scalar).collect(),
            Value::Null => Vec::new(),
            other => bail!("{origin}: artifacts.files is {other}, not a list"),
        };
        if let Some(map) = artifacts.as_object() {
            for key in map.keys() {
                if !matches!(key.as_str(), "files" | "base-directory") {
                    bail!("{origin}: the rehearsal does not implement artifacts.{key}");
                }
            }
        }
        Ok(Buildspec { variables, phases, base_directory: scalar(&artifacts["base-directory"]), files })
    }

    /// The files `artifacts` exports from `source_dir`: paths relative to the base directory,
    /// sorted. A base directory that does not exist is an error (CodeBuild fails the build).
    pub fn exported(&self, source_dir: &Path) -> Result<(PathBuf, Vec<String>)> {
        let base = match &self.base_directory {
            Some(base) => source_dir.join(base),
            None => source_dir.to_path_buf(),
        };
        if !base.is_dir() {
            bail!("the buildspec's artifacts base-directory {} does not exist after the build", base.display());
        }
        let mut all = Vec::new();
        let mut pending = vec![base.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
                let path = entry?.path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path.strip_prefix(&base).expect("below base").to_string_lossy().into_owned();
                    all.push(relative);
                }
            }
        }
        let mut files: Vec<String> =
            all.into_iter().filter(|path| self.files.iter().any(|pattern| glob_matches(pattern, path))).collect();
        files.sort();
        Ok((base, files))
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A buildspec `files` pattern against a relative path: `**` spans any number of folders, `*`
/// any characters within one.
pub fn glob_matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.trim_start_matches("./").split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    segments_match(&pattern, &path)
}

fn segments_match(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            segments_match(&pattern[1..], path) || (!path.is_empty() && segments_match(pattern, &path[1..]))
        }
        (Some(segment), Some(name)) => name_matches(segment, name) && segments_match(&pattern[1..], &path[1..]),
        _ => false,
    }
}

fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((prefix, rest)) => {
            let Some(remaining) = name.strip_prefix(prefix) else { return false };
            (0..=remaining.len()).any(|cut| remaining.is_char_boundary(cut) && name_matches(rest, &remaining[cut..]))
        }
    }
}

/// How one phase went.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PhaseRun {
    pub name: String,
    /// `SUCCEEDED`, `FAILED`, `SKIPPED` or `NOT_RUN` (after a failure).
    pub status: &'static str,
    pub seconds: f64,
    pub detail: Option<String>,
}

/// Runs the phases after `install` (which provisions CodeBuild's image and is reported skipped
/// with `install_skipped`) in `dir`, one bash (`-e`) for all of them, with exactly `env` as its
/// environment. The build's output goes to stderr. Returns every phase's outcome; the build
/// failed when one is `FAILED`.
pub fn run(spec: &Buildspec, dir: &Path, env: &[(String, String)], install_skipped: &str) -> Result<Vec<PhaseRun>> {
    let mut outcomes = Vec::new();
    let mut script = String::from("exec 3>>\"$1\"; shift; exec 1>&2\n");
    let mut ran = Vec::new();
    for phase in &spec.phases {
        if phase.name == "install" {
            outcomes.push(PhaseRun {
                name: phase.name.clone(),
                status: "SKIPPED",
                seconds: 0.0,
                detail: Some(install_skipped.to_string()),
            });
            continue;
        }
        script.push_str(&format!("printf '%s\\n' {} >&3\n", phase.name));
        for command in &phase.commands {
            script.push_str(command);
            script.push('\n');
        }
        ran.push(phase.name.clone());
    }
    script.push_str("printf '%s\\n' done >&3\n");
    let markers = dir.with_extension("phases");
    std::fs::write(&markers, "").with_context(|| format!("writing {}", markers.display()))?;
    let sh = Shell::new()?;
    sh.change_dir(dir);
    let started = Instant::now();
    let marker_arg = markers.display().to_string();
    // The build's own output streams to stderr as it runs; whether it got through is what the
    // markers say (`set -e` stops the shell before `done` at the first failed command).
    cmd!(sh, "bash -e -c {script} bash {marker_arg}")
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name.as_str(), value.as_str())))
        .quiet()
        .ignore_status()
        .run()
        .context("starting bash for the buildspec's commands")?;
    let total = started.elapsed().as_secs_f64();
    let reached: Vec<String> = std::fs::read_to_string(&markers)?.lines().map(str::to_string).collect();
    let _ = std::fs::remove_file(&markers);
    let succeeded = reached.last().map(String::as_str) == Some("done");
    let failed_at = if succeeded { None } else { reached.last().cloned() };
    // Per-phase times are not separable from one shell; the build's total goes on the last phase run.
    for name in &ran {
        let reached_it = reached.contains(name);
        let (status, detail) = match (&failed_at, reached_it) {
            (Some(failed), _) if failed == name => {
                ("FAILED", Some(format!("a command of phase {name} failed (its output is above)")))
            }
            (_, false) => ("NOT_RUN", Some("an earlier phase failed".to_string())),
            _ => ("SUCCEEDED", None),
        };
        outcomes.push(PhaseRun { name: name.clone(), status, seconds: 0.0, detail });
    }
    if let Some(last) = outcomes.iter_mut().rev().find(|outcome| matches!(outcome.status, "SUCCEEDED" | "FAILED")) {
        last.seconds = total;
    }
    if !succeeded && failed_at.is_none() {
        bail!("the build's shell stopped before its first phase");
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_buildspec() {
        let path = crate::project::root().join("buildspec.yaml");
        let spec = Buildspec::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
        let names: Vec<&str> = spec.phases.iter().map(|phase| phase.name.as_str()).collect();
        assert_eq!(names, ["install", "build"]);
        assert_eq!(spec.base_directory.as_deref(), Some("target/release/artifact"));
        assert!(spec.phases[1].commands.iter().any(|command| command.contains("cargo xtask ci")), "{spec:?}");
        assert!(spec.variables.iter().any(|(name, _)| name == "CARGO_INCREMENTAL"), "{spec:?}");
    }

    #[test]
    fn refuses_what_it_does_not_implement() {
        let check = |text: &str, expect: &str| {
            let error = Buildspec::parse(text, Path::new("b.yaml")).unwrap_err().to_string();
            assert!(error.contains(expect), "{error}");
        };
        check("version: 0.1\nphases: {}\n", "implements buildspec version 0.2");
        check("version: 0.2\nphases:\n  compile:\n    commands: [x]\n", "`compile` is not a buildspec phase");
        check("version: 0.2\nphases:\n  build:\n    finally: [x]\n", "phases.build.finally");
        check("version: 0.2\nenv:\n  secrets-manager: {}\nphases: {}\n", "env.secrets-manager");
        check("version: 0.2\nphases: {}\nartifacts:\n  discard-paths: yes\n", "artifacts.discard-paths");
    }

    #[test]
    fn globs_match_as_codebuild_does() {
        let check = |pattern: &str, path: &str, expect: bool| {
            assert_eq!(glob_matches(pattern, path), expect, "{pattern} {path}")
        };
        check("**/*", "india/taskdef.json", true);
        check("**/*", "release-manifest.json", true);
        check("*.json", "release-manifest.json", true);
        check("*.json", "india/taskdef.json", false);
        check("india/*", "india/appspec.yaml", true);
        check("india/*.yaml", "india/taskdef.json", false);
    }

    #[test]
    fn runs_phases_in_one_shell_and_names_the_failed_one() {
        let dir = std::env::temp_dir().join(format!("gbg-buildspec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = Buildspec::parse(
            "version: 0.2\nphases:\n  install:\n    commands: [exit 9]\n  pre_build:\n    commands:\n      - export GREETING=hi\n  build:\n    commands:\n      - test \"$GREETING\" = hi\n      - test \"$ONLY\" = given\n      - touch built\n  post_build:\n    commands: [false]\n",
            Path::new("b.yaml"),
        )
        .unwrap();
        let env = vec![("PATH".to_string(), std::env::var("PATH").unwrap()), ("ONLY".to_string(), "given".to_string())];
        let outcomes = run(&spec, &dir, &env, "provisions the image").unwrap();
        let statuses: Vec<(&str, &str)> = outcomes.iter().map(|run| (run.name.as_str(), run.status)).collect();
        assert_eq!(
            statuses,
            [("install", "SKIPPED"), ("pre_build", "SUCCEEDED"), ("build", "SUCCEEDED"), ("post_build", "FAILED")]
        );
        assert!(dir.join("built").is_file());

        // Without ONLY, build fails and post_build never runs.
        let outcomes = run(&spec, &dir, &env[..1], "provisions the image").unwrap();
        let statuses: Vec<&str> = outcomes.iter().map(|run| run.status).collect();
        assert_eq!(statuses, ["SKIPPED", "SUCCEEDED", "FAILED", "NOT_RUN"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
