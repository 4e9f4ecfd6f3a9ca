//! Logs in the [mozlog](https://github.com/mozilla-services/Dockerflow/blob/main/docs/mozlog.md)
//! format: one JSON object a line on stdout, a `request.summary` line per request, and request
//! ids on every line.
//!
//! Everything goes through [`tracing`](https://docs.rs/tracing): the events of your code and of
//! your dependencies come out as mozlog, with no logging API of dockerflow's own to learn.
//!
//! # One call in `main`
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use dockerflow::Dockerflow;
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     dockerflow::logging::init("my-app")?;
//!     let dockerflow = Dockerflow::from_env()?;
//!     HttpServer::new(move || {
//!         let dockerflow = dockerflow.clone();
//!         App::new()
//!             .configure(|cfg| dockerflow.configure(cfg))
//!             .wrap(dockerflow.request_summary())
//!     })
//!     .bind(("127.0.0.1", 8000))?
//!     .run()
//!     .await?;
//!     Ok(())
//! }
//! ```
//!
//! [`init`] installs a global `tracing` subscriber that writes the events `RUST_LOG` lets
//! through (`INFO` and above by default) as mozlog lines on stdout, with `my-app` as `Logger`
//! (records of the `log` crate included). The
//! [`request_summary`](crate::Dockerflow::request_summary) middleware ([`RequestSummary`])
//! gives each request its id and its `request.summary` line.
//!
//! # Operator control
//!
//! | variable | what it does | default |
//! |---|---|---|
//! | `RUST_LOG` | which events are written, in `tracing-subscriber`'s [`EnvFilter`] syntax: `warn`, `info,my_app=debug`, `info,request.summary=off` | `info` |
//! | `DOCKERFLOW_LOG_FORMAT` | `json` (mozlog) or `text`: one readable line per event, for a terminal ([`Format`]) | `json` |
//! | `DOCKERFLOW_LOG_PROBES` | `false` drops the `request.summary` lines of the Dockerflow endpoints ([`ENDPOINT_PATHS`](crate::ENDPOINT_PATHS)); other routes keep theirs | `true` |
//!
//! An empty value counts as unset; a value that cannot be used stops start-up with a message
//! that names the variable and the accepted values ([`InitError::InvalidSetting`] from
//! [`init`], [`StartupError`] from [`Dockerflow::from_env`](crate::Dockerflow::from_env)).
//! [`Setup`] and [`Builder::log_probes`](crate::Builder::log_probes) are the same knobs in
//! code, which win over the environment.
//!
//! # Cost
//!
//! Logging is on the path of every request, so it is kept short: a value is redacted and
//! rendered as JSON once, when it is recorded; a text that holds no `:`, no `=` and no
//! configured secret is not copied to be redacted; the line is assembled in a buffer the
//! thread reuses; field names are escaped once per name; request ids come from a thread-local
//! ChaCha generator seeded from the operating system. The request a line belongs to is a
//! thread-local, not a `tracing` span. `BENCHMARKS.md` has the figures.
//!
//! When nothing but the mozlog lines would see it ([`init`] with JSON lines, a `RUST_LOG` of
//! targets and levels only, and no layer of yours that takes events), the middleware writes
//! its `request.summary` line straight, the same bytes the layer would write for the event,
//! after asking the filter: that skips `tracing`'s dispatch and a dynamic call per field, more
//! than half of what a summary line cost. With a layer of yours ([`init_with`]), a span
//! directive in `RUST_LOG`, `DOCKERFLOW_LOG_FORMAT=text` or a subscriber you compose, the
//! summary is a `tracing` event as any other.
//!
//! A line logged while a request is handled is copied into a buffer of the worker's own, and a
//! thread of its own (`dockerflow-log`) writes the lines waiting, many to a `write` system call,
//! at most [`FLUSH_INTERVAL`] (5 ms) after the first of them ([`BatchWriter`]): under load a
//! request pays for a copy, not for a system call or a lock the workers share. Every other line
//! (start-up, shutdown, background threads) is written at once, after the lines waiting, so a
//! thread's lines never overtake each other; across workers, a batch holds one worker's lines,
//! then the next one's.
//! Each line is written whole, none is dropped (a blocked stdout holds requests back, as a
//! blocking write would), and the lines waiting are written when the server stops,
//! when [`Dockerflow::serve`](crate::Dockerflow::serve) returns and when the thread that called
//! [`init`] ends; a process killed with `SIGKILL` under load loses its last 5 ms of request lines.
//!
//! # What a line holds
//!
//! ```text
//! {"Timestamp":1763784000123456789,"Type":"my_app::orders","Logger":"my-app","Hostname":"web-1",
//!  "EnvVersion":"2.0","Severity":4,"Pid":7,"Fields":{"msg":"order is late","order":42,"rid":"3f2c…"}}
//! ```
//!
//! (one line in real output), from `tracing::warn!(order = 42, "order is late")` in the module
//! `my_app::orders` while a request was handled:
//!
//! - `Timestamp`: nanoseconds since the epoch. `Type`: the event's target (its module path
//!   unless the event sets `target: "..."`), or a `Type` field of the event. `Severity`: syslog,
//!   from the level: `ERROR` 3, `WARN` 4, `INFO` 6, `DEBUG` and `TRACE` 7; an event with
//!   `critical = true` is 2.
//! - `Fields`: the event's fields, its message as `msg`, and the fields of the spans it was
//!   emitted in (the event's own win on a shared name). Numbers and booleans stay numbers and
//!   booleans; everything else becomes a string, so `Fields` is never deeper than one level
//!   (`?value` logs its `Debug` text, `%value` its `Display` text).
//! - An error logged as an error value (`error = &err as &dyn std::error::Error`) is written
//!   with its chain of causes, `outer: cause: root cause`.
//! - A value whose `Debug` or `Display` fails or panics is written as far as it got, with a
//!   `<formatting failed>` or `<formatting panicked>` marker; control characters are escaped by
//!   JSON. Nothing is silently dropped.
//! - Every string passes [`redact`](crate::redact::redact): URL passwords, `password=…` pairs and
//!   the secrets given to [`Builder::redact`](crate::Builder::redact) never reach a line. The
//!   summary's `path`, `querystring` and `error` are redacted by the middleware itself, so they
//!   reach no subscriber raw.
//! - `Type` is never empty: an empty `Type` field gives way to the target, an empty target
//!   to `unknown`.
//!
//! ```
//! use std::io;
//!
//! # use dockerflow::logging::MozLogLayer;
//! # use tracing_subscriber::layer::SubscriberExt;
//! # let subscriber = tracing_subscriber::registry().with(MozLogLayer::new("my-app"));
//! # tracing::subscriber::with_default(subscriber, || {
//! let err = io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
//! tracing::error!(
//!     target: "db",
//!     error = &err as &dyn std::error::Error,
//!     url = "postgres://app:hunter2@db/app",
//!     "cannot reach the database",
//! );
//! // {"Timestamp":…,"Type":"db",…,"Severity":3,…,"Fields":{"error":"connection refused",
//! //  "msg":"cannot reach the database","url":"postgres://app:***@db/app"}}
//! tracing::error!(critical = true, "the disk is full"); // Severity 2
//! # });
//! ```
//!
//! # Requests: summaries and ids
//!
//! With [`RequestSummary`] on the app, each request gets:
//!
//! - a request id: the value of the request id header (`X-Request-Id`, or
//!   `DOCKERFLOW_REQUEST_ID_HEADER`) when it is 1 to 128 characters of printable ASCII, else a
//!   new UUID v4. The response carries it back in the same header; handlers read it with the
//!   [`RequestId`] extractor;
//! - its `rid` (and `uid`, once [`set_uid`] gives one) on every line logged while it is handled,
//!   by your code or a library: the request is current on its worker while its future is
//!   polled. A task a handler spawns is not polled as part of the request; wrap it with
//!   [`in_current_request`] to take the request along (as `.in_current_span()` does for
//!   `tracing`'s spans). This costs a few instructions per poll, where a `tracing` span per
//!   request cost about 3,500 (`BENCHMARKS.md`). A layer of your own sees no request span: a
//!   middleware of yours (such as `tracing-actix-web`'s) gives it one if it needs one;
//! - one `request.summary` line: `agent` (User-Agent), `lang` (Accept-Language), `method`,
//!   `path`, `code` (the status), `errno` (0, or the status when it is 500 or above), `t`
//!   (milliseconds), `rid`, `uid` (see [`set_uid`]) and `querystring` (only when
//!   [`Builder::log_querystring`](crate::Builder::log_querystring) is on: query strings can hold
//!   personal data).
//!
//! ```
//! use actix_web::{web, App, HttpRequest};
//! use dockerflow::logging::{self, RequestId};
//!
//! async fn order(req: HttpRequest, rid: RequestId) -> String {
//!     logging::set_uid(&req, "user-42"); // `uid` in the summary and the lines that follow
//!     tracing::info!("looking up the order"); // carries Fields.rid and Fields.uid
//!     format!("request {rid}")
//! }
//!
//! # fn main() -> Result<(), dockerflow::StartupError> {
//! let dockerflow = dockerflow::Dockerflow::from_env()?;
//! let app = App::new()
//!     .route("/order", web::get().to(order))
//!     .configure(|cfg| dockerflow.configure(cfg))
//!     .wrap(dockerflow.request_summary()); // last `.wrap`: the outermost middleware
//! # Ok(()) }
//! ```
//!
//! # Composing your own subscriber
//!
//! [`MozLogLayer`] is a `tracing-subscriber` layer: add filters or other layers beside it, or
//! write elsewhere than stdout with [`MozLogLayer::with_writer`] (or [`Setup::writer`], which
//! keeps the environment's filter and format).
//!
//! ```
//! use dockerflow::logging::MozLogLayer;
//! use tracing_subscriber::filter::LevelFilter;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let subscriber = tracing_subscriber::registry()
//!     .with(MozLogLayer::new("my-app").with_writer(std::io::stderr))
//!     .with(LevelFilter::DEBUG);
//! tracing::subscriber::set_global_default(subscriber).expect("no other subscriber is set");
//! ```

mod context;
mod direct;
mod mozlog;
mod request_id;
mod summary;
mod writer;

pub use self::context::in_current_request;
pub use self::mozlog::{Format, MozLogLayer, ParseFormatError};
pub use self::request_id::{RequestId, MAX_LEN as MAX_REQUEST_ID_LEN};
pub use self::summary::{set_uid, RequestSummary, RequestSummaryFuture, RequestSummaryMiddleware};
use self::writer::flush_when_this_thread_ends;
pub use self::writer::{flush, BatchWriter, LineHandle, FLUSH_INTERVAL};

use std::any::{Any, TypeId};
use std::fmt;

use tracing_log::AsLog as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Identity, Layer, SubscriberExt};
use tracing_subscriber::{EnvFilter, Registry};

use crate::config::{env, Vars};
use crate::StartupError;

/// What a panic said, for a log line: its `&str` or `String` payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic with a payload that is not text")
}

/// Why [`init`] could not install the mozlog subscriber.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// Another global `tracing` subscriber was installed first (by an earlier `init`, or by
    /// another logging set-up).
    #[error("cannot install the mozlog subscriber: a global tracing subscriber is already set")]
    AlreadySet(#[source] tracing::subscriber::SetGlobalDefaultError),
    /// `RUST_LOG` or `DOCKERFLOW_LOG_FORMAT` (or the same knob in code) cannot be used; the
    /// message names the variable and the accepted values.
    #[error(transparent)]
    InvalidSetting(#[from] StartupError),
}

/// The directives used when `RUST_LOG` is unset or empty.
const DEFAULT_FILTER: &str = "info";

/// Makes every `tracing` event that `RUST_LOG` lets through (default: `INFO` and above) a
/// mozlog line on stdout, with `logger` (the app's name) as `Logger`; or a readable line
/// with `DOCKERFLOW_LOG_FORMAT=text`.
///
/// Records of the [`log`](https://docs.rs/log) crate, which some dependencies use (r2d2, parts
/// of actix), become mozlog lines too, with their target as `Type`, unless another `log`
/// logger was set first.
///
/// Call it once, first thing in `main`. It returns an error, rather than panicking, when a
/// global subscriber is already set, or when `RUST_LOG` or `DOCKERFLOW_LOG_FORMAT` cannot be
/// used (the message names the variable and what it accepts; an empty value counts as unset):
///
/// ```
/// dockerflow::logging::init("my-app")?;
/// tracing::info!(answer = 42, "ready");
/// assert!(dockerflow::logging::init("my-app").is_err());
/// # Ok::<(), dockerflow::logging::InitError>(())
/// ```
///
/// [`Setup`] has the same knobs in code; for another writer or more layers, compose
/// [`MozLogLayer`] yourself.
pub fn init(logger: impl Into<String>) -> Result<(), InitError> {
    Setup::new(logger).init()
}

/// [`init`], with one more layer beside the mozlog lines: an error reporter's, such as
/// sentry-tracing's `ErrorLayer`. It sees the events that pass the same filter; an `Option` of a
/// layer is a layer, so a reporter that is only sometimes configured fits too.
///
/// ```
/// use tracing_subscriber::layer::Identity;
///
/// dockerflow::logging::init_with("my-app", Identity::new())?;
/// # Ok::<(), dockerflow::logging::InitError>(())
/// ```
pub fn init_with<L>(logger: impl Into<String>, layer: L) -> Result<(), InitError>
where
    L: Layer<Registry> + Send + Sync + 'static,
{
    Setup::new(logger).layer(layer).init()
}

/// What [`init`] installs, with each setting in code as well (code wins over the
/// environment).
///
/// ```
/// use dockerflow::logging::{Format, Setup};
///
/// Setup::new("my-app")
///     .format(Format::Text) // instead of DOCKERFLOW_LOG_FORMAT
///     .filter("my_app=debug,info") // instead of RUST_LOG
///     .init()?;
/// # Ok::<(), dockerflow::logging::InitError>(())
/// ```
#[must_use = "call .init() to install the subscriber"]
pub struct Setup<W = BatchWriter, L = Identity> {
    logger: String,
    format: Option<Format>,
    filter: Option<String>,
    environment: Vars,
    make_writer: W,
    layer: L,
}

impl Setup {
    /// The set-up of [`init`]: lines on stdout with `logger` as `Logger`, the format and the
    /// filter from the environment.
    pub fn new(logger: impl Into<String>) -> Self {
        Setup {
            logger: logger.into(),
            format: None,
            filter: None,
            environment: Vars::default(),
            make_writer: BatchWriter::stdout(),
            layer: Identity::new(),
        }
    }
}

impl<W, L> Setup<W, L> {
    /// How events are written; `DOCKERFLOW_LOG_FORMAT` otherwise (default [`Format::Json`]).
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// Which events are written, in `tracing-subscriber`'s
    /// [`EnvFilter`](https://docs.rs/tracing-subscriber/latest/tracing_subscriber/filter/struct.EnvFilter.html)
    /// syntax (`info`, `my_app=debug,info`, …); `RUST_LOG` otherwise (default `info`).
    pub fn filter(mut self, directives: impl Into<String>) -> Self {
        self.filter = Some(directives.into());
        self
    }

    /// Reads `RUST_LOG` and `DOCKERFLOW_LOG_FORMAT` from these variables instead of the
    /// process environment.
    pub fn environment<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.environment = Vars::given(vars);
        self
    }

    /// Writes the lines to `make_writer` instead of stdout (each line is one `write_all`
    /// call on a writer made for it). [`BatchWriter::new`] writes them the way stdout is
    /// written by default: the lines of requests in batches, from a thread of its own.
    pub fn writer<W2>(self, make_writer: W2) -> Setup<W2, L>
    where
        W2: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    {
        Setup {
            logger: self.logger,
            format: self.format,
            filter: self.filter,
            environment: self.environment,
            make_writer,
            layer: self.layer,
        }
    }

    /// One more layer beside the mozlog lines, as [`init_with`] adds (an error reporter's);
    /// it sees the events that pass the same filter.
    pub fn layer<L2>(self, layer: L2) -> Setup<W, L2>
    where
        L2: Layer<Registry> + Send + Sync + 'static,
    {
        Setup {
            logger: self.logger,
            format: self.format,
            filter: self.filter,
            environment: self.environment,
            make_writer: self.make_writer,
            layer,
        }
    }

    /// The format and the filter, from code or the environment, checked.
    fn settings(&self) -> Result<(Format, Filter), StartupError> {
        let invalid = |setting: &str, value: &str, expected: String| StartupError::InvalidSetting {
            setting: setting.to_owned(),
            value: value.chars().take(80).collect(),
            expected,
        };
        let format = match self.format {
            Some(format) => format,
            None => match self.environment.get(env::LOG_FORMAT) {
                Some(text) => text
                    .parse()
                    .map_err(|_| invalid(env::LOG_FORMAT, &text, Format::ACCEPTED.to_owned()))?,
                None => Format::Json,
            },
        };
        let (setting, directives) = match &self.filter {
            Some(directives) => ("Setup::filter", directives.clone()),
            None => (
                env::RUST_LOG,
                self.environment
                    .get(env::RUST_LOG)
                    .unwrap_or_else(|| DEFAULT_FILTER.to_owned()),
            ),
        };
        let env_filter = EnvFilter::builder().parse(&directives).map_err(|err| {
            invalid(
                setting,
                &directives,
                format!(
                    "comma-separated tracing-subscriber EnvFilter directives such as info or my_app=debug,info ({err})"
                ),
            )
        })?;
        // Directives on targets and levels only (no `[span{field}]`) need no per-span work:
        // `Targets` decides once per call site what `EnvFilter` would decide on every span
        // entered and exited, the same way.
        let filter = match directives.contains('[') {
            false => directives.parse::<Targets>().ok().map(Filter::Targets),
            true => None,
        }
        .unwrap_or_else(|| Filter::Env(Box::new(env_filter)));
        Ok((format, filter))
    }

    /// Installs the subscriber as the global default, and the bridge for records of the
    /// `log` crate.
    pub fn init(self) -> Result<(), InitError>
    where
        W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
        L: Layer<Registry> + Send + Sync + 'static,
    {
        let (format, filter) = self.settings()?;
        // One of the two, the other `None` (a layer that does nothing).
        let (max_level, targets, env_filter) = match filter {
            Filter::Targets(targets) => (
                targets
                    .iter()
                    .map(|(_, level)| level)
                    .chain(targets.default_level())
                    .max(),
                Some(targets),
                None,
            ),
            Filter::Env(env) => (EnvFilter::max_level_hint(&env), None, Some(env)),
        };
        // The summary lines can skip the event when nothing but these lines would see it
        // (`direct.rs`): JSON, a filter on targets and levels, and no layer of the app's, or
        // one that takes no event (`None` of an `Option`, a reporter not configured).
        let alone = TypeId::of::<L>() == TypeId::of::<Identity>()
            || self.layer.max_level_hint() == Some(LevelFilter::OFF);
        let direct = (format == Format::Json && targets.is_some() && alone)
            .then(|| {
                (&self.make_writer as &dyn Any)
                    .downcast_ref::<BatchWriter>()
                    .cloned()
            })
            .flatten();
        let layer = MozLogLayer::new(self.logger)
            .with_format(format)
            .with_writer(self.make_writer);
        let middle = layer.middle().clone();
        let subscriber = tracing_subscriber::registry()
            .with(self.layer)
            .with(targets)
            .with(env_filter)
            .with(layer);
        let is_ours = is_subscriber(&subscriber);
        tracing::subscriber::set_global_default(subscriber).map_err(InitError::AlreadySet)?;
        if let Some(writer) = direct {
            direct::enable(middle, writer, is_ours);
        }
        flush_when_this_thread_ends();
        let mut bridge = tracing_log::LogTracer::builder();
        if let Some(level) = max_level {
            bridge = bridge.with_max_level(level.as_log());
        }
        if bridge.init().is_err() {
            tracing::warn!(
                target: "dockerflow::logging",
                "another `log` logger is set: records of the `log` crate do not reach the mozlog lines"
            );
        }
        Ok(())
    }
}

/// A test of whether a dispatcher is a `S`.
fn is_subscriber<S: tracing::Subscriber>(_: &S) -> fn(&tracing::Dispatch) -> bool {
    |dispatch| dispatch.is::<S>()
}

/// What `RUST_LOG` (or [`Setup::filter`]) asks for.
enum Filter {
    Targets(Targets),
    Env(Box<EnvFilter>),
}

impl<W, L> fmt::Debug for Setup<W, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setup")
            .field("logger", &self.logger)
            .field("format", &self.format)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn settings(name: &str, value: &str) -> Result<(Format, Filter), StartupError> {
        Setup::new("app").environment([(name, value)]).settings()
    }

    proptest! {
        /// Whatever an operator types, `DOCKERFLOW_LOG_FORMAT` is `json`, `text` or blank
        /// (unset), or start-up stops with a message that names the variable and both values.
        #[test]
        fn any_log_format_is_taken_or_refused_by_name(value in "\\PC{0,24}|(?i) *(json|text) *") {
            let wanted = value.trim().to_ascii_lowercase();
            match settings(env::LOG_FORMAT, &value) {
                Ok((format, _)) => prop_assert!(
                    (wanted.is_empty() || wanted == "json") && format == Format::Json
                        || wanted == "text" && format == Format::Text,
                    "{value:?} gave {format:?}"
                ),
                Err(err) => {
                    prop_assert!(!matches!(wanted.as_str(), "" | "json" | "text"), "{value:?}: {err}");
                    let text = err.to_string();
                    prop_assert!(text.contains(env::LOG_FORMAT) && text.contains("json or text"), "{text}");
                }
            }
        }

        /// `RUST_LOG` is filter directives, or start-up stops with a message that names it;
        /// parsing never panics.
        #[test]
        fn any_rust_log_is_taken_or_refused_by_name(value in "[a-z_:=,.\\[\\]{}\"0-9 A-Z-]{0,40}") {
            if let Err(err) = settings(env::RUST_LOG, &value) {
                let text = err.to_string();
                prop_assert!(text.contains(env::RUST_LOG) && text.contains("EnvFilter"), "{text}");
            }
        }
    }

    #[test]
    fn directives_on_targets_and_levels_only_skip_the_per_span_filter() {
        for (directives, per_call_site) in [
            ("info", true),
            ("warn,my_app=debug,request.summary=off", true),
            ("info,[request{rid}]=debug", false),
        ] {
            let (_, filter) = settings(env::RUST_LOG, directives).unwrap();
            assert_eq!(
                matches!(filter, Filter::Targets(_)),
                per_call_site,
                "{directives}"
            );
        }
    }
}
