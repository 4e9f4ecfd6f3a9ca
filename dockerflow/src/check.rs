//! The check model: [`Level`], [`CheckMessage`], what a check returns ([`IntoCheckOutcome`]),
//! what it takes ([`FromCheckContext`]) and [`Check`], one registered check.

use std::any::type_name;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpRequest};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde::{Serialize, Serializer};

use crate::runtime::CheckThreads;

/// How bad a check message is, on Django's scale.
///
/// `ok` is 0 and means "nothing to report"; the others are the levels of Django's system check
/// framework. The text form (`"warning"`) is what the heartbeat body shows; the number (`30`) is
/// what `details` shows next to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    /// 0: nothing to report.
    #[default]
    Ok,
    /// 10
    Debug,
    /// 20
    Info,
    /// 30: fails the heartbeat with the default fail level.
    Warning,
    /// 40
    Error,
    /// 50
    Critical,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 6] = [
        Level::Ok,
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    /// The number of the level: 0, 10, 20, 30, 40 or 50.
    pub const fn value(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Debug => 10,
            Level::Info => 20,
            Level::Warning => 30,
            Level::Error => 40,
            Level::Critical => 50,
        }
    }

    /// The text of the level: `"ok"`, `"debug"`, `"info"`, `"warning"`, `"error"` or `"critical"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The text given is not one of the six levels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level {0:?}; expected one of ok, debug, info, warning, error, critical")]
pub struct ParseLevelError(String);

impl FromStr for Level {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Level::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseLevelError(s.to_owned()))
    }
}

/// One finding of a check: an id such as `dockerflow.health.E001`, a level and a text.
///
/// Checks that report several findings return `Vec<CheckMessage>`, like Django's checks
/// return lists of `CheckMessage`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckMessage {
    id: Cow<'static, str>,
    level: Level,
    msg: String,
    hint: Option<String>,
}

impl CheckMessage {
    /// A message at any level.
    pub fn new(level: Level, id: impl Into<Cow<'static, str>>, msg: impl Into<String>) -> Self {
        CheckMessage {
            id: id.into(),
            level,
            msg: msg.into(),
            hint: None,
        }
    }

    /// A `debug` message.
    pub fn debug(id: impl Into<Cow<'static, str>>, msg: impl Into<String>) -> Self {
        Self::new(Level::Debug, id, msg)
    }

    /// An `info` message.
    pub fn info(id: impl Into<Cow<'static, str>>, msg: impl Into<String>) -> Self {
        Self::new(Level::Info, id, msg)
    }

    /// A `warning` message.
    pub fn warning(id: impl Into<Cow<'static, str>>, msg: impl Into<String>) -> Self {
        Self::new(Level::Warning, id, msg)
    }

    /// An `error` message.
    pub fn error(id: impl Into<Cow<'static, str>>, msg: impl Into<String>) -> Self {
        Self::new(Level::Error, id, msg)
    }

    /// A `critical` message.
    pub fn critical(id: impl Into<Cow<'static, str>>, msg: impl Into<String>) -> Self {
        Self::new(Level::Critical, id, msg)
    }

    /// Adds a hint: what the operator can do about it. Shown in logs, not in the body.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The message id, such as `dockerflow.health.E001`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The level of this message.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The text of this message.
    pub fn msg(&self) -> &str {
        &self.msg
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    pub(crate) fn map_text(mut self, f: impl Fn(&str) -> String) -> Self {
        self.msg = f(&self.msg);
        self.hint = self.hint.map(|h| f(&h));
        self
    }
}

/// What a check function returned, before it gets its level and id.
#[derive(Debug)]
pub enum Outcome {
    /// Passed, or reported messages with their own ids and levels.
    Messages(Vec<CheckMessage>),
    /// Failed with a text: reported under the check's id at the check's level.
    Failed(String),
}

/// What a check may return.
///
/// - `Result<(), E>` where `E: Display`: an `Err` is one message at the check's level, under the
///   check's id.
/// - `Vec<CheckMessage>`: any number of messages with their own ids and levels (empty: passed).
/// - `Result<Vec<CheckMessage>, E>`: both.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a check outcome",
    label = "a check returns this",
    note = "a check returns `Result<(), E>` where `E: Display`, `Vec<dockerflow::CheckMessage>`, or `Result<Vec<dockerflow::CheckMessage>, E>`"
)]
pub trait IntoCheckOutcome: Send + 'static {
    /// Turns the returned value into an outcome.
    fn into_outcome(self) -> Outcome;
}

impl<E: fmt::Display + Send + 'static> IntoCheckOutcome for Result<(), E> {
    fn into_outcome(self) -> Outcome {
        match self {
            Ok(()) => Outcome::Messages(Vec::new()),
            Err(err) => Outcome::Failed(err.to_string()),
        }
    }
}

impl IntoCheckOutcome for Vec<CheckMessage> {
    fn into_outcome(self) -> Outcome {
        Outcome::Messages(self)
    }
}

impl<E: fmt::Display + Send + 'static> IntoCheckOutcome for Result<Vec<CheckMessage>, E> {
    fn into_outcome(self) -> Outcome {
        match self {
            Ok(messages) => Outcome::Messages(messages),
            Err(err) => Outcome::Failed(err.to_string()),
        }
    }
}

/// What a check can see when it is prepared: the app data of the heartbeat request that
/// started the run, and how long the run may take.
pub struct CheckContext<'a> {
    req: &'a HttpRequest,
    timeout: Duration,
}

/// The app of the heartbeat request that starts a run: where checks take their arguments from.
#[derive(Clone, Copy)]
pub(crate) struct AppData<'a>(pub(crate) &'a HttpRequest);

impl<'a> CheckContext<'a> {
    /// What a check that may run for `timeout` sees of `app`.
    pub(crate) fn new(app: AppData<'a>, timeout: Duration) -> Self {
        CheckContext {
            req: app.0,
            timeout,
        }
    }

    /// App data of type `T`, as registered with `App::app_data`.
    pub fn app_data<T: 'static>(&self) -> Option<&'a T> {
        self.req.app_data::<T>()
    }

    /// A value the app registered as `web::Data<T>`, or as a bare `T`, cloned.
    pub fn data<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.app_data::<web::Data<T>>()
            .map(|data| data.get_ref().clone())
            .or_else(|| self.app_data::<T>().cloned())
    }

    /// How long this run of the check may take before it is reported as timed out
    /// (`dockerflow.health.E011`): the check's own timeout, else the configured one.
    ///
    /// A check that waits on something (a pool, a socket) should give up a little before
    /// this, so that it can say what it was waiting for.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// A check argument that is taken from the app when the check runs.
///
/// Implemented for `web::Data<T>`: register the value with
/// `App::new().app_data(web::Data::new(value))`. A value that is missing fails the check with a
/// message naming the type; it never panics.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a check argument",
    label = "not taken from the app",
    note = "check arguments are `actix_web::web::Data<T>` where `T: Send + Sync + 'static`"
)]
pub trait FromCheckContext: Sized + Send + 'static {
    /// Takes the value from the app, or says what is missing.
    fn from_context(ctx: &CheckContext<'_>) -> Result<Self, MissingData>;
}

impl<T: ?Sized + Send + Sync + 'static> FromCheckContext for web::Data<T> {
    fn from_context(ctx: &CheckContext<'_>) -> Result<Self, MissingData> {
        ctx.app_data::<web::Data<T>>()
            .cloned()
            .ok_or_else(MissingData::of::<web::Data<T>>)
    }
}

/// A check argument the app does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing app data `{type_name}`: register it with App::app_data")]
pub struct MissingData {
    type_name: String,
}

impl MissingData {
    /// Missing data of type `T`.
    pub fn of<T: ?Sized>() -> Self {
        MissingData {
            type_name: short_type_name::<T>(),
        }
    }
}

/// A type's name as an app writes it: the outer type and the standard library's types without
/// their module paths, the app's own types with theirs
/// (`actix_web::data::Data<alloc::sync::Arc<my_app::Pool>>` reads `Data<Arc<my_app::Pool>>`,
/// `diesel::pg::connection::PgConnection` reads `PgConnection`).
pub(crate) fn short_type_name<T: ?Sized>() -> String {
    shorten_type_name(type_name::<T>())
}

fn shorten_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut rest = full;
    let mut outer = true;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let (path, tail) = rest.split_at(end);
        let standard = ["alloc::", "core::", "std::"]
            .iter()
            .any(|prefix| path.starts_with(prefix));
        out.push_str(if outer || standard {
            path.rsplit("::").next().unwrap_or(path)
        } else {
            path
        });
        outer &= path.is_empty();
        let delimiter = tail.chars().next().map_or(0, char::len_utf8);
        out.push_str(&tail[..delimiter]);
        rest = &tail[delimiter..];
    }
    out
}

/// A check run, ready to go: everything it needs was taken from the request, so it can run on
/// another thread.
pub struct Prepared(pub(crate) PreparedKind);

pub(crate) enum PreparedKind {
    Failed(String),
    Future(BoxFuture<'static, Outcome>),
    Blocking(Box<dyn FnOnce() -> Outcome + Send>),
}

impl Prepared {
    /// An async check: runs on dockerflow's check runtime.
    pub fn future<F>(future: F) -> Self
    where
        F: Future + Send + 'static,
        F::Output: IntoCheckOutcome,
    {
        Prepared(PreparedKind::Future(
            future.map(IntoCheckOutcome::into_outcome).boxed(),
        ))
    }

    /// A blocking check: runs on the blocking pool, never on an async worker.
    pub fn blocking<F, O>(f: F) -> Self
    where
        F: FnOnce() -> O + Send + 'static,
        O: IntoCheckOutcome,
    {
        Prepared(PreparedKind::Blocking(Box::new(move || f().into_outcome())))
    }

    /// A run that reports `messages` without doing anything (a check that cannot start, say).
    pub fn messages(messages: Vec<CheckMessage>) -> Self {
        Prepared::future(std::future::ready(messages))
    }

    /// A check that cannot run: it fails with this text at its level, under its id.
    pub fn failed(reason: impl fmt::Display) -> Self {
        Prepared(PreparedKind::Failed(reason.to_string()))
    }
}

type PrepareFn = dyn Fn(&CheckContext<'_>) -> Prepared + Send + Sync;

/// One check of the heartbeat: a name, the level and id of a plain failure, an optional
/// timeout, and how to prepare a run.
///
/// `#[dockerflow::check]` makes these for annotated functions; the built-in checks in
/// [`checks`](crate::checks) are made with [`Check::new`] and added with
/// [`Builder::check`](crate::Builder::check).
#[derive(Clone)]
pub struct Check {
    pub(crate) name: Cow<'static, str>,
    pub(crate) id: Cow<'static, str>,
    pub(crate) level: Level,
    pub(crate) timeout: Option<Duration>,
    pub(crate) location: Cow<'static, str>,
    pub(crate) prepare: Arc<PrepareFn>,
    /// The threads its runs use and hold; shared by clones.
    pub(crate) threads: Arc<CheckThreads>,
}

impl Check {
    /// A check named `name` that fails at `error` under the id `name`.
    #[track_caller]
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        prepare: impl Fn(&CheckContext<'_>) -> Prepared + Send + Sync + 'static,
    ) -> Self {
        let name = name.into();
        let caller = std::panic::Location::caller();
        let location = format!("{}:{}:{}", caller.file(), caller.line(), caller.column());
        Check {
            threads: Arc::new(CheckThreads::of(&name, &location)),
            id: name.clone(),
            name,
            level: Level::Error,
            timeout: None,
            location: location.into(),
            prepare: Arc::new(prepare),
        }
    }

    /// The level a plain failure is reported at.
    pub fn with_level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// The id a plain failure is reported under.
    pub fn with_id(mut self, id: impl Into<Cow<'static, str>>) -> Self {
        self.id = id.into();
        self
    }

    /// A timeout for this check instead of the configured one.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The name shown in the heartbeat.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id of a plain failure.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The level of a plain failure.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Where the check was defined, as `file:line:column`.
    pub fn location(&self) -> &str {
        &self.location
    }
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("level", &self.level)
            .field("timeout", &self.timeout)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::shorten_type_name;

    #[test]
    fn type_names_read_as_an_app_writes_them() {
        for (full, short) in [
            (
                "actix_web::data::Data<alloc::sync::Arc<my_app::Pool>>",
                "Data<Arc<my_app::Pool>>",
            ),
            ("actix_web::data::Data<my_app::Pool>", "Data<my_app::Pool>"),
            ("diesel::pg::connection::PgConnection", "PgConnection"),
            ("sqlx_postgres::database::Postgres", "Postgres"),
            (
                "my_app::Cache<core::option::Option<alloc::string::String>, my_app::Key>",
                "Cache<Option<String>, my_app::Key>",
            ),
            ("(u8, &str)", "(u8, &str)"),
        ] {
            assert_eq!(shorten_type_name(full), short, "{full}");
        }
    }
}
