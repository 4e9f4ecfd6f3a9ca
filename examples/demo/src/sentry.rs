//! Error reports to [Sentry](https://sentry.io) when `SENTRY_DSN` is set: panics, events logged
//! at `ERROR` (`tracing::error!`), and `5xx` answers that carry an actix error, `/__error__`
//! among them. Without `SENTRY_DSN` nothing of this runs.
//!
//! Three pieces, each where it belongs:
//!
//! - [`Reporting::from_env`] starts the client (its panic hook included) first thing in `main`;
//!   the value it returns flushes what is queued when `main` returns;
//! - [`Reporting::layer`] goes beside the mozlog lines, through
//!   [`dockerflow::logging::init_with`]: `ERROR` events become Sentry events, `INFO` and `WARN`
//!   the breadcrumbs that come with them;
//! - [`middleware`] on the app: each request gets its own scope (method, URL,
//!   headers without cookies or credentials), and a handler's `Err` that answers `5xx` becomes
//!   a Sentry event.
//!
//! Every string of an event passes [`dockerflow::redact::redact`] before it is sent, as every
//! log line does.

use actix_web::middleware::Condition;
use sentry::types::Dsn;
use tracing_subscriber::filter::{filter_fn, LevelFilter};
use tracing_subscriber::{Layer, Registry};

use crate::cli::SettingError;

/// The Sentry client, when `SENTRY_DSN` is set. Keep it until the end of `main`: dropping it
/// sends what is still queued (for up to 2 s).
pub(crate) struct Reporting {
    guard: Option<sentry::ClientInitGuard>,
}

impl Reporting {
    /// Starts the client when `SENTRY_DSN` (read through `var`) is set and not empty.
    /// `SENTRY_ENVIRONMENT` and `SENTRY_RELEASE` are read too (the release defaults to
    /// `dockerflow-demo@<version>`).
    pub(crate) fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let Some(text) = var("SENTRY_DSN").filter(|value| !value.trim().is_empty()) else {
            return Ok(Reporting { guard: None });
        };
        // The DSN's key is a credential: it never goes into a message.
        let dsn: Dsn = text.trim().parse().map_err(|err| {
            SettingError::invalid(
                "SENTRY_DSN",
                "***",
                format!("a Sentry DSN such as https://KEY@o0.ingest.sentry.io/0 ({err})"),
            )
        })?;
        let mut options = sentry::ClientOptions::new();
        options.dsn = Some(dsn);
        options.release = var("SENTRY_RELEASE")
            .filter(|value| !value.trim().is_empty())
            .map(Into::into)
            .or_else(|| sentry::release_name!());
        options.environment = var("SENTRY_ENVIRONMENT")
            .filter(|value| !value.trim().is_empty())
            .map(Into::into);
        options.before_send = Some(std::sync::Arc::new(redacted));
        Ok(Reporting {
            guard: Some(sentry::init(options)),
        })
    }

    /// Whether events are sent.
    pub(crate) fn enabled(&self) -> bool {
        self.guard.as_ref().is_some_and(|guard| guard.is_enabled())
    }

    /// The `tracing` layer to install beside the mozlog lines, `None` without a client.
    ///
    /// Two `ERROR` lines stay breadcrumbs, because the actix error they speak of is already the
    /// event (through [`middleware`]) and one failure makes one event: `/__error__`'s own line
    /// and the `request.summary` line of a request that failed.
    pub(crate) fn layer(&self) -> Option<impl Layer<Registry> + Send + Sync + 'static> {
        self.enabled().then(|| {
            let errors = sentry_tracing::ErrorLayer::new().with_filter(filter_fn(|meta| {
                *meta.level() == tracing::Level::ERROR
                    && !REPORTED_BY_THE_MIDDLEWARE.contains(&meta.target())
            }));
            let breadcrumbs = sentry_tracing::BreadcrumbLayer::new().with_filter(LevelFilter::INFO);
            errors.and_then(breadcrumbs)
        })
    }
}

/// The targets of the `ERROR` lines about a failure [`middleware`] reports.
const REPORTED_BY_THE_MIDDLEWARE: [&str; 2] = ["dockerflow::endpoints", "request.summary"];

/// The actix middleware that reports handler errors answered with a `5xx`, when `enabled`
/// ([`Reporting::enabled`]); otherwise it does nothing.
pub(crate) fn middleware(enabled: bool) -> Condition<sentry_actix::Sentry> {
    Condition::new(enabled, sentry_actix::Sentry::new())
}

/// The event with every string passed through [`dockerflow::redact::redact`]; none when that
/// cannot be done.
fn redacted(event: sentry::protocol::Event<'static>) -> Option<sentry::protocol::Event<'static>> {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(text) => *text = dockerflow::redact::redact(text),
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            serde_json::Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(&event).ok()?;
    walk(&mut value);
    serde_json::from_value(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_redacted() {
        let event = sentry::protocol::Event {
            message: Some("cannot connect to postgres://app:hunter2@db/app".to_owned()),
            ..Default::default()
        };
        let event = redacted(event).unwrap();
        let message = event.message.unwrap();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("postgres://app:"), "{message}");
    }

    #[test]
    fn an_unset_or_empty_dsn_starts_nothing_and_a_bad_one_is_named_but_not_shown() {
        assert!(!Reporting::from_env(|_| None).unwrap().enabled());
        assert!(!Reporting::from_env(|_| Some(" ".to_owned()))
            .unwrap()
            .enabled());
        let err = Reporting::from_env(|_| Some("https://secretkey@sentry.example".to_owned()))
            .err()
            .expect("a DSN without a project is refused")
            .to_string();
        assert!(
            err.contains("SENTRY_DSN") && !err.contains("secretkey"),
            "{err}"
        );
    }
}
