//! [`Builder`]: a [`Dockerflow`] put together in code: settings (which win over the
//! environment), checks that are not annotated functions, liveness conditions, secrets.

use std::path::PathBuf;
use std::time::Duration;

use crate::check::{Check, Level};
use crate::config::{Config, InCode, Vars};
use crate::error::StartupError;
use crate::liveness::LivenessCondition;
use crate::version::CompiledVersion;
use crate::Dockerflow;

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
    code: InCode,
    liveness: Vec<LivenessCondition>,
    compiled_version: Option<CompiledVersion>,
    checks: Vec<Check>,
    only_checks: Option<Vec<String>>,
    secrets: Vec<String>,
    environment: Vars,
}

impl Builder {
    /// The path of version.json.
    pub fn version_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.code.version_file = Some(path.into());
        self
    }

    /// The lowest level that fails the heartbeat: `Warning` (the default), `Error` or `Critical`.
    pub fn fail_level(mut self, level: Level) -> Self {
        self.code.fail_level = Some(level);
        self
    }

    /// The status code of a failed heartbeat, 400 to 599 (default 500).
    pub fn failed_status(mut self, status: u16) -> Self {
        self.code.failed_status = Some(status);
        self
    }

    /// Shows `checks` and `details` to every caller.
    pub fn show_details(mut self, show: bool) -> Self {
        self.code.show_details = Some(show);
        self
    }

    /// Shows `checks` and `details` to requests carrying `Authorization: Bearer <token>`.
    pub fn details_token(mut self, token: impl Into<String>) -> Self {
        self.code.details_token = Some(token.into());
        self
    }

    /// Drops messages with these ids before levels are computed.
    pub fn silence<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.code.silenced = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    /// The timeout of each check (default 3 s); a check's own `timeout_ms` wins.
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.code.check_timeout = Some(timeout);
        self
    }

    /// How long a finished run is reused (default 1 s); zero shares only runs in flight.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.code.cache_ttl = Some(ttl);
        self
    }

    /// The request id header (default `X-Request-Id`).
    pub fn request_id_header(mut self, name: impl Into<String>) -> Self {
        self.code.request_id_header = Some(name.into());
        self
    }

    /// Mounts `/__error__`, which logs an error and answers 500.
    pub fn enable_error_endpoint(mut self, enable: bool) -> Self {
        self.code.enable_error_endpoint = Some(enable);
        self
    }

    /// Adds `querystring` to `request.summary` log lines (off by default: query strings can
    /// carry personal data).
    pub fn log_querystring(mut self, enable: bool) -> Self {
        self.code.log_querystring = Some(enable);
        self
    }

    /// Whether requests to the Dockerflow endpoints ([`ENDPOINT_PATHS`](crate::ENDPOINT_PATHS))
    /// get `request.summary` lines (default `true`; `DOCKERFLOW_LOG_PROBES`). Load balancers'
    /// probes are most of the log volume of many services.
    pub fn log_probes(mut self, enable: bool) -> Self {
        self.code.log_probes = Some(enable);
        self
    }

    /// How long `/__lbheartbeat__` and `/__heartbeat__` answer 503 after SIGTERM, before the
    /// server stops accepting (default: no draining); see [`Dockerflow::serve`].
    pub fn drain(mut self, drain: Duration) -> Self {
        self.code.drain = Some(drain);
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

    /// The password of a connection URL (`postgres://app:pw@db/app`, `redis://:pw@cache`), as
    /// written and percent-decoded, to mask wherever it might appear; nothing for a URL without
    /// one, or text that is not a URL (a SQLite path, say). Drivers echo either form in errors.
    ///
    /// ```
    /// let dockerflow = dockerflow::Dockerflow::builder()
    ///     .redact_url_password("postgres://app:s%40cret@db/app")
    ///     .build()?;
    /// assert_eq!(
    ///     dockerflow::redact::redact("login as app with s@cret failed"),
    ///     "login as app with *** failed"
    /// );
    /// # Ok::<(), dockerflow::StartupError>(())
    /// ```
    pub fn redact_url_password(mut self, url: &str) -> Self {
        let Some(password) = url::Url::parse(url)
            .ok()
            .and_then(|url| url.password().map(str::to_owned))
            .filter(|password| !password.is_empty())
        else {
            return self;
        };
        let decoded = percent_encoding::percent_decode_str(&password).decode_utf8_lossy();
        if decoded != password {
            self.secrets.push(decoded.into_owned());
        }
        self.secrets.push(password);
        self
    }

    /// Reads settings from these variables instead of the process environment.
    pub fn environment<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.environment = Vars::given(vars);
        self
    }

    /// Resolves every setting, collects the checks and hooks, and checks them all.
    pub fn build(self) -> Result<Dockerflow, StartupError> {
        let config = Config::resolve(self.code, &self.environment)?;
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
