//! The rules one value of `deploy.toml` must follow, one pure function each, with the reason
//! behind every limit: most come from the AWS names derived from the value (a target group name
//! has at most 32 characters, a bucket name 63, an IAM role name 64), the rest from what the
//! service accepts (Fargate sizes, log retention periods, CodeDeploy configs, git ref names).
//!
//! A broken rule is a [`Broken`]: what is wrong, and the fix. The reader in `check.rs` adds the
//! file position and the field.

use std::fmt::Write as _;

/// What is wrong with a value, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub message: String,
    pub help: String,
}

pub type Rule = Result<(), Broken>;

fn broken(message: impl Into<String>, help: impl Into<String>) -> Rule {
    Err(Broken { message: message.into(), help: help.into() })
}

/// Every region of the commercial partition (`aws`) with its name, as listed by the partition
/// data of aws-sdk-rust (aws-sdk-sts 1.124, 2026). Other partitions (China, GovCloud, ISO, the
/// European Sovereign Cloud) have other ARNs, endpoints and accounts: the templates and the
/// derived ARNs here assume `arn:aws:`, so they are rejected with that reason.
pub const REGIONS: &[(&str, &str)] = &[
    ("af-south-1", "Africa (Cape Town)"),
    ("ap-east-1", "Asia Pacific (Hong Kong)"),
    ("ap-east-2", "Asia Pacific (Taipei)"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)"),
    ("ap-northeast-2", "Asia Pacific (Seoul)"),
    ("ap-northeast-3", "Asia Pacific (Osaka)"),
    ("ap-south-1", "Asia Pacific (Mumbai)"),
    ("ap-south-2", "Asia Pacific (Hyderabad)"),
    ("ap-southeast-1", "Asia Pacific (Singapore)"),
    ("ap-southeast-2", "Asia Pacific (Sydney)"),
    ("ap-southeast-3", "Asia Pacific (Jakarta)"),
    ("ap-southeast-4", "Asia Pacific (Melbourne)"),
    ("ap-southeast-5", "Asia Pacific (Malaysia)"),
    ("ap-southeast-6", "Asia Pacific (New Zealand)"),
    ("ap-southeast-7", "Asia Pacific (Thailand)"),
    ("ca-central-1", "Canada (Central)"),
    ("ca-west-1", "Canada West (Calgary)"),
    ("eu-central-1", "Europe (Frankfurt)"),
    ("eu-central-2", "Europe (Zurich)"),
    ("eu-north-1", "Europe (Stockholm)"),
    ("eu-south-1", "Europe (Milan)"),
    ("eu-south-2", "Europe (Spain)"),
    ("eu-west-1", "Europe (Ireland)"),
    ("eu-west-2", "Europe (London)"),
    ("eu-west-3", "Europe (Paris)"),
    ("il-central-1", "Israel (Tel Aviv)"),
    ("me-central-1", "Middle East (UAE)"),
    ("me-south-1", "Middle East (Bahrain)"),
    ("mx-central-1", "Mexico (Central)"),
    ("sa-east-1", "South America (Sao Paulo)"),
    ("us-east-1", "US East (N. Virginia)"),
    ("us-east-2", "US East (Ohio)"),
    ("us-west-1", "US West (N. California)"),
    ("us-west-2", "US West (Oregon)"),
];

/// The longest region code in [`REGIONS`], for the length budgets of names that embed a region.
pub const LONGEST_REGION: usize = 14;

/// Region prefixes of the other partitions, longest first, with the partition's name.
const OTHER_PARTITIONS: &[(&str, &str)] = &[
    ("us-gov-", "AWS GovCloud (aws-us-gov)"),
    ("us-isob-", "AWS Secret Region (aws-iso-b)"),
    ("us-isof-", "AWS ISO-F (aws-iso-f)"),
    ("us-iso-", "AWS Top Secret Region (aws-iso)"),
    ("eu-isoe-", "AWS ISO-E (aws-iso-e)"),
    ("eusc-", "AWS European Sovereign Cloud (aws-eusc)"),
    ("cn-", "AWS China (aws-cn)"),
];

/// A region code of the commercial partition: known, lowercase, a region and not a zone.
pub fn region(value: &str) -> Rule {
    if REGIONS.iter().any(|(code, _)| *code == value) {
        return Ok(());
    }
    let lower = value.to_ascii_lowercase();
    if REGIONS.iter().any(|(code, _)| *code == lower) {
        return broken(format!("`{value}` must be lowercase"), format!("write \"{lower}\""));
    }
    let zone_region = lower.trim_end_matches(|c: char| c.is_ascii_lowercase());
    if zone_region != lower && REGIONS.iter().any(|(code, _)| *code == zone_region) {
        return broken(
            format!("`{value}` is an availability zone, not a region"),
            format!("write its region: \"{zone_region}\""),
        );
    }
    if let Some((_, partition)) = OTHER_PARTITIONS.iter().find(|(prefix, _)| lower.starts_with(prefix)) {
        return broken(
            format!("`{value}` is in {partition}; Global Blue/Green deploys to the commercial partition (aws) only"),
            "its ARNs (arn:aws:...), endpoints and accounts are separate from that partition's; \
             pick a commercial region such as \"eu-central-1\"",
        );
    }
    if lower.starts_with("aws-") {
        return broken(
            format!("`{value}` is an endpoint alias, not a region"),
            "name the region the stacks live in, e.g. \"us-east-1\"",
        );
    }
    if lower.len() >= 4
        && let Some((code, name)) = REGIONS.iter().find(|(_, name)| name.to_ascii_lowercase().contains(&lower))
    {
        return broken(format!("`{value}` is not a region code"), format!("{name} is \"{code}\""));
    }
    if let Some(code) = suggest(value, REGIONS.iter().map(|(code, _)| *code)) {
        return broken(format!("`{value}` is not an AWS region"), format!("did you mean \"{code}\"?"));
    }
    let mut all = String::new();
    for (index, (code, _)) in REGIONS.iter().enumerate() {
        let _ = write!(all, "{}{code}", if index == 0 { "" } else { ", " });
    }
    if looks_like_commercial_region(&lower) {
        return broken(
            format!("`{value}` is not a commercial AWS region known to this tool"),
            format!(
                "known regions: {all}; if AWS opened `{value}` recently, add it to REGIONS in \
                 xtask/src/config/rules.rs"
            ),
        );
    }
    broken(format!("`{value}` is not an AWS region"), format!("one of: {all}"))
}

/// `^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-[0-9]+$`, the commercial partition's region pattern.
fn looks_like_commercial_region(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    matches!(parts.as_slice(), [area, direction, number]
        if ["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"].contains(area)
            && !direction.is_empty() && direction.chars().all(|c| c.is_ascii_lowercase())
            && !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()))
}

/// An AWS account id: exactly 12 digits (given as a string, which the reader checks).
pub fn account(value: &str) -> Rule {
    if value.len() == 12 && value.chars().all(|c| c.is_ascii_digit()) {
        return Ok(());
    }
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    let separators = value.chars().all(|c| c.is_ascii_digit() || c == '-' || c == ' ');
    if separators && digits.len() == 12 {
        return broken(
            format!("`{value}` has separators; an account id is 12 digits only"),
            format!("write \"{digits}\""),
        );
    }
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_digit()) {
        return broken(
            format!("`{value}` contains `{bad}`; an account id is 12 digits"),
            "copy it from the AWS console's account menu or `aws sts get-caller-identity`, e.g. \"111111111111\"",
        );
    }
    broken(
        format!("`{value}` has {} digits; an account id has exactly 12", value.len()),
        "leading zeros count: copy it from `aws sts get-caller-identity`, e.g. \"011111111111\"",
    )
}

/// A name that becomes part of AWS resource names: lowercase letters, digits and single
/// hyphens, starting with a letter, not ending with a hyphen, at most `max` characters. The
/// strictest consumer is ECR (`[a-z0-9]+(?:[._-][a-z0-9]+)*`: no doubled or trailing
/// separator); `why_max` says which derived name sets `max`.
pub fn name(value: &str, max: usize, why_max: &str) -> Rule {
    let fixed = fixed_name(value);
    let help = |rule: &str| {
        if fixed.is_empty() || fixed == value { rule.to_string() } else { format!("{rule}, e.g. \"{fixed}\"") }
    };
    if value.is_empty() {
        return broken("is empty", "lowercase letters, digits and hyphens, e.g. \"web\"");
    }
    if let Some(bad) = value.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return broken(
            format!("`{value}` contains `{bad}`"),
            help("use lowercase letters, digits and hyphens only: it becomes part of AWS resource names"),
        );
    }
    if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
        return broken(format!("`{value}` must start with a letter"), help("stack and role names start with a letter"));
    }
    if value.ends_with('-') || value.contains("--") {
        return broken(
            format!("`{value}` has a trailing or doubled hyphen"),
            help("ECR repository names forbid them; use single hyphens between words"),
        );
    }
    if value.len() > max {
        return broken(
            format!("`{value}` has {} characters; at most {max}", value.len()),
            format!("shorten it: {why_max}"),
        );
    }
    Ok(())
}

/// `value` lowercased, with every run of other characters turned into one hyphen: a suggestion.
fn fixed_name(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-').trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
    trimmed.to_string()
}

/// Why an S3 bucket name is invalid, as (rule id, message); `None` when it is valid. The rule id
/// lets the caller report each kind of failure once across the derived names.
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html>
pub fn bucket_name(name: &str) -> Option<(&'static str, String)> {
    let length = name.len();
    if !(3..=63).contains(&length) {
        return Some(("length", format!("bucket name `{name}` has {length} characters; S3 allows 3 to 63")));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Some(("charset", format!("bucket name `{name}` contains `{bad}`; S3 allows a-z, 0-9, `-` and `.`")));
    }
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !name.starts_with(alphanumeric) || !name.ends_with(alphanumeric) {
        return Some(("ends", format!("bucket name `{name}` must start and end with a letter or digit")));
    }
    if name.contains("..") {
        return Some(("dots", format!("bucket name `{name}` has two adjacent dots")));
    }
    let groups: Vec<&str> = name.split('.').collect();
    if groups.len() == 4 && groups.iter().all(|group| !group.is_empty() && group.chars().all(|c| c.is_ascii_digit())) {
        return Some(("ip", format!("bucket name `{name}` looks like an IP address")));
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Some(("prefix", format!("bucket name `{name}` starts with `{prefix}`, which S3 reserves")));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return Some(("suffix", format!("bucket name `{name}` ends with `{suffix}`, which S3 reserves")));
        }
    }
    None
}

/// A branch name git and CodeCommit accept (`git check-ref-format --branch`).
pub fn branch(value: &str) -> Rule {
    let help = "a branch name such as \"main\" or \"release/1.x\": no spaces, `..`, `~^:?*[\\`, `@{`, \
                leading `-` or `/`, trailing `/` or `.`, `.lock` ending";
    let bad = |what: &str| broken(format!("`{value}` is not a valid branch name: {what}"), help);
    if value.is_empty() {
        return bad("it is empty");
    }
    if value.len() > 256 {
        return bad("CodeCommit allows at most 256 characters");
    }
    if let Some(c) = value.chars().find(|c| c.is_ascii_control() || " ~^:?*[\\".contains(*c)) {
        return bad(&format!("it contains {c:?}"));
    }
    if value.starts_with('-') {
        return bad("it starts with `-`");
    }
    if value == "@" || value == "HEAD" {
        return bad("git reserves it");
    }
    if value.contains("..") || value.contains("@{") || value.contains("//") {
        return bad("it contains `..`, `@{` or `//`");
    }
    if value.starts_with('/') || value.ends_with('/') || value.ends_with('.') {
        return bad("it starts or ends with `/`, or ends with `.`");
    }
    if value.split('/').any(|part| part.starts_with('.') || part.ends_with(".lock")) {
        return bad("a part starts with `.` or ends with `.lock`");
    }
    Ok(())
}

/// An IAM role name, optionally with a path (`path/Name`): the xtask assumes
/// `arn:aws:iam::<account>:role/<value>`.
pub fn role(value: &str, account: Option<&str>) -> Rule {
    if let Some(rest) = value.strip_prefix("arn:") {
        let name = rest.split_once(":role/").map(|(_, name)| name).unwrap_or("RoleName");
        let in_account = rest.split(':').nth(3).filter(|id| !id.is_empty());
        let other = match (in_account, account) {
            (Some(theirs), Some(ours)) if theirs != ours => format!(" (the ARN names account {theirs}, not {ours})"),
            _ => String::new(),
        };
        return broken(
            format!("`{value}` is an ARN; give the role's name{other}"),
            format!("write \"{name}\": the role assumed is arn:aws:iam::<this account>:role/<name>"),
        );
    }
    let help = "an IAM role name: letters, digits and `+=,.@_-`, at most 64 characters, e.g. \
                \"OrganizationAccountAccessRole\"";
    let name = value.rsplit('/').next().unwrap_or(value);
    if name.is_empty() || name.len() > 64 {
        return broken(format!("`{value}` is not a role name: it must have 1 to 64 characters"), help);
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if let Some(bad) = value.chars().find(|c| !allowed(*c) && *c != '/') {
        return broken(format!("`{value}` contains `{bad}`, which IAM role names do not allow"), help);
    }
    if value.split('/').any(str::is_empty) {
        return broken(format!("`{value}` has an empty path segment"), help);
    }
    Ok(())
}

/// A named profile of `~/.aws/config`.
pub fn profile(value: &str) -> Rule {
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return broken(
            format!("`{value}` is not a profile name"),
            "the name of a [profile NAME] section of ~/.aws/config, without spaces",
        );
    }
    Ok(())
}

/// Fargate (Linux) task sizes: each CPU value with the memory values it accepts, in MiB.
/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size>
pub fn fargate_memory(cpu: i64) -> Option<Vec<i64>> {
    let (low, high, step) = match cpu {
        256 => return Some(vec![512, 1024, 2048]),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122880, 8192),
        _ => return None,
    };
    Some((low..=high).step_by(step).collect())
}

/// The CPU values of Fargate tasks, in CPU units (1024 = 1 vCPU).
pub const FARGATE_CPU: &[i64] = &[256, 512, 1024, 2048, 4096, 8192, 16384];

/// The retention periods CloudWatch Logs accepts, in days.
pub const LOG_RETENTION_DAYS: &[i64] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// The predefined CodeDeploy configs for ECS.
pub const ECS_DEPLOYMENT_CONFIGS: &[&str] = &[
    "CodeDeployDefault.ECSAllAtOnce",
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
    "CodeDeployDefault.ECSCanary10Percent5Minutes",
    "CodeDeployDefault.ECSCanary10Percent15Minutes",
];

/// A CodeDeploy deployment config for ECS: a predefined one, or the name of a custom config that
/// must already exist in every workload account and region.
pub fn deployment_config(value: &str) -> Rule {
    if ECS_DEPLOYMENT_CONFIGS.contains(&value) {
        return Ok(());
    }
    let list = ECS_DEPLOYMENT_CONFIGS.join(", ");
    if value.starts_with("CodeDeployDefault") {
        let help = match suggest(value, ECS_DEPLOYMENT_CONFIGS.iter().copied()) {
            Some(near) => format!("did you mean \"{near}\"?"),
            None => format!("the ECS configs are {list}"),
        };
        return broken(format!("`{value}` is not a predefined CodeDeploy config for ECS"), help);
    }
    if value.is_empty() || value.len() > 100 || value.chars().any(char::is_whitespace) {
        return broken(
            format!("`{value}` is not a deployment config name"),
            format!("one of {list}, or the name of a custom config (1 to 100 characters, no spaces)"),
        );
    }
    Ok(())
}

/// A CodeCommit repository name.
pub fn repository(value: &str) -> Rule {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if value.is_empty() || value.len() > 100 || !value.chars().all(allowed) || value.ends_with(".git") {
        return broken(
            format!("`{value}` is not a CodeCommit repository name"),
            "1 to 100 letters, digits, `.`, `_` or `-`, not ending in `.git`, e.g. \"web\"",
        );
    }
    Ok(())
}

/// A CodeConnections connection ARN (the service was called CodeStar Connections before 2024;
/// both prefixes name the same connections).
pub fn connection_arn(value: &str) -> Rule {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let valid = matches!(parts.as_slice(), ["arn", "aws", "codeconnections" | "codestar-connections", region, account, resource]
        if region_ok(region) && account_ok(account)
            && resource.strip_prefix("connection/").is_some_and(|id| !id.is_empty() && !id.contains('/')));
    if valid {
        return Ok(());
    }
    broken(
        format!("`{value}` is not a connection ARN"),
        "copy it from Developer Tools > Settings > Connections, e.g. \
         \"arn:aws:codeconnections:eu-central-1:111111111111:connection/0a1b2c3d-...\"",
    )
}

fn region_ok(value: &str) -> bool {
    region(value).is_ok()
}

fn account_ok(value: &str) -> bool {
    account(value).is_ok()
}

/// `owner/repository` (GitHub, Bitbucket) or `group/subgroup/repository` (GitLab).
pub fn full_repository_id(value: &str) -> Rule {
    let parts: Vec<&str> = value.split('/').collect();
    if parts.len() >= 2 && parts.iter().all(|part| !part.is_empty()) && !value.chars().any(char::is_whitespace) {
        return Ok(());
    }
    broken(format!("`{value}` is not `owner/repository`"), "e.g. \"my-org/web\" for github.com/my-org/web")
}

/// The nearest candidate to `value` if it is close enough to be a typo: equal ignoring case and
/// `-`/`_`, or within a small edit distance that grows with the length.
pub fn suggest<'a>(value: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let normal = |text: &str| text.to_ascii_lowercase().replace('_', "-");
    let wanted = normal(value);
    let budget = (wanted.chars().count() / 4).clamp(1, 3);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(&wanted, &normal(candidate)), candidate))
        .filter(|(distance, _)| *distance <= budget)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edit distance counting a swap of two neighbours as one edit (optimal string alignment), so
/// `memroy` is one edit from `memory`.
fn edit_distance(left: &str, right: &str) -> usize {
    let left: Vec<char> = left.chars().collect();
    let right: Vec<char> = right.chars().collect();
    let mut distance = vec![vec![0; right.len() + 1]; left.len() + 1];
    for (i, row) in distance.iter_mut().enumerate() {
        row[0] = i;
    }
    distance[0] = (0..=right.len()).collect();
    for i in 1..=left.len() {
        for j in 1..=right.len() {
            let cost = usize::from(left[i - 1] != right[j - 1]);
            let mut best = (distance[i - 1][j] + 1).min(distance[i][j - 1] + 1).min(distance[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && left[i - 1] == right[j - 2] && left[i - 2] == right[j - 1] {
                best = best.min(distance[i - 2][j - 2] + 1);
            }
            distance[i][j] = best;
        }
    }
    distance[left.len()][right.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ok` as "", a broken rule as its message and help joined by " | ".
    fn outcome(rule: Rule) -> String {
        match rule {
            Ok(()) => String::new(),
            Err(broken) => format!("{} | {}", broken.message, broken.help),
        }
    }

    fn check(cases: &[(&str, Rule, &str)]) {
        for (input, rule, expect) in cases {
            let got = outcome(rule.clone());
            if expect.is_empty() {
                assert_eq!(got, "", "{input}: expected valid");
            } else {
                assert!(got.contains(expect), "{input}: expected {expect:?} in {got:?}");
            }
        }
    }

    #[test]
    fn regions() {
        check(&[
            ("eu-central-1", region("eu-central-1"), ""),
            ("mx-central-1", region("mx-central-1"), ""),
            ("upper", region("EU-CENTRAL-1"), "write \"eu-central-1\""),
            ("zone", region("us-east-1a"), "availability zone"),
            ("china", region("cn-north-1"), "AWS China (aws-cn)"),
            ("govcloud", region("us-gov-west-1"), "GovCloud"),
            ("sovereign", region("eusc-de-east-1"), "European Sovereign Cloud"),
            ("global", region("aws-global"), "not a region"),
            ("city", region("frankfurt"), "Europe (Frankfurt) is \"eu-central-1\""),
            ("typo", region("eu-centrl-1"), "did you mean \"eu-central-1\"?"),
            ("no number", region("eu-central"), "did you mean \"eu-central-1\"?"),
            ("future", region("me-west-9"), "not a commercial AWS region known"),
            ("nonsense", region("mars"), "one of: af-south-1"),
        ]);
        let longest = REGIONS.iter().map(|(code, _)| code.len()).max();
        assert_eq!(longest, Some(LONGEST_REGION));
    }

    #[test]
    fn accounts() {
        check(&[
            ("valid", account("012345678901"), ""),
            ("dashes", account("1111-1111-1111"), "write \"111111111111\""),
            ("short", account("12345678901"), "has 11 digits"),
            ("letters", account("12345678901x"), "contains `x`"),
        ]);
    }

    #[test]
    fn names() {
        let why = "test";
        check(&[
            ("valid", name("web-1", 26, why), ""),
            ("upper", name("My_App", 26, why), "e.g. \"my-app\""),
            ("digit first", name("1web", 26, why), "must start with a letter"),
            ("double hyphen", name("web--a", 26, why), "doubled hyphen"),
            ("trailing", name("web-", 26, why), "trailing"),
            ("long", name(&"a".repeat(27), 26, why), "27 characters; at most 26"),
            ("empty", name("", 26, why), "is empty"),
        ]);
    }

    #[test]
    fn bucket_names() {
        let cases = [
            ("web-artifacts-111111111111-ap-south-1", None),
            ("ab", Some("length")),
            (&*"a".repeat(64), Some("length")),
            ("Web-artifacts", Some("charset")),
            ("-web", Some("ends")),
            ("web..a", Some("dots")),
            ("192.168.1.1", Some("ip")),
            ("xn--web", Some("prefix")),
            ("sthree-web", Some("prefix")),
            ("web-s3alias", Some("suffix")),
            ("web--ol-s3", Some("suffix")),
        ];
        for (input, expect) in cases {
            assert_eq!(bucket_name(input).map(|(rule, _)| rule), expect, "{input}");
        }
    }

    #[test]
    fn branches() {
        check(&[
            ("main", branch("main"), ""),
            ("nested", branch("release/1.x"), ""),
            ("space", branch("my branch"), "contains ' '"),
            ("dots", branch("a..b"), "`..`"),
            ("lock", branch("main.lock"), ".lock"),
            ("slash", branch("/main"), "starts or ends"),
            ("dash", branch("-main"), "starts with `-`"),
            ("head", branch("HEAD"), "reserves"),
        ]);
    }

    #[test]
    fn roles_and_configs() {
        check(&[
            ("name", role("OrganizationAccountAccessRole", None), ""),
            ("path", role("deploy/Release", None), ""),
            ("arn", role("arn:aws:iam::999999999999:role/Deploy", Some("222222222222")), "write \"Deploy\""),
            ("arn account", role("arn:aws:iam::999999999999:role/Deploy", Some("222222222222")), "999999999999"),
            ("space", role("My Role", None), "contains ` `"),
            ("ecs", deployment_config("CodeDeployDefault.ECSAllAtOnce"), ""),
            ("custom", deployment_config("MyCanary"), ""),
            ("ec2", deployment_config("CodeDeployDefault.OneAtATime"), "not a predefined"),
            ("typo", deployment_config("CodeDeployDefault.ECSCanary10Percent5Minute"), "did you mean"),
            ("connection", connection_arn("arn:aws:codeconnections:eu-central-1:111111111111:connection/abc"), ""),
            ("bad connection", connection_arn("arn:aws:s3:::bucket"), "not a connection ARN"),
            ("repo id", full_repository_id("owner/repo"), ""),
            ("repo id bare", full_repository_id("repo"), "not `owner/repository`"),
        ]);
    }

    #[test]
    fn fargate_sizes() {
        assert_eq!(fargate_memory(256), Some(vec![512, 1024, 2048]));
        assert_eq!(fargate_memory(512).map(|memory| memory.len()), Some(4));
        assert!(fargate_memory(4096).is_some_and(|memory| memory.contains(&30720)));
        assert!(fargate_memory(8192).is_some_and(|memory| memory.contains(&20480) && !memory.contains(&17408)));
        assert_eq!(fargate_memory(300), None);
    }

    #[test]
    fn suggestions() {
        let keys = ["desired_count", "container_port", "cpu", "memory"];
        assert_eq!(suggest("desired-count", keys), Some("desired_count"));
        assert_eq!(suggest("memroy", keys), Some("memory"));
        assert_eq!(suggest("cpus", keys), Some("cpu"));
        assert_eq!(suggest("unrelated", keys), None);
    }
}
