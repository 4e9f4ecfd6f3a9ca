//! The one redaction step every text from a driver or a check passes before it reaches a
//! response or a log line: URL credentials, `password=...`-style pairs, and the secrets the
//! app configured (the details token always among them).

use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

const MASK: &str = "***";

/// Keys whose values are secrets in connection strings and query strings.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "token",
    "access_token",
    "api_key",
    "apikey",
    "auth",
    "sslpassword",
];

/// Adds a literal secret that [`redact`] masks wherever it appears. Empty strings are ignored.
pub fn add_secret(secret: impl Into<String>) {
    let secret = secret.into();
    if secret.is_empty() {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    if !secrets.contains(&secret) {
        secrets.push(secret);
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with URL passwords, `password=...` values and configured secrets masked as `***`.
///
/// ```
/// assert_eq!(
///     dockerflow::redact::redact("could not connect to postgres://app:hunter2@db:5432/app"),
///     "could not connect to postgres://app:***@db:5432/app",
/// );
/// assert_eq!(dockerflow::redact::redact("host=db password=hunter2 port=5432"), "host=db password=*** port=5432");
/// ```
pub fn redact(text: &str) -> String {
    let mut out = mask_url_credentials(text);
    out = mask_key_values(&out);
    let secrets = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

fn is_url_end(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | ')' | ']' | ','
        )
}

/// `scheme://user:pass@host` becomes `scheme://user:***@host`; `scheme://token@host` becomes
/// `scheme://***@host`.
fn mask_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let authority_end = tail.find(is_url_end).unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push(':');
                        out.push_str(MASK);
                    }
                    None => out.push_str(MASK),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

/// `password=hunter2`, `password='a b'`, `?token=abc&x=1`: the value becomes `***`.
fn mask_key_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            // The key is ASCII; the character before it may not be.
            let key_start = text[..i]
                .char_indices()
                .rev()
                .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .map_or(0, |(p, c)| p + c.len_utf8());
            let key = &text[key_start..i];
            if SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                let value_start = i + 1;
                let value_end = match bytes.get(value_start) {
                    Some(&q @ (b'\'' | b'"')) => text[value_start + 1..]
                        .find(q as char)
                        .map_or(text.len(), |p| value_start + 1 + p + 1),
                    _ => text[value_start..]
                        .find(|c: char| {
                            c.is_whitespace() || matches!(c, '&' | ';' | ',' | '"' | '\'' | ')')
                        })
                        .map_or(text.len(), |p| value_start + p),
                };
                if value_end > value_start {
                    out.push_str(&text[copied..value_start]);
                    out.push_str(MASK);
                    copied = value_end;
                    i = value_end;
                    continue;
                }
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_url_passwords_and_keeps_the_rest() {
        assert_eq!(
            redact("redis://:s3cret@127.0.0.1:6379/0 refused"),
            "redis://:***@127.0.0.1:6379/0 refused"
        );
        assert_eq!(
            redact("mysql://root@localhost/test"),
            "mysql://***@localhost/test"
        );
        assert_eq!(
            redact("see https://example.org/a@b"),
            "see https://example.org/a@b"
        );
        assert_eq!(redact("no url here"), "no url here");
    }

    #[test]
    fn masks_key_values() {
        assert_eq!(redact("password='a b' host=x"), "password=*** host=x");
        assert_eq!(redact("GET /?token=abc&x=1"), "GET /?token=***&x=1");
        assert_eq!(redact("bypass=1 compass=2"), "bypass=1 compass=2");
    }

    #[test]
    fn masks_configured_secrets() {
        add_secret("tok-xyzzy-123");
        assert_eq!(redact("Bearer tok-xyzzy-123!"), "Bearer ***!");
    }
}
