//! Request to response: three paths, each answered from bytes rendered at startup.
//!
//! | path | GET/HEAD | other methods |
//! |---|---|---|
//! | `/` | the page; `If-None-Match` with its ETag gives 304 | 405 |
//! | `/healthz` | `ok` | 405 |
//! | `/version` | `{"version":...,"commit":...,"build_time":...}` | 405 |
//! | anything else | 404 | 404 |
//!
//! Paths are compared byte for byte after the request line is parsed: there is no decoding, no
//! normalisation and no filesystem behind them, so `/../`, `%2e%2e` or `//etc/passwd` are simply
//! paths that do not exist. A request target longer than [`MAX_TARGET`] gets 414. Every response
//! carries the security headers (CSP with frame-ancestors, nosniff, Referrer-Policy).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::access_log::{AccessLog, Entry, escape_json};
use crate::build_info::BuildInfo;
use crate::page::Page;

/// Longest request target (path and query) served; longer ones get 414. The connection layer cuts
/// request heads above 16 KiB with 431 before they get here.
pub const MAX_TARGET: usize = 2048;

/// The body type of every response: bytes prepared at startup, shared, never copied.
pub type Body = Full<Bytes>;

/// Everything the site answers with, rendered once.
pub struct Site {
    page: Canned,
    not_modified: Canned,
    page_etag: &'static str,
    healthz: Canned,
    version: Canned,
    not_found: Canned,
    method_not_allowed: Canned,
    uri_too_long: Canned,
    #[cfg(feature = "test-slow-route")]
    slow: Canned,
    log: Arc<AccessLog>,
}

/// A response prepared at startup: serving it clones a header map of static values and a static
/// body (no reference counts, no hashing, no formatting per request).
struct Canned {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Canned {
    fn new(status: StatusCode, body: &'static [u8], headers: &[(HeaderName, HeaderValue)]) -> Canned {
        let mut map = HeaderMap::with_capacity(headers.len() + SECURITY_HEADERS.len());
        for (name, value) in headers.iter().cloned().chain(security_headers()) {
            map.insert(name, value);
        }
        Canned { status, headers: map, body: Bytes::from_static(body) }
    }

    /// `headers` plus the security headers, for the error and service responses.
    fn plain(status: StatusCode, text: &'static str, extra: &[(HeaderName, HeaderValue)]) -> Canned {
        let mut headers = vec![
            (header::CONTENT_TYPE, TEXT),
            (header::CACHE_CONTROL, NO_STORE),
            (header::CONTENT_SECURITY_POLICY, STRICT_CSP),
        ];
        headers.extend(extra.iter().cloned());
        Canned::new(status, text.as_bytes(), &headers)
    }

    fn response(&self) -> Prepared {
        let mut response = Response::new(Full::new(self.body.clone()));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        Prepared { inner: response, body_len: self.body.len() }
    }
}

const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
/// The page may be cached but must be revalidated (cheaply, by ETag), so a release shows at once.
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
/// For everything that is not the page: nothing may load, nothing may frame it.
const STRICT_CSP: HeaderValue = HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'");
const ALLOW_GET_HEAD: HeaderValue = HeaderValue::from_static("GET, HEAD");
/// On every response, whatever its type.
const SECURITY_HEADERS: [(&str, &str); 3] =
    [("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer"), ("x-frame-options", "DENY")];

fn security_headers() -> impl Iterator<Item = (HeaderName, HeaderValue)> {
    SECURITY_HEADERS.iter().map(|(name, value)| (HeaderName::from_static(name), HeaderValue::from_static(value)))
}

/// Startup data that lives as long as the process, as `'static` (rendered once per process; the
/// few hundred bytes are never freed, which lets every response share them without counting).
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

impl Site {
    /// Prepares every response for `page` and `build`; `log` receives one line per request.
    pub fn new(page: &Page, build: &BuildInfo, log: Arc<AccessLog>) -> Site {
        let mut version_json = String::from("{\"version\":\"");
        escape_json(&mut version_json, build.version);
        version_json.push_str("\",\"commit\":\"");
        escape_json(&mut version_json, build.commit);
        version_json.push_str("\",\"build_time\":\"");
        escape_json(&mut version_json, build.build_time);
        version_json.push_str("\"}\n");
        let page_etag = leak(page.etag.clone());
        let page_csp = HeaderValue::from_static(leak(page.content_security_policy.clone()));
        let page_headers = [
            (header::CONTENT_TYPE, HTML),
            (header::CACHE_CONTROL, REVALIDATE),
            (header::ETAG, HeaderValue::from_static(page_etag)),
            (header::CONTENT_SECURITY_POLICY, page_csp),
        ];
        let service = |body: &'static [u8], content_type: HeaderValue| {
            let headers = [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, NO_STORE),
                (header::CONTENT_SECURITY_POLICY, STRICT_CSP),
            ];
            Canned::new(StatusCode::OK, body, &headers)
        };
        Site {
            page: Canned::new(StatusCode::OK, leak(page.html.clone()).as_bytes(), &page_headers),
            not_modified: Canned::new(StatusCode::NOT_MODIFIED, b"", &page_headers),
            page_etag,
            healthz: service(b"ok", TEXT),
            version: service(leak(version_json).as_bytes(), JSON),
            not_found: Canned::plain(StatusCode::NOT_FOUND, "not found\n", &[]),
            method_not_allowed: Canned::plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed\n",
                &[(header::ALLOW, ALLOW_GET_HEAD)],
            ),
            uri_too_long: Canned::plain(StatusCode::URI_TOO_LONG, "request target too long\n", &[]),
            #[cfg(feature = "test-slow-route")]
            slow: Canned::plain(StatusCode::OK, "slow request done\n", &[]),
            log,
        }
    }

    /// The access log this site writes to.
    pub fn log(&self) -> &AccessLog {
        &self.log
    }

    /// Answers `request` from `remote` (started at `started`) and logs it.
    pub fn respond<B>(&self, request: &Request<B>, remote: &str, started: Instant) -> Response<Body> {
        let response = self.route(request);
        let head = request.method() == Method::HEAD;
        let bytes = if head { 0 } else { response.body_len };
        let target = request.uri().path_and_query().map_or_else(|| request.uri().path(), |target| target.as_str());
        self.log.record(&Entry {
            remote,
            method: request.method().as_str(),
            path: target,
            status: response.inner.status().as_u16(),
            bytes,
            micros: started.elapsed().as_micros() as u64,
            user_agent: request.headers().get(header::USER_AGENT).map(HeaderValue::as_bytes),
        });
        response.inner
    }

    fn route<B>(&self, request: &Request<B>) -> Prepared {
        let uri = request.uri();
        let target_len = uri.path_and_query().map_or(uri.path().len(), |target| target.as_str().len());
        if target_len > MAX_TARGET {
            return self.uri_too_long.response();
        }
        let readable = matches!(*request.method(), Method::GET | Method::HEAD);
        match uri.path() {
            "/" if readable => self.page(request.headers()),
            "/healthz" if readable => self.healthz.response(),
            "/version" if readable => self.version.response(),
            #[cfg(feature = "test-slow-route")]
            "/__test/slow" => self.slow.response(),
            "/" | "/healthz" | "/version" => self.method_not_allowed.response(),
            _ => self.not_found.response(),
        }
    }

    fn page(&self, headers: &HeaderMap) -> Prepared {
        let not_modified = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| etag_matches(value, self.page_etag));
        if not_modified { self.not_modified.response() } else { self.page.response() }
    }
}

/// With `test-slow-route` (tests only): how long `/__test/slow?ms=N` should take.
#[cfg(feature = "test-slow-route")]
pub fn test_slow_delay<B>(request: &Request<B>) -> Option<std::time::Duration> {
    if request.uri().path() != "/__test/slow" {
        return None;
    }
    let millis = request.uri().query()?.strip_prefix("ms=")?.parse::<u64>().ok()?;
    Some(std::time::Duration::from_millis(millis.min(60_000)))
}

/// A response and its body length (for the log; HEAD answers carry the GET length but no body).
struct Prepared {
    inner: Response<Body>,
    body_len: usize,
}

/// Whether an `If-None-Match` value names `etag`: `*`, or a comma-separated list of entity tags
/// compared weakly (RFC 9110 13.1.2: `W/"x"` matches `"x"`).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let if_none_match = if_none_match.trim();
    if if_none_match == "*" {
        return true;
    }
    if_none_match
        .split(',')
        .map(|candidate| candidate.trim())
        .map(|candidate| candidate.strip_prefix("W/").unwrap_or(candidate))
        .any(|candidate| candidate == etag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::TEMPLATE;

    const BUILD: BuildInfo = BuildInfo { version: "1.2.3", commit: "abc", build_time: "t" };

    fn site() -> Site {
        Site::new(&Page::render(TEMPLATE, &BUILD), &BUILD, AccessLog::new(Box::new(std::io::sink())))
    }

    fn request(method: Method, target: &str, if_none_match: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(target);
        if let Some(value) = if_none_match {
            builder = builder.header(header::IF_NONE_MATCH, value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn routes_paths_and_methods() {
        let site = site();
        let etag = Page::render(TEMPLATE, &BUILD).etag;
        let long = format!("/{}", "a".repeat(MAX_TARGET));
        let check = |method: Method, target: &str, if_none_match: Option<&str>, status: u16, content_type: &str| {
            let response = site.respond(&request(method.clone(), target, if_none_match), "test", Instant::now());
            assert_eq!(response.status().as_u16(), status, "{method} {target}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], content_type, "{method} {target}");
            assert_eq!(response.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(response.headers()["referrer-policy"], "no-referrer");
            let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        };
        let html = "text/html; charset=utf-8";
        let text = "text/plain; charset=utf-8";
        check(Method::GET, "/", None, 200, html);
        check(Method::HEAD, "/", None, 200, html);
        check(Method::GET, "/?utm=x", None, 200, html);
        check(Method::GET, "/", Some(&etag), 304, html);
        check(Method::GET, "/", Some(&format!("\"other\", W/{etag}")), 304, html);
        check(Method::GET, "/", Some("\"other\""), 200, html);
        check(Method::GET, "/healthz", None, 200, text);
        check(Method::GET, "/version", None, 200, "application/json");
        check(Method::POST, "/", None, 405, text);
        check(Method::DELETE, "/healthz", None, 405, text);
        check(Method::GET, "/index.html", None, 404, text);
        check(Method::GET, "/../etc/passwd", None, 404, text);
        check(Method::GET, "/%2e%2e/%2e%2e/etc/passwd", None, 404, text);
        check(Method::GET, "//etc/passwd", None, 404, text);
        check(Method::GET, "/healthz/", None, 404, text);
        check(Method::POST, "/nowhere", None, 404, text);
        check(Method::GET, &long, None, 414, text);
    }

    #[test]
    fn version_is_json_of_the_build() {
        let response = site().respond(&request(Method::GET, "/version", None), "test", Instant::now());
        let body = response.into_body();
        let bytes = futures_body(body);
        assert_eq!(bytes, "{\"version\":\"1.2.3\",\"commit\":\"abc\",\"build_time\":\"t\"}\n");
    }

    fn futures_body(body: Body) -> String {
        use http_body_util::BodyExt;
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let collected = runtime.block_on(body.collect()).unwrap().to_bytes();
        String::from_utf8(collected.to_vec()).unwrap()
    }

    #[test]
    fn matches_if_none_match_lists() {
        let check = |header: &str, expect: bool| assert_eq!(etag_matches(header, "\"abc\""), expect, "{header}");
        check("\"abc\"", true);
        check("*", true);
        check(" W/\"abc\" ", true);
        check("\"x\", \"abc\"", true);
        check("\"abcd\"", false);
        check("abc", false);
        check("", false);
    }
}
