//! The layer rule: the xtask's modules form layers, and a module imports only from its own layer
//! or the layers below it; no two modules import each other, directly or around a circle.
//!
//! The layers, bottom up, are written down once, in [`LAYERS`] (ARCHITECTURE.md draws them).
//! A module is a file's path under `xtask/src` (`engine/actions.rs` is `engine`; `local/moto.rs`
//! is `local::moto` because the table names it on its own). Imports are read from the code
//! outside `#[cfg(test)]`: every `crate::a::b` path and every `use crate::{a, b::c}` group.
//! A module missing from the table is a problem too, so a new module is placed on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::tidy::Problem;

/// The layers, bottom up: each entry's modules may import from their own layer and those before.
pub const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation: output, files, project facts, plain HTTP",
        &["lib", "output", "archive", "project", "http", "venv", "tools"],
    ),
    ("facts: the config, the templates, the Docker engine", &["config", "template", "docker"]),
    (
        "access: command-line parsers, the accounts, buckets, the site image, the local daemons",
        &["cli", "aws", "artifacts", "site_image", "local::moto", "local::registry", "local::daemon", "local::site"],
    ),
    ("publication: images, the Lambda, release files", &["publish", "lambda", "release_files"]),
    (
        "engine: plans and stacks, the lock, access proof, deployments",
        &["engine", "topology_lock", "access", "bluegreen", "preflight"],
    ),
    (
        "commands",
        &[
            "main",
            "deploy",
            "destroy",
            "plan",
            "status",
            "release",
            "rollback",
            "package",
            "push",
            "pipeline",
            "verify",
            "verify_release",
            "lock",
            "image",
            "ci",
            "gitflow",
            "lint",
            "config_check",
            "bench",
            "test",
            "tidy",
            "local",
        ],
    ),
];

/// The layer of `module` (an index into [`LAYERS`]).
fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, modules)| modules.contains(&module))
}

/// The table's name for the path segments `first::second`: `local::moto` when the table lists
/// it, else `local`.
fn module_of(first: &str, second: Option<&str>) -> String {
    if let Some(second) = second {
        let nested = format!("{first}::{second}");
        if layer(&nested).is_some() {
            return nested;
        }
    }
    first.to_string()
}

/// The module a file under `xtask/src` belongs to (`path` relative to `xtask/src`).
pub fn module_of_file(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let text = text.trim_end_matches(".rs");
    let mut parts = text.split('/');
    let first = parts.next().unwrap_or_default();
    module_of(first, parts.next())
}

/// The modules `text` imports through `crate::`, with the 1-based line of the first import of each.
/// Comments are skipped; a `#[cfg(test)]` item is skipped, and a `#[cfg(test)]` module ends the
/// reading (the tests may reach anywhere). Every path of a use tree counts, groups included, over
/// as many lines as they take: `crate::{a, b::{c, d}}` imports `a`, `b` (or `b::c` and `b::d` where
/// the table names them).
pub fn imports(text: &str) -> BTreeMap<String, usize> {
    let mut code = String::new();
    // (byte offset in `code`, 1-based line in `text`) of each line kept.
    let mut starts: Vec<(usize, usize)> = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed.starts_with("#[cfg(test)]") {
            let next = lines.peek().map(|(_, next)| next.trim_start()).unwrap_or_default();
            if next.starts_with("mod ") || next.starts_with("pub mod tests") {
                break;
            }
            lines.next();
            continue;
        }
        starts.push((code.len(), index + 1));
        code.push_str(line);
        code.push('\n');
    }
    let line_at = |offset: usize| starts.iter().rev().find(|(start, _)| *start <= offset).map_or(1, |(_, line)| *line);
    let mut found = BTreeMap::new();
    let mut search = 0;
    while let Some(at) = code[search..].find("crate::") {
        let start = search + at;
        search = start + "crate::".len();
        // Part of a longer name, or `pub(in crate::x)`: not an import.
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') || code[..start].ends_with("in ") {
            continue;
        }
        let mut paths = Vec::new();
        use_tree(&code[search..], Vec::new(), &mut paths);
        for path in paths {
            let Some(first) = path.first().filter(|name| name.starts_with(|c: char| c.is_ascii_lowercase())) else {
                continue;
            };
            let second = path.get(1).map(String::as_str).filter(|name| *name != "self");
            found.entry(module_of(first, second)).or_insert_with(|| line_at(start));
        }
    }
    found
}

/// Reads the use tree at the start of `text` (`a::b`, `a::{b, c::d}`, `{a, b}`, `a as b`, `a::*`),
/// each path after `prefix` pushed onto `paths`; returns how many bytes it read.
fn use_tree(text: &str, prefix: Vec<String>, paths: &mut Vec<Vec<String>>) -> usize {
    let skip_space = |read: usize| read + (text[read..].len() - text[read..].trim_start().len());
    let mut segments = prefix;
    let mut read = skip_space(0);
    loop {
        if text[read..].starts_with('{') {
            read += 1;
            loop {
                read += use_tree(&text[read..], segments.clone(), paths);
                read = skip_space(read);
                if text[read..].starts_with(',') {
                    read += 1;
                    continue;
                }
                if text[read..].starts_with('}') {
                    read += 1;
                }
                return read;
            }
        }
        let ident: String = text[read..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if ident.is_empty() {
            // `a::*` imports from `a`; an empty slot (`{a, }`) imports nothing.
            if text[read..].starts_with('*') {
                read += 1;
                paths.push(segments);
            }
            return read;
        }
        read += ident.len();
        segments.push(ident);
        if text[read..].starts_with("::") {
            read += 2;
            continue;
        }
        paths.push(segments);
        return read;
    }
}

/// The layer rule over `files` (path under `xtask/src`, text).
pub fn check(files: &[(PathBuf, String)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut first_file: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (path, text) in files {
        let shown = Path::new("xtask/src").join(path);
        let module = module_of_file(path);
        first_file.entry(module.clone()).or_insert_with(|| shown.clone());
        let Some(own) = layer(&module) else {
            problems.push(Problem {
                path: shown,
                line: 0,
                message: format!(
                    "module `{module}` is in no layer: place it in tidy/layers.rs LAYERS (and ARCHITECTURE.md)"
                ),
            });
            continue;
        };
        for (imported, line) in imports(text) {
            if imported == module {
                continue;
            }
            graph.entry(module.clone()).or_default().insert(imported.clone());
            match layer(&imported) {
                Some(theirs) if theirs > own => problems.push(Problem {
                    path: shown.clone(),
                    line,
                    message: format!(
                        "`{module}` ({}) imports `{imported}` ({}), a layer above it: move the shared piece down, or report an event up instead (tidy/layers.rs)",
                        LAYERS[own].0, LAYERS[theirs].0
                    ),
                }),
                _ => {}
            }
        }
    }
    for circle in circles(&graph) {
        let path = first_file.get(&circle[0]).cloned().unwrap_or_default();
        problems.push(Problem {
            path,
            line: 0,
            message: format!("an import circle: {}; one of them must stop importing the next", circle.join(" -> ")),
        });
    }
    problems
}

/// The import circles of `graph`, each once, as the modules around it (the first repeated last).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = Vec::new();
    let mut seen: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    for start in graph.keys() {
        // Depth-first from `start`, looking for a way back to it.
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        let mut visited = BTreeSet::new();
        while let Some((node, trail)) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if next == start {
                    let members: BTreeSet<String> = trail.iter().cloned().collect();
                    if seen.insert(members) {
                        let mut circle = trail.clone();
                        circle.push(start.clone());
                        found.push(circle);
                    }
                } else if visited.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> (PathBuf, String) {
        (PathBuf::from(path), format!("//! Docs.\n{text}"))
    }

    #[test]
    fn imports_are_read_from_paths_and_groups() {
        let text = "use crate::aws::{Aws, AwsError};\nuse crate::{archive, local::moto, Ctx};\nlet x = crate::engine::stack::Stacks::new();\n// crate::deploy::run\n#[cfg(test)]\nuse crate::bench;\n";
        let found: Vec<(String, usize)> = imports(text).into_iter().collect();
        assert_eq!(
            found,
            vec![("archive".into(), 2), ("aws".into(), 1), ("engine".into(), 3), ("local::moto".into(), 2)]
        );
        // Groups over lines, nested, `self`, globs, renames; a doc comment does not end the reading,
        // a test module does.
        let text = "//! Says #[cfg(test)] in its docs.\nuse crate::local::{\n    self,\n    site::{Colour, Site},\n};\nuse crate::{output::*, project as facts};\npub(crate) fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::deploy;\n}\n";
        let found: Vec<(String, usize)> = imports(text).into_iter().collect();
        assert_eq!(
            found,
            vec![("local".into(), 2), ("local::site".into(), 2), ("output".into(), 6), ("project".into(), 6)]
        );
        assert_eq!(module_of_file(Path::new("local/moto.rs")), "local::moto");
        assert_eq!(module_of_file(Path::new("local.rs")), "local");
        assert_eq!(module_of_file(Path::new("engine/actions.rs")), "engine");
    }

    #[test]
    fn an_upward_import_a_circle_and_an_unplaced_module_are_problems() {
        let fine =
            [file("engine/actions.rs", "use crate::aws::Aws;\n"), file("aws.rs", "use crate::config::Config;\n")];
        assert_eq!(check(&fine), vec![]);

        let upward = check(&[file("aws/connect.rs", "use crate::engine::session;\n")]);
        assert_eq!(upward.len(), 1, "{upward:?}");
        assert_eq!((upward[0].path.clone(), upward[0].line), (PathBuf::from("xtask/src/aws/connect.rs"), 2));
        assert!(upward[0].message.contains("`aws` (access"), "{}", upward[0].message);
        assert!(upward[0].message.contains("imports `engine` (engine"), "{}", upward[0].message);

        let circle = check(&[file("config.rs", "use crate::template;\n"), file("template.rs", "use crate::config;\n")]);
        assert_eq!(circle.len(), 1, "{circle:?}");
        assert!(circle[0].message.contains("config -> template -> config"), "{}", circle[0].message);

        let unplaced = check(&[file("shiny.rs", "")]);
        assert!(unplaced[0].message.contains("module `shiny` is in no layer"), "{:?}", unplaced);
    }
}
