//! Every setting, from code ([`Builder`](crate::Builder)) or the environment
//! (`DOCKERFLOW_*`): one path for each, "the value set in code, else the variable, then
//! validate", so that a bad value stops start-up with a message naming where it came from and
//! what is accepted.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::http::header::HeaderName;
use actix_web::http::StatusCode;

use crate::check::Level;
use crate::error::StartupError;

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
    /// `json` (mozlog) or `text`: how [`logging::init`](crate::logging::init) writes events.
    pub const LOG_FORMAT: &str = "DOCKERFLOW_LOG_FORMAT";
    /// `true`/`false`: whether requests to the Dockerflow endpoints get `request.summary`
    /// lines.
    pub const LOG_PROBES: &str = "DOCKERFLOW_LOG_PROBES";
    /// Which events [`logging::init`](crate::logging::init) lets through, in
    /// `tracing-subscriber`'s `EnvFilter` syntax (default `info`).
    pub const RUST_LOG: &str = "RUST_LOG";
}

/// The resolved settings of a [`Dockerflow`](crate::Dockerflow).
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
    pub(crate) log_probes: bool,
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

    /// Whether requests to the Dockerflow endpoints get `request.summary` lines.
    pub fn log_probes(&self) -> bool {
        self.log_probes
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
            .field("log_probes", &self.log_probes)
            .finish()
    }
}

/// The settings given in code; `None` leaves a setting to its variable, then its default. (No
/// `Debug`: it holds the details token.)
#[derive(Default)]
pub(crate) struct InCode {
    pub(crate) version_file: Option<PathBuf>,
    pub(crate) fail_level: Option<Level>,
    pub(crate) failed_status: Option<u16>,
    pub(crate) show_details: Option<bool>,
    pub(crate) details_token: Option<String>,
    pub(crate) silenced: Option<Vec<String>>,
    pub(crate) check_timeout: Option<Duration>,
    pub(crate) cache_ttl: Option<Duration>,
    pub(crate) request_id_header: Option<String>,
    pub(crate) enable_error_endpoint: Option<bool>,
    pub(crate) log_querystring: Option<bool>,
    pub(crate) log_probes: Option<bool>,
    pub(crate) drain: Option<Duration>,
}

impl Config {
    /// Every setting: from `code`, else from `env`, else its default; each checked the same
    /// way wherever it came from.
    pub(crate) fn resolve(code: InCode, env: &Vars) -> Result<Config, StartupError> {
        let failed_status = FAILED_STATUS.resolve(code.failed_status, env, 500)?;
        let request_id_header =
            REQUEST_ID_HEADER.resolve(code.request_id_header, env, "X-Request-Id".to_owned())?;
        Ok(Config {
            version_file: VERSION_FILE.resolve(code.version_file.map(Some), env, None)?,
            fail_level: FAIL_LEVEL.resolve(code.fail_level, env, Level::Warning)?,
            failed_status: StatusCode::from_u16(failed_status).expect("checked to be 400 to 599"),
            show_details: bool_setting(env::SHOW_DETAILS, "Builder::show_details").resolve(
                code.show_details,
                env,
                false,
            )?,
            details_token: DETAILS_TOKEN.resolve(code.details_token.map(Some), env, None)?,
            silenced: SILENCED.resolve(code.silenced, env, Vec::new())?,
            check_timeout: CHECK_TIMEOUT.resolve(
                code.check_timeout,
                env,
                Duration::from_secs(3),
            )?,
            cache_ttl: CACHE_TTL.resolve(code.cache_ttl, env, Duration::from_secs(1))?,
            request_id_header: HeaderName::try_from(request_id_header)
                .expect("checked to be a header name"),
            enable_error_endpoint: bool_setting(
                env::ENABLE_ERROR_ENDPOINT,
                "Builder::enable_error_endpoint",
            )
            .resolve(code.enable_error_endpoint, env, false)?,
            log_querystring: code.log_querystring.unwrap_or(false),
            log_probes: bool_setting(env::LOG_PROBES, "Builder::log_probes").resolve(
                code.log_probes,
                env,
                true,
            )?,
            drain: DRAIN.resolve(code.drain, env, Duration::ZERO)?,
        })
    }
}

/// One setting: its variable, its builder method, what it accepts, how its text is read, and
/// what a value must be (set in code or read from the variable alike).
struct Setting<T> {
    var: &'static str,
    method: &'static str,
    expected: &'static str,
    parse: fn(&str) -> Option<T>,
    valid: fn(&T) -> bool,
}

impl<T: fmt::Debug> Setting<T> {
    /// The value set in code, else the variable's, else `default`; then validated.
    fn resolve(&self, code: Option<T>, env: &Vars, default: T) -> Result<T, StartupError> {
        match code {
            Some(value) if (self.valid)(&value) => Ok(value),
            Some(value) => Err(invalid(self.method, &format!("{value:?}"), self.expected)),
            None => match env.get(self.var) {
                None => Ok(default),
                Some(text) => (self.parse)(&text)
                    .filter(self.valid)
                    .ok_or_else(|| invalid(self.var, &text, self.expected)),
            },
        }
    }
}

fn any<T>(_: &T) -> bool {
    true
}

const VERSION_FILE: Setting<Option<PathBuf>> = Setting {
    var: env::VERSION_FILE,
    method: "Builder::version_file",
    expected: "a path",
    parse: |text| Some(Some(PathBuf::from(text))),
    valid: any,
};

const FAIL_LEVEL: Setting<Level> = Setting {
    var: env::FAIL_LEVEL,
    method: "Builder::fail_level",
    expected: "one of warning, error, critical",
    parse: |text| text.parse().ok(),
    valid: |level| *level >= Level::Warning,
};

const FAILED_STATUS: Setting<u16> = Setting {
    var: env::FAILED_STATUS,
    method: "Builder::failed_status",
    expected: "an HTTP status code from 400 to 599",
    parse: |text| text.trim().parse().ok(),
    valid: |code| (400..=599).contains(code),
};

const DETAILS_TOKEN: Setting<Option<String>> = Setting {
    var: env::DETAILS_TOKEN,
    method: "Builder::details_token",
    expected: "a non-empty token",
    parse: |text| Some(Some(text.to_owned())),
    valid: |token| token.as_ref().is_none_or(|t| !t.is_empty()),
};

const SILENCED: Setting<Vec<String>> = Setting {
    var: env::SILENCED_CHECKS,
    method: "Builder::silence",
    expected: "comma-separated message ids",
    parse: |text| {
        Some(
            text.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    },
    valid: any,
};

const CHECK_TIMEOUT: Setting<Duration> = Setting {
    var: env::CHECK_TIMEOUT_MS,
    method: "Builder::check_timeout",
    expected: "a whole number of milliseconds (at least 1)",
    parse: millis,
    valid: |timeout| *timeout >= Duration::from_millis(1),
};

const CACHE_TTL: Setting<Duration> = Setting {
    var: env::CACHE_TTL_MS,
    method: "Builder::cache_ttl",
    expected: "a whole number of milliseconds (0 turns reuse off)",
    parse: millis,
    valid: any,
};

const DRAIN: Setting<Duration> = Setting {
    var: env::DRAIN_MS,
    method: "Builder::drain",
    expected: "a whole number of milliseconds (0 stops without draining)",
    parse: millis,
    valid: any,
};

const REQUEST_ID_HEADER: Setting<String> = Setting {
    var: env::REQUEST_ID_HEADER,
    method: "Builder::request_id_header",
    expected: "an HTTP header name (letters, digits and -)",
    parse: |text| Some(text.trim().to_owned()),
    valid: |name| HeaderName::try_from(name.as_str()).is_ok(),
};

/// A `true`/`false` setting.
fn bool_setting(var: &'static str, method: &'static str) -> Setting<bool> {
    Setting {
        var,
        method,
        expected: "true or false",
        parse: parse_bool,
        valid: any,
    }
}

/// `true`/`false` (or `1`/`0`), in any case.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn millis(text: &str) -> Option<Duration> {
    text.trim().parse().ok().map(Duration::from_millis)
}

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

/// Where settings are read: the process environment, or the variables given to
/// [`Builder::environment`](crate::Builder::environment) or
/// [`Setup::environment`](crate::logging::Setup::environment).
#[derive(Debug, Clone, Default)]
pub(crate) struct Vars(Option<HashMap<String, String>>);

impl Vars {
    /// These variables instead of the process environment.
    pub(crate) fn given<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Vars(Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// The variable's value; unset and empty (or blank) are the same.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        let value = match &self.0 {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
        };
        value.filter(|v| !v.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dockerflow;

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
        assert!(c.log_probes());
        assert!(!build(&[(env::LOG_PROBES, "false")])
            .unwrap()
            .config()
            .log_probes());
        assert!(build(&[(env::LOG_PROBES, " ")])
            .unwrap()
            .config()
            .log_probes());
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
            (env::LOG_PROBES, "no", "true or false"),
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
    const PARSED: [(&str, &str); 9] = [
        (env::FAIL_LEVEL, "warning, error, critical"),
        (env::FAILED_STATUS, "400 to 599"),
        (env::SHOW_DETAILS, "true or false"),
        (env::CHECK_TIMEOUT_MS, "milliseconds"),
        (env::CACHE_TTL_MS, "milliseconds"),
        (env::REQUEST_ID_HEADER, "header name"),
        (env::ENABLE_ERROR_ENDPOINT, "true or false"),
        (env::DRAIN_MS, "milliseconds"),
        (env::LOG_PROBES, "true or false"),
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
