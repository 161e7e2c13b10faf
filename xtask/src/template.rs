//! CloudFormation templates: read a template (YAML with short-form intrinsics, or JSON) into
//! CloudFormation's long form as a `serde_json::Value`, remember the line of every node for
//! messages, list its parameters and outputs, and expand the pipeline prototype for a topology.
//!
//! Why its own parser: a plain YAML-to-JSON read silently turns `!Ref X` into `"X"`, and the
//! lint and the plan both need the real structure (`{"Ref": "X"}`) with line numbers. The YAML
//! events come from `saphyr-parser`, which reports every tag and position; this module builds
//! the value and a map from JSON pointer to line in one pass.
//!
//! Why the expansion: CloudFormation cannot loop over a list, and a pipeline's artifact stores
//! and stages are lists. `cfn/tools/pipeline.yaml` is a valid pipeline for one region and one
//! workload, written with `Region1<X>` and `Workload1<X>` parameters; [`expand_pipeline`]
//! repeats them, and the list entries that use them, for any number of regions and workloads.

pub mod resolve;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, SpannedEventReceiver, Tag};
use serde_json::{Map, Number, Value};

use crate::config::Config;

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    /// The file it was read from, as given.
    pub path: PathBuf,
    /// The template in long form: `{"Ref": ..}`, `{"Fn::Sub": ..}`, `{"Fn::GetAtt": [a, b]}`.
    pub body: Value,
    /// Line (1-based) of each node, by JSON pointer (`/Resources/Bucket/Properties`). A mapping
    /// entry's line is its key's line.
    lines: HashMap<String, usize>,
}

/// A parameter of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    /// `String`, `Number`, `CommaDelimitedList`, `AWS::EC2::VPC::Id`, ...
    pub kind: String,
    /// The default as CloudFormation would pass it (a string), if the template has one.
    pub default: Option<String>,
}

impl Parameter {
    /// Whoever deploys the template must supply a value.
    pub fn required(&self) -> bool {
        self.default.is_none()
    }
}

impl Template {
    /// Reads and parses the template at `path`. Errors name the file and, for YAML errors, the line.
    pub fn load(path: &Path) -> Result<Template> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the template {}", path.display()))?;
        Template::parse(path, &text)
    }

    /// Parses `text`, read from `path` (used in messages only).
    pub fn parse(path: &Path, text: &str) -> Result<Template> {
        let mut builder = load_yaml(path, text)?;
        let body = match builder.documents.len() {
            0 => bail!("{} is empty, not a CloudFormation template", path.display()),
            1 => builder.documents.remove(0),
            count => bail!(
                "{} holds {count} YAML documents; a CloudFormation template is exactly one (remove the `---` separators)",
                path.display()
            ),
        };
        let Some(resources) = body.get("Resources") else {
            bail!(
                "{} is not a CloudFormation template: it has no `Resources` section (lint only templates, \
                 e.g. the files under cfn/)",
                path.display()
            );
        };
        ensure!(
            resources.as_object().is_some_and(|resources| !resources.is_empty()),
            "{}:{}: `Resources` must be a mapping with at least one resource",
            path.display(),
            builder.lines.get("/Resources").copied().unwrap_or(1)
        );
        Ok(Template { path: path.to_path_buf(), body, lines: builder.lines })
    }

    /// The line of the node at `pointer`, or of its nearest ancestor that has one.
    pub fn line(&self, pointer: &str) -> usize {
        let mut pointer = pointer;
        loop {
            if let Some(line) = self.lines.get(pointer) {
                return *line;
            }
            match pointer.rfind('/') {
                Some(index) => pointer = &pointer[..index],
                None => return 1,
            }
        }
    }

    /// The parameters, sorted by name (a JSON object does not keep the template's order).
    pub fn parameters(&self) -> Vec<Parameter> {
        let Some(parameters) = self.body.get("Parameters").and_then(Value::as_object) else {
            return Vec::new();
        };
        parameters
            .iter()
            .map(|(name, definition)| Parameter {
                name: name.clone(),
                kind: definition.get("Type").and_then(Value::as_str).unwrap_or("String").to_string(),
                default: definition.get("Default").map(scalar_text),
            })
            .collect()
    }

    /// The names of the outputs, sorted.
    pub fn outputs(&self) -> Vec<String> {
        self.body
            .get("Outputs")
            .and_then(Value::as_object)
            .map(|outputs| outputs.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The resources: logical id and definition (`Type`, `Properties`, `Metadata`, ...).
    pub fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.body
            .get("Resources")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(id, resource)| (id.as_str(), resource))
    }

    /// The resources of one type, e.g. `AWS::S3::Bucket`.
    pub fn resources_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources().filter(move |(_, resource)| resource.get("Type").and_then(Value::as_str) == Some(kind))
    }
}

/// The text CloudFormation receives for a parameter default: strings as they are, numbers and
/// booleans printed, lists joined with commas.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(scalar_text).collect::<Vec<_>>().join(","),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn yaml_error_text(error: &ScanError) -> String {
    format!("YAML syntax error: {} (column {}); fix the YAML", error.info(), error.marker().col() + 1)
}

/// Escapes one JSON-pointer segment (RFC 6901).
pub fn pointer_segment(segment: &str) -> Cow<'_, str> {
    if segment.contains(['~', '/']) {
        Cow::Owned(segment.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(segment)
    }
}

// ---- YAML events to long-form JSON ----

/// Builds the value from parser events. Errors cannot be returned from `on_event`, so the first
/// one is kept and later events are ignored.
#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    lines: HashMap<String, usize>,
    documents: Vec<Value>,
    error: Option<(usize, String)>,
}

struct Frame {
    container: Container,
    /// Pointer of this node (where it lands in the final value).
    pointer: String,
    /// Pointer prefix of its children: `pointer`, or `pointer/Fn::X` under a short-form tag.
    children: String,
    intrinsic: Option<String>,
    anchor: usize,
}

enum Container {
    Sequence(Vec<Value>),
    /// The mapping so far and the key waiting for its value.
    Mapping(Map<String, Value>, Option<String>),
}

impl Builder {
    fn fail(&mut self, line: usize, message: String) {
        if self.error.is_none() {
            self.error = Some((line, message));
        }
    }

    /// Where the next child of the innermost collection lands, or `None` at the document root.
    fn next_pointer(&self) -> Option<String> {
        let frame = self.stack.last()?;
        Some(match &frame.container {
            Container::Sequence(items) => format!("{}/{}", frame.children, items.len()),
            Container::Mapping(_, Some(key)) => format!("{}/{}", frame.children, pointer_segment(key)),
            Container::Mapping(_, None) => String::new(),
        })
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame { container: Container::Mapping(_, None), .. }))
    }

    fn start(&mut self, anchor: usize, tag: Option<Cow<'_, Tag>>, line: usize, container: Container) {
        if self.expecting_key() {
            return self.fail(line, "a mapping key must be a plain string, not a list or a mapping".into());
        }
        let pointer = self.next_pointer().unwrap_or_default();
        self.lines.entry(pointer.clone()).or_insert(line);
        let intrinsic = match tag.as_deref().map(intrinsic_name).transpose() {
            Ok(intrinsic) => intrinsic,
            Err(message) => return self.fail(line, message),
        };
        let children = match &intrinsic {
            Some(name) => {
                let children = format!("{pointer}/{}", pointer_segment(name));
                self.lines.insert(children.clone(), line);
                children
            }
            None => pointer.clone(),
        };
        self.stack.push(Frame { container, pointer, children, intrinsic, anchor });
    }

    fn end(&mut self, line: usize) {
        let Some(frame) = self.stack.pop() else {
            return self.fail(line, "unbalanced collection end".into());
        };
        let value = match frame.container {
            Container::Sequence(items) => Value::Array(items),
            Container::Mapping(map, None) => Value::Object(map),
            Container::Mapping(_, Some(key)) => return self.fail(line, format!("key `{key}` has no value")),
        };
        let value = match frame.intrinsic {
            Some(name) => wrap_intrinsic(&name, value),
            None => value,
        };
        debug_assert!(!frame.pointer.is_empty() || self.stack.is_empty());
        self.finish_node(value, frame.anchor, line);
    }

    fn scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<Cow<'_, Tag>>,
        line: usize,
    ) {
        if self.expecting_key() {
            if tag.is_some() {
                return self.fail(line, format!("mapping key `{text}` has a tag; keys must be plain strings"));
            }
            let Some(Frame { container: Container::Mapping(map, pending), children, .. }) = self.stack.last_mut()
            else {
                return;
            };
            if map.contains_key(text.as_ref()) {
                let key = text.into_owned();
                return self
                    .fail(line, format!("duplicate key `{key}` in one mapping; CloudFormation would keep only one"));
            }
            let pointer = format!("{children}/{}", pointer_segment(&text));
            *pending = Some(text.into_owned());
            self.lines.insert(pointer, line);
            return;
        }
        if let Some(pointer) = self.next_pointer() {
            self.lines.entry(pointer).or_insert(line);
        }
        let value = match tag.as_deref() {
            None => resolve_scalar(&text, style),
            Some(tag) if tag.is_yaml_core_schema() => match core_scalar(&text, &tag.suffix) {
                Some(value) => value,
                None => return self.fail(line, format!("`{text}` is not a valid !!{}", tag.suffix)),
            },
            Some(tag) => match intrinsic_name(tag) {
                Ok(name) => wrap_intrinsic(&name, Value::String(text.into_owned())),
                Err(message) => return self.fail(line, message),
            },
        };
        self.finish_node(value, anchor, line);
    }

    /// Puts a finished node into its parent (or makes it a document).
    fn finish_node(&mut self, value: Value, anchor: usize, line: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => self.documents.push(value),
            Some(Frame { container: Container::Sequence(items), .. }) => items.push(value),
            Some(Frame { container: Container::Mapping(map, pending), .. }) => match pending.take() {
                Some(key) => {
                    map.insert(key, value);
                }
                None => self.fail(line, "a mapping key must be a plain string".into()),
            },
        }
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder {
    fn on_event(&mut self, event: Event<'input>, span: Span) {
        if self.error.is_some() {
            return;
        }
        let line = span.start.line();
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) | Event::DocumentEnd => {}
            Event::SequenceStart(anchor, tag) => self.start(anchor, tag, line, Container::Sequence(Vec::new())),
            Event::MappingStart(anchor, tag) => self.start(anchor, tag, line, Container::Mapping(Map::new(), None)),
            Event::SequenceEnd | Event::MappingEnd => self.end(line),
            Event::Scalar(text, style, anchor, tag) => self.scalar(text, style, anchor, tag, line),
            Event::Alias(anchor) => match self.anchors.get(&anchor).cloned() {
                Some(value) if !self.expecting_key() => self.finish_node(value, 0, line),
                Some(_) => self.fail(line, "an alias cannot be a mapping key".into()),
                None => self.fail(line, "alias of an unknown anchor".into()),
            },
        }
    }
}

/// The long-form name of a short-form tag: `!Ref` -> `Ref`, `!Sub` -> `Fn::Sub`.
fn intrinsic_name(tag: &Tag) -> std::result::Result<String, String> {
    const FUNCTIONS: &[&str] = &[
        "And",
        "Base64",
        "Cidr",
        "Equals",
        "FindInMap",
        "ForEach",
        "GetAZs",
        "GetAtt",
        "If",
        "ImportValue",
        "Join",
        "Length",
        "Not",
        "Or",
        "Select",
        "Split",
        "Sub",
        "ToJsonString",
        "Transform",
    ];
    if tag.handle != "!" {
        return Err(format!(
            "unknown tag `{}{}`; CloudFormation knows !Ref, !Sub, !GetAtt, ...",
            tag.handle, tag.suffix
        ));
    }
    match tag.suffix.as_str() {
        "Ref" | "Condition" => Ok(tag.suffix.clone()),
        name if FUNCTIONS.contains(&name) => Ok(format!("Fn::{name}")),
        name => Err(format!("unknown tag `!{name}`; CloudFormation knows !Ref, !Sub, !GetAtt, !If, ...")),
    }
}

/// `{name: value}`, with `!GetAtt a.b` split into `["a", "b"]` as the long form requires.
fn wrap_intrinsic(name: &str, value: Value) -> Value {
    let value = match (name, value) {
        ("Fn::GetAtt", Value::String(text)) => match text.split_once('.') {
            Some((resource, attribute)) => Value::Array(vec![resource.into(), attribute.into()]),
            None => Value::String(text),
        },
        (_, value) => value,
    };
    let mut map = Map::new();
    map.insert(name.to_string(), value);
    Value::Object(map)
}

/// YAML 1.2 core schema for an untagged scalar: quoted and block scalars are strings; plain
/// ones may be null, a boolean, an integer or a float.
fn resolve_scalar(text: &str, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(integer) = parse_integer(text) {
        return Value::Number(integer.into());
    }
    if looks_like_float(text)
        && let Some(number) = text.parse::<f64>().ok().and_then(Number::from_f64)
    {
        return Value::Number(number);
    }
    Value::String(text.to_string())
}

fn core_scalar(text: &str, suffix: &str) -> Option<Value> {
    match suffix {
        "str" => Some(Value::String(text.to_string())),
        "int" => parse_integer(text).map(|integer| Value::Number(integer.into())),
        "float" => text.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number),
        "bool" => text.parse::<bool>().ok().map(Value::Bool),
        "null" => matches!(text, "~" | "null" | "").then_some(Value::Null),
        "map" | "seq" => None,
        _ => Some(resolve_scalar(text, ScalarStyle::Plain)),
    }
}

/// `[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+` (the core schema's integers).
fn parse_integer(text: &str) -> Option<i64> {
    if let Some(octal) = text.strip_prefix("0o") {
        return i64::from_str_radix(octal, 8).ok();
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` (the core schema's finite floats).
fn looks_like_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(index) => (&body[..index], Some(&body[index + 1..])),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            whole.bytes().all(|byte| byte.is_ascii_digit())
                && fraction.bytes().all(|byte| byte.is_ascii_digit())
                && !(whole.is_empty() && fraction.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|byte| byte.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|exponent| {
        let digits = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
        !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

// ---- the pipeline expansion ----

/// What a prototype parameter repeats over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Region,
    Workload,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Region => "Region1",
            Kind::Workload => "Workload1",
        }
    }

    fn stem(self) -> &'static str {
        match self {
            Kind::Region => "Region",
            Kind::Workload => "Workload",
        }
    }
}

/// Every template file below `dir`, sorted: what `lint` lints and the tidy check holds against
/// the plan.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
        for entry in entries {
            let path = entry.with_context(|| format!("listing {}", dir.display()))?.path();
            let extension = path.extension().and_then(|extension| extension.to_str()).unwrap_or_default();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(extension, "yaml" | "yml" | "json" | "template") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Parses YAML (or JSON), a template or not (an AppSpec), into one JSON value per document, with
/// the templates' scalar rules and short-form intrinsics; `path` names it in errors.
pub fn parse_yaml(path: &Path, text: &str) -> Result<Vec<Value>> {
    Ok(load_yaml(path, text)?.documents)
}

/// The documents of `text` and the line of every node; errors name `path` and the line.
fn load_yaml(path: &Path, text: &str) -> Result<Builder> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(error) = parser.load(&mut builder, true) {
        bail!("{}:{}: {}", path.display(), error.marker().line(), yaml_error_text(&error));
    }
    if let Some((line, message)) = builder.error {
        bail!("{}:{line}: {message}", path.display());
    }
    Ok(builder)
}

/// The shape of the pipeline for `config`: the number of regions with an artifact store
/// (`Region<k>` is `config.regions()[k-1]`, the tools region first) and, per wave in order, the
/// 1-based indices of its workloads in `config.workloads` (`Workload<k>` is
/// `config.workloads[k-1]`).
pub fn pipeline_shape(config: &Config) -> (usize, Vec<Vec<usize>>) {
    let waves = config
        .waves()
        .into_iter()
        .map(|(_, workloads)| {
            workloads
                .iter()
                .filter_map(|workload| config.workloads.iter().position(|candidate| candidate.name == workload.name))
                .map(|index| index + 1)
                .collect()
        })
        .collect();
    (config.regions().len(), waves)
}

/// Expands the pipeline prototype (`cfn/tools/pipeline.yaml`, in long form) for `regions`
/// artifact-store regions and the workloads of `waves` (1-based workload indices, every index
/// from 1 to the number of workloads exactly once).
///
/// - Each `Region1<X>` parameter becomes `Region1<X>` .. `Region<n><X>`, and each `Workload1<X>`
///   parameter becomes one per workload.
/// - In every list, the innermost entry that uses a `Region1*` parameter is repeated per region,
///   with the references renamed (`Ref` targets and `${...}` in `Fn::Sub`); one that uses a
///   `Workload1*` parameter is repeated per workload.
/// - A stage (a list entry with `Actions`) that uses `Workload1*` parameters is repeated per
///   wave, named `Wave1` .. `Wave<n>`, holding the actions of that wave's workloads in order.
///
/// A prototype reference anywhere else (outside a list entry) cannot be repeated and is an
/// error. With one region and one workload the result equals the input.
pub fn expand_pipeline(template: &Value, regions: usize, waves: &[Vec<usize>]) -> Result<Value> {
    ensure!(regions >= 1, "the pipeline needs at least one region (its own)");
    ensure!(!waves.is_empty() && waves.iter().all(|wave| !wave.is_empty()), "every wave needs at least one workload");
    let workloads: usize = waves.iter().map(Vec::len).sum();
    let listed: BTreeSet<usize> = waves.iter().flatten().copied().collect();
    ensure!(
        listed.len() == workloads && listed.iter().copied().eq(1..=workloads),
        "waves {waves:?} must name each workload 1..={workloads} exactly once"
    );
    let Some(parameters) = template.get("Parameters").and_then(Value::as_object) else {
        bail!("the pipeline template has no Parameters");
    };
    let prototypes: HashMap<String, Kind> = parameters
        .keys()
        .filter_map(|name| {
            [Kind::Region, Kind::Workload]
                .into_iter()
                .find(|kind| name.strip_prefix(kind.prefix()).is_some_and(|rest| rest.starts_with(char::is_uppercase)))
                .map(|kind| (name.clone(), kind))
        })
        .collect();
    for kind in [Kind::Region, Kind::Workload] {
        ensure!(
            prototypes.values().any(|candidate| *candidate == kind),
            "the pipeline template has no {}* parameter: it is not the pipeline prototype",
            kind.prefix()
        );
    }
    let expansion = Expansion { prototypes, regions, waves, all_workloads: (1..=workloads).collect() };
    let Some(sections) = template.as_object() else {
        bail!("the pipeline template is not a mapping");
    };
    let mut expanded = Map::new();
    for (section, value) in sections {
        let value = if section == "Parameters" {
            Value::Object(expansion.parameters(parameters))
        } else {
            expansion.walk(value, &expansion.all_workloads, &format!("/{}", pointer_segment(section)))?
        };
        expanded.insert(section.clone(), value);
    }
    Ok(Value::Object(expanded))
}

/// Expands the pipeline prototype for `config` and writes it as JSON to `dir/pipeline.json`;
/// returns the path. The plan deploys this file; the lint lints it.
pub fn write_expanded_pipeline(prototype: &Template, config: &Config, dir: &Path) -> Result<PathBuf> {
    let (regions, waves) = pipeline_shape(config);
    let expanded = expand_pipeline(&prototype.body, regions, &waves)
        .with_context(|| format!("expanding {} for {}", prototype.path.display(), config.path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("pipeline.json");
    let mut text = serde_json::to_string_pretty(&expanded)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

struct Expansion<'a> {
    prototypes: HashMap<String, Kind>,
    regions: usize,
    waves: &'a [Vec<usize>],
    all_workloads: Vec<usize>,
}

impl Expansion<'_> {
    fn parameters(&self, parameters: &Map<String, Value>) -> Map<String, Value> {
        let mut expanded = Map::new();
        for (name, definition) in parameters {
            match self.prototypes.get(name) {
                None => {
                    expanded.insert(name.clone(), definition.clone());
                }
                Some(kind) => {
                    for index in self.indices(*kind, &self.all_workloads) {
                        expanded.insert(rename(name, *kind, index), definition.clone());
                    }
                }
            }
        }
        expanded
    }

    fn indices(&self, kind: Kind, workloads: &[usize]) -> Vec<usize> {
        match kind {
            Kind::Region => (1..=self.regions).collect(),
            Kind::Workload => workloads.to_vec(),
        }
    }

    /// Copies `value`, expanding every list inside it. `workloads` are the workloads in scope
    /// (all of them, or one wave's inside a wave stage).
    fn walk(&self, value: &Value, workloads: &[usize], pointer: &str) -> Result<Value> {
        match value {
            Value::Array(items) => {
                let mut expanded = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    expanded.extend(self.entry(item, workloads, &format!("{pointer}/{index}"))?);
                }
                Ok(Value::Array(expanded))
            }
            Value::Object(map) => {
                if let Some((kind, name)) = self.direct_reference(value) {
                    bail!(
                        "{pointer}: `{name}` ({kind:?} prototype) is used outside a list entry, so the expansion \
                         cannot repeat it; move it into a list (a statement's Resource list, ArtifactStores, a stage's Actions)"
                    );
                }
                let mut expanded = Map::new();
                for (key, child) in map {
                    let child_pointer = format!("{pointer}/{}", pointer_segment(key));
                    // The argument list of an intrinsic function is not a list of entries.
                    let child = match (is_intrinsic(key), child) {
                        (true, Value::Array(arguments)) => Value::Array(
                            arguments
                                .iter()
                                .enumerate()
                                .map(|(index, argument)| {
                                    self.walk(argument, workloads, &format!("{child_pointer}/{index}"))
                                })
                                .collect::<Result<_>>()?,
                        ),
                        _ => self.walk(child, workloads, &child_pointer)?,
                    };
                    expanded.insert(key.clone(), child);
                }
                Ok(Value::Object(expanded))
            }
            scalar => Ok(scalar.clone()),
        }
    }

    /// The expansion of one list entry: itself, or its copies.
    fn entry(&self, item: &Value, workloads: &[usize], pointer: &str) -> Result<Vec<Value>> {
        let kinds = self.references(item);
        if kinds.is_empty() {
            return Ok(vec![item.clone()]);
        }
        if kinds.contains(&Kind::Workload) && item.get("Actions").is_some_and(Value::is_array) {
            return self.wave_stages(item, pointer);
        }
        if self.bare_references(item).is_empty() {
            // Every use sits in a nested list: repeat there, not here.
            return Ok(vec![self.walk(item, workloads, pointer)?]);
        }
        let kind = match kinds.iter().copied().collect::<Vec<_>>().as_slice() {
            [kind] => *kind,
            _ => bail!("{pointer}: one list entry uses both Region1* and Workload1* parameters; split it"),
        };
        Ok(self.indices(kind, workloads).into_iter().map(|index| self.rename_all(item, kind, index)).collect())
    }

    /// One copy of the stage per wave, each with that wave's deploy actions.
    fn wave_stages(&self, stage: &Value, pointer: &str) -> Result<Vec<Value>> {
        ensure!(
            stage.get("Name").and_then(Value::as_str) == Some("Wave1"),
            "{pointer}: the stage holding the Workload1 deploy action must be named `Wave1` (it becomes Wave1..Wave<n>)"
        );
        let mut stages = Vec::with_capacity(self.waves.len());
        for (index, wave) in self.waves.iter().enumerate() {
            let mut expanded = self.walk(stage, wave, pointer)?;
            expanded["Name"] = Value::String(format!("Wave{}", index + 1));
            stages.push(expanded);
        }
        Ok(stages)
    }

    /// The kinds of prototype parameters `value` uses anywhere inside.
    fn references(&self, value: &Value) -> BTreeSet<Kind> {
        let mut kinds = BTreeSet::new();
        self.collect_references(value, true, &mut kinds);
        kinds
    }

    /// The kinds used in `value` outside any nested list entry.
    fn bare_references(&self, value: &Value) -> BTreeSet<Kind> {
        let mut kinds = BTreeSet::new();
        self.collect_references(value, false, &mut kinds);
        kinds
    }

    fn collect_references(&self, value: &Value, into_lists: bool, kinds: &mut BTreeSet<Kind>) {
        if let Some((kind, _)) = self.direct_reference(value) {
            kinds.insert(kind);
        }
        match value {
            Value::Array(items) if into_lists => {
                items.iter().for_each(|item| self.collect_references(item, true, kinds))
            }
            Value::Array(_) => {}
            Value::Object(map) => {
                for (key, child) in map {
                    match (is_intrinsic(key), child) {
                        (true, Value::Array(arguments)) => {
                            arguments.iter().for_each(|argument| self.collect_references(argument, into_lists, kinds))
                        }
                        _ => self.collect_references(child, into_lists, kinds),
                    }
                }
            }
            _ => {}
        }
    }

    /// The prototype this node itself names: `{"Ref": "Region1Bucket"}` or an `Fn::Sub` whose
    /// template string mentions `${Region1Bucket}`.
    fn direct_reference(&self, value: &Value) -> Option<(Kind, String)> {
        let map = value.as_object()?;
        if map.len() != 1 {
            return None;
        }
        if let Some(Value::String(name)) = map.get("Ref") {
            return self.prototypes.get(name).map(|kind| (*kind, name.clone()));
        }
        let template = match map.get("Fn::Sub")? {
            Value::String(template) => template,
            Value::Array(arguments) => arguments.first()?.as_str()?,
            _ => return None,
        };
        sub_variables(template).into_iter().find_map(|name| self.prototypes.get(&name).map(|kind| (*kind, name)))
    }

    /// `value` with every reference to a `kind` prototype renamed to instance `index`.
    fn rename_all(&self, value: &Value, kind: Kind, index: usize) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.iter().map(|item| self.rename_all(item, kind, index)).collect()),
            Value::Object(map) => {
                let mut renamed = Map::new();
                for (key, child) in map {
                    let child = match (key.as_str(), child) {
                        ("Ref", Value::String(name)) if self.prototypes.get(name) == Some(&kind) => {
                            Value::String(rename(name, kind, index))
                        }
                        ("Fn::Sub", Value::String(template)) => Value::String(self.rename_sub(template, kind, index)),
                        ("Fn::Sub", Value::Array(arguments)) => Value::Array(
                            arguments
                                .iter()
                                .enumerate()
                                .map(|(position, argument)| match (position, argument) {
                                    (0, Value::String(template)) => {
                                        Value::String(self.rename_sub(template, kind, index))
                                    }
                                    (_, argument) => self.rename_all(argument, kind, index),
                                })
                                .collect(),
                        ),
                        (_, child) => self.rename_all(child, kind, index),
                    };
                    renamed.insert(key.clone(), child);
                }
                Value::Object(renamed)
            }
            scalar => scalar.clone(),
        }
    }

    fn rename_sub(&self, template: &str, kind: Kind, index: usize) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = &after[..end];
            if self.prototypes.get(name) == Some(&kind) {
                let _ = write!(out, "${{{}}}", rename(name, kind, index));
            } else {
                let _ = write!(out, "${{{name}}}");
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// `Region1Bucket` -> `Region3Bucket`.
fn rename(name: &str, kind: Kind, index: usize) -> String {
    format!("{}{index}{}", kind.stem(), &name[kind.prefix().len()..])
}

fn is_intrinsic(key: &str) -> bool {
    key.starts_with("Fn::") || key == "Ref" || key == "Condition"
}

/// The variables `${Name}` of an `Fn::Sub` template (not the `${!Literal}` escapes).
pub fn sub_variables(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.starts_with('!') {
            names.push(name.to_string());
        }
        rest = &after[end + 1..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Template {
        Template::parse(Path::new("t.yaml"), text).unwrap()
    }

    fn parse_error(text: &str) -> String {
        format!("{:#}", Template::parse(Path::new("bad.yaml"), text).unwrap_err())
    }

    #[test]
    fn short_forms_become_long_forms() {
        let cases: &[(&str, Value)] = &[
            ("!Ref Vpc", json!({"Ref": "Vpc"})),
            ("!GetAtt Role.Arn", json!({"Fn::GetAtt": ["Role", "Arn"]})),
            ("!GetAtt Alb.Attr.Nested", json!({"Fn::GetAtt": ["Alb", "Attr.Nested"]})),
            ("!GetAtt [Role, Arn]", json!({"Fn::GetAtt": ["Role", "Arn"]})),
            ("!Sub ${AWS::Region}-x", json!({"Fn::Sub": "${AWS::Region}-x"})),
            ("!Select [0, !GetAZs \"\"]", json!({"Fn::Select": [0, {"Fn::GetAZs": ""}]})),
            ("!If [C, !Ref A, !Ref AWS::NoValue]", json!({"Fn::If": ["C", {"Ref": "A"}, {"Ref": "AWS::NoValue"}]})),
            ("!Condition IsProd", json!({"Condition": "IsProd"})),
            (
                "!Sub [\"${A}/*\", {A: !Join [\",\", !Ref L]}]",
                json!({"Fn::Sub": ["${A}/*", {"A": {"Fn::Join": [",", {"Ref": "L"}]}}]}),
            ),
        ];
        for (yaml, expected) in cases {
            let template = parse(&format!("Resources:\n  R:\n    Type: X\n    Properties:\n      P: {yaml}\n"));
            assert_eq!(&template.body["Resources"]["R"]["Properties"]["P"], expected, "{yaml}");
        }
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let cases: &[(&str, Value)] = &[
            ("80", json!(80)),
            ("-3", json!(-3)),
            ("1.5", json!(1.5)),
            ("true", json!(true)),
            ("~", Value::Null),
            ("\"80\"", json!("80")),
            ("2012-10-17", json!("2012-10-17")),
            ("0.0.0.0/0", json!("0.0.0.0/0")),
            ("'true'", json!("true")),
            ("!!str 42", json!("42")),
            ("web", json!("web")),
        ];
        for (yaml, expected) in cases {
            let template = parse(&format!("Resources:\n  R:\n    Type: X\n    Properties:\n      P: {yaml}\n"));
            assert_eq!(&template.body["Resources"]["R"]["Properties"]["P"], expected, "{yaml}");
        }
    }

    #[test]
    fn lines_follow_keys_and_items() {
        let template = parse(
            "Parameters:\n  A:\n    Type: String\nResources:\n  Bucket:\n    Type: AWS::S3::Bucket\n    Properties:\n      Tags:\n        - Key: k\n          Value: !Sub x${A}\n",
        );
        let cases = [
            ("/Parameters/A", 2),
            ("/Resources/Bucket", 5),
            ("/Resources/Bucket/Properties", 7),
            ("/Resources/Bucket/Properties/Tags/0", 9),
            ("/Resources/Bucket/Properties/Tags/0/Value", 10),
            ("/Resources/Bucket/Properties/Tags/0/Value/Fn::Sub", 10),
            ("/Resources/Bucket/Properties/Nope/Deeper", 7),
            ("/Nope", 1),
        ];
        for (pointer, line) in cases {
            assert_eq!(template.line(pointer), line, "{pointer}");
        }
    }

    #[test]
    fn parameters_and_outputs_are_listed() {
        let template = parse(
            "Parameters:\n  Name:\n    Type: String\n  Count:\n    Type: Number\n    Default: 2\n  Cidrs:\n    Type: CommaDelimitedList\n    Default: \"\"\nResources:\n  R:\n    Type: X\nOutputs:\n  B:\n    Value: b\n  A:\n    Value: a\n",
        );
        let parameters = template.parameters();
        let summary: Vec<(&str, &str, Option<&str>, bool)> = parameters
            .iter()
            .map(|parameter| {
                (parameter.name.as_str(), parameter.kind.as_str(), parameter.default.as_deref(), parameter.required())
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("Cidrs", "CommaDelimitedList", Some(""), false),
                ("Count", "Number", Some("2"), false),
                ("Name", "String", None, true)
            ]
        );
        assert_eq!(template.outputs(), ["A", "B"]);
    }

    #[test]
    fn bad_input_names_the_file_and_line() {
        let cases = [
            ("Resources:\n  R:\n    Type: X\n   bad: [\n", "bad.yaml:"),
            ("Resources:\n  R:\n    Type: X\n    Type: Y\n", "bad.yaml:4: duplicate key `Type`"),
            ("Resources:\n  R:\n    Type: X\n    Properties:\n      P: !Reff X\n", "bad.yaml:5: unknown tag `!Reff`"),
            ("version: 0.2\nphases: {}\n", "bad.yaml is not a CloudFormation template"),
            ("", "bad.yaml is empty"),
            ("Resources: {}\n", "bad.yaml:1: `Resources` must be a mapping with at least one resource"),
            ("Resources:\n  R: {Type: X}\n---\nResources:\n  R: {Type: X}\n", "2 YAML documents"),
        ];
        for (yaml, expected) in cases {
            let message = parse_error(yaml);
            assert!(message.contains(expected), "{yaml:?}: {message}");
        }
    }

    #[test]
    fn anchors_and_aliases_copy_values() {
        let template = parse("Resources:\n  A: &shared\n    Type: X\n  B: *shared\n");
        assert_eq!(template.body["Resources"]["A"], template.body["Resources"]["B"]);
    }

    #[test]
    fn json_templates_parse_too() {
        let template = parse("{\"Resources\": {\"R\": {\"Type\": \"X\", \"Properties\": {\"P\": {\"Ref\": \"A\"}}}}}");
        assert_eq!(template.body["Resources"]["R"]["Properties"]["P"], json!({"Ref": "A"}));
    }

    /// The shape of cfn/tools/pipeline.yaml, reduced to what the expansion touches.
    fn prototype() -> Value {
        json!({
            "Parameters": {
                "PipelineName": {"Type": "String"},
                "Region1Name": {"Type": "String"},
                "Region1Bucket": {"Type": "String"},
                "Region1KeyArn": {"Type": "String"},
                "Workload1Name": {"Type": "String"},
                "Workload1RoleArn": {"Type": "String"}
            },
            "Resources": {
                "Role": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {"Statement": [
                    {"Sid": "Keys", "Action": "kms:Decrypt", "Resource": [{"Ref": "Region1KeyArn"}]},
                    {"Sid": "Buckets", "Action": "s3:GetObject", "Resource": [
                        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${Region1Bucket}/*"}
                    ]},
                    {"Sid": "Assume", "Action": "sts:AssumeRole", "Resource": [{"Ref": "Workload1RoleArn"}]},
                    {"Fn::If": ["C", {"Sid": "Other", "Resource": "*"}, {"Ref": "AWS::NoValue"}]}
                ]}}]}},
                "Pipeline": {"Type": "AWS::CodePipeline::Pipeline", "Properties": {
                    "Name": {"Ref": "PipelineName"},
                    "ArtifactStores": [{"Region": {"Ref": "Region1Name"}, "ArtifactStore": {
                        "Location": {"Ref": "Region1Bucket"},
                        "EncryptionKey": {"Type": "KMS", "Id": {"Ref": "Region1KeyArn"}}
                    }}],
                    "Stages": [
                        {"Name": "Source", "Actions": [{"Name": "Source"}]},
                        {"Name": "Wave1", "Actions": [{
                            "Name": {"Fn::Sub": "Deploy-${Workload1Name}"},
                            "RoleArn": {"Ref": "Workload1RoleArn"},
                            "Configuration": {"TaskDefinitionTemplatePath": {"Fn::Sub": ["${Workload1Name}/taskdef.json", {}]}}
                        }]}
                    ]
                }}
            }
        })
    }

    #[test]
    fn one_region_one_workload_is_the_identity() {
        let template = prototype();
        assert_eq!(expand_pipeline(&template, 1, &[vec![1]]).unwrap(), template);
    }

    #[test]
    fn three_regions_and_two_waves() {
        let expanded = expand_pipeline(&prototype(), 3, &[vec![1], vec![2, 3]]).unwrap();
        let parameters: Vec<&String> = expanded["Parameters"].as_object().unwrap().keys().collect();
        for name in
            ["Region1Name", "Region2Bucket", "Region3KeyArn", "Workload1Name", "Workload2RoleArn", "Workload3Name"]
        {
            assert!(parameters.iter().any(|parameter| *parameter == name), "{name} missing from {parameters:?}");
        }
        assert!(
            !parameters.iter().any(|parameter| parameter.starts_with("Region4") || parameter.starts_with("Workload4"))
        );

        let statements = &expanded["Resources"]["Role"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
        assert_eq!(statements.as_array().unwrap().len(), 4, "statements are not repeated, their Resource lists are");
        assert_eq!(
            statements[0]["Resource"],
            json!([{"Ref": "Region1KeyArn"}, {"Ref": "Region2KeyArn"}, {"Ref": "Region3KeyArn"}])
        );
        assert_eq!(statements[1]["Resource"][2], json!({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Region3Bucket}/*"}));
        assert_eq!(
            statements[2]["Resource"],
            json!([{"Ref": "Workload1RoleArn"}, {"Ref": "Workload2RoleArn"}, {"Ref": "Workload3RoleArn"}])
        );

        let pipeline = &expanded["Resources"]["Pipeline"]["Properties"];
        let stores = pipeline["ArtifactStores"].as_array().unwrap();
        let regions: Vec<&Value> = stores.iter().map(|store| &store["Region"]["Ref"]).collect();
        assert_eq!(regions, [&json!("Region1Name"), &json!("Region2Name"), &json!("Region3Name")]);
        assert_eq!(stores[1]["ArtifactStore"]["EncryptionKey"]["Id"], json!({"Ref": "Region2KeyArn"}));

        let stages = pipeline["Stages"].as_array().unwrap();
        let names: Vec<&str> = stages.iter().map(|stage| stage["Name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Source", "Wave1", "Wave2"]);
        let roles = |stage: &Value| -> Vec<Value> {
            stage["Actions"].as_array().unwrap().iter().map(|action| action["RoleArn"]["Ref"].clone()).collect()
        };
        assert_eq!(roles(&stages[1]), [json!("Workload1RoleArn")]);
        assert_eq!(roles(&stages[2]), [json!("Workload2RoleArn"), json!("Workload3RoleArn")]);
        assert_eq!(stages[2]["Actions"][1]["Name"], json!({"Fn::Sub": "Deploy-${Workload3Name}"}));
        assert_eq!(
            stages[2]["Actions"][0]["Configuration"]["TaskDefinitionTemplatePath"],
            json!({"Fn::Sub": ["${Workload2Name}/taskdef.json", {}]})
        );
    }

    #[test]
    fn expansion_rejects_what_it_cannot_repeat() {
        let mut outside_a_list = prototype();
        outside_a_list["Outputs"] = json!({"Bucket": {"Value": {"Ref": "Region1Bucket"}}});
        let mut mixed = prototype();
        mixed["Resources"]["Pipeline"]["Properties"]["Tags"] =
            json!([{"Key": {"Ref": "Region1Name"}, "Value": {"Ref": "Workload1Name"}}]);
        let cases: &[(Value, usize, Vec<Vec<usize>>, &str)] = &[
            (outside_a_list, 1, vec![vec![1]], "/Outputs/Bucket/Value: `Region1Bucket`"),
            (mixed, 1, vec![vec![1]], "uses both Region1* and Workload1*"),
            (prototype(), 1, vec![vec![1], vec![1]], "exactly once"),
            (prototype(), 1, vec![vec![2]], "exactly once"),
            (prototype(), 0, vec![vec![1]], "at least one region"),
            (prototype(), 1, vec![vec![]], "at least one workload"),
            (json!({"Parameters": {"A": {}}, "Resources": {}}), 1, vec![vec![1]], "not the pipeline prototype"),
        ];
        for (template, regions, waves, expected) in cases {
            let message = format!("{:#}", expand_pipeline(template, *regions, waves).unwrap_err());
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }

    #[test]
    fn sub_variables_skip_literals() {
        assert_eq!(sub_variables("a${B}c${!D}e${F.G}"), ["B", "F.G"]);
    }
}
