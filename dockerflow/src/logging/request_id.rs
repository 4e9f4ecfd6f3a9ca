//! [`RequestId`]: the id of the request being handled, taken from the request id header when
//! it is sane, else a new UUID v4.

use std::convert::Infallible;
use std::fmt;
use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header::HeaderValue;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use crate::logging::context::RequestContext;

/// The longest request id taken from a header; a longer one is replaced.
pub const MAX_LEN: usize = 128;

/// The id of the request being handled, as it appears in the `rid` field of every log line
/// and in the response's request id header.
///
/// [`RequestSummary`](crate::logging::RequestSummary) chooses it for each request; handlers
/// take it as an extractor:
///
/// ```
/// use dockerflow::logging::RequestId;
///
/// async fn handler(rid: RequestId) -> String {
///     format!("your request was {rid}")
/// }
/// ```
///
/// The middleware's id is the one of the request being handled: the handler's, an inner
/// middleware's, or a task's that took the request along with
/// [`in_current_request`](crate::logging::in_current_request). Without the middleware on the
/// app (or elsewhere), the extractor gives a new UUID v4 that stays the same for the rest of
/// that request, but it is neither read from nor sent back in a header.
#[derive(Clone)]
pub struct RequestId(Repr);

/// A new id is kept inline (no allocation per request), as the bytes of its text: hex digits
/// and hyphens, copied into the log line and the header as they are; one from a header is kept
/// as a header value, ready to be sent back.
#[derive(Clone)]
enum Repr {
    Uuid([u8; uuid::fmt::Hyphenated::LENGTH]),
    /// Sane (printable ASCII), so its bytes are its text.
    Given(HeaderValue),
}

impl RequestId {
    /// `value` when it is a sane id (1 to 128 characters of printable ASCII, space included),
    /// else a new UUID v4.
    pub fn from_header(value: Option<&HeaderValue>) -> Self {
        match value.map(HeaderValue::as_bytes) {
            // A copy: the request's value shares the buffer the whole request head was read
            // into, which an id kept after the request would keep alive.
            Some(bytes) if is_sane(bytes) => match HeaderValue::from_bytes(bytes) {
                Ok(value) => RequestId(Repr::Given(value)),
                Err(_) => RequestId::random(),
            },
            _ => RequestId::random(),
        }
    }

    /// A new UUID v4, in its hyphenated lower-case form.
    ///
    /// Its 122 random bits come from the thread's ChaCha generator (`rand`'s `ThreadRng`,
    /// seeded and regularly reseeded from the operating system), so ids stay unpredictable
    /// without a system call per request.
    pub fn random() -> Self {
        use rand::Rng as _;

        let mut rng = rand::rng();
        let bits = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
        let uuid = uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid();
        RequestId(Repr::Uuid(hyphenated(uuid.as_u128())))
    }

    /// Whether the id is one the library made (a UUID v4), not one taken from a header: its
    /// text is hex digits and hyphens, which need no escaping and hold a secret only by chance,
    /// when one made of the same characters is configured (`redact::id_like_secret`).
    pub(crate) fn is_new(&self) -> bool {
        matches!(self.0, Repr::Uuid(_))
    }

    /// The id of `req`: the one the middleware chose while `req` is the request being handled
    /// (see above), else a new one kept for the rest of the request.
    pub fn of(req: &HttpRequest) -> Self {
        if let Some(context) = RequestContext::of(req) {
            return context.rid().clone();
        }
        if let Some(rid) = req.extensions().get::<RequestId>() {
            return rid.clone();
        }
        let rid = RequestId::random();
        req.extensions_mut().insert(rid.clone());
        rid
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("an id is printable ASCII")
    }

    /// The bytes of the id's text.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Uuid(text) => text,
            Repr::Given(value) => value.as_bytes(),
        }
    }

    /// The id as a header value: the request's own when it came in a header.
    pub(crate) fn header_value(&self) -> Option<HeaderValue> {
        match &self.0 {
            // Hex digits and hyphens: always a header value.
            Repr::Uuid(text) => HeaderValue::from_bytes(text).ok(),
            Repr::Given(value) => Some(value.clone()),
        }
    }
}

/// `uuid` as `uuid::fmt::Hyphenated` writes it, eight hex digits at a time in a `u64`'s
/// lanes instead of a table lookup a digit: a request makes one.
fn hyphenated(uuid: u128) -> [u8; uuid::fmt::Hyphenated::LENGTH] {
    /// The eight nibbles of `x` in the low halves of a `u64`'s bytes, the first nibble in the
    /// highest byte, then each made its lower-case hex digit: `n + '0'`, plus 39 (`'a' - '0'
    /// - 10`) where `n > 9`, found by whether `n + 6` carries into the byte's high half.
    fn digits(x: u32) -> [u8; 8] {
        let x = u64::from(x);
        let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
        let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
        let x = (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f;
        let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        (x + 0x3030_3030_3030_3030 + letters * 39).to_be_bytes()
    }
    let mut hex = [0; 32];
    for (i, chunk) in hex.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&digits((uuid >> (96 - 32 * i)) as u32));
    }
    let mut text = [b'-'; uuid::fmt::Hyphenated::LENGTH];
    text[..8].copy_from_slice(&hex[..8]);
    text[9..13].copy_from_slice(&hex[8..12]);
    text[14..18].copy_from_slice(&hex[12..16]);
    text[19..23].copy_from_slice(&hex[16..20]);
    text[24..].copy_from_slice(&hex[20..]);
    text
}

/// 1 to [`MAX_LEN`] bytes, each printable ASCII (0x20 to 0x7E).
fn is_sane(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(|b| (0x20..=0x7e).contains(b))
}

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for RequestId {}

impl std::hash::Hash for RequestId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl AsRef<str> for RequestId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl FromRequest for RequestId {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(RequestId::of(req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(bytes: &[u8]) -> RequestId {
        RequestId::from_header(Some(&HeaderValue::from_bytes(bytes).unwrap()))
    }

    fn is_uuid_v4(rid: &RequestId) -> bool {
        uuid::Uuid::parse_str(rid.as_str()).is_ok_and(|id| id.get_version_num() == 4)
    }

    #[test]
    fn sane_ids_are_kept() {
        assert_eq!(from(b"abc-123").as_str(), "abc-123");
        assert_eq!(from(b"a b ~!").as_str(), "a b ~!");
        let longest = "x".repeat(MAX_LEN);
        assert_eq!(from(longest.as_bytes()).as_str(), longest);
    }

    #[test]
    fn insane_ids_are_replaced_by_a_uuid_v4() {
        let long = "x".repeat(MAX_LEN + 1);
        let bad: [&[u8]; 5] = [long.as_bytes(), b"a\tb", "café".as_bytes(), b"\xff", b""];
        for bad in bad {
            let rid = from(bad);
            assert!(is_uuid_v4(&rid), "{bad:?} gave {rid:?}");
        }
        assert!(is_uuid_v4(&RequestId::from_header(None)));
        assert_ne!(RequestId::random(), RequestId::random());
    }

    #[test]
    fn new_ids_are_written_as_the_uuid_crate_writes_them() {
        let mut rng = rand::rng();
        let samples = [0, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210]
            .into_iter()
            .chain(std::iter::repeat_with(|| {
                use rand::Rng as _;
                u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())
            }))
            .take(1003);
        for bits in samples {
            let mut expected = [0; uuid::fmt::Hyphenated::LENGTH];
            let expected = uuid::Uuid::from_u128(bits)
                .hyphenated()
                .encode_lower(&mut expected)
                .to_owned();
            assert_eq!(hyphenated(bits), expected.as_bytes(), "{bits:#x}");
        }
        assert!(RequestId::random().is_new());
        assert!(!from(b"abc-123").is_new());
    }
}
