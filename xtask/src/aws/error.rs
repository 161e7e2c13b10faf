//! One error for every AWS call: which call (`s3:PutObject`, named as IAM names the action), in
//! which account and region, what AWS answered (error code, message, HTTP status, request id) and,
//! where we know one, the fix. The SDK's `SdkError` stays inside as the source, so a caller can
//! still match the service's typed error ([`AwsError::service_error`]) or its code
//! ([`AwsError::code`]).
//!
//! The shape follows the AWS SDK's Rust examples (one error type built from `SdkError`, which keeps
//! it as the source). What it shows is one line, never the SDK's `Debug` (which carries the raw
//! response): an answer the SDK could not read as an AWS error (an HTML page, an emulator's 500)
//! says so with its HTTP status; a request that never got an answer says whether it timed out or
//! could not connect, and why.

use std::error::Error;
use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An AWS call that failed. `Display` is the whole story on one line; `source()` is the SDK's error.
/// Boxed, so that a `Result` carrying it stays small; its fields read through `Deref`.
#[derive(Debug)]
pub struct AwsError(Box<Details>);

/// What [`AwsError`] knows of the failed call.
#[derive(Debug)]
pub struct Details {
    /// The IAM service prefix: `s3`, `cloudformation`, `elasticloadbalancing`.
    pub service: String,
    /// The API operation: `PutObject`.
    pub operation: String,
    pub account: String,
    pub region: String,
    pub kind: Kind,
    /// AWS's error code (`AccessDenied`, `ValidationError`), when the answer carried one.
    pub code: Option<String>,
    pub message: Option<String>,
    /// The HTTP status of the answer, when there was one.
    pub status: Option<u16>,
    pub request_id: Option<String>,
    /// Where the call went (`http://127.0.0.1:4566`, `https://s3.eu-central-1.amazonaws.com`),
    /// where the client says.
    pub endpoint: Option<String>,
    source: Box<dyn Error + Send + Sync>,
}

/// How the call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// AWS answered with an error (it may still lack a code: see [`AwsError`]'s `Display`).
    Service,
    /// An answer came back that the SDK could not read.
    Unreadable,
    /// No answer in time.
    Timeout,
    /// The request never reached the endpoint (DNS, connection refused, TLS, credentials).
    Unreachable,
    /// The request could not be built (a missing required field: a bug on our side).
    Request,
}

/// `.aws(&client)` on the result of any SDK call: the error as an [`AwsError`] placed in the
/// client's account and region.
pub trait AwsResultExt<T> {
    fn aws(self, client: &impl Placed) -> Result<T, AwsError>;
}

impl<T, E> AwsResultExt<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    fn aws(self, client: &impl Placed) -> Result<T, AwsError> {
        self.map_err(|error| AwsError::from_call(error, client))
    }
}

/// A client that knows where its calls go: the region from its config, the account from the app
/// name [`crate::aws::Aws`] gives every client (`gbg-<account>`, which AWS also logs in CloudTrail's
/// `userAgent` as `app/gbg-<account>`: https://docs.aws.amazon.com/sdkref/latest/guide/feature-appid.html).
pub trait Placed {
    /// (account, region); `unknown` for what the client was not built with.
    fn place(&self) -> (String, String);

    /// The URL the client sends its calls to, where it is known.
    fn endpoint(&self) -> Option<String> {
        None
    }
}

impl<T: Placed + ?Sized> Placed for &T {
    fn place(&self) -> (String, String) {
        (**self).place()
    }

    fn endpoint(&self) -> Option<String> {
        (**self).endpoint()
    }
}

/// The app name every client of the xtask carries for `account`: `gbg-<account>`; against the
/// local emulator `gbg-<account>-emulator-<port>`, and with any other endpoint URL (a profile's or
/// `AWS_ENDPOINT_URL`'s) `gbg-<account>-custom`. A service client's config keeps no readable
/// endpoint URL (only the `SdkConfig` it was built from does), so where its calls go travels in
/// the name, for [`AwsError`]'s line; an app name allows letters, digits and `-`.
pub fn app_name(account: &str, endpoint: Option<&str>) -> String {
    let port = endpoint.and_then(|url| url.strip_prefix(EMULATOR_HOST)).and_then(|port| port.parse::<u16>().ok());
    match (port, endpoint) {
        (Some(port), _) => format!("{APP_PREFIX}{account}{EMULATOR_MARK}{port}"),
        (None, Some(_)) => format!("{APP_PREFIX}{account}{CUSTOM_MARK}"),
        (None, None) => format!("{APP_PREFIX}{account}"),
    }
}

const APP_PREFIX: &str = "gbg-";
const EMULATOR_MARK: &str = "-emulator-";
const CUSTOM_MARK: &str = "-custom";
const EMULATOR_HOST: &str = "http://127.0.0.1:";

/// Where a client of `service` (its IAM prefix) in `region` sends its calls: the emulator named in
/// `app_name`, else AWS's public endpoint for the service and region
/// (https://docs.aws.amazon.com/general/latest/gr/rande.html#regional-endpoints; `.com.cn` in
/// China; IAM's one endpoint per partition: https://docs.aws.amazon.com/general/latest/gr/iam-service.html).
/// `None` where the SDK may be sending elsewhere: a custom endpoint URL (the app name says so, or
/// a service's `AWS_ENDPOINT_URL_<SERVICE>`), FIPS or dual-stack endpoints.
fn endpoint_of(app_name: Option<&str>, service: &str, region: Option<&str>) -> Option<String> {
    if let Some(port) = app_name.and_then(|name| name.split_once(EMULATOR_MARK)).map(|(_, port)| port) {
        return Some(format!("{EMULATOR_HOST}{port}"));
    }
    let elsewhere = app_name.is_some_and(|name| name.ends_with(CUSTOM_MARK))
        || std::env::vars_os().any(|(name, _)| {
            let name = name.to_string_lossy();
            name.starts_with("AWS_ENDPOINT_URL")
                || name == "AWS_USE_FIPS_ENDPOINT"
                || name == "AWS_USE_DUALSTACK_ENDPOINT"
        });
    if elsewhere {
        return None;
    }
    let region = region?;
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    let host = match service {
        "iam" if region.starts_with("cn-") => "iam.cn-north-1.amazonaws.com.cn".to_string(),
        "iam" if region.starts_with("us-gov-") => "iam.us-gov.amazonaws.com".to_string(),
        "iam" => "iam.amazonaws.com".to_string(),
        "ecr" => format!("api.ecr.{region}.{suffix}"),
        service => format!("{service}.{region}.{suffix}"),
    };
    Some(format!("https://{host}"))
}

macro_rules! placed {
    ($($service:ident),*) => {$(
        impl Placed for $service::Client {
            fn place(&self) -> (String, String) {
                let config = self.config();
                let account = config
                    .app_name()
                    .and_then(|name| name.as_ref().strip_prefix(APP_PREFIX))
                    .map(|rest| rest.split('-').next().unwrap_or(rest))
                    .unwrap_or("unknown")
                    .to_string();
                let region = config.region().map_or_else(|| "unknown".to_string(), |region| region.to_string());
                (account, region)
            }

            fn endpoint(&self) -> Option<String> {
                let config = self.config();
                let service = service_of_crate(stringify!($service));
                endpoint_of(config.app_name().map(|name| name.as_ref()), service, config.region().map(|region| region.as_ref()))
            }
        }
    )*};
}

placed!(
    aws_sdk_sts,
    aws_sdk_s3,
    aws_sdk_kms,
    aws_sdk_ecr,
    aws_sdk_ecs,
    aws_sdk_cloudformation,
    aws_sdk_codepipeline,
    aws_sdk_codedeploy,
    aws_sdk_codecommit,
    aws_sdk_codebuild,
    aws_sdk_elasticloadbalancingv2,
    aws_sdk_iam,
    aws_sdk_cloudwatchlogs
);

impl AwsError {
    /// The error of a call made through `client`.
    pub fn from_call<E>(error: SdkError<E, HttpResponse>, client: &impl Placed) -> Self
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        let (account, region) = client.place();
        let mut made = Self::new(error, &account, &region);
        made.0.endpoint = client.endpoint();
        made
    }

    /// The error of a call to `account` in `region`; the operation is read from the SDK's error
    /// type (`aws_sdk_s3::operation::put_object::PutObjectError` is `s3:PutObject`).
    pub fn new<E>(error: SdkError<E, HttpResponse>, account: &str, region: &str) -> Self
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        let (service, operation) = operation_of::<E>();
        let kind = match &error {
            SdkError::ServiceError(_) => Kind::Service,
            SdkError::ResponseError(_) => Kind::Unreadable,
            SdkError::TimeoutError(_) => Kind::Timeout,
            SdkError::DispatchFailure(failure) if failure.is_timeout() => Kind::Timeout,
            SdkError::DispatchFailure(_) => Kind::Unreachable,
            _ => Kind::Request,
        };
        let response = error.raw_response();
        let status = response.map(|response| response.status().as_u16());
        let request_id = response.and_then(|response| {
            ["x-amzn-requestid", "x-amz-request-id"]
                .iter()
                .find_map(|header| response.headers().get(*header))
                .map(str::to_string)
        });
        Self(Box::new(Details {
            service,
            operation,
            account: account.to_string(),
            region: region.to_string(),
            kind,
            code: error.code().map(str::to_string),
            message: error.message().map(str::to_string),
            status,
            request_id,
            endpoint: None,
            source: Box::new(error),
        }))
    }

    /// AWS's error code, for matching a condition the SDK does not model as a type
    /// (CloudFormation's `ValidationError`).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The service's typed error, when the call was `E`'s operation and AWS answered with one.
    pub fn service_error<E: Error + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref::<SdkError<E, HttpResponse>>()?.as_service_error()
    }

    /// The IAM action the call needs: `s3:PutObject`; for the S3 operations whose action has
    /// another name, that name (`HeadBucket` needs `s3:ListBucket`,
    /// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html).
    pub fn action(&self) -> String {
        let action = match (self.service.as_str(), self.operation.as_str()) {
            ("s3", "HeadBucket" | "ListObjectsV2" | "ListObjects") => "ListBucket",
            ("s3", "HeadObject") => "GetObject",
            ("s3", "ListObjectVersions") => "ListBucketVersions",
            ("s3", "DeleteObjects") => "DeleteObject",
            (_, operation) => operation,
        };
        format!("{}:{action}", self.service)
    }

    /// What to do about it, where the code (or the kind) says.
    pub fn fix(&self) -> Option<&'static str> {
        let fix = match (self.kind, self.code()) {
            (Kind::Service, Some(code)) if is_denial(code) => {
                "the identity lacks this permission: `cargo xtask verify` proves every role's calls against the policies deployed"
            }
            (Kind::Service, Some("ExpiredToken" | "ExpiredTokenException" | "RequestExpired")) => {
                "the session expired: refresh the credentials (for instance `aws sso login`) and run the command again"
            }
            (
                Kind::Service,
                Some(
                    "InvalidClientTokenId"
                    | "UnrecognizedClientException"
                    | "SignatureDoesNotMatch"
                    | "InvalidAccessKeyId",
                ),
            ) => "AWS does not know these credentials: check AWS_PROFILE or the access keys in the environment",
            (Kind::Service, Some("Throttling" | "ThrottlingException" | "TooManyRequestsException" | "SlowDown")) => {
                "AWS throttled the call after the SDK's retries: run the command again, or lower --concurrency"
            }
            // S3 answers a HEAD request without a body, so its error has no code but the status
            // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html).
            (Kind::Service | Kind::Unreadable, None) if self.status == Some(403) => {
                "AWS refused the call without saying why (HTTP 403): the identity lacks the permission, or the resource belongs to another account; `cargo xtask verify` proves every role's calls"
            }
            (Kind::Service | Kind::Unreadable, None) if self.status == Some(301) => {
                "the resource is in another region than the one asked (HTTP 301): check the region in deploy.toml"
            }
            (Kind::Service | Kind::Unreadable, None) if self.status.is_some_and(|status| status >= 500) => {
                "the endpoint failed on this call: run it again; against the local emulator this is an emulator gap, see `cargo xtask local status`"
            }
            (Kind::Unreachable, _) => {
                "check the network and the endpoint (AWS_ENDPOINT_URL; locally `cargo xtask local status`)"
            }
            (Kind::Request, _) => "a request the xtask built is incomplete: a bug, please report it with this line",
            _ => return None,
        };
        Some(fix)
    }
}

/// Codes AWS uses for an identity or resource policy refusing a call.
fn is_denial(code: &str) -> bool {
    matches!(code, "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthorizationError")
        || code.ends_with("AccessDeniedException")
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}/{}: ", self.action(), self.account, self.region)?;
        match (self.kind, &self.code, &self.message) {
            (Kind::Service, Some(code), Some(message)) => write!(f, "{code}: {message}")?,
            (Kind::Service, Some(code), None) => write!(f, "{code}")?,
            (Kind::Service | Kind::Unreadable, None, _) => {
                write!(f, "the answer was not an AWS error the SDK could read")?;
                // The SDK's reason, unless it only restates that it had none ("unhandled error").
                let reason = self.source.source().map(|cause| cause.to_string());
                if let Some(reason) = reason.filter(|text| !text.is_empty() && !text.starts_with("unhandled error")) {
                    write!(f, " ({})", first_line(&reason))?;
                }
            }
            (Kind::Timeout, ..) => write!(f, "no answer in time")?,
            (Kind::Unreachable, ..) => write!(f, "could not reach the endpoint: {}", causes(self.source.as_ref()))?,
            (Kind::Request, ..) => write!(f, "could not build the request: {}", causes(self.source.as_ref()))?,
            (Kind::Unreadable, Some(code), _) => write!(f, "{code}: an answer the SDK could not read")?,
        }
        // The endpoint where the answer (or its absence) is the endpoint's doing, not AWS's word.
        let endpoint = match (self.kind, self.code.as_deref(), self.status) {
            (Kind::Unreadable | Kind::Unreachable | Kind::Timeout, ..) => self.endpoint.as_deref(),
            (Kind::Service, None, Some(status)) if status >= 500 => self.endpoint.as_deref(),
            _ => None,
        };
        let at = endpoint.map(|url| format!(" from {url}")).unwrap_or_default();
        match (self.status, &self.request_id) {
            (Some(status), Some(id)) => write!(f, " (HTTP {status}{at}, request {id})")?,
            (Some(status), None) => write!(f, " (HTTP {status}{at})")?,
            (None, _) if !at.is_empty() => write!(f, " (at {})", endpoint.unwrap_or_default())?,
            _ => {}
        }
        if let Some(fix) = self.fix() {
            write!(f, "; {fix}")?;
        }
        Ok(())
    }
}

impl std::ops::Deref for AwsError {
    type Target = Details;

    fn deref(&self) -> &Details {
        &self.0
    }
}

impl Error for AwsError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.source.as_ref())
    }
}

/// `aws_sdk_s3::operation::put_object::PutObjectError` → (`s3`, `PutObject`).
fn operation_of<E>() -> (String, String) {
    let name = std::any::type_name::<E>();
    let service = service_of_crate(name.split("::").next().unwrap_or(name));
    let operation = name.rsplit("::").next().unwrap_or(name).trim_end_matches("Error");
    (service.to_string(), operation.to_string())
}

/// The IAM service prefix of an SDK crate: `aws_sdk_elasticloadbalancingv2` is
/// `elasticloadbalancing`.
fn service_of_crate(name: &str) -> &str {
    match name.trim_start_matches("aws_sdk_") {
        "elasticloadbalancingv2" => "elasticloadbalancing",
        "cloudwatchlogs" => "logs",
        other => other,
    }
}

/// The causes below an error, each by its `Display`, without repeats.
fn causes(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = first_line(&cause.to_string()).to_string();
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    if parts.is_empty() { first_line(&error.to_string()).to_string() } else { parts.join(": ") }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// An error and its causes on one line, stopping at an [`AwsError`] (whose line already says what
/// its SDK source would add): what a user sees of any failure.
pub fn one_line(error: &anyhow::Error) -> String {
    lines(error).join(": ")
}

/// An error and its causes, one per entry, stopping at an [`AwsError`].
pub fn lines(error: &anyhow::Error) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !lines.last().is_some_and(|last| last.contains(&text)) {
            lines.push(text);
        }
        if cause.downcast_ref::<AwsError>().is_some() {
            break;
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_smithy_runtime_api::client::result::{ResponseError, ServiceError};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    fn response(status: u16, body: &str) -> HttpResponse {
        let mut response = HttpResponse::new(StatusCode::try_from(status).expect("status"), SdkBody::from(body));
        response.headers_mut().insert("x-amz-request-id", "REQ123");
        response
    }

    fn service(status: u16, code: Option<&str>, message: Option<&str>) -> AwsError {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        if let Some(message) = message {
            meta = meta.message(message);
        }
        let error = GetObjectError::generic(meta.build());
        let sdk: SdkError<GetObjectError, HttpResponse> =
            SdkError::ServiceError(ServiceError::builder().source(error).raw(response(status, "<html>")).build());
        AwsError::new(sdk, "111111111111", "eu-central-1")
    }

    #[test]
    fn a_service_error_names_the_call_the_place_and_what_aws_said() {
        let error = service(403, Some("AccessDenied"), Some("Access Denied"));
        assert_eq!(
            error.to_string(),
            "s3:GetObject in 111111111111/eu-central-1: AccessDenied: Access Denied (HTTP 403, request REQ123); \
             the identity lacks this permission: `cargo xtask verify` proves every role's calls against the policies deployed"
        );
        assert_eq!(error.code(), Some("AccessDenied"));
        assert!(error.service_error::<GetObjectError>().is_some(), "the typed error stays reachable");
        assert!(error.service_error::<aws_sdk_s3::operation::put_object::PutObjectError>().is_none());
    }

    #[test]
    fn an_unreadable_5xx_says_so_with_its_status_and_no_debug_dump() {
        let error = service(500, None, None);
        let text = error.to_string();
        assert!(
            text.starts_with("s3:GetObject in 111111111111/eu-central-1: the answer was not an AWS error"),
            "{text}"
        );
        assert!(text.contains("(HTTP 500, request REQ123)"), "{text}");
        assert!(text.contains("emulator gap"), "{text}");
        for dump in ["ServiceError {", "SdkBody", "Unhandled(", "raw:"] {
            assert!(!text.contains(dump), "{text}");
        }
        let sdk: SdkError<GetObjectError, HttpResponse> = SdkError::ResponseError(
            ResponseError::builder().source("expected XML, found `<html>`").raw(response(502, "<html>")).build(),
        );
        let text = AwsError::new(sdk, "1", "r").to_string();
        assert!(text.contains("could read (expected XML, found `<html>`) (HTTP 502, request REQ123)"), "{text}");
    }

    #[test]
    fn an_s3_call_is_named_by_the_iam_action_it_needs_and_a_bodiless_403_says_denied() {
        let mut error = service(403, None, None);
        assert!(error.to_string().contains("the identity lacks the permission"), "{error}");
        error.0.operation = "HeadBucket".into();
        assert_eq!(error.action(), "s3:ListBucket");
        error.0.operation = "HeadObject".into();
        assert_eq!(error.action(), "s3:GetObject");
        error.0.operation = "PutObject".into();
        assert_eq!(error.action(), "s3:PutObject");
    }

    #[test]
    fn the_operation_and_service_come_from_the_error_type() {
        assert_eq!(operation_of::<GetObjectError>(), ("s3".into(), "GetObject".into()));
        assert_eq!(
            operation_of::<aws_sdk_elasticloadbalancingv2::operation::modify_listener::ModifyListenerError>(),
            ("elasticloadbalancing".into(), "ModifyListener".into())
        );
        assert_eq!(
            operation_of::<aws_sdk_cloudwatchlogs::operation::describe_log_groups::DescribeLogGroupsError>(),
            ("logs".into(), "DescribeLogGroups".into())
        );
    }

    /// A local HTTP server playing AWS's failures (each connection gets `answer`), and a real
    /// CloudFormation client pointed at it, retries off: what the SDK makes of the answer is what
    /// the user sees.
    async fn describe_stacks_against(answer: Option<&'static str>) -> AwsError {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        match answer {
            Some(answer) => {
                std::thread::spawn(move || {
                    for stream in listener.incoming().flatten().take(1) {
                        let mut stream = stream;
                        let mut buffer = [0u8; 65536];
                        let _ = std::io::Read::read(&mut stream, &mut buffer);
                        let _ = std::io::Write::write_all(&mut stream, answer.as_bytes());
                    }
                });
            }
            // Nothing listens: the port is closed again before the call.
            None => drop(listener),
        }
        let config = aws_sdk_cloudformation::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-central-1"))
            .app_name(
                aws_config::AppName::new(app_name("111111111111", Some(&format!("http://127.0.0.1:{port}"))))
                    .expect("app name"),
            )
            .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
                "AKIDTEST",
                "not-a-secret",
                None,
                None,
                "test",
            ))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        let client = aws_sdk_cloudformation::Client::from_conf(config);
        client.describe_stacks().stack_name("web-network").send().await.aws(&client).expect_err("the call fails")
    }

    fn http(status: &str, content_type: &str, body: &str) -> &'static str {
        let text = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nx-amzn-RequestId: R-1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        Box::leak(text.into_boxed_str())
    }

    #[tokio::test]
    async fn what_the_sdk_reads_from_an_answer_is_what_the_user_sees() {
        // AWS's documented error shape for the query protocol (CloudFormation):
        // https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/CommonErrors.html
        let validation = http(
            "400 Bad Request",
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code>\
             <Message>Stack with id web-network does not exist</Message></Error><RequestId>R-1</RequestId></ErrorResponse>",
        );
        let error = describe_stacks_against(Some(validation)).await;
        assert_eq!(
            error.to_string(),
            "cloudformation:DescribeStacks in 111111111111/eu-central-1: ValidationError: Stack with id web-network \
             does not exist (HTTP 400, request R-1)"
        );
        assert_eq!((error.kind, error.code()), (Kind::Service, Some("ValidationError")));

        // An emulator's crash page: no AWS error in it.
        let crash = http("500 Internal Server Error", "text/html", "<html><body>Traceback ...</body></html>");
        let text = describe_stacks_against(Some(crash)).await.to_string();
        assert!(
            text.starts_with("cloudformation:DescribeStacks in 111111111111/eu-central-1: the answer was not"),
            "{text}"
        );
        assert!(text.contains("HTTP 500") && text.contains("emulator gap"), "{text}");
        assert!(text.contains("(HTTP 500 from http://127.0.0.1:"), "the endpoint that failed is named: {text}");
        for dump in ["ServiceError {", "SdkBody", "Unhandled(", "unhandled", "raw:", "Traceback"] {
            assert!(!text.contains(dump), "a debug dump or the raw body leaked: {text}");
        }

        let refused = describe_stacks_against(None).await;
        assert_eq!(refused.kind, Kind::Unreachable, "{refused}");
        assert!(refused.to_string().contains("could not reach the endpoint"), "{refused}");
        assert!(refused.to_string().contains("AWS_ENDPOINT_URL"), "{refused}");
        assert!(refused.to_string().contains("(at http://127.0.0.1:"), "{refused}");
        // AWS's own words name no endpoint: it answered.
        let validation = describe_stacks_against(Some(validation)).await.to_string();
        assert!(!validation.contains("127.0.0.1"), "{validation}");
    }

    #[test]
    fn the_endpoint_is_the_emulator_or_aws_public_one() {
        let local = app_name("111111111111", Some("http://127.0.0.1:4566"));
        assert_eq!(local, "gbg-111111111111-emulator-4566");
        assert_eq!(endpoint_of(Some(&local), "s3", Some("eu-central-1")).as_deref(), Some("http://127.0.0.1:4566"));
        let aws = app_name("111111111111", None);
        assert_eq!(aws, "gbg-111111111111");
        assert_eq!(
            endpoint_of(Some(&aws), "cloudformation", Some("ap-south-1")).as_deref(),
            Some("https://cloudformation.ap-south-1.amazonaws.com")
        );
        assert_eq!(
            endpoint_of(Some(&aws), "ecr", Some("us-east-1")).as_deref(),
            Some("https://api.ecr.us-east-1.amazonaws.com")
        );
        assert_eq!(endpoint_of(Some(&aws), "iam", Some("us-east-1")).as_deref(), Some("https://iam.amazonaws.com"));
        // Another endpoint (a profile's or AWS_ENDPOINT_URL's) is not guessed.
        let custom = app_name("111111111111", Some("https://proxy.example.com"));
        assert_eq!(custom, "gbg-111111111111-custom");
        assert_eq!(endpoint_of(Some(&custom), "s3", Some("eu-central-1")), None);
        assert_eq!(
            endpoint_of(Some(&aws), "kms", Some("cn-north-1")).as_deref(),
            Some("https://kms.cn-north-1.amazonaws.com.cn")
        );
        assert_eq!(
            endpoint_of(Some(&aws), "iam", Some("us-gov-west-1")).as_deref(),
            Some("https://iam.us-gov.amazonaws.com")
        );
    }

    #[test]
    fn a_chain_stops_at_the_aws_error() {
        let error = anyhow::Error::new(service(404, Some("NoSuchKey"), Some("gone"))).context("reading s3://b/k");
        assert_eq!(
            lines(&error),
            vec![
                "reading s3://b/k".to_string(),
                "s3:GetObject in 111111111111/eu-central-1: NoSuchKey: gone (HTTP 404, request REQ123)".to_string()
            ]
        );
    }
}
