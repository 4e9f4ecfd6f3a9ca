//! [`MozLogLayer`]: a `tracing-subscriber` layer that writes every event as one mozlog JSON
//! line (or, for a terminal, one readable line).
//!
//! The line is serialized straight into a buffer the thread reuses: each field's value is
//! redacted and written as JSON once, when it is recorded (a span's fields when the span is
//! made), and the line is given to the writer in one `write_all` call ([`BatchWriter`] for
//! stdout).

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use smallvec::SmallVec;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::logging::{context, BatchWriter};
use crate::redact::redacted;

/// How each event is written: a mozlog JSON line (the default), or one readable line for a
/// terminal (`DOCKERFLOW_LOG_FORMAT=text`).
///
/// ```
/// use dockerflow::logging::Format;
///
/// assert_eq!("text".parse::<Format>(), Ok(Format::Text));
/// assert_eq!("JSON".parse::<Format>(), Ok(Format::Json));
/// assert!("xml".parse::<Format>().is_err());
/// ```
///
/// A text line holds the same things as a JSON line, for a person to read: the time (UTC),
/// the level, the `Type`, the message, then the other fields as `name=value`, strings
/// quoted and escaped as in JSON, so one event is always one line:
///
/// ```text
/// 2026-11-22T04:00:00.123Z INFO request.summary: agent="curl/8.5.0" lang="" method="GET" path="/" code=200 errno=0 t=0 rid="3f2c…"
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// One mozlog JSON object a line.
    #[default]
    Json,
    /// One readable line per event, for a terminal.
    Text,
}

impl Format {
    /// The accepted values, for error messages.
    pub(crate) const ACCEPTED: &'static str = "json or text";
}

/// A value of `DOCKERFLOW_LOG_FORMAT` that is neither `json` nor `text`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format {0:?}: expected json or text")]
pub struct ParseFormatError(String);

impl FromStr for Format {
    type Err = ParseFormatError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "text" => Ok(Format::Text),
            _ => Err(ParseFormatError(text.to_owned())),
        }
    }
}

/// A [`Layer`] that writes each `tracing` event as one mozlog line.
///
/// The line is a JSON object with `Timestamp`, `Type`, `Logger`, `Hostname`, `EnvVersion`,
/// `Severity`, `Pid` and `Fields`; see the [module docs](crate::logging) for what goes where.
/// [`init`](crate::logging::init) installs it behind a `RUST_LOG` filter; compose it yourself
/// for anything else:
///
/// ```
/// use dockerflow::logging::MozLogLayer;
/// use tracing_subscriber::filter::LevelFilter;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber = tracing_subscriber::registry()
///     .with(MozLogLayer::new("my-app"))
///     .with(LevelFilter::DEBUG);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::debug!(user = "ana", "signed in");
/// });
/// ```
///
/// Each line is given whole, in one `write_all` call, to a writer made for that line, so lines
/// from different threads never interleave. [`MozLogLayer::new`] writes to stdout through
/// [`BatchWriter::stdout`]: the lines of requests in batches, every other line at once.
pub struct MozLogLayer<W = BatchWriter> {
    logger: String,
    hostname: String,
    pid: u32,
    format: Format,
    /// What follows `Type`, the same on every line of a severity.
    middle: Middle,
    make_writer: W,
}

impl MozLogLayer {
    /// A layer whose lines carry `logger` (the app's name) as `Logger` and go to stdout.
    pub fn new(logger: impl Into<String>) -> Self {
        MozLogLayer {
            logger: logger.into(),
            hostname: hostname(),
            pid: std::process::id(),
            format: Format::Json,
            middle: Default::default(),
            make_writer: BatchWriter::stdout(),
        }
        .prepared()
    }
}

impl<W> MozLogLayer<W> {
    /// Writes the lines somewhere else than stdout: anything that implements
    /// [`MakeWriter`], such as `std::io::stderr` or a buffer in tests. Each line is one
    /// `write_all` call on a writer made for it.
    pub fn with_writer<W2>(self, make_writer: W2) -> MozLogLayer<W2>
    where
        W2: for<'a> MakeWriter<'a> + 'static,
    {
        MozLogLayer {
            logger: self.logger,
            hostname: self.hostname,
            pid: self.pid,
            format: self.format,
            middle: self.middle,
            make_writer,
        }
    }

    /// Sets `Hostname` instead of the machine's host name.
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = hostname.into();
        self.prepared()
    }

    /// Writes each event as `format` says: [`Format::Json`] (mozlog, the default) or
    /// [`Format::Text`] (one readable line, for a terminal).
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// What follows `Type` on each line, for the summaries written straight (`direct.rs`).
    pub(super) fn middle(&self) -> &Middle {
        &self.middle
    }

    /// Renders the parts every line shares.
    fn prepared(mut self) -> Self {
        let mut common = b",\"Logger\":".to_vec();
        push_json_str(&mut common, &self.logger);
        common.extend_from_slice(b",\"Hostname\":");
        push_json_str(&mut common, &self.hostname);
        common.extend_from_slice(b",\"EnvVersion\":\"2.0\",\"Severity\":");
        self.middle = std::array::from_fn(|severity| {
            let mut middle = common.clone();
            let _ = write!(middle, "{severity},\"Pid\":{},\"Fields\":{{", self.pid);
            middle
        });
        self
    }
}

impl<W> fmt::Debug for MozLogLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MozLogLayer")
            .field("logger", &self.logger)
            .field("hostname", &self.hostname)
            .field("pid", &self.pid)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// The host name as `socket.gethostname()` gives it on Linux, else the usual variables.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .chain(
            ["HOSTNAME", "COMPUTERNAME"]
                .iter()
                .filter_map(|var| std::env::var(var).ok()),
        )
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `text` [redacted](crate::redact::redact), as a JSON string: what every string of a line
/// becomes.
pub(super) fn push_redacted_json_str(out: &mut Vec<u8>, text: &str) {
    push_redacted_json_bytes(out, text.as_bytes());
}

/// `text` as [`push_redacted_json_str`] writes it, bytes that are not UTF-8 as U+FFFD. ASCII
/// with nothing to escape, no `:` or `=`, and no secret configured (most paths, ids, methods
/// and agents) is copied after one pass over it, without being made a `str`; any other text
/// goes through both steps.
pub(super) fn push_redacted_json_bytes(out: &mut Vec<u8>, text: &[u8]) {
    // The secrets first: with one configured, the scan would be wasted.
    if !crate::redact::any_secret() && attention_prefix(text, true) == text.len() {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text);
        out.push(b'"');
    } else {
        push_json_str(out, &redacted(&String::from_utf8_lossy(text)));
    }
}

/// A request id as a JSON string: one the library made as it is (hex digits and hyphens:
/// nothing to escape, and no secret unless one made of the same characters was configured),
/// any other redacted and escaped.
pub(super) fn push_rid(out: &mut Vec<u8>, rid: &[u8], is_new: bool) {
    if is_new && !crate::redact::id_like_secret() {
        out.reserve(rid.len() + 2);
        out.push(b'"');
        out.extend_from_slice(rid);
        out.push(b'"');
    } else {
        push_redacted_json_bytes(out, rid);
    }
}

/// `text` as a JSON string, quotes included: `"` and `\` escaped, control characters as
/// `\n`, `\t`, … or `\u00XX` (what serde_json writes; the property tests parse it back).
pub(super) fn push_json_str(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = text.as_bytes();
    out.reserve(rest.len() + 2);
    out.push(b'"');
    loop {
        let plain = plain_prefix(rest);
        out.extend_from_slice(&rest[..plain]);
        let Some((&b, after)) = rest[plain..].split_first() else {
            break;
        };
        match ESCAPE[usize::from(b)] {
            b'u' => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
            short => out.extend_from_slice(&[b'\\', short]),
        }
        rest = after;
    }
    out.push(b'"');
}

/// How many bytes at the start of `bytes` JSON takes as they are (no `"`, `\` or control
/// character).
fn plain_prefix(bytes: &[u8]) -> usize {
    attention_prefix(bytes, false)
}

/// How many bytes at the start of `bytes` need no attention: none that JSON escapes, and with
/// `redaction`, no `:` or `=` either (the bytes [`redacted`] looks for), and ASCII only (so
/// that bytes that may not be UTF-8 are copied only when they are). Eight bytes at a
/// time, with the bit tricks of "Bit Twiddling Hacks" (the lowest byte they flag is always
/// such a byte), then the tail through [`ESCAPE`].
fn attention_prefix(bytes: &[u8], redaction: bool) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    /// The high bit of each byte of `word` that is zero (exact for the lowest such byte).
    fn zero_bytes(word: u64) -> u64 {
        word.wrapping_sub(ONES) & !word & HIGHS
    }
    let attention = |b: u8| {
        ESCAPE[usize::from(b)] != 0 || (redaction && (b == b':' || b == b'=' || !b.is_ascii()))
    };
    let mut chunks = bytes.chunks_exact(8);
    let mut done = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
        let mut found = control
            | zero_bytes(word ^ (ONES * u64::from(b'"')))
            | zero_bytes(word ^ (ONES * u64::from(b'\\')));
        if redaction {
            found |= zero_bytes(word ^ (ONES * u64::from(b':')))
                | zero_bytes(word ^ (ONES * u64::from(b'=')))
                | word & HIGHS;
        }
        if found != 0 {
            return done + (found.trailing_zeros() / 8) as usize;
        }
        done += 8;
    }
    done + chunks
        .remainder()
        .iter()
        .position(|&b| attention(b))
        .unwrap_or(chunks.remainder().len())
}

/// For each byte, how JSON escapes it: 0 not at all, `u` as `\u00XX`, else `\` and that byte.
static ESCAPE: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Fields rendered as JSON values, one after the other in `json`: each entry is a name and
/// where its value is.
#[derive(Default)]
struct Rendered {
    json: Vec<u8>,
    /// Inline up to four: a span's fields take one allocation fewer.
    entries: SmallVec<[(&'static str, Range<usize>); 4]>,
}

impl Rendered {
    fn clear(&mut self) {
        self.json.clear();
        self.entries.clear();
    }

    /// Renders a value with `write` and names it `name`; a name already there is replaced
    /// (a span's `record`).
    fn put(&mut self, name: &'static str, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.json.len();
        write(&mut self.json);
        let range = start..self.json.len();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = range,
            None => self.entries.push((name, range)),
        }
    }

    /// Renders a value with `write` and names it `name`, after the others.
    fn push(&mut self, name: &'static str, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.json.len();
        write(&mut self.json);
        self.entries.push((name, start..self.json.len()));
    }

    /// Appends the entries of `other` (a span's fields).
    fn extend(&mut self, other: &Rendered) {
        let offset = self.json.len();
        self.json.extend_from_slice(&other.json);
        self.entries.extend(
            other
                .entries
                .iter()
                .map(|(name, r)| (*name, r.start + offset..r.end + offset)),
        );
    }

    /// Whether an entry is named `name`.
    fn has(&self, name: &str) -> bool {
        self.entries.iter().any(|(n, _)| *n == name)
    }

    /// The entries to write: the last of each name (inner spans win over outer ones, the
    /// event over its spans).
    fn visible(&self) -> impl Iterator<Item = (&'static str, &[u8])> {
        // Names are compared only where two share a length and a first byte: most lines have
        // no name twice, and a dozen string comparisons per line add up.
        let bit = |name: &str| {
            let first = name.as_bytes().first().copied().unwrap_or(0);
            1u64 << ((name.len() * 31 + usize::from(first)) % 64)
        };
        let (mut seen, mut twice) = (0u64, 0u64);
        for (name, _) in &self.entries {
            let bit = bit(name);
            twice |= seen & bit;
            seen |= bit;
        }
        self.entries
            .iter()
            .enumerate()
            .filter_map(move |(i, (name, range))| {
                let shadowed = twice & bit(name) != 0
                    && self.entries[i + 1..].iter().any(|(later, _)| later == name);
                (!shadowed).then(|| (*name, &self.json[range.clone()]))
            })
    }
}

/// The fields of a span, rendered when they are recorded, kept in its extensions for the
/// events inside it.
struct SpanFields(Rendered);

/// Fields that steer the line rather than land in `Fields`.
#[derive(Default)]
struct Controls {
    r#type: Option<String>,
    critical: bool,
}

/// Records `tracing` values as flat JSON values: numbers and booleans as they are, everything
/// else as a redacted string.
struct Visitor<'a> {
    fields: &'a mut Rendered,
    controls: Option<&'a mut Controls>,
}

/// The name a field has in `Fields`; `None` for the metadata of `log` records.
fn field_name(field: &Field) -> Option<&'static str> {
    match field.name() {
        "message" => Some("msg"),
        name if name.starts_with("log.") => None,
        name => Some(name),
    }
}

impl Visitor<'_> {
    fn put(&mut self, field: &Field, write: impl FnOnce(&mut Vec<u8>)) {
        let Some(name) = field_name(field) else {
            return;
        };
        if self.controls.is_some() {
            // An event's fields are recorded once each; `visible` settles shared names.
            self.fields.push(name, write);
        } else {
            self.fields.put(name, write);
        }
    }

    fn put_text(&mut self, field: &Field, text: &str) {
        if let Some(controls) = self.controls.as_deref_mut() {
            if field.name() == "Type" {
                controls.r#type = Some(text.to_owned());
                return;
            }
        }
        self.put(field, |out| push_redacted_json_str(out, text));
    }

    fn put_integer<T: itoa::Integer>(&mut self, field: &Field, value: T) {
        self.put(field, |out| {
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        });
    }
}

/// `value` printed with `{:?}`; a `Debug` impl that fails or panics leaves what it printed
/// plus a marker, never nothing.
fn debug_text(value: &dyn fmt::Debug) -> String {
    let mut text = String::new();
    match catch_unwind(AssertUnwindSafe(|| write!(text, "{value:?}"))) {
        Ok(Ok(())) => {}
        Ok(Err(fmt::Error)) => text.push_str("<formatting failed>"),
        Err(_) => text.push_str("<formatting panicked>"),
    }
    text
}

/// An error and its causes, `outer: cause: root cause`; a cause the text already shows (many
/// errors print their source) is not repeated.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = debug_text(&DisplayAsDebug(error));
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = debug_text(&DisplayAsDebug(cause));
        if !cause_text.is_empty() && !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Prints a value's `Display` through `Debug`, so [`debug_text`] guards both.
struct DisplayAsDebug<'a>(&'a dyn fmt::Display);

impl fmt::Debug for DisplayAsDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0, f)
    }
}

impl Visit for Visitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            // As serde_json writes it (shortest form that reads back the same).
            self.put(field, |out| {
                let _ = serde_json::to_writer(out, &value);
            });
        } else {
            self.put_text(field, &value.to_string()); // NaN and infinities
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put_integer(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put_integer(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(value) => self.record_i64(field, value),
            Err(_) => self.put_text(field, &value.to_string()),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(value) => self.record_u64(field, value),
            Err(_) => self.put_text(field, &value.to_string()),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if let Some(controls) = self.controls.as_deref_mut() {
            if field.name() == "critical" {
                controls.critical = value;
                return;
            }
        }
        self.put(field, |out| {
            out.extend_from_slice(if value { b"true" } else { b"false" })
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put_text(field, value);
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        match std::str::from_utf8(value) {
            Ok(text) => self.put_text(field, text),
            Err(_) => self.put_text(field, &value.escape_ascii().to_string()),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put_text(field, &error_chain(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put_text(field, &debug_text(value));
    }
}

/// The syslog severity of a `tracing` level.
pub(super) fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// The critical severity, chosen with `critical = true` on an event.
const CRITICAL: u8 = 2;

/// The keys (`"name":`) of the field names met lately, each escaped once instead of on every
/// line: a table of the names' addresses (a field name is a `&'static str`, and the same
/// address always holds the same text).
#[derive(Default)]
struct Keys {
    slots: Vec<Key>,
}

#[derive(Clone, Copy, Default)]
struct Key {
    address: usize,
    len: usize,
    rendered: [u8; 30],
    rendered_len: u8,
}

impl Keys {
    const SLOTS: usize = 128;

    /// Appends `"name":` to `line`.
    fn push(&mut self, line: &mut Vec<u8>, name: &'static str) {
        if self.slots.is_empty() {
            self.slots = vec![Key::default(); Self::SLOTS];
        }
        let address = name.as_ptr() as usize;
        // Fibonacci hashing, then up to four slots in a row: the names of one call site lie
        // side by side in memory, and two of a line's names may want the same slot.
        let hash = (address as u64 ^ name.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let first = (hash >> 57) as usize;
        let mut free = None;
        for i in 0..4 {
            let at = (first + i) % Self::SLOTS;
            let slot = &self.slots[at];
            if slot.rendered_len == 0 {
                free = Some(at);
                break;
            }
            if slot.address == address && slot.len == name.len() {
                line.extend_from_slice(&slot.rendered[..usize::from(slot.rendered_len)]);
                return;
            }
        }
        let start = line.len();
        push_json_str(line, name);
        line.push(b':');
        let rendered = &line[start..];
        let slot = &mut self.slots[free.unwrap_or(first)];
        if let (Ok(rendered_len), Some(room)) = (
            u8::try_from(rendered.len()),
            slot.rendered.get_mut(..rendered.len()),
        ) {
            room.copy_from_slice(rendered);
            slot.rendered_len = rendered_len;
            slot.address = address;
            slot.len = name.len();
        }
    }
}

/// The buffers a thread reuses for its lines.
#[derive(Default)]
pub(super) struct Scratch {
    fields: Rendered,
    pub(super) line: Vec<u8>,
    keys: Keys,
}

impl Scratch {
    /// Above this, a buffer is let go after its line instead of being kept for the next.
    const KEEP: usize = 64 * 1024;

    fn trim(&mut self) {
        if self.line.capacity() > Self::KEEP {
            self.line = Vec::new();
        }
        if self.fields.json.capacity() > Self::KEEP {
            self.fields.json = Vec::new();
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's buffers, or with new ones when they are in use (an event
/// logged while a line is made, from a `Debug` impl) or gone (a thread being torn down).
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut f = Some(f);
    let done = SCRATCH.try_with(|cell| {
        cell.try_borrow_mut().ok().map(|mut scratch| {
            let f = f.take().expect("called once");
            let result = f(&mut scratch);
            scratch.trim();
            result
        })
    });
    match done {
        Ok(Some(result)) => result,
        _ => (f.take().expect("not called yet"))(&mut Scratch::default()),
    }
}

impl<S, W> Layer<S> for MozLogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Rendered::default();
        attrs.record(&mut Visitor {
            fields: &mut fields,
            controls: None,
        });
        span.extensions_mut().replace(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            values.record(&mut Visitor {
                fields,
                controls: None,
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let timestamp = now_ns();
        with_scratch(|scratch| {
            let Scratch { fields, line, keys } = scratch;
            fields.clear();
            line.clear();
            // Outer spans first, so inner spans and then the event itself win on a shared name.
            if let Some(scope) = ctx.event_scope(event) {
                for span in scope.from_root() {
                    if let Some(SpanFields(span_fields)) = span.extensions().get::<SpanFields>() {
                        fields.extend(span_fields);
                    }
                }
            }
            let mut controls = Controls::default();
            event.record(&mut Visitor {
                fields,
                controls: Some(&mut controls),
            });
            // The request being handled, unless a span or the event names its own.
            context::with_current(|request| {
                let Some(request) = request else { return };
                if !fields.has("rid") {
                    fields.push("rid", |out| {
                        push_rid(out, request.rid().as_bytes(), request.rid().is_new());
                    });
                }
                if let Some(uid) = request.uid().filter(|_| !fields.has("uid")) {
                    fields.push("uid", |out| push_redacted_json_str(out, &uid));
                }
            });

            // A record of the `log` crate, bridged by `tracing-log`, has its own target and level.
            let normalized = event.normalized_metadata();
            let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
            let r#type = controls
                .r#type
                .as_deref()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| metadata.target());
            let r#type = match redacted(r#type) {
                t if t.is_empty() => "unknown".into(),
                t => t,
            };
            let severity = if controls.critical {
                CRITICAL
            } else {
                severity(*metadata.level())
            };
            match self.format {
                Format::Json => {
                    self.json_line(line, keys, timestamp, &r#type, severity, fields);
                }
                Format::Text => {
                    text_line(line, timestamp, &r#type, severity, metadata.level(), fields)
                }
            }
            let mut writer = self.make_writer.make_writer_for(metadata);
            // One call for the whole line; a log line that cannot be written has nowhere to go.
            let _ = writer.write_all(line);
            let _ = writer.flush();
        });
    }
}

impl<W> MozLogLayer<W> {
    /// One mozlog line, in the order of the spec, with its newline.
    fn json_line(
        &self,
        line: &mut Vec<u8>,
        keys: &mut Keys,
        timestamp: u64,
        r#type: &str,
        severity: u8,
        fields: &Rendered,
    ) {
        start_line(line, &self.middle, timestamp, r#type, severity);
        for (i, (name, value)) in fields.visible().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            keys.push(line, name);
            line.extend_from_slice(value);
        }
        line.extend_from_slice(b"}}\n");
    }
}

/// Nanoseconds since the epoch, as `Timestamp` has them.
pub(super) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            // In `u64` arithmetic: `as_nanos` multiplies in `u128`, and a summary line reads
            // this clock twice.
            since
                .as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(since.subsec_nanos()))
        })
}

/// What the parts of a mozlog line before `Fields` hold, after `Type`, for each severity:
/// `,"Logger":…,"Hostname":…,"EnvVersion":"2.0","Severity":<n>,"Pid":…,"Fields":{`.
pub(super) type Middle = [Vec<u8>; 8];

/// A mozlog line up to the opening brace of `Fields`.
pub(super) fn start_line(
    line: &mut Vec<u8>,
    middle: &Middle,
    timestamp: u64,
    r#type: &str,
    severity: u8,
) {
    push_timestamp(line, timestamp);
    push_head(line, middle, r#type, severity);
}

/// The start of a mozlog line, up to its `Timestamp`'s value included.
pub(super) fn push_timestamp(line: &mut Vec<u8>, timestamp: u64) {
    line.extend_from_slice(b"{\"Timestamp\":");
    line.extend_from_slice(itoa::Buffer::new().format(timestamp).as_bytes());
}

/// What follows the timestamp, up to the opening brace of `Fields`: the `Type`, then `middle`.
pub(super) fn push_head(line: &mut Vec<u8>, middle: &Middle, r#type: &str, severity: u8) {
    line.extend_from_slice(b",\"Type\":");
    push_json_str(line, r#type);
    line.extend_from_slice(&middle[usize::from(severity) % middle.len()]);
}

/// One readable line: `2026-11-22T04:00:00.123Z INFO type: message name=value …`, with its
/// newline. Values are the JSON of the mozlog line (strings quoted and escaped), the message
/// without its quotes.
fn text_line(
    line: &mut Vec<u8>,
    timestamp: u64,
    r#type: &str,
    severity: u8,
    level: &Level,
    fields: &Rendered,
) {
    push_utc(line, timestamp);
    line.push(b' ');
    line.extend_from_slice(
        if severity == CRITICAL {
            "CRITICAL"
        } else {
            level.as_str()
        }
        .as_bytes(),
    );
    line.push(b' ');
    // The type as the JSON string's content: escaped, so it cannot break the line.
    let start = line.len();
    push_json_str(line, r#type);
    line.remove(start);
    line.pop();
    line.push(b':');
    let visible = || fields.visible();
    if let Some((_, msg)) = visible().find(|(name, _)| *name == "msg") {
        line.push(b' ');
        match msg {
            [b'"', inner @ .., b'"'] => line.extend_from_slice(inner),
            other => line.extend_from_slice(other),
        }
    }
    for (name, value) in visible().filter(|(name, _)| *name != "msg") {
        line.push(b' ');
        let start = line.len();
        push_json_str(line, name);
        line.remove(start);
        line.pop();
        line.push(b'=');
        line.extend_from_slice(value);
    }
    line.push(b'\n');
}

/// `timestamp` (ns since the epoch) as `2026-11-22T04:00:00.123Z`.
fn push_utc(line: &mut Vec<u8>, timestamp: u64) {
    let secs = timestamp / 1_000_000_000;
    let millis = (timestamp % 1_000_000_000) / 1_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        line,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
}

/// The date of a day counted from 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot load config")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open /etc/app.toml")]
    struct Inner(#[source] io::Error);

    proptest::proptest! {
        /// The one-pass shortcut writes what redacting, then escaping, writes: the same bytes
        /// for any text, and for texts built from the bytes both steps look for.
        #[test]
        fn redacted_json_strings_match_the_two_steps(
            text in "(\\PC|[\":=\\\\\\x00-\\x1f@/]|password|://u:p@h){0,40}"
        ) {
            let mut fused = Vec::new();
            push_redacted_json_str(&mut fused, &text);
            let mut steps = Vec::new();
            push_json_str(&mut steps, &redacted(&text));
            proptest::prop_assert_eq!(fused, steps);
        }
    }

    #[test]
    fn redacted_json_strings_mask_what_redaction_masks() {
        let mut out = Vec::new();
        push_redacted_json_str(&mut out, "postgres://app:hunter2@db/app");
        assert_eq!(out, br#""postgres://app:***@db/app""#);
        out.clear();
        push_redacted_json_str(&mut out, "/__lbheartbeat__");
        assert_eq!(out, br#""/__lbheartbeat__""#);
        out.clear();
        push_redacted_json_str(&mut out, "a\"b");
        assert_eq!(out, br#""a\"b""#);
    }

    #[test]
    fn a_new_request_id_is_searched_for_secrets_once_one_could_be_inside_it() {
        // An id from a header is searched like any text.
        crate::redact::add_secret("tok-rid-s3cret");
        let mut out = Vec::new();
        push_rid(&mut out, b"tok-rid-s3cret", false);
        assert_eq!(out, br#""***""#);
        // One made of hex digits and hyphens can turn up in a random id: masked there too.
        crate::redact::add_secret("89ab-4cde-8f01");
        out.clear();
        push_rid(&mut out, b"01234567-89ab-4cde-8f01-23456789abcd", true);
        assert_eq!(out, br#""01234567-***-23456789abcd""#);
    }

    #[test]
    fn error_chains_name_every_cause_once() {
        let error = Outer(Inner(io::Error::new(
            io::ErrorKind::NotFound,
            "no such file",
        )));
        assert_eq!(
            error_chain(&error),
            "cannot load config: cannot open /etc/app.toml: no such file"
        );

        #[derive(Debug, thiserror::Error)]
        #[error("wrapped: {0}")]
        struct Shows(#[source] io::Error);
        let error = Shows(io::Error::other("root"));
        assert_eq!(error_chain(&error), "wrapped: root");
    }

    struct Broken;
    impl fmt::Debug for Broken {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("half")?;
            Err(fmt::Error)
        }
    }

    #[test]
    fn values_that_fail_to_print_leave_a_marker() {
        assert_eq!(debug_text(&Broken), "half<formatting failed>");
        assert_eq!(debug_text(&"é\u{1}"), "\"é\\u{1}\"");
    }

    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        let long = "a plain run of text, then \u{1}, a quote \" and a backslash \\ after it";
        for text in [
            "",
            "plain",
            "q\"b\\s/",
            "\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}",
            "é€𝄞\u{2028}",
            long,
        ] {
            let mut ours = Vec::new();
            push_json_str(&mut ours, text);
            assert_eq!(ours, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn every_character_is_escaped_in_every_lane_of_a_word() {
        let specials = (0..=0x7f_u8)
            .map(char::from)
            .chain(['é', '€', '𝄞', '\u{80}', '\u{ff}']);
        for special in specials {
            for len in [1, 7, 8, 9, 16, 17] {
                for at in 0..len {
                    let text: String = (0..len)
                        .map(|i| if i == at { special } else { 'a' })
                        .collect();
                    let mut ours = Vec::new();
                    push_json_str(&mut ours, &text);
                    assert_eq!(ours, serde_json::to_vec(&text).unwrap(), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn keys_read_the_same_from_the_table_as_escaped_anew() {
        let mut names: Vec<&'static str> = (0..1000)
            .map(|i| &*Box::leak(format!("field_{i}").into_boxed_str()))
            .collect();
        names.extend([
            "a",
            "q\"uote",
            "a name far longer than thirty bytes, kept out",
            "é",
        ]);
        let mut keys = Keys::default();
        for round in 0..3 {
            for name in &names {
                let mut line = b"{".to_vec();
                keys.push(&mut line, name);
                let mut expected = b"{".to_vec();
                push_json_str(&mut expected, name);
                expected.push(b':');
                assert_eq!(line, expected, "{name:?} in round {round}");
            }
        }
    }

    #[test]
    fn severities_follow_syslog() {
        assert_eq!(severity(Level::ERROR), 3);
        assert_eq!(severity(Level::WARN), 4);
        assert_eq!(severity(Level::INFO), 6);
        assert_eq!(severity(Level::DEBUG), 7);
        assert_eq!(severity(Level::TRACE), 7);
    }
}
