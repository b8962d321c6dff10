//! The one redaction step for text that comes from a vendor (error messages and codes)
//! before it reaches an answer or a log line: the credentials in use are masked wherever
//! they appear, and so is anything shaped like one (`Authorization: …`, `Bearer …`,
//! `app_key=…`, `"token": "…"`), since vendors and the proxies in front of them echo requests
//! in their errors.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::Regex;

const MASK: &str = "***";

/// Shorter strings are not masked where they merely occur (they would mask ordinary words);
/// the patterns still catch them in credential positions.
const SECRET_MIN_LEN: usize = 6;

fn patterns() -> &'static [(Regex, &'static str)] {
    static PATTERNS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let credential_names = "authorization|proxy-authorization|x-api-key|api-key|apikey|\
                                x-refresh-token|x-auth-token|cookie|set-cookie";
        let parameter_names = "app_key|api_key|apikey|access_token|refresh_token|id_token|\
                               token|key|secret|password|signature|sig";
        [
            // A header line or header-like pair: `Authorization: Bearer abc`.
            (
                format!(r#"(?i)\b({credential_names})(\s*[:=]\s*)[^\r\n"',}}\]]+"#),
                "$1$2***",
            ),
            // A scheme and its credential, wherever it stands.
            (
                r"(?i)\b(bearer|basic|geniekey|token)(\s+)[A-Za-z0-9._~+/=-]{4,}".to_string(),
                "$1$2***",
            ),
            // A query or form parameter: `?app_key=abc&...`.
            (
                format!(r#"(?i)\b({parameter_names})=[^&\s"'<>]+"#),
                "$1=***",
            ),
            // A JSON member: `"access_token": "abc"`.
            (
                format!(r#"(?i)"({parameter_names}|{credential_names})"(\s*:\s*)"[^"]*""#),
                r#""$1"$2"***""#,
            ),
        ]
        .into_iter()
        .map(|(pattern, replacement)| (Regex::new(&pattern).expect("valid pattern"), replacement))
        .collect()
    })
}

/// `text` with every one of `secrets` and everything shaped like a credential masked.
pub fn redact<'a>(text: &'a str, secrets: &[&str]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter().filter(|s| s.len() >= SECRET_MIN_LEN) {
        if out.contains(secret) {
            out = Cow::Owned(out.replace(secret, MASK));
        }
    }
    for (pattern, replacement) in patterns() {
        if let Cow::Owned(replaced) = pattern.replace_all(&out, *replacement) {
            out = Cow::Owned(replaced);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn credentials_in_use_and_credential_shapes_are_masked() {
        let echo = "GET /team/info?app_key=k3y-flash&x=1 HTTP/1.1\r\nAuthorization: Bearer tok-en.123\r\nX-Refresh-Token: rfr-9\r\n\
                    host: vendor; {\"access_token\": \"abc\", \"name\": \"Ops\"} raw s3cret-cred-1 GenieKey g-123456";
        let out = redact(echo, &["s3cret-cred-1", "short"]);
        for leaked in [
            "k3y-flash",
            "tok-en.123",
            "rfr-9",
            "\"abc\"",
            "s3cret-cred-1",
            "g-123456",
        ] {
            assert!(!out.contains(leaked), "{leaked} in {out}");
        }
        for kept in [
            "GET /team/info?",
            "x=1",
            "HTTP/1.1",
            "\"name\": \"Ops\"",
            "host: vendor",
        ] {
            assert!(out.contains(kept), "{kept} lost from {out}");
        }
    }

    #[test]
    fn ordinary_vendor_messages_pass_unchanged() {
        for message in [
            "Team name taken",
            "There is already one Team with same name",
            "team not found: 42",
            "invalid parameter: name is too long (max 39)",
        ] {
            assert_eq!(redact(message, &["s3cret-cred-1"]), message);
        }
    }
}
