//! A test HTTP client for the AWS paths no test can reach AWS for (the pre-flight, destroy): it
//! answers each request the SDK sends with the next response given (shaped as AWS's API reference
//! documents it) and keeps each request's body for the test to read.
//!
//! Not the SDK's own `StaticReplayClient`: its `test-util` feature turns on serde_json's
//! `preserve_order` for the whole test build (feature unification), which changes the order of
//! every JSON object the xtask's own tests read (`template.rs`'s sorted parameters, for one).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// Answers requests in order; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// `(status, content type, body)`, next first.
    responses: Arc<Mutex<VecDeque<(u16, String, String)>>>,
    /// The bodies of the requests sent so far.
    requests: Arc<Mutex<Vec<String>>>,
}

/// A client that answers the requests in order with `(status, content type, body)`.
pub fn replay(responses: &[(u16, &str, &str)]) -> Replay {
    let responses = responses.iter().map(|(status, kind, body)| (*status, kind.to_string(), body.to_string()));
    Replay { responses: Arc::new(Mutex::new(responses.collect())), requests: Arc::default() }
}

impl Replay {
    /// The body of every request sent, in order (a Query request's form, a JSON request's document).
    pub fn bodies(&self) -> Vec<String> {
        self.requests.lock().expect("requests").clone()
    }
}

impl HttpConnector for Replay {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned();
        self.requests.lock().expect("requests").push(body);
        let (status, kind, body) =
            self.responses.lock().expect("responses").pop_front().expect("the test gives a response for every request");
        let mut response = HttpResponse::new(StatusCode::try_from(status).expect("a status code"), SdkBody::from(body));
        response.headers_mut().insert("content-type", kind);
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for Replay {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// An SDK config that sends through `http`, with test credentials and no retries.
pub fn config(http: &Replay) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        )))
        .retry_config(RetryConfig::disabled())
        .http_client(http.clone())
        .build()
}
