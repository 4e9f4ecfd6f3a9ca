//! The `request.summary` line written straight to the mozlog writer, when nothing but the
//! subscriber [`init`](super::init) installed would see the event.
//!
//! Through `tracing`, a summary line costs an event: the dispatcher, the filter, and a call
//! through `dyn Visit` for each of its ten fields before the layer can render it. When the
//! subscriber is the one `init` made, with mozlog JSON lines, a filter on targets and levels
//! only, and no layer of the app's that takes events (`init`, or `init_with` a `None`), the
//! middleware knows what the layer would write: it asks the filter (once: its answer for the
//! summary's target and levels never changes), then hands the line's parts to the writer
//! ([`Record`]), whose thread renders the same bytes as the layer would (`tests/logging.rs`
//! compares the two ways line by line). Any other subscriber, a span entered around the
//! request, or a scoped subscriber (`with_default`) gets the event.
//!
//! Rendering a line is most of what logging it costs (redaction, escaping, numbers as text):
//! on the writer thread, it leaves the request's worker a clock reading and a copy of a few
//! short texts (`BENCHMARKS.md`). The record is read back only by code of this file, every
//! length checked, so a record cannot make the writer thread panic.

use std::sync::OnceLock;

use tracing::{Dispatch, Level};

use super::mozlog::{
    push_head, push_redacted_json_bytes, push_rid, push_timestamp, severity, with_scratch, Middle,
};
use super::{BatchWriter, RequestId};

/// What writing a summary line straight needs, set by [`init`](super::init).
pub(super) struct Direct {
    /// What follows the timestamp of a summary line up to `Fields`' brace: its `Type` and the
    /// layer's [`Middle`], for `INFO` and for `ERROR`, rendered once.
    heads: [Vec<u8>; 2],
    writer: BatchWriter,
    /// Whether a dispatcher is the subscriber `init` installed.
    is_ours: fn(&Dispatch) -> bool,
    /// What that subscriber's filter says of a summary line, at `INFO` and at `ERROR`, asked
    /// once: it filters on targets and levels only, so the answer outside a span never
    /// changes, and asking on every request cost a second trip through the dispatcher.
    enabled: OnceLock<[bool; 2]>,
}

static DIRECT: OnceLock<Direct> = OnceLock::new();

/// Lets summaries be written straight, to `writer` with `middle` (the layer's), while the
/// current dispatcher is one that `is_ours`.
pub(super) fn enable(middle: Middle, writer: BatchWriter, is_ours: fn(&Dispatch) -> bool) {
    let _ = DIRECT.set(Direct {
        heads: heads(&middle),
        writer,
        is_ours,
        enabled: OnceLock::new(),
    });
}

/// What follows the timestamp of a summary line up to `Fields`' brace, for `INFO` and `ERROR`.
fn heads(middle: &Middle) -> [Vec<u8>; 2] {
    let head = |level| {
        let mut head = Vec::new();
        push_head(&mut head, middle, "request.summary", severity(level));
        head
    };
    [head(Level::INFO), head(Level::ERROR)]
}

/// The fields of a `request.summary` line, in the order of the event's, not yet redacted.
pub(crate) struct SummaryLine<'a> {
    /// `User-Agent` and `Accept-Language` as they came; bytes that are not UTF-8 become
    /// U+FFFD when the line is rendered.
    pub(crate) agent: &'a [u8],
    pub(crate) lang: &'a [u8],
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) code: u16,
    pub(crate) errno: u16,
    pub(crate) t: u64,
    pub(crate) rid: &'a RequestId,
    pub(crate) uid: Option<&'a str>,
    pub(crate) querystring: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
}

/// Writes the summary line the mozlog layer would write for the event; `false` when the event
/// must be logged through `tracing` instead.
///
/// While a request is handled, the line is not rendered here: its parts are copied into the
/// writer's buffer for this thread ([`Record`]), and the writer thread renders them (redacted
/// and escaped as the layer would) just before it writes them. The request pays for a copy of
/// a few short texts, not for the rendering. `timestamp` is the line's time, in nanoseconds
/// since the Unix epoch.
pub(crate) fn write(level: Level, summary: &SummaryLine<'_>, timestamp: u64) -> bool {
    let Some(direct) = DIRECT.get() else {
        return false;
    };
    let ours = tracing::dispatcher::get_default(|dispatch| {
        (direct.is_ours)(dispatch) && dispatch.current_span().id().is_none()
    });
    if !ours {
        return false;
    }
    // What the filter says of the event (its call sites are the event's target and levels),
    // asked of the subscriber `init` installed, the current one here.
    let enabled = direct.enabled.get_or_init(|| {
        [
            tracing::enabled!(target: "request.summary", Level::INFO),
            tracing::enabled!(target: "request.summary", Level::ERROR),
        ]
    });
    if enabled[usize::from(level == Level::ERROR)] {
        direct.writer.write_summary(&Record {
            error: level == Level::ERROR,
            timestamp,
            line: summary,
        });
    }
    true
}

/// A summary line to be written: its parts, its level and the time it was logged.
pub(crate) struct Record<'a> {
    /// `ERROR`, else `INFO`.
    error: bool,
    timestamp: u64,
    line: &'a SummaryLine<'a>,
}

/// The flags of an encoded [`Record`].
const ERROR: u8 = 1;
const NEW_RID: u8 = 1 << 1;
const UID: u8 = 1 << 2;
const QUERYSTRING: u8 = 1 << 3;
const ERROR_TEXT: u8 = 1 << 4;

/// How many texts a record has, and the size of what comes before them: the flags, the
/// timestamp, `code`, `errno`, `t`, and each text's length.
const TEXTS: usize = 8;
const HEAD: usize = 1 + 8 + 2 + 2 + 8 + 4 * TEXTS;

impl Record<'_> {
    /// Appends the record's parts to `out`, as [`render_encoded`] reads them: copies, nothing
    /// rendered, nothing that can panic (the writer's lock for this thread may be held).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let line = self.line;
        let flag = |on: bool, flag: u8| if on { flag } else { 0 };
        let texts: [&[u8]; TEXTS] = [
            line.agent,
            line.lang,
            line.method.as_bytes(),
            line.path.as_bytes(),
            line.rid.as_bytes(),
            line.uid.unwrap_or_default().as_bytes(),
            line.querystring.unwrap_or_default().as_bytes(),
            line.error.unwrap_or_default().as_bytes(),
        ];
        // A text of 4 GiB is cut there rather than lost.
        let lens = texts.map(|text| u32::try_from(text.len()).unwrap_or(u32::MAX));
        let mut head = [0; HEAD];
        head[0] = flag(self.error, ERROR)
            | flag(line.rid.is_new(), NEW_RID)
            | flag(line.uid.is_some(), UID)
            | flag(line.querystring.is_some(), QUERYSTRING)
            | flag(line.error.is_some(), ERROR_TEXT);
        head[1..9].copy_from_slice(&self.timestamp.to_le_bytes());
        head[9..11].copy_from_slice(&line.code.to_le_bytes());
        head[11..13].copy_from_slice(&line.errno.to_le_bytes());
        head[13..21].copy_from_slice(&line.t.to_le_bytes());
        for (i, len) in lens.iter().enumerate() {
            head[21 + 4 * i..25 + 4 * i].copy_from_slice(&len.to_le_bytes());
        }
        out.reserve(HEAD + lens.iter().map(|&len| len as usize).sum::<usize>());
        out.extend_from_slice(&head);
        for (text, len) in texts.iter().zip(lens) {
            if len > 0 {
                out.extend_from_slice(&text[..len as usize]);
            }
        }
    }

    /// Renders the line now, into this thread's buffer, and gives it to `write`: when there is
    /// no writer thread to render it.
    pub(crate) fn render_now(&self, write: impl FnOnce(&[u8])) {
        let Some(direct) = DIRECT.get() else { return };
        // Rendered in this thread's buffer before any lock is taken: a render that panics,
        // and a panic hook that logs, find nothing held.
        with_scratch(|scratch| {
            let line = &mut scratch.line;
            line.clear();
            render(
                line,
                &direct.heads,
                self.error,
                self.timestamp,
                &self.parts(),
            );
            write(line);
        });
    }

    fn parts(&self) -> Parts<'_> {
        let line = self.line;
        Parts {
            agent: line.agent,
            lang: line.lang,
            method: line.method.as_bytes(),
            path: line.path.as_bytes(),
            code: line.code,
            errno: line.errno,
            t: line.t,
            rid: line.rid.as_bytes(),
            new_rid: line.rid.is_new(),
            uid: line.uid.map(str::as_bytes),
            querystring: line.querystring.map(str::as_bytes),
            error: line.error.map(str::as_bytes),
        }
    }
}

/// Renders an encoded [`Record`] (what [`Record::encode`] appended) into `out`, a whole line:
/// on the writer thread, just before the line is written.
pub(crate) fn render_encoded(out: &mut Vec<u8>, record: &[u8]) {
    if let Some(direct) = DIRECT.get() {
        render_encoded_with(out, &direct.heads, record);
    }
}

fn render_encoded_with(out: &mut Vec<u8>, heads: &[Vec<u8>; 2], record: &[u8]) {
    // Only `Record::encode` writes what is read here; a record cut short renders nothing.
    if let Some((flags, timestamp, parts)) = decode(record) {
        render(out, heads, flags & ERROR != 0, timestamp, &parts);
    }
}

/// The parts of a summary line as they are rendered: the texts as bytes, made `str`s only
/// when they need more than a copy (`push_redacted_json_bytes`).
struct Parts<'a> {
    agent: &'a [u8],
    lang: &'a [u8],
    method: &'a [u8],
    path: &'a [u8],
    code: u16,
    errno: u16,
    t: u64,
    rid: &'a [u8],
    /// The id is one the library made: hex digits and hyphens, written as they are unless a
    /// secret could be inside (`mozlog::push_rid`).
    new_rid: bool,
    uid: Option<&'a [u8]>,
    querystring: Option<&'a [u8]>,
    error: Option<&'a [u8]>,
}

/// Reads what [`Record::encode`] wrote: the flags, the timestamp and the parts.
fn decode(record: &[u8]) -> Option<(u8, u64, Parts<'_>)> {
    let (head, mut rest) = record.split_first_chunk::<HEAD>()?;
    let number = |range: std::ops::Range<usize>| {
        let mut bytes = [0; 8];
        bytes[..range.len()].copy_from_slice(&head[range]);
        u64::from_le_bytes(bytes)
    };
    let mut texts = [&[][..]; TEXTS];
    for (i, text) in texts.iter_mut().enumerate() {
        let len = usize::try_from(number(21 + 4 * i..25 + 4 * i)).ok()?;
        (*text, rest) = rest.split_at_checked(len)?;
    }
    let flags = head[0];
    let [agent, lang, method, path, rid, uid, querystring, error] = texts;
    let parts = Parts {
        agent,
        lang,
        method,
        path,
        code: u16::try_from(number(9..11)).ok()?,
        errno: u16::try_from(number(11..13)).ok()?,
        t: number(13..21),
        rid,
        new_rid: flags & NEW_RID != 0,
        uid: (flags & UID != 0).then_some(uid),
        querystring: (flags & QUERYSTRING != 0).then_some(querystring),
        error: (flags & ERROR_TEXT != 0).then_some(error),
    };
    Some((flags, number(1..9), parts))
}

/// The whole line, as the layer renders the event: every string of `Fields` redacted (once:
/// the event's path, querystring and error are redacted before the layer redacts them again,
/// which leaves a redacted text as it is).
fn render(
    line: &mut Vec<u8>,
    heads: &[Vec<u8>; 2],
    error: bool,
    timestamp: u64,
    parts: &Parts<'_>,
) {
    // What `start_line` writes, the head rendered once.
    push_timestamp(line, timestamp);
    line.extend_from_slice(&heads[usize::from(error)]);
    let text = |line: &mut Vec<u8>, key: &[u8], value: &[u8]| {
        line.extend_from_slice(key);
        push_redacted_json_bytes(line, value);
    };
    let number = |line: &mut Vec<u8>, key: &[u8], value: u64| {
        line.extend_from_slice(key);
        line.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    };
    text(line, b"\"agent\":", parts.agent);
    text(line, b",\"lang\":", parts.lang);
    text(line, b",\"method\":", parts.method);
    text(line, b",\"path\":", parts.path);
    number(line, b",\"code\":", u64::from(parts.code));
    number(line, b",\"errno\":", u64::from(parts.errno));
    number(line, b",\"t\":", parts.t);
    line.extend_from_slice(b",\"rid\":");
    push_rid(line, parts.rid, parts.new_rid);
    if let Some(uid) = parts.uid {
        text(line, b",\"uid\":", uid);
    }
    if let Some(querystring) = parts.querystring {
        text(line, b",\"querystring\":", querystring);
    }
    if let Some(error) = parts.error {
        text(line, b",\"error\":", error);
    }
    line.extend_from_slice(b"}}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn heads() -> [Vec<u8>; 2] {
        let middle: Middle =
            std::array::from_fn(|i| format!(",\"Severity\":{i},\"Fields\":{{").into_bytes());
        super::heads(&middle)
    }

    /// The line rendered from the record's encoded parts, as the writer thread renders it, and
    /// the line rendered at once.
    fn both_ways(record: &Record<'_>) -> (String, String) {
        let heads = heads();
        // Between two other entries' bytes, as in a slot: a record is read to its end only.
        let mut encoded = b"before".to_vec();
        let start = encoded.len();
        record.encode(&mut encoded);
        let end = encoded.len();
        encoded.extend_from_slice(b"after");
        let mut deferred = Vec::new();
        render_encoded_with(&mut deferred, &heads, &encoded[start..end]);
        let mut now = Vec::new();
        render(
            &mut now,
            &heads,
            record.error,
            record.timestamp,
            &record.parts(),
        );
        (
            String::from_utf8(deferred).unwrap(),
            String::from_utf8(now).unwrap(),
        )
    }

    /// A probe's summary: the common line.
    fn probe(rid: &RequestId) -> SummaryLine<'_> {
        SummaryLine {
            agent: b"curl/8.5.0",
            lang: b"",
            method: "GET",
            path: "/__lbheartbeat__",
            code: 200,
            errno: 0,
            t: 0,
            rid,
            uid: None,
            querystring: None,
            error: None,
        }
    }

    #[test]
    fn a_record_rendered_by_the_writer_thread_is_the_line_rendered_at_once() {
        let new_rid = RequestId::random();
        let plain = probe(&new_rid);
        let given = RequestId::from_header(Some(&HeaderValue::from_static(
            r#"proxy "7" \ https://ana:hunter2@db.example/x"#,
        )));
        let hostile = SummaryLine {
            agent: b"bot \xff\xfe \"quoted\"\n",
            lang: "fr-CH, fr;q=0.9".as_bytes(),
            method: "PATCH",
            path: "/users/\u{e9}t\u{e9}/postgres://bo:s3cret@10.0.0.1/db",
            code: 503,
            errno: 503,
            t: u64::MAX,
            rid: &given,
            uid: Some("\u{1f600} user\t42"),
            querystring: Some("next=redis://:hunter2@cache:6379/0&x=\u{7f}"),
            error: Some("the database said:\n\"no\""),
        };
        for (line, error) in [(&plain, false), (&hostile, true), (&plain, true)] {
            let record = Record {
                error,
                timestamp: 1_795_000_000_123_456_789,
                line,
            };
            let (deferred, now) = both_ways(&record);
            assert_eq!(deferred, now);
            assert!(deferred.ends_with("}}\n"), "{deferred}");
            let json: serde_json::Value = serde_json::from_str(&deferred).unwrap();
            let fields = &json["Fields"];
            assert_eq!(json["Timestamp"], 1_795_000_000_123_456_789_u64);
            assert_eq!(json["Severity"], if error { 3 } else { 6 });
            assert_eq!(fields["method"], line.method);
            assert_eq!(fields["code"], line.code);
            assert_eq!(fields["errno"], line.errno);
            assert_eq!(fields["t"], line.t);
            assert_eq!(
                fields["agent"],
                String::from_utf8_lossy(line.agent).as_ref()
            );
            assert_eq!(fields["uid"].as_str(), line.uid);
            assert!(!deferred.contains("hunter2") && !deferred.contains("s3cret"));
        }
        let (plain_line, _) = both_ways(&Record {
            error: false,
            timestamp: 1,
            line: &plain,
        });
        assert!(plain_line.contains(&format!(r#""rid":"{}""#, new_rid.as_str())));
        assert!(!plain_line.contains("\"uid\"") && !plain_line.contains("\"error\""));
    }

    #[test]
    fn a_record_cut_short_renders_nothing() {
        let rid = RequestId::random();
        let line = SummaryLine {
            uid: Some("u"),
            ..probe(&rid)
        };
        let mut encoded = Vec::new();
        Record {
            error: false,
            timestamp: 1,
            line: &line,
        }
        .encode(&mut encoded);
        for len in 0..encoded.len() {
            let mut out = Vec::new();
            render_encoded_with(&mut out, &heads(), &encoded[..len]);
            assert!(out.is_empty(), "{len} bytes rendered a line");
        }
    }
}
