//! [`MozLogLayer`]: a `tracing-subscriber` layer that writes every event as one mozlog JSON
//! line.

use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Number, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::redact::redact;

/// The writer [`MozLogLayer::new`] uses: stdout, locked for the whole line.
pub type StdoutWriter = fn() -> io::StdoutLock<'static>;

fn stdout_lock() -> io::StdoutLock<'static> {
    io::stdout().lock()
}

/// A [`Layer`] that writes each `tracing` event as one mozlog line.
///
/// The line is a JSON object with `Timestamp`, `Type`, `Logger`, `Hostname`, `EnvVersion`,
/// `Severity`, `Pid` and `Fields`; see the [module docs](crate::logging) for what goes where.
/// [`init`](crate::logging::init) installs it with an `INFO` filter; compose it yourself for
/// anything else:
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
/// Each line is written with one `write_all` call on a writer made for that line (stdout
/// locked for the line by default), so lines from different threads never interleave.
pub struct MozLogLayer<W = StdoutWriter> {
    logger: String,
    hostname: String,
    pid: u32,
    make_writer: W,
}

impl MozLogLayer {
    /// A layer whose lines carry `logger` (the app's name) as `Logger` and go to stdout.
    pub fn new(logger: impl Into<String>) -> Self {
        MozLogLayer {
            logger: logger.into(),
            hostname: hostname(),
            pid: std::process::id(),
            make_writer: stdout_lock,
        }
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
            make_writer,
        }
    }

    /// Sets `Hostname` instead of the machine's host name.
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = hostname.into();
        self
    }
}

impl<W> fmt::Debug for MozLogLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MozLogLayer")
            .field("logger", &self.logger)
            .field("hostname", &self.hostname)
            .field("pid", &self.pid)
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

/// The fields of a span, kept in its extensions for the events inside it.
struct SpanFields(Map<String, Value>);

/// Fields that steer the line rather than land in `Fields`.
#[derive(Default)]
struct Controls {
    r#type: Option<String>,
    critical: bool,
}

/// Records `tracing` values as flat JSON values: numbers and booleans as they are, everything
/// else as a redacted string.
struct Visitor<'a> {
    fields: &'a mut Map<String, Value>,
    controls: Option<&'a mut Controls>,
}

impl Visitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let name = match field.name() {
            "message" => "msg",
            name if name.starts_with("log.") => return, // metadata of `log` records
            name => name,
        };
        if let Some(controls) = self.controls.as_deref_mut() {
            match (name, &value) {
                ("Type", Value::String(text)) => {
                    controls.r#type = Some(text.clone());
                    return;
                }
                ("critical", Value::Bool(critical)) => {
                    controls.critical = *critical;
                    return;
                }
                _ => {}
            }
        }
        self.fields.insert(name.to_owned(), value);
    }

    fn put_text(&mut self, field: &Field, text: &str) {
        self.put(field, Value::String(redact(text)));
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
        match Number::from_f64(value) {
            Some(number) => self.put(field, Value::Number(number)),
            None => self.put(field, Value::String(value.to_string())), // NaN and infinities
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::Number(value.into()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::Number(value.into()));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(value) => self.record_i64(field, value),
            Err(_) => self.put(field, Value::String(value.to_string())),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(value) => self.record_u64(field, value),
            Err(_) => self.put(field, Value::String(value.to_string())),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
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

/// One mozlog line, in the order of the spec.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "Timestamp")]
    timestamp: u64,
    #[serde(rename = "Type")]
    r#type: &'a str,
    #[serde(rename = "Logger")]
    logger: &'a str,
    #[serde(rename = "Hostname")]
    hostname: &'a str,
    #[serde(rename = "EnvVersion")]
    env_version: &'static str,
    #[serde(rename = "Severity")]
    severity: u8,
    #[serde(rename = "Pid")]
    pid: u32,
    #[serde(rename = "Fields")]
    fields: &'a Map<String, Value>,
}

/// The syslog severity of a `tracing` level.
fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// The critical severity, chosen with `critical = true` on an event.
const CRITICAL: u8 = 2;

impl<S, W> Layer<S> for MozLogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Map::new();
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
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
            });

        // Outer spans first, so inner spans and then the event itself win on a shared name.
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(span_fields)) = span.extensions().get::<SpanFields>() {
                    fields.extend(span_fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut controls = Controls::default();
        event.record(&mut Visitor {
            fields: &mut fields,
            controls: Some(&mut controls),
        });

        // A record of the `log` crate, bridged by `tracing-log`, has its own target and level.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let r#type = match &controls.r#type {
            Some(r#type) => redact(r#type),
            None => redact(metadata.target()),
        };
        let line = Line {
            timestamp,
            r#type: &r#type,
            logger: &self.logger,
            hostname: &self.hostname,
            env_version: "2.0",
            severity: if controls.critical {
                CRITICAL
            } else {
                severity(*metadata.level())
            },
            pid: self.pid,
            fields: &fields,
        };
        let mut bytes = match serde_json::to_vec(&line) {
            Ok(bytes) => bytes,
            Err(_) => return, // a map of strings, numbers and booleans always serializes
        };
        bytes.push(b'\n');
        let mut writer = self.make_writer.make_writer_for(metadata);
        // One call for the whole line; a log line that cannot be written has nowhere to go.
        let _ = writer.write_all(&bytes);
        let _ = writer.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot load config")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open /etc/app.toml")]
    struct Inner(#[source] io::Error);

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
    fn severities_follow_syslog() {
        assert_eq!(severity(Level::ERROR), 3);
        assert_eq!(severity(Level::WARN), 4);
        assert_eq!(severity(Level::INFO), 6);
        assert_eq!(severity(Level::DEBUG), 7);
        assert_eq!(severity(Level::TRACE), 7);
    }
}
