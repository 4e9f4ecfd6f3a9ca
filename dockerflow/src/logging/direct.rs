//! The `request.summary` line written straight to the mozlog writer, when nothing but the
//! subscriber [`init`](super::init) installed would see the event.
//!
//! Through `tracing`, a summary line costs an event: the dispatcher, the filter, and a call
//! through `dyn Visit` for each of its ten fields before the layer can render it. When the
//! subscriber is the one `init` made, with mozlog JSON lines, a filter on targets and levels
//! only, and no layer of the app's that takes events (`init`, or `init_with` a `None`), the
//! middleware knows what the layer would write: it asks the filter, then renders and writes
//! the same bytes itself (`tests/logging.rs` compares the two ways line by line). Any other
//! subscriber, a span entered around the request, or a scoped subscriber (`with_default`)
//! gets the event.

use std::sync::OnceLock;

use tracing::{Dispatch, Level};

use super::mozlog::{
    push_head, push_redacted_json_str, push_rid, push_timestamp, severity, with_scratch, Middle,
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
}

static DIRECT: OnceLock<Direct> = OnceLock::new();

/// Lets summaries be written straight, to `writer` with `middle` (the layer's), while the
/// current dispatcher is one that `is_ours`.
pub(super) fn enable(middle: Middle, writer: BatchWriter, is_ours: fn(&Dispatch) -> bool) {
    let head = |level| {
        let mut head = Vec::new();
        push_head(&mut head, &middle, "request.summary", severity(level));
        head
    };
    let _ = DIRECT.set(Direct {
        heads: [head(Level::INFO), head(Level::ERROR)],
        writer,
        is_ours,
    });
}

/// The fields of a `request.summary` line, in the order of the event's, not yet redacted.
pub(crate) struct SummaryLine<'a> {
    pub(crate) agent: &'a str,
    pub(crate) lang: &'a str,
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
pub(crate) fn write(level: Level, summary: &SummaryLine<'_>) -> bool {
    let Some(direct) = DIRECT.get() else {
        return false;
    };
    let ours = tracing::dispatcher::get_default(|dispatch| {
        (direct.is_ours)(dispatch) && dispatch.current_span().id().is_none()
    });
    if !ours {
        return false;
    }
    // What the filter says of the event (its call sites are the event's target and levels).
    let enabled = match level {
        Level::ERROR => tracing::enabled!(target: "request.summary", Level::ERROR),
        _ => tracing::enabled!(target: "request.summary", Level::INFO),
    };
    if enabled {
        let timestamp = super::mozlog::now_ns();
        // Rendered in this thread's buffer before any lock is taken: a render that panics,
        // and a panic hook that logs, find nothing held.
        with_scratch(|scratch| {
            let line = &mut scratch.line;
            line.clear();
            // What `start_line` writes, the head rendered once.
            push_timestamp(line, timestamp);
            line.extend_from_slice(&direct.heads[usize::from(level == Level::ERROR)]);
            render(line, summary);
            line.extend_from_slice(b"}}\n");
            direct.writer.write_line(line);
        });
    }
    true
}

/// The `Fields` of the line, as the layer renders the event's: every string redacted (once:
/// the event's path, querystring and error are redacted before the layer redacts them again,
/// which leaves a redacted text as it is).
fn render(line: &mut Vec<u8>, summary: &SummaryLine<'_>) {
    let text = |line: &mut Vec<u8>, key: &[u8], value: &str| {
        line.extend_from_slice(key);
        push_redacted_json_str(line, value);
    };
    let number = |line: &mut Vec<u8>, key: &[u8], value: u64| {
        line.extend_from_slice(key);
        line.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    };
    text(line, b"\"agent\":", summary.agent);
    text(line, b",\"lang\":", summary.lang);
    text(line, b",\"method\":", summary.method);
    text(line, b",\"path\":", summary.path);
    number(line, b",\"code\":", u64::from(summary.code));
    number(line, b",\"errno\":", u64::from(summary.errno));
    number(line, b",\"t\":", summary.t);
    line.extend_from_slice(b",\"rid\":");
    push_rid(line, summary.rid);
    if let Some(uid) = summary.uid {
        text(line, b",\"uid\":", uid);
    }
    if let Some(querystring) = summary.querystring {
        text(line, b",\"querystring\":", querystring);
    }
    if let Some(error) = summary.error {
        text(line, b",\"error\":", error);
    }
}
