//! The validating reader of `deploy.toml`: walks the parsed document (toml_edit keeps the byte
//! span of every key and value), checks each value against its rule, and collects every problem
//! with its position instead of stopping at the first. A [`Config`] comes out only when there is
//! no problem at all, so nothing downstream ever sees a half-valid topology.
//!
//! Problems cascade as little as possible: a value that is missing or malformed is reported once
//! and then left out of the cross-checks (duplicates, derived bucket names) that depend on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use toml_edit::{Document, Item, Key, TableLike, Value};

use super::rules::{self, Broken, Rule};
use super::{
    Access, Config, DEFAULT_ROLE, Gitflow, Invalid, Local, MergeStrategy, Names, Problem, Release, Service, Source,
    SourceProvider, Tools, Workload,
};

/// The longest app name: `<app>-green` must fit the 32 characters of a target group name (and
/// `<app>-release-<region>` the 64 of an IAM role name, which is looser).
pub const APP_MAX: usize = 26;
const APP_WHY: &str = "the target group `<app>-green` must fit AWS's 32-character limit";
const _: () = assert!(APP_MAX + "-green".len() <= 32);
const _: () = assert!(APP_MAX + "-release-".len() + rules::LONGEST_REGION <= 64);

/// The longest workload name: a short label that names the pipeline's deploy action and the
/// workload's folder in the build output; 32 keeps combinations such as `<app>-<workload>`
/// within the 64-character limits of IAM and Lambda names.
pub const WORKLOAD_NAME_MAX: usize = 32;
const WORKLOAD_WHY: &str = "a short label: it names the pipeline's deploy action and the build folder";

/// A pipeline holds at most 50 stages (source, build, then one per wave) and a stage at most 50
/// actions (one per workload of the wave).
const MAX_WAVE: i64 = 48;
const MAX_WORKLOADS_PER_WAVE: usize = 50;

const TOP: &[&str] = &["app", "tools", "workloads", "service", "release", "source", "gitflow", "names", "local"];
const TOOLS: &[&str] = &["account", "region", "profile", "role"];
const WORKLOAD: &[&str] = &["name", "account", "region", "wave", "role", "profile"];
const SERVICE: &[&str] = &["desired_count", "container_port", "cpu", "memory", "log_retention_days"];
const RELEASE: &[&str] = &["deployment_config", "termination_wait_minutes"];
const SOURCE: &[&str] = &["provider", "repository", "connection_arn", "full_repository_id"];
const GITFLOW: &[&str] = &["develop_branch", "main_branch", "auto_merge", "merge_strategy"];
const NAMES: &[&str] = &["bucket_prefix"];
const LOCAL: &[&str] = &["emulator_port", "site_port"];

/// Every section with its keys, for "`cpu` belongs in [service]" hints.
const SECTIONS: &[(&str, &[&str])] = &[
    ("the top level", TOP),
    ("[tools]", TOOLS),
    ("[[workloads]]", WORKLOAD),
    ("[service]", SERVICE),
    ("[release]", RELEASE),
    ("[source]", SOURCE),
    ("[gitflow]", GITFLOW),
    ("[names]", NAMES),
    ("[local]", LOCAL),
];

const TOOLS_EXAMPLE: &str = "[tools]\naccount = \"111111111111\"\nregion = \"ap-south-1\"";
const WORKLOAD_EXAMPLE: &str = "[[workloads]]\nname = \"india\"\naccount = \"222222222222\"\nregion = \"ap-south-1\"";

/// Reads `text` (the contents of `path`) into a validated [`Config`], or every problem in it.
pub fn read(path: &Path, text: &str) -> Result<Config, Invalid> {
    let document = match Document::parse(text) {
        Ok(document) => document,
        Err(error) => {
            let problem = syntax_problem(text, error.span().map_or(0, |span| span.start), error.message());
            return Err(Invalid { path: path.to_path_buf(), problems: vec![problem] });
        }
    };
    let mut reader = Reader { text, found: Vec::new() };
    let config = reader.config(path, document.as_table());
    let mut problems: Vec<(usize, Problem)> = reader.found;
    problems.sort_by_key(|(offset, _)| *offset);
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => {
            assert!(!problems.is_empty(), "every value left out of the config has a reported problem");
            Err(Invalid {
                path: path.to_path_buf(),
                problems: problems.into_iter().map(|(_, problem)| problem).collect(),
            })
        }
    }
}

/// A TOML syntax error: one problem, with a hint for the usual mistakes.
fn syntax_problem(text: &str, offset: usize, message: &str) -> Problem {
    let token: String = text.get(offset..).unwrap_or("").chars().take_while(|c| !c.is_whitespace()).collect();
    let help = if message.contains("duplicate key") {
        let key = token.trim_matches(|c| c == '[' || c == ']');
        if key == "workloads" {
            "write `[[workloads]]` (two brackets) before every workload, never `[workloads]`".to_string()
        } else {
            let first =
                first_line_of(text, key, offset).map(|line| format!(" (first on line {line})")).unwrap_or_default();
            if before(text, offset).trim_end_matches(' ').ends_with('[') {
                format!("[{key}] appears twice{first}; merge the two sections into one")
            } else {
                format!("`{key}` is set twice in the same table{first}; keep one")
            }
        }
    } else if message.contains("leading zero") {
        "numbers cannot start with 0; an account id is a string: account = \"012345678901\"".to_string()
    } else if message.contains("must be quoted") {
        format!("text goes in double quotes: \"{}\"", token.trim_end_matches(','))
    } else if message.contains("expected `=`") {
        "a key and its value are written `key = value`".to_string()
    } else {
        "see https://toml.io for TOML's syntax".to_string()
    };
    let (line, column) = position(text, offset);
    Problem { position: Some((line, column)), field: "syntax".into(), message: message.to_string(), help }
}

/// The line of the first `key = ...` or `[key]` before `offset`, for duplicate-key messages.
fn first_line_of(text: &str, key: &str, offset: usize) -> Option<usize> {
    before(text, offset)
        .lines()
        .position(|line| {
            let line = line.trim_start();
            let header = line.trim_start_matches('[').trim_start();
            [line, header].iter().any(|candidate| {
                candidate.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with(['=', ']', '.']))
            })
        })
        .map(|index| index + 1)
}

/// The text before `offset`, which may lie past the end or inside a character (parser spans
/// of errors are not promised to fall on character boundaries).
fn before(text: &str, offset: usize) -> &str {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    &text[..offset]
}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = before(text, offset);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |index| index + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A value and the byte offset it starts at.
#[derive(Clone, Debug)]
struct At<T> {
    value: T,
    at: usize,
}

/// A table of the document, with what a message needs to name it.
struct Section<'d> {
    table: &'d dyn TableLike,
    /// Dotted path: "" for the top level, `tools`, `workloads[1]`.
    path: String,
    /// How it is written in the file: `[tools]`, `[[workloads]]`, `the top level`.
    title: &'static str,
    /// Where it starts (its header): where a missing key is reported.
    at: usize,
}

impl Section<'_> {
    fn field(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }
}

/// What was read of a workload, before the cross-checks.
struct WorkloadRead {
    path: String,
    at: usize,
    name: Option<At<String>>,
    account: Option<At<String>>,
    region: Option<At<String>>,
    wave: Option<At<i64>>,
    access: Access,
}

struct Reader<'t> {
    text: &'t str,
    /// Problems with the byte offset they point at, for sorting in file order.
    found: Vec<(usize, Problem)>,
}

impl<'t> Reader<'t> {
    fn report(&mut self, at: usize, field: impl Into<String>, message: impl Into<String>, help: impl Into<String>) {
        let problem = Problem {
            position: Some(position(self.text, at)),
            field: field.into(),
            message: message.into(),
            help: help.into(),
        };
        self.found.push((at, problem));
    }

    /// Reports a broken rule; true when the rule holds.
    fn rule(&mut self, at: usize, field: impl Into<String>, rule: Rule) -> bool {
        match rule {
            Ok(()) => true,
            Err(Broken { message, help }) => {
                self.report(at, field, message, help);
                false
            }
        }
    }

    /// Keeps a read string only if `rule` holds for it.
    fn checked(&mut self, value: Option<At<String>>, field: &str, rule: impl Fn(&str) -> Rule) -> Option<At<String>> {
        let value = value?;
        self.rule(value.at, field, rule(&value.value)).then_some(value)
    }

    fn line(&self, at: usize) -> usize {
        position(self.text, at).0
    }

    /// The source text of an item, shortened for a message.
    fn excerpt(&self, item: &Item) -> String {
        let Some(span) = item.span() else { return String::new() };
        let raw = self.text.get(span).unwrap_or("").trim();
        let short: String = raw.chars().take(40).collect();
        if short.len() < raw.len() { format!(" `{short}...`") } else { format!(" `{short}`") }
    }

    // ---- sections and keys ----

    fn get<'d>(&self, section: &Section<'d>, key: &str) -> Option<(&'d Item, usize)> {
        let (name, item) = section.table.get_key_value(key)?;
        if item.is_none() {
            return None;
        }
        let at = item.span().or_else(|| name.span()).map_or(section.at, |span| span.start);
        Some((item, at))
    }

    fn unknown_keys(&mut self, section: &Section, known: &[&str]) {
        for (key, item) in section.table.iter() {
            if known.contains(&key) {
                continue;
            }
            let at = section
                .table
                .key(key)
                .and_then(Key::span)
                .or_else(|| item.span())
                .map_or(section.at, |span| span.start);
            let help = unknown_key_help(section, key, known);
            self.report(at, section.field(key), format!("unknown key `{key}`"), help);
        }
    }

    fn wrong_type(&mut self, section: &Section, key: &str, item: &Item, at: usize, expected: &str, example: &str) {
        let found = with_article(item.type_name());
        let excerpt = self.excerpt(item);
        self.report(
            at,
            section.field(key),
            format!("expected {expected}, found {found}{excerpt}"),
            format!("write {key} = {example}"),
        );
    }

    fn missing(&mut self, section: &Section, key: &str, example: &str) {
        let message = if section.path.is_empty() {
            format!("missing `{key}`")
        } else {
            format!("{} has no `{key}`", section.title)
        };
        self.report(section.at, section.field(key), message, format!("add {key} = {example}"));
    }

    /// A sub-table (`[service]` or `service = { ... }`), if present.
    fn section<'d>(
        &mut self,
        parent: &Section<'d>,
        key: &str,
        title: &'static str,
        example: &str,
    ) -> Option<Section<'d>> {
        let (item, at) = self.get(parent, key)?;
        let Some(table) = item.as_table_like() else {
            let found = with_article(item.type_name());
            let excerpt = self.excerpt(item);
            self.report(
                at,
                parent.field(key),
                format!("expected a table, found {found}{excerpt}"),
                format!("write\n{example}"),
            );
            return None;
        };
        Some(Section { table, path: parent.field(key), title, at })
    }

    fn string(&mut self, section: &Section, key: &str, example: &str) -> Option<At<String>> {
        let (item, at) = self.get(section, key)?;
        let Some(text) = item.as_str() else {
            self.wrong_type(section, key, item, at, "a string", example);
            return None;
        };
        if text.trim() != text {
            let field = section.field(key);
            self.report(
                at,
                field,
                format!("`{text}` has leading or trailing spaces"),
                format!("write \"{}\"", text.trim()),
            );
            return None;
        }
        Some(At { value: text.to_string(), at })
    }

    fn required_string(&mut self, section: &Section, key: &str, example: &str) -> Option<At<String>> {
        if self.get(section, key).is_none() {
            self.missing(section, key, example);
            return None;
        }
        self.string(section, key, example)
    }

    /// An account id: a quoted string of 12 digits. An integer gets its own hint, since TOML
    /// integers lose leading zeros (and cannot even be written with one).
    fn account(&mut self, section: &Section, key: &str) -> Option<At<String>> {
        let example = "\"111111111111\"";
        let Some((item, at)) = self.get(section, key) else {
            self.missing(section, key, example);
            return None;
        };
        let field = section.field(key);
        if let Some(number) = item.as_integer() {
            self.report(
                at,
                field,
                format!("an account id is a string, found the integer {number}"),
                format!("quote it: {key} = \"{number:012}\" (as text, so leading zeros survive)"),
            );
            return None;
        }
        let account = self.string(section, key, example);
        self.checked(account, &field, rules::account)
    }

    fn region(&mut self, section: &Section, key: &str, example: &str) -> Option<At<String>> {
        let region = self.required_string(section, key, example);
        self.checked(region, &section.field(key), rules::region)
    }

    /// An integer within `range`; `why` explains the range.
    fn integer(
        &mut self,
        section: &Section,
        key: &str,
        example: &str,
        range: std::ops::RangeInclusive<i64>,
        why: &str,
    ) -> Option<At<i64>> {
        let (item, at) = self.get(section, key)?;
        let Some(number) = item.as_integer() else {
            self.wrong_type(section, key, item, at, "an integer", example);
            return None;
        };
        if !range.contains(&number) {
            self.report(
                at,
                section.field(key),
                format!("{number} is out of range: {why}"),
                format!("a whole number from {} to {}, e.g. {key} = {example}", range.start(), range.end()),
            );
            return None;
        }
        Some(At { value: number, at })
    }

    fn boolean(&mut self, section: &Section, key: &str) -> Option<bool> {
        let (item, at) = self.get(section, key)?;
        let value = item.as_bool();
        if value.is_none() {
            self.wrong_type(section, key, item, at, "true or false", "true");
        }
        value
    }

    /// `profile` or `role` (not both), else `default`.
    fn access(&mut self, section: &Section, account: Option<&str>, default: Access) -> Access {
        let profile = self.string(section, "profile", "\"my-profile\"");
        let profile = self.checked(profile, &section.field("profile"), rules::profile);
        let role = self.string(section, "role", &format!("\"{DEFAULT_ROLE}\""));
        let role = self.checked(role, &section.field("role"), |role| rules::role(role, account));
        match (profile, role) {
            (Some(profile), Some(role)) => {
                let (key, at) = if role.at > profile.at { ("role", role.at) } else { ("profile", profile.at) };
                self.report(
                    at,
                    section.field(key),
                    "both `profile` and `role` are set",
                    "keep one: `profile` takes the credentials of a profile in ~/.aws/config; `role` assumes \
                     arn:aws:iam::<account>:role/<role> from the base identity",
                );
                default
            }
            (Some(profile), None) => Access::Profile(profile.value),
            (None, Some(role)) => Access::Role(role.value),
            (None, None) => default,
        }
    }

    // ---- the file ----

    fn config(&mut self, path: &Path, root: &dyn TableLike) -> Option<Config> {
        let root = Section { table: root, path: String::new(), title: "the top level", at: 0 };
        self.unknown_keys(&root, TOP);

        let app = self.required_string(&root, "app", "\"web\"");
        let app = self.checked(app, "app", app_name);

        let tools = self.section(&root, "tools", "[tools]", TOOLS_EXAMPLE);
        if tools.is_none() && self.get(&root, "tools").is_none() {
            self.report(0, "tools", "missing section [tools]", format!("add the tools account:\n{TOOLS_EXAMPLE}"));
        }
        let tools = tools.map(|section| self.tools(&section));

        let workloads = self.workloads(&root);
        self.unique_workloads(&workloads);

        let service = self.service(&root);
        let release = self.release(&root);
        let source = self.source(&root, app.as_ref().map(|app| app.value.as_str()));
        let gitflow = self.gitflow(&root);
        let local = self.local(&root);
        let prefix = self.bucket_prefix(&root, app.as_ref());

        if let (Some(tools), Some((prefix, explicit))) = (&tools, &prefix)
            && let (Some(account), Some(region)) = (&tools.account, &tools.region)
        {
            let mut regions = vec![region.value.clone()];
            regions.extend(workloads.iter().filter_map(|workload| workload.region.as_ref().map(|r| r.value.clone())));
            self.bucket_names(prefix, *explicit, &account.value, &regions);
        }

        let app = app?.value;
        let tools = tools?;
        let tools = Tools { account: tools.account?.value, region: tools.region?.value, access: tools.access };
        let workloads = workloads
            .into_iter()
            .map(|workload| {
                Some(Workload {
                    name: workload.name?.value,
                    account: workload.account?.value,
                    region: workload.region?.value,
                    wave: u32::try_from(workload.wave.map_or(1, |wave| wave.value)).ok()?,
                    access: workload.access,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        if workloads.is_empty() {
            return None;
        }
        Some(Config {
            path: path.to_path_buf(),
            app,
            tools,
            workloads,
            service: service?,
            release: release?,
            source: source?,
            gitflow: gitflow?,
            names: Names { bucket_prefix: prefix?.0.value },
            local: local?,
        })
    }

    fn tools(&mut self, section: &Section) -> ToolsRead {
        self.unknown_keys(section, TOOLS);
        let account = self.account(section, "account");
        let region = self.region(section, "region", "\"ap-south-1\"");
        let access = self.access(section, account.as_ref().map(|account| account.value.as_str()), Access::Default);
        ToolsRead { account, region, access }
    }

    fn workloads(&mut self, root: &Section) -> Vec<WorkloadRead> {
        let Some((item, at)) = self.get(root, "workloads") else {
            self.report(
                0,
                "workloads",
                "no workloads: at least one [[workloads]] is required",
                format!("add one for every account and region that runs the service:\n{WORKLOAD_EXAMPLE}"),
            );
            return Vec::new();
        };
        // (index in the list, table, where it starts)
        let tables: Vec<(usize, &dyn TableLike, usize)> = match item {
            Item::ArrayOfTables(array) => array
                .iter()
                .enumerate()
                .map(|(index, table)| (index, table as &dyn TableLike, table.span().map_or(at, |span| span.start)))
                .collect(),
            Item::Value(Value::Array(array)) => {
                let mut tables = Vec::new();
                for (index, element) in array.iter().enumerate() {
                    let element_at = element.span().map_or(at, |span| span.start);
                    match element.as_inline_table() {
                        Some(table) => tables.push((index, table as &dyn TableLike, element_at)),
                        None => self.report(
                            element_at,
                            format!("workloads[{index}]"),
                            format!("expected a table, found {}", with_article(element.type_name())),
                            format!("write every workload as a table:\n{WORKLOAD_EXAMPLE}"),
                        ),
                    }
                }
                if array.is_empty() {
                    self.report(
                        at,
                        "workloads",
                        "the list of workloads is empty: at least one is required",
                        format!("replace it with one [[workloads]] table per account and region:\n{WORKLOAD_EXAMPLE}"),
                    );
                }
                tables
            }
            other => {
                let found = other.type_name();
                let help = match other {
                    Item::Table(_) => "write `[[workloads]]` (two brackets): it is a list with one table per workload",
                    _ => "write one [[workloads]] table per workload",
                };
                self.report(at, "workloads", format!("expected a list of tables, found {}", with_article(found)), help);
                return Vec::new();
            }
        };
        let mut read = Vec::new();
        for (index, table, at) in tables {
            let section = Section { table, path: format!("workloads[{index}]"), title: "[[workloads]]", at };
            read.push(self.workload(&section));
        }
        read
    }

    fn workload(&mut self, section: &Section) -> WorkloadRead {
        self.unknown_keys(section, WORKLOAD);
        let name = self.required_string(section, "name", "\"india\"");
        let name =
            self.checked(name, &section.field("name"), |name| rules::name(name, WORKLOAD_NAME_MAX, WORKLOAD_WHY));
        let account = self.account(section, "account");
        let region = self.region(section, "region", "\"eu-central-1\"");
        let wave = self.integer(
            section,
            "wave",
            "1",
            1..=MAX_WAVE,
            "waves count from 1 (released first); a pipeline holds at most 48 of them",
        );
        let default = Access::Role(DEFAULT_ROLE.to_string());
        let access = self.access(section, account.as_ref().map(|account| account.value.as_str()), default);
        WorkloadRead { path: section.path.clone(), at: section.at, name, account, region, wave, access }
    }

    /// Unique names, one workload per account and region, at most 50 workloads per wave.
    fn unique_workloads(&mut self, workloads: &[WorkloadRead]) {
        let mut names: BTreeMap<&str, &WorkloadRead> = BTreeMap::new();
        let mut places: BTreeMap<(&str, &str), &WorkloadRead> = BTreeMap::new();
        let mut waves: BTreeMap<i64, usize> = BTreeMap::new();
        for workload in workloads {
            if let Some(name) = &workload.name
                && let Some(first) = names.insert(&name.value, workload)
            {
                let line = self.line(first.at);
                self.report(
                    name.at,
                    format!("{}.name", workload.path),
                    format!("`{}` is also the name of {} (line {line})", name.value, first.path),
                    "give every workload its own name",
                );
            }
            if let (Some(account), Some(region)) = (&workload.account, &workload.region)
                && let Some(first) = places.insert((&account.value, &region.value), workload)
            {
                let line = self.line(first.at);
                self.report(
                    region.at,
                    format!("{}.region", workload.path),
                    format!(
                        "{} (line {line}) already runs in account {} and {}",
                        first.path, account.value, region.value
                    ),
                    "one workload per account and region: their stacks (`<app>-network`, ...) would collide; \
                     remove one or move it to another region",
                );
            }
            let wave = workload.wave.as_ref().map_or(1, |wave| wave.value);
            let count = waves.entry(wave).or_default();
            *count += 1;
            if *count == MAX_WORKLOADS_PER_WAVE + 1 {
                let at = workload.wave.as_ref().map_or(workload.at, |wave| wave.at);
                self.report(
                    at,
                    format!("{}.wave", workload.path),
                    format!("wave {wave} has more than {MAX_WORKLOADS_PER_WAVE} workloads"),
                    "a pipeline stage holds at most 50 actions: move some workloads to another wave",
                );
            }
        }
    }

    fn service(&mut self, root: &Section) -> Option<Service> {
        let defaults = Service::default();
        let Some(section) = self.section(root, "service", "[service]", "[service]\ndesired_count = 2") else {
            return self.get(root, "service").is_none().then_some(defaults);
        };
        self.unknown_keys(&section, SERVICE);
        let desired_count = self.integer(
            &section,
            "desired_count",
            "2",
            1..=5000,
            "a service runs 1 to 5000 tasks (ECS's quota); to stop serving, run `cargo xtask destroy`",
        );
        let container_port = self.integer(
            &section,
            "container_port",
            "8080",
            1024..=65535,
            "the container runs as a non-root user, which cannot listen below port 1024",
        );
        let cpu = self.integer(&section, "cpu", "256", 1..=i64::from(u32::MAX), "CPU units");
        let memory = self.integer(&section, "memory", "512", 1..=i64::from(u32::MAX), "MiB");
        let log_retention_days =
            self.integer(&section, "log_retention_days", "30", 1..=3653, "CloudWatch Logs keeps logs 1 to 3653 days");
        let present = |key: &str| section.table.get(key).is_some_and(|item| !item.is_none());

        let cpu = match cpu {
            Some(cpu) => match rules::fargate_memory(cpu.value) {
                Some(allowed) => Some((cpu, allowed)),
                None => {
                    let sizes: Vec<String> = rules::FARGATE_CPU.iter().map(i64::to_string).collect();
                    self.report(
                        cpu.at,
                        section.field("cpu"),
                        format!("{} is not a Fargate CPU size", cpu.value),
                        format!("one of {} (CPU units; 1024 = 1 vCPU)", sizes.join(", ")),
                    );
                    None
                }
            },
            None if present("cpu") => None,
            None => {
                let cpu = i64::from(defaults.cpu);
                rules::fargate_memory(cpu).map(|allowed| (At { value: cpu, at: section.at }, allowed))
            }
        };
        let memory = match (&cpu, memory) {
            (Some((cpu, allowed)), Some(memory)) if !allowed.contains(&memory.value) => {
                self.report(
                    memory.at,
                    section.field("memory"),
                    format!("Fargate has no task with cpu = {} and memory = {}", cpu.value, memory.value),
                    format!("with cpu = {}, memory is {} (MiB)", cpu.value, describe_sizes(allowed)),
                );
                None
            }
            (_, Some(memory)) => Some(memory.value),
            (_, None) if present("memory") => None,
            // Absent: the smallest size the CPU allows (512 MiB for the default 256 CPU units).
            (Some((_, allowed)), None) => allowed.first().copied(),
            (None, None) => None,
        };
        if let Some(days) = &log_retention_days
            && !rules::LOG_RETENTION_DAYS.contains(&days.value)
        {
            let list: Vec<String> = rules::LOG_RETENTION_DAYS.iter().map(i64::to_string).collect();
            self.report(
                days.at,
                section.field("log_retention_days"),
                format!("CloudWatch Logs has no retention of {} days", days.value),
                format!("one of {}", list.join(", ")),
            );
            return None;
        }
        Some(Service {
            desired_count: pick(desired_count, present("desired_count"), defaults.desired_count)?,
            container_port: pick(container_port, present("container_port"), defaults.container_port)?,
            cpu: u32::try_from(cpu?.0.value).ok()?,
            memory: u32::try_from(memory?).ok()?,
            log_retention_days: pick(log_retention_days, present("log_retention_days"), defaults.log_retention_days)?,
        })
    }

    fn release(&mut self, root: &Section) -> Option<Release> {
        let defaults = Release::default();
        let example = "[release]\ndeployment_config = \"CodeDeployDefault.ECSCanary10Percent5Minutes\"";
        let Some(section) = self.section(root, "release", "[release]", example) else {
            return self.get(root, "release").is_none().then_some(defaults);
        };
        self.unknown_keys(&section, RELEASE);
        let present = |key: &str| section.table.get(key).is_some_and(|item| !item.is_none());
        let config = self.string(&section, "deployment_config", "\"CodeDeployDefault.ECSCanary10Percent5Minutes\"");
        let config = self.checked(config, &section.field("deployment_config"), rules::deployment_config);
        let wait = self.integer(
            &section,
            "termination_wait_minutes",
            "5",
            0..=2880,
            "CodeDeploy keeps the old task set at most 2880 minutes (2 days)",
        );
        let deployment_config = match config {
            Some(config) => config.value,
            None if present("deployment_config") => return None,
            None => defaults.deployment_config,
        };
        Some(Release {
            deployment_config,
            termination_wait_minutes: pick(
                wait,
                present("termination_wait_minutes"),
                defaults.termination_wait_minutes,
            )?,
        })
    }

    fn source(&mut self, root: &Section, app: Option<&str>) -> Option<Source> {
        let Some(section) = self.section(root, "source", "[source]", "[source]\nprovider = \"codecommit\"") else {
            if self.get(root, "source").is_some() {
                return None;
            }
            return app.map(|app| Source {
                provider: SourceProvider::CodeCommit,
                repository: app.to_string(),
                connection_arn: None,
                full_repository_id: None,
            });
        };
        self.unknown_keys(&section, SOURCE);
        let present = |key: &str| section.table.get(key).is_some_and(|item| !item.is_none());
        let mut valid = true;
        let provider = match self.string(&section, "provider", "\"codecommit\"") {
            None if present("provider") => {
                valid = false;
                SourceProvider::CodeCommit
            }
            None => SourceProvider::CodeCommit,
            Some(At { value, .. }) if value == "codecommit" => SourceProvider::CodeCommit,
            Some(At { value, .. }) if value == "codeconnections" => SourceProvider::CodeConnections,
            Some(At { value, at }) => {
                let lower = value.to_ascii_lowercase();
                let help = if ["github", "gitlab", "bitbucket", "codestar", "codestar-connections"]
                    .iter()
                    .any(|name| lower.starts_with(name))
                {
                    "GitHub, GitLab and Bitbucket are reached through provider = \"codeconnections\", with \
                     connection_arn and full_repository_id"
                        .to_string()
                } else {
                    match rules::suggest(&value, ["codecommit", "codeconnections"]) {
                        Some(near) => format!("did you mean \"{near}\"?"),
                        None => "\"codecommit\" or \"codeconnections\"".to_string(),
                    }
                };
                self.report(at, section.field("provider"), format!("`{value}` is not a source provider"), help);
                valid = false;
                SourceProvider::CodeCommit
            }
        };
        let repository = self.string(&section, "repository", "\"web\"");
        let repository = self.checked(repository, &section.field("repository"), rules::repository);
        valid &= repository.is_some() || !present("repository");
        let connection_arn = self.string(&section, "connection_arn", "\"arn:aws:codeconnections:...\"");
        let connection_arn = self.checked(connection_arn, &section.field("connection_arn"), rules::connection_arn);
        let full_repository_id = self.string(&section, "full_repository_id", "\"my-org/web\"");
        let full_repository_id =
            self.checked(full_repository_id, &section.field("full_repository_id"), rules::full_repository_id);
        valid &= (connection_arn.is_some() || !present("connection_arn"))
            && (full_repository_id.is_some() || !present("full_repository_id"));
        if valid {
            match provider {
                SourceProvider::CodeConnections => {
                    for (key, example) in [
                        ("connection_arn", "\"arn:aws:codeconnections:<region>:<tools account>:connection/<id>\""),
                        ("full_repository_id", "\"my-org/web\""),
                    ] {
                        if !present(key) {
                            self.report(
                                section.at,
                                section.field(key),
                                format!("provider = \"codeconnections\" needs `{key}`"),
                                format!("add {key} = {example}"),
                            );
                            valid = false;
                        }
                    }
                }
                SourceProvider::CodeCommit => {
                    for key in ["connection_arn", "full_repository_id"] {
                        if let Some((_, at)) = self.get(&section, key) {
                            self.report(
                                at,
                                section.field(key),
                                format!("`{key}` is only used with provider = \"codeconnections\""),
                                "remove it, or set provider = \"codeconnections\"",
                            );
                            valid = false;
                        }
                    }
                }
            }
        }
        if !valid {
            return None;
        }
        Some(Source {
            provider,
            repository: match repository {
                Some(repository) => repository.value,
                None => app?.to_string(),
            },
            connection_arn: connection_arn.map(|arn| arn.value),
            full_repository_id: full_repository_id.map(|id| id.value),
        })
    }

    fn gitflow(&mut self, root: &Section) -> Option<Gitflow> {
        let defaults = Gitflow::default();
        let Some(section) = self.section(root, "gitflow", "[gitflow]", "[gitflow]\nmain_branch = \"main\"") else {
            return self.get(root, "gitflow").is_none().then_some(defaults);
        };
        self.unknown_keys(&section, GITFLOW);
        let present = |key: &str| section.table.get(key).is_some_and(|item| !item.is_none());
        let develop = self.string(&section, "develop_branch", "\"develop\"");
        let develop = self.checked(develop, &section.field("develop_branch"), rules::branch);
        let main = self.string(&section, "main_branch", "\"main\"");
        let main = self.checked(main, &section.field("main_branch"), rules::branch);
        let auto_merge = self.boolean(&section, "auto_merge");
        let strategy = match self.string(&section, "merge_strategy", "\"fast-forward\"") {
            None => (!present("merge_strategy")).then_some(defaults.merge_strategy),
            Some(At { value, .. }) if value == "fast-forward" => Some(MergeStrategy::FastForward),
            Some(At { value, .. }) if value == "squash" => Some(MergeStrategy::Squash),
            Some(At { value, at }) => {
                let help = match rules::suggest(&value, ["fast-forward", "squash"]) {
                    Some(near) => format!("did you mean \"{near}\"?"),
                    None => "\"fast-forward\" (main gets develop's commits as they are) or \"squash\" (one commit)"
                        .to_string(),
                };
                self.report(at, section.field("merge_strategy"), format!("`{value}` is not a merge strategy"), help);
                None
            }
        };
        let develop_branch = match develop {
            Some(branch) => Some(branch),
            None if present("develop_branch") => None,
            None => Some(At { value: defaults.develop_branch.clone(), at: section.at }),
        };
        let main_branch = match main {
            Some(branch) => Some(branch),
            None if present("main_branch") => None,
            None => Some(At { value: defaults.main_branch.clone(), at: section.at }),
        };
        let (develop_branch, main_branch) = (develop_branch?, main_branch?);
        if develop_branch.value == main_branch.value {
            let (key, at) = if main_branch.at >= develop_branch.at {
                ("main_branch", main_branch.at)
            } else {
                ("develop_branch", develop_branch.at)
            };
            self.report(
                at,
                section.field(key),
                format!("develop_branch and main_branch are both `{}`", main_branch.value),
                "they must differ: the gitflow opens pull requests from develop_branch into main_branch",
            );
            return None;
        }
        let auto_merge = match auto_merge {
            Some(auto_merge) => auto_merge,
            None if present("auto_merge") => return None,
            None => defaults.auto_merge,
        };
        Some(Gitflow {
            develop_branch: develop_branch.value,
            main_branch: main_branch.value,
            auto_merge,
            merge_strategy: strategy?,
        })
    }

    fn local(&mut self, root: &Section) -> Option<Local> {
        let defaults = Local::default();
        let Some(section) = self.section(root, "local", "[local]", "[local]\nemulator_port = 4566") else {
            return self.get(root, "local").is_none().then_some(defaults);
        };
        self.unknown_keys(&section, LOCAL);
        let port = self.integer(
            &section,
            "emulator_port",
            "4566",
            1024..=65535,
            "the emulator runs as your user, which cannot listen below port 1024",
        );
        let present = section.table.get("emulator_port").is_some();
        let site = self.integer(
            &section,
            "site_port",
            "8080",
            1024..=65535,
            "the local site is published by your user, which cannot listen below port 1024",
        );
        let site_present = section.table.get("site_port").is_some();
        // A clash is reported at the key the file sets (the site's when it sets both).
        let clash_at = match (&site, &port) {
            (Some(site), _) if site_present => Some((site.at, "site_port")),
            (_, Some(port)) if present => Some((port.at, "emulator_port")),
            _ => None,
        };
        let emulator_port = pick(port, present, defaults.emulator_port)?;
        let site_port = pick(site, site_present, defaults.site_port)?;
        if emulator_port == site_port {
            let (at, key) = clash_at.unwrap_or((0, "site_port"));
            let free = if site_port == 8080 { 8081 } else { 8080 };
            self.report(
                at,
                section.field(key),
                format!("the site and the emulator cannot share port {site_port}"),
                format!("pick another port, e.g. {key} = {free}"),
            );
            return None;
        }
        Some(Local { emulator_port, site_port })
    }

    /// The bucket prefix and whether the file sets it (else it is derived from the app name).
    fn bucket_prefix(&mut self, root: &Section, app: Option<&At<String>>) -> Option<(At<String>, bool)> {
        let derived = app.map(|app| (At { value: format!("{}-artifacts", app.value), at: app.at }, false));
        let Some(section) = self.section(root, "names", "[names]", "[names]\nbucket_prefix = \"web-artifacts\"") else {
            return if self.get(root, "names").is_none() { derived } else { None };
        };
        self.unknown_keys(&section, NAMES);
        match self.string(&section, "bucket_prefix", "\"web-artifacts\"") {
            Some(prefix) => Some((prefix, true)),
            None if section.table.get("bucket_prefix").is_some() => None,
            None => derived,
        }
    }

    /// Checks every derived bucket name (`<prefix>-<account>-<region>` and its `-logs` sibling)
    /// against S3's naming rules, reporting each kind of failure once, for the longest name.
    fn bucket_names(&mut self, prefix: &At<String>, explicit: bool, account: &str, regions: &[String]) {
        let field = if explicit { "names.bucket_prefix" } else { "app" };
        let mut names: Vec<String> = regions
            .iter()
            .flat_map(|region| {
                let bucket = format!("{}-{account}-{region}", prefix.value);
                [format!("{bucket}-logs"), bucket]
            })
            .collect();
        names.sort_by_key(|name| std::cmp::Reverse(name.len()));
        let mut seen = BTreeSet::new();
        for name in names {
            let Some((rule, message)) = rules::bucket_name(&name) else { continue };
            if !seen.insert(rule) {
                continue;
            }
            let help = if rule == "length" {
                let budget = 63usize.saturating_sub(name.len() - prefix.value.len());
                if explicit {
                    format!("the longest derived name is `{name}`: keep bucket_prefix at most {budget} characters")
                } else {
                    format!(
                        "the default bucket_prefix `{}` makes `{name}`: shorten app to at most {} characters, or \
                         set [names] bucket_prefix = \"...\" of at most {budget}",
                        prefix.value,
                        budget.saturating_sub("-artifacts".len())
                    )
                }
            } else {
                "artifact buckets are named `<bucket_prefix>-<tools account>-<region>` (and `...-logs`): use a \
                 prefix of lowercase letters, digits and single hyphens, starting with a letter"
                    .to_string()
            };
            self.report(prefix.at, field, message, help);
        }
    }
}

struct ToolsRead {
    account: Option<At<String>>,
    region: Option<At<String>>,
    access: Access,
}

/// The fix for an unknown key: a near miss among this section's keys, the section it belongs
/// in, or a near miss in another section.
fn unknown_key_help(section: &Section, key: &str, known: &[&str]) -> String {
    let title = section.title;
    if let Some(near) = rules::suggest(key, known.iter().copied()) {
        return match near {
            "workloads" => "did you mean `workloads`? each workload is a `[[workloads]]` table".to_string(),
            _ => format!("did you mean `{near}`?"),
        };
    }
    if !section.path.is_empty() && TOP.contains(&key) {
        return match key {
            "app" => format!(
                "`app` belongs at the top of the file: a key written below a {title} header belongs to {title}; \
                 move it above the first section"
            ),
            "workloads" => format!(
                "`workloads` belongs at the top level, but a key written below a {title} header belongs to \
                 {title}: write each workload as a `[[workloads]]` table"
            ),
            _ => format!("[{key}] is a section of its own, not part of {title}"),
        };
    }
    let homes = |matches: &dyn Fn(&str) -> bool| -> Vec<(&str, &str)> {
        SECTIONS
            .iter()
            .filter(|(other, _)| *other != title && *other != "the top level")
            .filter_map(|(other, keys)| keys.iter().find(|candidate| matches(candidate)).map(|found| (*other, *found)))
            .collect()
    };
    let exact = homes(&|candidate| candidate == key);
    if !exact.is_empty() {
        let titles: Vec<&str> = exact.iter().map(|(other, _)| *other).collect();
        let below = if section.path.is_empty() {
            String::new()
        } else {
            format!(" (a key written below a {title} header belongs to {title})")
        };
        return format!("`{key}` belongs in {}{below}", titles.join(" or "));
    }
    let near = homes(&|candidate| rules::suggest(key, [candidate]).is_some());
    if let Some((_, found)) = near.first() {
        let titles: Vec<&str> = near.iter().map(|(other, _)| *other).collect();
        return format!("did you mean `{found}`? it belongs in {}", titles.join(" or "));
    }
    format!("the keys of {title} are: {}", known.join(", "))
}

/// `a string`, `an integer`, `an array of tables`.
fn with_article(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {type_name}")
}

/// The app name's rule: a resource name, and not a prefix AWS reserves for load balancer names.
fn app_name(app: &str) -> Rule {
    rules::name(app, APP_MAX, APP_WHY)?;
    if app.starts_with("internal-") {
        return Err(Broken {
            message: format!("`{app}` starts with `internal-`"),
            help: "load balancer names (derived from the app name) may not start with `internal-`".into(),
        });
    }
    Ok(())
}

/// The value read (converted to the field's type), the default when the key is absent, or
/// `None` when the key is present but invalid (already reported).
fn pick<T: TryFrom<i64>>(read: Option<At<i64>>, present: bool, default: T) -> Option<T> {
    match read {
        Some(read) => T::try_from(read.value).ok(),
        None if present => None,
        None => Some(default),
    }
}

/// `512, 1024 or 2048`, or `8192 to 30720 in steps of 1024` for long lists.
fn describe_sizes(sizes: &[i64]) -> String {
    match sizes {
        [] => String::new(),
        [single] => single.to_string(),
        [first, second, ..] if sizes.len() > 4 => {
            format!("{first} to {} in steps of {}", sizes[sizes.len() - 1], second - first)
        }
        [rest @ .., last] => {
            format!("{} or {last}", rest.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))
        }
    }
}
