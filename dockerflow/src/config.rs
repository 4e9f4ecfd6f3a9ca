//! Every setting, from code ([`Builder`]) or the environment (`DOCKERFLOW_*`); code wins.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::http::header::HeaderName;
use actix_web::http::StatusCode;

use crate::check::{Check, Level};
use crate::error::StartupError;
use crate::liveness::LivenessCondition;
use crate::version::CompiledVersion;
use crate::Dockerflow;

/// The environment variables and what they set; an empty value counts as unset.
pub mod env {
    /// Path of version.json.
    pub const VERSION_FILE: &str = "DOCKERFLOW_VERSION_FILE";
    /// `warning`, `error` or `critical`.
    pub const FAIL_LEVEL: &str = "DOCKERFLOW_FAIL_LEVEL";
    /// Status code of a failed heartbeat.
    pub const FAILED_STATUS: &str = "DOCKERFLOW_FAILED_STATUS";
    /// `true`/`false`: show `checks` and `details` to everyone.
    pub const SHOW_DETAILS: &str = "DOCKERFLOW_SHOW_DETAILS";
    /// Bearer token that unlocks details.
    pub const DETAILS_TOKEN: &str = "DOCKERFLOW_DETAILS_TOKEN";
    /// Comma-separated message ids to drop.
    pub const SILENCED_CHECKS: &str = "DOCKERFLOW_SILENCED_CHECKS";
    /// Per-check timeout in milliseconds.
    pub const CHECK_TIMEOUT_MS: &str = "DOCKERFLOW_CHECK_TIMEOUT_MS";
    /// Reuse of a finished run in milliseconds; 0 turns reuse off.
    pub const CACHE_TTL_MS: &str = "DOCKERFLOW_CACHE_TTL_MS";
    /// Request id header.
    pub const REQUEST_ID_HEADER: &str = "DOCKERFLOW_REQUEST_ID_HEADER";
    /// `true`/`false`: mount `/__error__`.
    pub const ENABLE_ERROR_ENDPOINT: &str = "DOCKERFLOW_ENABLE_ERROR_ENDPOINT";
    /// How long the heartbeats answer 503 after SIGTERM, in milliseconds.
    pub const DRAIN_MS: &str = "DOCKERFLOW_DRAIN_MS";
}

/// The resolved settings of a [`Dockerflow`].
#[derive(Clone)]
pub struct Config {
    pub(crate) version_file: Option<PathBuf>,
    pub(crate) fail_level: Level,
    pub(crate) failed_status: StatusCode,
    pub(crate) show_details: bool,
    pub(crate) details_token: Option<String>,
    pub(crate) silenced: Vec<String>,
    pub(crate) check_timeout: Duration,
    pub(crate) cache_ttl: Duration,
    pub(crate) request_id_header: HeaderName,
    pub(crate) enable_error_endpoint: bool,
    pub(crate) log_querystring: bool,
    pub(crate) drain: Duration,
}

impl Config {
    /// The version file set in code or by `DOCKERFLOW_VERSION_FILE`; `None` means
    /// `./version.json`, then `/app/version.json`.
    pub fn version_file(&self) -> Option<&Path> {
        self.version_file.as_deref()
    }

    /// The lowest level that fails the heartbeat.
    pub fn fail_level(&self) -> Level {
        self.fail_level
    }

    /// The status code of a failed heartbeat.
    pub fn failed_status(&self) -> StatusCode {
        self.failed_status
    }

    /// Whether `checks` and `details` are shown to everyone.
    pub fn show_details(&self) -> bool {
        self.show_details
    }

    /// Whether a details token is set (the token itself is not handed out).
    pub fn has_details_token(&self) -> bool {
        self.details_token.is_some()
    }

    /// Message ids dropped before levels are computed.
    pub fn silenced(&self) -> &[String] {
        &self.silenced
    }

    /// The timeout of each check, unless the check sets its own.
    pub fn check_timeout(&self) -> Duration {
        self.check_timeout
    }

    /// How long a finished run is reused.
    pub fn cache_ttl(&self) -> Duration {
        self.cache_ttl
    }

    /// The header a request id is read from and sent back in.
    pub fn request_id_header(&self) -> &HeaderName {
        &self.request_id_header
    }

    /// Whether `/__error__` is mounted.
    pub fn error_endpoint_enabled(&self) -> bool {
        self.enable_error_endpoint
    }

    /// Whether `request.summary` log lines carry the query string.
    pub fn log_querystring(&self) -> bool {
        self.log_querystring
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("version_file", &self.version_file)
            .field("fail_level", &self.fail_level)
            .field("failed_status", &self.failed_status)
            .field("show_details", &self.show_details)
            .field("details_token", &self.details_token.as_ref().map(|_| "***"))
            .field("silenced", &self.silenced)
            .field("check_timeout", &self.check_timeout)
            .field("cache_ttl", &self.cache_ttl)
            .field("request_id_header", &self.request_id_header)
            .field("enable_error_endpoint", &self.enable_error_endpoint)
            .field("log_querystring", &self.log_querystring)
            .field("drain", &self.drain)
            .finish()
    }
}

/// Builds a [`Dockerflow`]: settings in code (which win over the environment), checks that are
/// not annotated functions (the built-in ones), and secrets to redact.
///
/// ```
/// use std::time::Duration;
/// use dockerflow::{Dockerflow, Level};
///
/// let dockerflow = Dockerflow::builder()
///     .fail_level(Level::Error)
///     .failed_status(503)
///     .check_timeout(Duration::from_millis(500))
///     .build()?;
/// assert_eq!(dockerflow.config().fail_level(), Level::Error);
/// # Ok::<(), dockerflow::StartupError>(())
/// ```
#[derive(Default)]
#[must_use = "call .build() to get a Dockerflow"]
pub struct Builder {
    version_file: Option<PathBuf>,
    fail_level: Option<Level>,
    failed_status: Option<u16>,
    show_details: Option<bool>,
    details_token: Option<String>,
    silenced: Option<Vec<String>>,
    check_timeout: Option<Duration>,
    cache_ttl: Option<Duration>,
    request_id_header: Option<String>,
    enable_error_endpoint: Option<bool>,
    log_querystring: Option<bool>,
    drain: Option<Duration>,
    liveness: Vec<LivenessCondition>,
    compiled_version: Option<CompiledVersion>,
    checks: Vec<Check>,
    only_checks: Option<Vec<String>>,
    secrets: Vec<String>,
    environment: Option<HashMap<String, String>>,
}

impl Builder {
    /// The path of version.json.
    pub fn version_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.version_file = Some(path.into());
        self
    }

    /// The lowest level that fails the heartbeat: `Warning` (the default), `Error` or `Critical`.
    pub fn fail_level(mut self, level: Level) -> Self {
        self.fail_level = Some(level);
        self
    }

    /// The status code of a failed heartbeat, 400 to 599 (default 500).
    pub fn failed_status(mut self, status: u16) -> Self {
        self.failed_status = Some(status);
        self
    }

    /// Shows `checks` and `details` to every caller.
    pub fn show_details(mut self, show: bool) -> Self {
        self.show_details = Some(show);
        self
    }

    /// Shows `checks` and `details` to requests carrying `Authorization: Bearer <token>`.
    pub fn details_token(mut self, token: impl Into<String>) -> Self {
        self.details_token = Some(token.into());
        self
    }

    /// Drops messages with these ids before levels are computed.
    pub fn silence<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.silenced = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    /// The timeout of each check (default 3 s); a check's own `timeout_ms` wins.
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = Some(timeout);
        self
    }

    /// How long a finished run is reused (default 1 s); zero shares only runs in flight.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = Some(ttl);
        self
    }

    /// The request id header (default `X-Request-Id`).
    pub fn request_id_header(mut self, name: impl Into<String>) -> Self {
        self.request_id_header = Some(name.into());
        self
    }

    /// Mounts `/__error__`, which logs an error and answers 500.
    pub fn enable_error_endpoint(mut self, enable: bool) -> Self {
        self.enable_error_endpoint = Some(enable);
        self
    }

    /// Adds `querystring` to `request.summary` log lines (off by default: query strings can
    /// carry personal data).
    pub fn log_querystring(mut self, enable: bool) -> Self {
        self.log_querystring = Some(enable);
        self
    }

    /// How long `/__lbheartbeat__` and `/__heartbeat__` answer 503 after SIGTERM, before the
    /// server stops accepting (default: no draining); see [`Dockerflow::serve`].
    pub fn drain(mut self, drain: Duration) -> Self {
        self.drain = Some(drain);
        self
    }

    /// Adds a liveness condition: while it holds, `/__lbheartbeat__` answers 500 naming it. See
    /// [`liveness`](crate::liveness).
    pub fn liveness(mut self, condition: LivenessCondition) -> Self {
        self.liveness.push(condition);
        self
    }

    /// A version object to serve on `/__version__` when no version file exists; make it with
    /// [`compiled_version!`](crate::compiled_version).
    pub fn compiled_version(mut self, version: CompiledVersion) -> Self {
        self.compiled_version = Some(version);
        self
    }

    /// Adds a check that is not an annotated function, such as a built-in one from
    /// [`checks`](crate::checks).
    pub fn check(mut self, check: Check) -> Self {
        self.checks.push(check);
        self
    }

    /// Runs only the checks with these names (for a deployment that must skip some).
    pub fn only_checks<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.only_checks = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// A secret to mask wherever it might appear in a response or a log line.
    pub fn redact(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Reads settings from these variables instead of the process environment.
    pub fn environment<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.environment = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Resolves every setting, collects the checks and hooks, and checks them all.
    pub fn build(self) -> Result<Dockerflow, StartupError> {
        let env = Env(self.environment.as_ref());
        let config = Config {
            version_file: self
                .version_file
                .or_else(|| env.get(env::VERSION_FILE).map(PathBuf::from)),
            fail_level: match self.fail_level {
                Some(level) => fail_level(level, "Builder::fail_level", level.as_str())?,
                None => match env.get(env::FAIL_LEVEL) {
                    Some(text) => {
                        let level = text
                            .parse()
                            .map_err(|_| invalid(env::FAIL_LEVEL, &text, FAIL_LEVELS))?;
                        fail_level(level, env::FAIL_LEVEL, &text)?
                    }
                    None => Level::Warning,
                },
            },
            failed_status: match self.failed_status {
                Some(code) => failed_status(code, "Builder::failed_status", &code.to_string())?,
                None => match env.get(env::FAILED_STATUS) {
                    Some(text) => {
                        let code = text
                            .trim()
                            .parse()
                            .map_err(|_| invalid(env::FAILED_STATUS, &text, STATUSES))?;
                        failed_status(code, env::FAILED_STATUS, &text)?
                    }
                    None => StatusCode::INTERNAL_SERVER_ERROR,
                },
            },
            show_details: match self.show_details {
                Some(show) => show,
                None => env.bool(env::SHOW_DETAILS)?.unwrap_or(false),
            },
            details_token: match self.details_token {
                Some(token) if token.is_empty() => {
                    return Err(invalid("Builder::details_token", "", "a non-empty token"))
                }
                Some(token) => Some(token),
                None => env.get(env::DETAILS_TOKEN),
            },
            silenced: match self.silenced {
                Some(ids) => ids,
                None => env
                    .get(env::SILENCED_CHECKS)
                    .map(|list| {
                        list.split(',')
                            .map(str::trim)
                            .filter(|id| !id.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            check_timeout: match self.check_timeout {
                Some(t) if t.is_zero() => {
                    return Err(invalid(
                        "Builder::check_timeout",
                        "0",
                        "a timeout of at least 1 ms",
                    ))
                }
                Some(t) => t,
                None => env
                    .millis(env::CHECK_TIMEOUT_MS, 1, "at least 1")?
                    .unwrap_or(Duration::from_secs(3)),
            },
            cache_ttl: match self.cache_ttl {
                Some(t) => t,
                None => env
                    .millis(env::CACHE_TTL_MS, 0, "0 turns reuse off")?
                    .unwrap_or(Duration::from_secs(1)),
            },
            drain: match self.drain {
                Some(t) => t,
                None => env
                    .millis(env::DRAIN_MS, 0, "0 stops without draining")?
                    .unwrap_or(Duration::ZERO),
            },
            request_id_header: {
                let (setting, name) = match self.request_id_header {
                    Some(name) => ("Builder::request_id_header", name),
                    None => (
                        env::REQUEST_ID_HEADER,
                        env.get(env::REQUEST_ID_HEADER)
                            .map(|name| name.trim().to_owned())
                            .unwrap_or_else(|| "X-Request-Id".to_owned()),
                    ),
                };
                HeaderName::try_from(name.as_str()).map_err(|_| {
                    invalid(
                        setting,
                        &name,
                        "an HTTP header name (letters, digits and -)",
                    )
                })?
            },
            enable_error_endpoint: match self.enable_error_endpoint {
                Some(enable) => enable,
                None => env.bool(env::ENABLE_ERROR_ENDPOINT)?.unwrap_or(false),
            },
            log_querystring: self.log_querystring.unwrap_or(false),
        };
        for secret in self.secrets.iter().chain(&config.details_token) {
            crate::redact::add_secret(secret.clone());
        }
        let checks = crate::registry::checks(self.checks, self.only_checks.as_deref())?;
        Ok(Dockerflow::new(
            config,
            checks,
            self.liveness,
            self.compiled_version,
        ))
    }
}

const FAIL_LEVELS: &str = "one of warning, error, critical";
const STATUSES: &str = "an HTTP status code from 400 to 599";
const BOOLS: &str = "true or false";

fn invalid(setting: &str, value: &str, expected: &str) -> StartupError {
    let mut value = value.to_owned();
    if value.len() > 80 {
        let cut = (0..=80)
            .rev()
            .find(|&i| value.is_char_boundary(i))
            .unwrap_or(0);
        value.truncate(cut);
        value.push('…');
    }
    StartupError::InvalidSetting {
        setting: setting.to_owned(),
        value,
        expected: expected.to_owned(),
    }
}

fn fail_level(level: Level, setting: &str, text: &str) -> Result<Level, StartupError> {
    if level >= Level::Warning {
        Ok(level)
    } else {
        Err(invalid(setting, text, FAIL_LEVELS))
    }
}

fn failed_status(code: u16, setting: &str, text: &str) -> Result<StatusCode, StartupError> {
    match StatusCode::from_u16(code) {
        Ok(status) if (400..=599).contains(&code) => Ok(status),
        _ => Err(invalid(setting, text, STATUSES)),
    }
}

/// The process environment, or the variables given to [`Builder::environment`].
struct Env<'a>(Option<&'a HashMap<String, String>>);

impl Env<'_> {
    /// The variable's value; unset and empty are the same.
    fn get(&self, name: &str) -> Option<String> {
        let value = match self.0 {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
        };
        value.filter(|v| !v.trim().is_empty())
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, StartupError> {
        self.get(name)
            .map(|text| match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(invalid(name, &text, BOOLS)),
            })
            .transpose()
    }

    /// A whole number of milliseconds, at least `min`; `note` says what the bound or zero means.
    fn millis(&self, name: &str, min: u64, note: &str) -> Result<Option<Duration>, StartupError> {
        self.get(name)
            .map(|text| match text.trim().parse::<u64>() {
                Ok(ms) if ms >= min => Ok(Duration::from_millis(ms)),
                _ => Err(invalid(
                    name,
                    &text,
                    &format!("a whole number of milliseconds ({note})"),
                )),
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(vars: &[(&str, &str)]) -> Result<Dockerflow, StartupError> {
        Dockerflow::builder()
            .environment(vars.iter().copied())
            .build()
    }

    #[test]
    fn defaults() {
        let df = build(&[]).unwrap();
        let c = df.config();
        assert_eq!(c.fail_level(), Level::Warning);
        assert_eq!(c.failed_status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!c.show_details());
        assert_eq!(c.check_timeout(), Duration::from_secs(3));
        assert_eq!(c.cache_ttl(), Duration::from_secs(1));
        assert_eq!(c.request_id_header().as_str(), "x-request-id");
        assert!(!c.error_endpoint_enabled());
    }

    #[test]
    fn every_bad_value_names_its_variable_and_the_accepted_values() {
        let cases = [
            (env::FAIL_LEVEL, "info", "warning, error, critical"),
            (env::FAIL_LEVEL, "loud", "warning, error, critical"),
            (env::FAILED_STATUS, "200", "400 to 599"),
            (env::FAILED_STATUS, "five", "400 to 599"),
            (env::SHOW_DETAILS, "yes please", "true or false"),
            (env::CHECK_TIMEOUT_MS, "0", "at least 1"),
            (env::CHECK_TIMEOUT_MS, "3s", "at least 1"),
            (env::CACHE_TTL_MS, "-1", "0 turns reuse off"),
            (env::REQUEST_ID_HEADER, "X Request", "header name"),
            (env::ENABLE_ERROR_ENDPOINT, "on", "true or false"),
            (env::DRAIN_MS, "5s", "0 stops without draining"),
        ];
        for (var, value, accepted) in cases {
            let err = build(&[(var, value)])
                .err()
                .unwrap_or_else(|| panic!("{var}={value} was accepted"));
            let text = err.to_string();
            assert!(text.contains(var), "{text}");
            assert!(text.contains(accepted), "{text}");
        }
    }

    #[test]
    fn code_wins_over_the_environment() {
        let df = Dockerflow::builder()
            .environment([
                (env::FAIL_LEVEL, "critical"),
                (env::SHOW_DETAILS, "nonsense"),
            ])
            .fail_level(Level::Error)
            .show_details(true)
            .build()
            .unwrap();
        assert_eq!(df.config().fail_level(), Level::Error);
        assert!(df.config().show_details());
    }

    #[test]
    fn environment_values_are_parsed() {
        let df = build(&[
            (env::FAIL_LEVEL, "CRITICAL"),
            (env::FAILED_STATUS, "503"),
            (env::SHOW_DETAILS, "true"),
            (env::SILENCED_CHECKS, " a.W001 ,, b.E002 "),
            (env::CHECK_TIMEOUT_MS, "250"),
            (env::CACHE_TTL_MS, "0"),
            (env::REQUEST_ID_HEADER, "X-Trace"),
        ])
        .unwrap();
        let c = df.config();
        assert_eq!(c.fail_level(), Level::Critical);
        assert_eq!(c.failed_status().as_u16(), 503);
        assert!(c.show_details());
        assert_eq!(c.silenced(), ["a.W001", "b.E002"]);
        assert_eq!(c.check_timeout(), Duration::from_millis(250));
        assert_eq!(c.cache_ttl(), Duration::ZERO);
        assert_eq!(c.request_id_header().as_str(), "x-trace");
    }

    /// Every variable that is parsed, with the words its error must use.
    const PARSED: [(&str, &str); 8] = [
        (env::FAIL_LEVEL, "warning, error, critical"),
        (env::FAILED_STATUS, "400 to 599"),
        (env::SHOW_DETAILS, "true or false"),
        (env::CHECK_TIMEOUT_MS, "milliseconds"),
        (env::CACHE_TTL_MS, "milliseconds"),
        (env::REQUEST_ID_HEADER, "header name"),
        (env::ENABLE_ERROR_ENDPOINT, "true or false"),
        (env::DRAIN_MS, "milliseconds"),
    ];

    proptest::proptest! {
        /// Whatever a variable holds, start-up either succeeds or fails naming the variable and
        /// the accepted values; it never panics, and never echoes more than 80 characters.
        #[test]
        fn any_value_is_accepted_or_refused_by_name(
            which in 0..PARSED.len(),
            value in proptest::prelude::any::<String>(),
        ) {
            let (var, accepted) = PARSED[which];
            if let Err(err) = build(&[(var, &value)]) {
                let text = err.to_string();
                proptest::prop_assert!(text.contains(var), "{}", text);
                proptest::prop_assert!(text.contains(accepted), "{}", text);
                proptest::prop_assert!(text.chars().count() < 80 + 200, "{}", text);
            }
        }

        /// Whole numbers in range are taken as they are, with spaces around them.
        #[test]
        fn numbers_in_range_are_parsed(
            status in 400u16..=599,
            timeout in 1u64..=u64::from(u32::MAX),
            ttl in 0u64..=u64::from(u32::MAX),
        ) {
            let (status_text, timeout_text, ttl_text) =
                (format!(" {status}"), format!("{timeout} "), ttl.to_string());
            let df = build(&[
                (env::FAILED_STATUS, status_text.as_str()),
                (env::CHECK_TIMEOUT_MS, timeout_text.as_str()),
                (env::CACHE_TTL_MS, ttl_text.as_str()),
            ])
            .unwrap();
            proptest::prop_assert_eq!(df.config().failed_status().as_u16(), status);
            proptest::prop_assert_eq!(df.config().check_timeout(), Duration::from_millis(timeout));
            proptest::prop_assert_eq!(df.config().cache_ttl(), Duration::from_millis(ttl));
        }

        /// Silenced ids: any list gives back its non-empty, trimmed items in order.
        #[test]
        fn silenced_lists_keep_every_id(ids in proptest::collection::vec("[A-Za-z0-9._]{1,20}", 0..8)) {
            let list = ids.iter().map(|id| format!(" {id} ")).collect::<Vec<_>>().join(",,");
            let df = build(&[(env::SILENCED_CHECKS, list.as_str())]).unwrap();
            proptest::prop_assert_eq!(df.config().silenced(), ids.as_slice());
        }
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let df = Dockerflow::builder()
            .details_token("hunter2-token")
            .build()
            .unwrap();
        assert!(!format!("{:?}", df.config()).contains("hunter2-token"));
    }
}
