//! The page: the repository's `index.html`, compiled into the binary and rendered once at startup.
//!
//! `{{version}}`, `{{commit}}` and `{{build_time}}` in the template become the running build's
//! values (HTML-escaped), so a blue/green switch is visible on the page itself. From the rendered
//! bytes come the strong ETag (a SHA-256 prefix: the same bytes always get the same tag, any change
//! gets a new one) and the Content-Security-Policy, which allows exactly the page's inline
//! `<style>` blocks by hash and nothing else.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::build_info::BuildInfo;

/// The page template, as committed at the repository root.
pub const TEMPLATE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../index.html"));

/// The rendered page and what is derived from its bytes.
#[derive(Clone, Debug)]
pub struct Page {
    pub html: String,
    /// A strong validator, quoted: `"<16 hex digits>"`.
    pub etag: String,
    /// The Content-Security-Policy header value for this page.
    pub content_security_policy: String,
}

impl Page {
    /// Renders `template` for `build`.
    pub fn render(template: &str, build: &BuildInfo) -> Page {
        let html = template
            .replace("{{version}}", &escape_html(build.version))
            .replace("{{commit}}", &escape_html(build.commit))
            .replace("{{build_time}}", &escape_html(build.build_time));
        let etag = etag(html.as_bytes());
        let content_security_policy = content_security_policy(&html);
        Page { html, etag, content_security_policy }
    }
}

/// `"<first 16 hex digits of SHA-256>"`: 64 bits tell any two versions of a page apart.
pub fn etag(body: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(body));
    format!("\"{}\"", &digest[..16])
}

/// Nothing may load but the page's own inline styles (by hash); no framing, no forms, no base.
pub fn content_security_policy(html: &str) -> String {
    let mut style_src = String::new();
    for style in inline_styles(html) {
        let hash = BASE64.encode(Sha256::digest(style.as_bytes()));
        style_src.push_str(&format!(" 'sha256-{hash}'"));
    }
    if style_src.is_empty() {
        style_src.push_str(" 'none'");
    }
    format!(
        "default-src 'none'; style-src{style_src}; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// The text of every `<style>...</style>` block, exactly as the browser hashes it.
fn inline_styles(html: &str) -> Vec<&str> {
    let mut styles = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<style>") {
        let after = &rest[start + "<style>".len()..];
        let Some(end) = after.find("</style>") else { break };
        styles.push(&after[..end]);
        rest = &after[end..];
    }
    styles
}

/// Escapes text for an HTML element body or a quoted attribute.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILD: BuildInfo =
        BuildInfo { version: "1.2.3", commit: "abc123-<dirty>", build_time: "2026-11-27T00:00:00Z" };

    #[test]
    fn renders_every_placeholder_escaped() {
        let page = Page::render(TEMPLATE, &BUILD);
        assert!(!page.html.contains("{{"), "a placeholder is left: {}", page.html);
        assert!(page.html.contains("version 1.2.3"));
        assert!(page.html.contains("commit abc123-&lt;dirty&gt;"));
        assert!(page.html.contains("built 2026-11-27T00:00:00Z"));
        assert!(page.html.contains("<title>Sample ECS Deployment using CodePipeline</title>"));
        assert!(page.html.contains("<h1>Congratulations</h1>"));
    }

    #[test]
    fn etag_is_strong_and_follows_the_bytes() {
        let first = Page::render(TEMPLATE, &BUILD);
        let again = Page::render(TEMPLATE, &BUILD);
        let other = Page::render(TEMPLATE, &BuildInfo { commit: "def456", ..BUILD });
        assert_eq!(first.etag, again.etag);
        assert_ne!(first.etag, other.etag);
        assert!(!first.etag.starts_with("W/"));
        assert_eq!(first.etag.len(), 18);
    }

    #[test]
    fn csp_hashes_each_inline_style() {
        let check = |html: &str, expect_style_src: &str| {
            let policy = content_security_policy(html);
            assert!(policy.contains(&format!("style-src {expect_style_src};")), "{policy}");
            assert!(policy.contains("frame-ancestors 'none'"));
            assert!(policy.starts_with("default-src 'none';"));
        };
        check("<p>no style</p>", "'none'");
        // echo -n 'a{}' | openssl dgst -sha256 -binary | base64
        check("<style>a{}</style>", "'sha256-X1RutGBrXCt9KkSaXMK7tHftWiRscFHOhxsS8tv8hBk='");
        check(
            "<style>a{}</style><style>a{}</style>",
            "'sha256-X1RutGBrXCt9KkSaXMK7tHftWiRscFHOhxsS8tv8hBk=' 'sha256-X1RutGBrXCt9KkSaXMK7tHftWiRscFHOhxsS8tv8hBk='",
        );
        check("<style>unterminated", "'none'");
    }

    #[test]
    fn escapes_html_specials() {
        let check = |input: &str, expect: &str| assert_eq!(escape_html(input), expect);
        check("plain", "plain");
        check("<a href=\"x\">&'", "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
