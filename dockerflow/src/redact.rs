//! The one redaction step every text from a driver or a check passes before it reaches a
//! response or a log line: URL credentials, `password=...`-style pairs, and the secrets the
//! app configured (the details token always among them).

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use memchr::memmem::Finder;

/// The configured secrets, longest first, each with its prebuilt searcher.
static SECRETS: RwLock<Option<Arc<Secrets>>> = RwLock::new(None);

/// Bumped each time a secret is added; 0 while there is none, so most texts are redacted
/// without looking for any.
static GENERATION: AtomicUsize = AtomicUsize::new(0);

/// Set once a secret made only of what a new request id is made of (lower-case hex digits and
/// hyphens) is added: such a secret can turn up inside a random id by chance, so from then on
/// new ids are redacted like any other text ([`id_like_secret`]).
static ID_LIKE_SECRET: AtomicBool = AtomicBool::new(false);

#[derive(Default)]
struct Secrets {
    finders: Vec<Finder<'static>>,
    /// The length of the shortest: a shorter text holds none.
    shortest: usize,
}

thread_local! {
    /// This thread's copy of [`SECRETS`] and the generation it is from: redacting a text takes
    /// no lock.
    static CACHED: RefCell<(usize, Option<Arc<Secrets>>)> = const { RefCell::new((0, None)) };
}

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

/// The longest of [`SECRET_KEYS`]: a longer run of key characters before `=` is no such key.
const LONGEST_KEY: usize = 12;

/// Adds a literal secret that [`redact`] masks wherever it appears. Empty strings are ignored.
pub fn add_secret(secret: impl Into<String>) {
    let secret = secret.into();
    if secret.is_empty() {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    let current = secrets.as_deref();
    let known = current.map_or(&[][..], |s| &s.finders[..]);
    if known.iter().any(|f| f.needle() == secret.as_bytes()) {
        return;
    }
    let mut finders: Vec<Finder<'static>> = known.to_vec();
    finders.push(Finder::new(secret.as_bytes()).into_owned());
    // Longest first, so a secret that contains another is masked whole.
    finders.sort_by_key(|f| std::cmp::Reverse(f.needle().len()));
    let shortest = finders.iter().map(|f| f.needle().len()).min().unwrap_or(0);
    if could_be_in_new_id(&secret) {
        ID_LIKE_SECRET.store(true, Ordering::Release);
    }
    *secrets = Some(Arc::new(Secrets { finders, shortest }));
    GENERATION.fetch_add(1, Ordering::Release);
}

/// Whether a secret could appear inside a request id the library made (a UUID v4 as
/// lower-case hex digits and hyphens): one made only of those characters was added. Until
/// then such ids, which hold nothing else, go into log lines without being searched.
pub(crate) fn id_like_secret() -> bool {
    ID_LIKE_SECRET.load(Ordering::Acquire)
}

/// `secret` is made only of lower-case hex digits and hyphens, what a new request id is made of.
fn could_be_in_new_id(secret: &str) -> bool {
    secret
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f' | b'-'))
}

/// Whether any secret was added: without one, a text with no `:` and no `=` is given back
/// unchanged by [`redacted`].
pub(crate) fn any_secret() -> bool {
    GENERATION.load(Ordering::Acquire) != 0
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
    redacted(text).into_owned()
}

/// Like [`redact`], borrowing `text` when nothing in it needs masking (the common case).
///
/// Most log strings (paths, ids, agents, messages) hold no `:` and no `=` (found with
/// `memchr`), and no configured secret: they are given back as they are, without a copy.
pub(crate) fn redacted(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out = Cow::Borrowed(text);
    // A short text (a method, a path, an id) is looked at a byte at a time: cheaper than
    // setting up `memchr`'s vector search.
    let suspicious = if bytes.len() < 32 {
        bytes.iter().any(|&b| b == b':' || b == b'=')
    } else {
        memchr::memchr2(b':', b'=', bytes).is_some()
    };
    if suspicious {
        if bytes.contains(&b':') {
            if let Some(masked) = mask_url_credentials(&out) {
                out = Cow::Owned(masked);
            }
        }
        if bytes.contains(&b'=') {
            if let Some(masked) = mask_key_values(&out) {
                out = Cow::Owned(masked);
            }
        }
    }
    let generation = GENERATION.load(Ordering::Acquire);
    if generation != 0 {
        with_secrets(generation, |secrets| {
            for finder in &secrets.finders {
                if out.len() >= secrets.shortest && finder.find(out.as_bytes()).is_some() {
                    let secret = std::str::from_utf8(finder.needle()).expect("added as a str");
                    out = Cow::Owned(out.replace(secret, MASK));
                }
            }
        });
    }
    out
}

/// Runs `f` with the secrets of `generation`: this thread's copy, refreshed when older.
fn with_secrets(generation: usize, f: impl FnOnce(&Secrets)) {
    let fresh = || SECRETS.read().unwrap_or_else(|p| p.into_inner()).clone();
    let mut f = Some(f);
    let done = CACHED.try_with(|cached| {
        let Ok(mut cached) = cached.try_borrow_mut() else {
            return false;
        };
        if cached.0 != generation {
            *cached = (generation, fresh());
        }
        if let (Some(secrets), Some(f)) = (cached.1.as_deref(), f.take()) {
            f(secrets);
        }
        true
    });
    if done != Ok(true) {
        // A thread being torn down: the shared copy.
        if let (Some(secrets), Some(f)) = (fresh(), f.take()) {
            f(&secrets);
        }
    }
}

fn is_url_end(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | ')' | ']' | ','
        )
}

/// `scheme://user:pass@host` becomes `scheme://user:***@host`; `scheme://token@host` becomes
/// `scheme://***@host`. `None` when there is nothing to mask.
///
/// Every `://` starts an authority of its own, even one inside the text an earlier `://`
/// took for its authority (`a://bpostgres://u:pw@h`): the earlier one ends at the `/` of the
/// later one, so the masked ranges never overlap.
fn mask_url_credentials(text: &str) -> Option<String> {
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut search = 0;
    while let Some(pos) = text[search..].find("://") {
        let start = search + pos + 3;
        search = start;
        let end = text[start..]
            .find(is_url_end)
            .map_or(text.len(), |e| start + e);
        let authority = &text[start..end];
        let Some(at) = authority.rfind('@') else {
            continue;
        };
        let from = match authority[..at].find(':') {
            Some(colon) => start + colon + 1,
            None => start,
        };
        if from < copied {
            continue; // never happens (see above); kept so a slice can never go backwards
        }
        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[copied..from]);
        out.push_str(MASK);
        copied = start + at;
    }
    let mut out = out?;
    out.push_str(&text[copied..]);
    Some(out)
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `password=hunter2`, `password='a b'`, `?token=abc&x=1`: the value becomes `***`. `None`
/// when there is nothing to mask.
fn mask_key_values(text: &str) -> Option<String> {
    let mut out: Option<String> = None;
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            // Key bytes are ASCII, so the key starts on a character boundary.
            let mut key_start = i;
            while key_start > copied
                && i - key_start <= LONGEST_KEY
                && is_key_byte(bytes[key_start - 1])
            {
                key_start -= 1;
            }
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
                    let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
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
    let mut out = out?;
    out.push_str(&text[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redacted_text_is_left_as_it_is() {
        // The summary's path and error are redacted before the event and again by the layer.
        for text in [
            "redis://:s3cret@127.0.0.1:6379/0 refused",
            "mysql://root@localhost/test",
            "host=db password=hunter2 port=5432",
            "/search?q=1&token=abc",
            "plain text",
        ] {
            let once = redact(text);
            assert_eq!(redact(&once), once, "{text}");
        }
    }

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

    #[test]
    fn a_secret_of_hex_digits_and_hyphens_is_one_a_new_request_id_could_hold() {
        for secret in ["4", "0ddba11", "7e57-ab1e-0ddba11", "-"] {
            assert!(could_be_in_new_id(secret), "{secret}");
        }
        for secret in ["C0FFEE", "tok-beef-42", "beef 42", "ab_cd", "é"] {
            assert!(!could_be_in_new_id(secret), "{secret}");
        }
        add_secret("7e57-ab1e-0ddba11");
        assert!(id_like_secret());
    }
}
