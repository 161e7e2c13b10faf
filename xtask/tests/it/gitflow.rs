//! The gitflow Lambda as a process, and `cargo xtask gitflow init`.
//!
//! - The real `bootstrap` binary answers invocations through a Lambda runtime API served by the
//!   test (the three endpoints a custom runtime uses: `next`, `response`, `error`).
//! - `gitflow init` runs against a local HTTP double of the CodeCommit JSON API: no local
//!   emulator serves CodeCommit branches or commits (moto implements only repositories). The
//!   double answers each operation with a body shaped as the CodeCommit API reference documents
//!   it and records every request, so the tests assert exactly what was sent.
//!
//! By default the tests build and run the debug `bootstrap` (`cargo build -p gitflow`); set
//! `GITFLOW_BOOTSTRAP` to a binary (e.g. the static one `cargo xtask gitflow build` makes) to run
//! the same tests against it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_codebuild::types::{
    ArtifactsType, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment, ProjectSource, SourceType,
};
use aws_sdk_codecommit::config::{BehaviorVersion, Credentials, Region};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use xshell::{Shell, cmd};
use xtask::gitflow::{FileMode, InitPlan, InitRequest, RepoFile, init};

// ---- a small HTTP/1.1 server for doubles ----

#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Recorded {
    /// The AWS JSON operation (`X-Amz-Target: CodeCommit_20150413.GetBranch` -> `GetBranch`).
    fn operation(&self) -> String {
        let target = self.headers.get("x-amz-target").cloned().unwrap_or_default();
        target.rsplit('.').next().unwrap_or_default().to_string()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Keep the connection open without answering (a runtime waiting for its next event).
    Hang,
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let recorded = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, handler.clone(), recorded.clone()));
            }
        });
        Server { port, requests }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn operations(&self) -> Vec<String> {
        self.requests().iter().map(Recorded::operation).collect()
    }

    fn bodies(&self, operation: &str) -> Vec<Value> {
        self.requests().iter().filter(|request| request.operation() == operation).map(Recorded::json).collect()
    }
}

/// One keep-alive connection; bodies by `Content-Length` or chunked.
async fn serve(stream: TcpStream, handler: Handler, requests: Arc<Mutex<Vec<Recorded>>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = BTreeMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
            }
        }
        let mut body = Vec::new();
        if headers.get("transfer-encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).await.unwrap();
                let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).await.unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(length) = headers.get("content-length") {
            body = vec![0; length.parse().unwrap()];
            reader.read_exact(&mut body).await.unwrap();
        }
        let request = Recorded { method, path, headers, body };
        let reply = handler(&request);
        requests.lock().unwrap().push(request);
        match reply {
            Reply::Hang => {
                // Hold the connection until the client goes away.
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest).await;
                return;
            }
            Reply::Respond { status, headers, body } => {
                let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                let stream = reader.get_mut();
                if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(&body).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn json_reply(status: u16, body: Value) -> Reply {
    Reply::Respond {
        status,
        headers: vec![("Content-Type".into(), "application/x-amz-json-1.1".into())],
        body: body.to_string().into_bytes(),
    }
}

fn aws_error(code: &str) -> Reply {
    json_reply(400, json!({"__type": code, "message": format!("{code} (test double)")}))
}

// ---- gitflow init against a CodeCommit double ----

/// A CodeCommit double holding branches; answers the operations `gitflow init` uses with bodies
/// shaped as the API reference documents them.
async fn codecommit(branches: &[(&str, &str)], repository_exists: bool) -> Server {
    let branches: Arc<Mutex<BTreeMap<String, String>>> =
        Arc::new(Mutex::new(branches.iter().map(|(name, commit)| (name.to_string(), commit.to_string())).collect()));
    let commits = Arc::new(Mutex::new(0u32));
    Server::start(move |request| {
        let body = request.json();
        match request.operation().as_str() {
            "GetRepository" if !repository_exists => aws_error("RepositoryDoesNotExistException"),
            "GetRepository" => json_reply(200, json!({"repositoryMetadata": {
                "accountId": "111111111111",
                "arn": "arn:aws:codecommit:ap-south-1:111111111111:web",
                "cloneUrlHttp": "https://git-codecommit.ap-south-1.amazonaws.com/v1/repos/web",
                "creationDate": 1429203623.625,
                "repositoryId": "f7579e13-b83e-4027-aaef-650c0EXAMPLE",
                "repositoryName": "web"
            }})),
            "ListBranches" => json_reply(200, json!({"branches": branches.lock().unwrap().keys().collect::<Vec<_>>()})),
            "GetBranch" => {
                let name = body["branchName"].as_str().unwrap_or_default().to_string();
                match branches.lock().unwrap().get(&name) {
                    Some(commit) => json_reply(200, json!({"branch": {"branchName": name, "commitId": commit}})),
                    None => aws_error("BranchDoesNotExistException"),
                }
            }
            "CreateCommit" => {
                let mut count = commits.lock().unwrap();
                *count += 1;
                let commit = format!("{:040x}", *count);
                let name = body["branchName"].as_str().unwrap_or_default().to_string();
                branches.lock().unwrap().insert(name, commit.clone());
                let files: Vec<Value> = body["putFiles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|file| json!({"absolutePath": file["filePath"], "blobId": "2eb4af3bEXAMPLE", "fileMode": file["fileMode"]}))
                    .collect();
                json_reply(200, json!({"commitId": commit, "treeId": "347a3408EXAMPLE", "filesAdded": files, "filesDeleted": [], "filesUpdated": []}))
            }
            "CreateBranch" => {
                let name = body["branchName"].as_str().unwrap_or_default().to_string();
                let commit = body["commitId"].as_str().unwrap_or_default().to_string();
                let mut branches = branches.lock().unwrap();
                if branches.contains_key(&name) {
                    return aws_error("BranchNameExistsException");
                }
                branches.insert(name, commit);
                json_reply(200, json!({}))
            }
            "UpdateDefaultBranch" => json_reply(200, json!({})),
            other => aws_error(&format!("Unexpected{other}")),
        }
    })
    .await
}

fn client(server: &Server) -> aws_sdk_codecommit::Client {
    let config = aws_sdk_codecommit::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("ap-south-1"))
        .endpoint_url(format!("http://127.0.0.1:{}", server.port))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .build();
    aws_sdk_codecommit::Client::from_conf(config)
}

fn files(count: usize) -> Vec<RepoFile> {
    let mut files: Vec<RepoFile> = (0..count)
        .map(|n| RepoFile {
            path: format!("src/file{n:03}.rs"),
            bytes: format!("// {n}\n").into_bytes(),
            mode: FileMode::Normal,
        })
        .collect();
    files.push(RepoFile { path: ".ci/run".into(), bytes: b"#!/bin/sh\n".to_vec(), mode: FileMode::Executable });
    files.push(RepoFile { path: "link".into(), bytes: b"src/file000.rs".to_vec(), mode: FileMode::Symlink });
    files
}

fn request<'a>(files: &'a [RepoFile], dry_run: bool) -> InitRequest<'a> {
    InitRequest {
        repository: "web",
        develop_branch: "develop",
        main_branch: "main",
        files,
        message: "Initial commit of web at 5b93623".into(),
        dry_run,
    }
}

/// `gitflow init` on an empty repository, against the CodeCommit double (no emulator serves
/// CreateCommit): the files go to develop in CreateCommit-sized commits, main is created at the
/// last one and made the default branch.
#[tokio::test]
async fn init_commits_to_develop_then_creates_main() {
    let server = codecommit(&[], true).await;
    let files = files(150);
    let report = init(&client(&server), &request(&files, false)).await.unwrap();
    assert_eq!(report.plan, InitPlan::CommitBoth);
    assert_eq!(report.branches, ["develop", "main"]);
    assert_eq!(report.commits.len(), 2);
    assert_eq!(
        server.operations(),
        ["GetRepository", "ListBranches", "CreateCommit", "CreateCommit", "CreateBranch", "UpdateDefaultBranch"]
    );
    let commits = server.bodies("CreateCommit");
    assert_eq!(commits[0]["branchName"], "develop");
    assert!(commits[0].get("parentCommitId").is_none(), "the first commit has no parent");
    assert_eq!(commits[1]["parentCommitId"], report.commits[0]);
    assert_eq!(commits[0]["putFiles"].as_array().unwrap().len(), 100);
    assert_eq!(commits[1]["putFiles"].as_array().unwrap().len(), 52);
    assert_eq!(
        commits[0]["commitMessage"],
        "Initial commit of web at 5b93623 (1/2)\n\nCreated by `cargo xtask gitflow init`.\n"
    );
    let first = &commits[0]["putFiles"][0];
    assert_eq!(first["filePath"], ".ci/run");
    assert_eq!(first["fileMode"], "EXECUTABLE");
    assert_eq!(first["fileContent"], "IyEvYmluL3NoCg==", "content is base64 of `#!/bin/sh\\n`");
    let link = commits[0]["putFiles"].as_array().unwrap().iter().find(|file| file["filePath"] == "link").unwrap();
    assert_eq!(link["fileMode"], "SYMLINK");
    assert_eq!(
        server.bodies("CreateBranch"),
        [json!({"repositoryName": "web", "branchName": "main", "commitId": report.commits[1]})]
    );
    assert_eq!(server.bodies("UpdateDefaultBranch"), [json!({"repositoryName": "web", "defaultBranchName": "main"})]);

    // A second run finds both branches and changes nothing.
    let again = init(&client(&server), &request(&files, false)).await.unwrap();
    assert_eq!(again.plan, InitPlan::Nothing);
    assert!(again.commits.is_empty() && again.branches.is_empty());
    assert_eq!(server.operations().iter().filter(|operation| operation.starts_with("Create")).count(), 3);
}

/// `gitflow init` against the CodeCommit double: a missing branch is created from the other, a
/// dry run reads but never writes, a missing repository is refused with the fix.
#[tokio::test]
async fn init_completes_branches_and_refuses_what_it_cannot_fix() {
    let files = files(3);
    let main_only = codecommit(&[("main", "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1")], true).await;
    let planned = init(&client(&main_only), &request(&files, true)).await.unwrap();
    assert_eq!(planned.plan, InitPlan::DevelopFromMain { commit: "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1".into() });
    assert_eq!(main_only.operations(), ["GetRepository", "ListBranches", "GetBranch"], "a dry run only reads");
    let done = init(&client(&main_only), &request(&files, false)).await.unwrap();
    assert_eq!(done.branches, ["develop"]);
    assert_eq!(
        main_only.bodies("CreateBranch"),
        [
            json!({"repositoryName": "web", "branchName": "develop", "commitId": "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"})
        ]
    );

    let foreign = codecommit(&[("master", "b2")], true).await;
    let error = init(&client(&foreign), &request(&files, false)).await.unwrap_err();
    assert!(format!("{error:#}").contains("neither `main` nor `develop`"), "{error:#}");
    assert!(!foreign.operations().iter().any(|operation| operation.starts_with("Create")));

    let missing = codecommit(&[], false).await;
    let error = init(&client(&missing), &request(&files, false)).await.unwrap_err();
    assert!(format!("{error:#}").contains("deploy the `source` stack first"), "{error:#}");
}

// ---- the bootstrap binary through the Lambda runtime API ----

/// The `bootstrap` under test: `GITFLOW_BOOTSTRAP`, or the debug build of the `gitflow` crate.
fn bootstrap() -> PathBuf {
    if let Some(path) = std::env::var_os("GITFLOW_BOOTSTRAP") {
        return PathBuf::from(path);
    }
    let sh = Shell::new().unwrap();
    sh.change_dir(xtask::project::root());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    cmd!(sh, "{cargo} build --quiet -p gitflow --bin bootstrap").run().expect("building the gitflow Lambda");
    xtask::project::target_dir().join("debug/bootstrap")
}

fn gitflow_env() -> Vec<(&'static str, String)> {
    [
        ("GITFLOW_REPOSITORY", "web"),
        ("GITFLOW_DEVELOP_BRANCH", "develop"),
        ("GITFLOW_MAIN_BRANCH", "main"),
        ("GITFLOW_VALIDATE_PROJECT", "web-validate"),
        ("GITFLOW_AUTO_MERGE", "true"),
        ("GITFLOW_MERGE_STRATEGY", "fast-forward"),
        ("GITFLOW_APPROVER_ROLE_ARN", "arn:aws:iam::111111111111:role/web-gitflow-approver"),
        ("AWS_LAMBDA_FUNCTION_NAME", "web-gitflow"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/web-gitflow"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]test"),
        ("AWS_REGION", "ap-south-1"),
    ]
    .into_iter()
    .map(|(name, value)| (name, value.to_string()))
    .collect()
}

/// Kills the function process when a test ends, however it ends.
struct Function(Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves `event` once as invocation `request_id` and returns the function's answer:
/// `(endpoint, body)` where endpoint is `response` or `error`.
async fn invoke(env: Vec<(&'static str, String)>, event: Value) -> (String, Value, String) {
    const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
    let served = Arc::new(Mutex::new(false));
    let (answer_sender, mut answer) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
    let runtime = Server::start(move |request| {
        let next = "/2018-06-01/runtime/invocation/next";
        if request.method == "GET" && request.path == next {
            let mut served = served.lock().unwrap();
            if *served {
                return Reply::Hang;
            }
            *served = true;
            let deadline =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 60_000;
            return Reply::Respond {
                status: 200,
                headers: vec![
                    ("Content-Type".into(), "application/json".into()),
                    ("Lambda-Runtime-Aws-Request-Id".into(), REQUEST_ID.into()),
                    ("Lambda-Runtime-Deadline-Ms".into(), deadline.to_string()),
                    (
                        "Lambda-Runtime-Invoked-Function-Arn".into(),
                        "arn:aws:lambda:ap-south-1:111111111111:function:web-gitflow".into(),
                    ),
                    (
                        "Lambda-Runtime-Trace-Id".into(),
                        "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".into(),
                    ),
                ],
                body: event.to_string().into_bytes(),
            };
        }
        let prefix = format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/");
        if let Some(kind) = request.path.strip_prefix(&prefix) {
            let _ = answer_sender.send((kind.to_string(), request.body.clone()));
            return json_reply(202, json!({"status": "OK"}));
        }
        let _ = answer_sender.send((format!("unexpected {} {}", request.method, request.path), request.body.clone()));
        json_reply(404, json!({"errorMessage": "unknown endpoint"}))
    })
    .await;
    let log = std::env::temp_dir().join(format!("gitflow-bootstrap-{}-{}.log", std::process::id(), runtime.port));
    // The function is a long-running child answering the runtime API: xshell only runs commands
    // to completion, so this is the one place a test spawns a process directly.
    let child = std::process::Command::new(bootstrap())
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", runtime.port))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("starting bootstrap");
    let _function = Function(child);
    let received = tokio::time::timeout(Duration::from_secs(60), answer.recv()).await;
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let (kind, body) =
        received.unwrap_or_else(|_| panic!("bootstrap did not answer within 60 s; its log:\n{logged}")).unwrap();
    (kind, serde_json::from_slice(&body).unwrap_or(Value::Null), logged)
}

/// The function answers an invocation through the runtime API; a push to a feature branch needs
/// no AWS call, so no endpoint is involved.
#[tokio::test]
async fn bootstrap_answers_an_invocation_through_the_runtime_api() {
    let mut env = gitflow_env();
    env.extend([("AWS_ACCESS_KEY_ID", "AKIDTEST".into()), ("AWS_SECRET_ACCESS_KEY", "secret".into())]);
    let event = json!({
        "version": "0",
        "id": "01234567-EXAMPLE",
        "detail-type": "CodeCommit Repository State Change",
        "source": "aws.codecommit",
        "account": "111111111111",
        "time": "2019-06-12T10:23:43Z",
        "region": "ap-south-1",
        "resources": ["arn:aws:codecommit:ap-south-1:111111111111:web"],
        "detail": {
            "event": "referenceUpdated",
            "repositoryName": "web",
            "repositoryId": "12345678-1234-5678-abcd-12345678abcd",
            "referenceType": "branch",
            "referenceName": "feature/login",
            "referenceFullName": "refs/heads/feature/login",
            "commitId": "7f0103fMERGE",
            "oldCommitId": "3e5983DESTINATION"
        }
    });
    let (kind, body, log) = invoke(env, event).await;
    assert_eq!(kind, "response", "{body}\n{log}");
    assert_eq!(body["decision"]["action"], "ignore", "{body}");
    assert_eq!(body["decision"]["reason"], "branch `feature/login` is not the develop branch `develop`");
    assert!(log.contains("gitflow: {\"decision\""), "the decision is logged: {log}");
}

/// A missing setting stops the function at start, naming the variable.
#[test]
fn bootstrap_refuses_an_incomplete_environment() {
    let sh = Shell::new().unwrap();
    let binary = bootstrap();
    let output =
        cmd!(sh, "{binary}").env_clear().env("GITFLOW_REPOSITORY", "web").ignore_status().quiet().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("GITFLOW_MAIN_BRANCH is not set"), "{stderr}");
    assert!(stderr.contains("GITFLOW_APPROVER_ROLE_ARN is not set"), "{stderr}");
}

// ---- the pull-request flow through the binary, CodeBuild on moto ----

/// `moto_server` on a free port, stopped when dropped.
struct Moto {
    port: u16,
    _inner: crate::support::Moto,
}

impl Moto {
    /// The shared harness's emulator (`support::Moto`), on a free port.
    async fn start() -> Moto {
        let inner = crate::support::Moto::start();
        Moto { port: inner.port, _inner: inner }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Credentials of account 111111111111 (moto maps assumed-role keys to their account).
    async fn tools_credentials(&self) -> aws_sdk_sts::types::Credentials {
        let config = aws_sdk_sts::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("ap-south-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .build();
        aws_sdk_sts::Client::from_conf(config)
            .assume_role()
            .role_arn("arn:aws:iam::111111111111:role/deployer")
            .role_session_name("gitflow-test")
            .send()
            .await
            .unwrap()
            .credentials
            .unwrap()
    }
}

/// A pull request from develop to main, handled by the real binary: GetPullRequest goes to the
/// CodeCommit double (no emulator serves pull requests), StartBuild goes to moto's CodeBuild,
/// which then holds the build. The endpoints are named `localhost`, so the binary resolves a host
/// name (for a static build, glibc's built-in `files` lookup).
#[tokio::test]
async fn bootstrap_starts_the_validation_build_on_the_emulator() {
    const SOURCE: &str = "5000000000000000000000000000000000000001";
    let moto = Moto::start().await;
    let credentials = moto.tools_credentials().await;
    let codebuild = {
        let config = aws_sdk_codebuild::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("ap-south-1"))
            .endpoint_url(moto.endpoint())
            .credentials_provider(Credentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
                Some(credentials.session_token().to_string()),
                None,
                "moto",
            ))
            .build();
        aws_sdk_codebuild::Client::from_conf(config)
    };
    codebuild
        .create_project()
        .name("web-validate")
        .source(
            ProjectSource::builder()
                .r#type(SourceType::Codecommit)
                .location("https://git-codecommit.ap-south-1.amazonaws.com/v1/repos/web")
                .build()
                .unwrap(),
        )
        .artifacts(ProjectArtifacts::builder().r#type(ArtifactsType::NoArtifacts).build().unwrap())
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(ComputeType::BuildGeneral1Small)
                .build()
                .unwrap(),
        )
        .service_role("arn:aws:iam::111111111111:role/web-build")
        .send()
        .await
        .unwrap();

    let pull_request = json!({"pullRequest": {
        "approvalRules": [{"approvalRuleName": "gitflow-validation", "approvalRuleId": "aac33506-EXAMPLE", "approvalRuleContent": "{}"}],
        "authorArn": "arn:aws:sts::111111111111:assumed-role/web-gitflow/web-gitflow",
        "creationDate": 1508962823.285,
        "lastActivityDate": 1508962823.285,
        "pullRequestId": "7",
        "pullRequestStatus": "OPEN",
        "pullRequestTargets": [{
            "destinationCommit": "d000000000000000000000000000000000000001",
            "destinationReference": "refs/heads/main",
            "mergeMetadata": {"isMerged": false},
            "repositoryName": "web",
            "sourceCommit": SOURCE,
            "sourceReference": "refs/heads/develop"
        }],
        "revisionId": "9f29d167EXAMPLE",
        "title": "Merge develop into main"
    }});
    let double = Server::start(move |request| match request.operation().as_str() {
        "GetPullRequest" => json_reply(200, pull_request.clone()),
        other => aws_error(&format!("Unexpected{other}")),
    })
    .await;

    let mut env = gitflow_env();
    env.extend([
        ("AWS_ACCESS_KEY_ID", credentials.access_key_id().to_string()),
        ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key().to_string()),
        ("AWS_SESSION_TOKEN", credentials.session_token().to_string()),
        ("AWS_ENDPOINT_URL_CODEBUILD", format!("http://localhost:{}", moto.port)),
        ("AWS_ENDPOINT_URL_CODECOMMIT", format!("http://localhost:{}", double.port)),
    ]);
    let event = json!({
        "version": "0",
        "id": "98377d67-EXAMPLE",
        "detail-type": "CodeCommit Pull Request State Change",
        "source": "aws.codecommit",
        "account": "111111111111",
        "time": "2019-02-09T07:15:16Z",
        "region": "ap-south-1",
        "resources": ["arn:aws:codecommit:ap-south-1:111111111111:web"],
        "detail": {
            "author": "arn:aws:sts::111111111111:assumed-role/web-gitflow/web-gitflow",
            "callerUserArn": "arn:aws:sts::111111111111:assumed-role/web-gitflow/web-gitflow",
            "destinationCommit": "d000000000000000000000000000000000000001",
            "destinationReference": "refs/heads/main",
            "event": "pullRequestCreated",
            "isMerged": "False",
            "pullRequestId": "7",
            "pullRequestStatus": "Open",
            "repositoryNames": ["web"],
            "revisionId": "9f29d167EXAMPLE",
            "sourceCommit": SOURCE,
            "sourceReference": "refs/heads/develop",
            "title": "Merge develop into main"
        }
    });
    let (kind, body, log) = invoke(env, event).await;
    assert_eq!(kind, "response", "{body}\n{log}");
    assert_eq!(body["decision"]["action"], "validate", "{body}");
    assert_eq!(double.operations(), ["GetPullRequest"]);

    let builds = codebuild.list_builds_for_project().project_name("web-validate").send().await.unwrap();
    let ids = builds.ids.unwrap_or_default();
    assert_eq!(ids.len(), 1, "one build on the emulator: {ids:?}");
    assert_eq!(body["notes"], json!([format!("started build {}", ids[0])]));
    let build = codebuild.batch_get_builds().ids(&ids[0]).send().await.unwrap().builds.unwrap().remove(0);
    assert_eq!(build.source_version(), Some(SOURCE));
    assert_eq!(build.project_name(), Some("web-validate"));
}
