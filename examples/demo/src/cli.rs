//! The command line and the environment: what to do, and with which settings.
//!
//! Every setting is read and checked here, before anything starts, so that a bad one stops
//! start-up with a message naming it.

use std::net::SocketAddr;

use crate::db::{DatabaseUrl, DEFAULT_SQLITE_FILE};

/// How the demo is used.
pub(crate) const USAGE: &str = "\
usage: dockerflow-demo [serve [--no-migrate]]
       dockerflow-demo migrate
       dockerflow-demo healthcheck [PATH]

  serve (the default)  apply pending migrations, then listen on HOST:PORT
    --no-migrate       do not apply migrations first
  migrate              apply pending migrations and exit
  healthcheck [PATH]   GET http://127.0.0.1:$PORT/PATH (default /__lbheartbeat__); exit 0 on
                       a 2xx answer within 2 s, 1 otherwise (a container HEALTHCHECK)

environment:
  HOST, PORT      where to listen (default 127.0.0.1:8000)
  DATABASE_URL    postgres://..., mysql://..., sqlite://... or a SQLite file path
                  (default: dockerflow-demo.sqlite3 in the working directory)
  REDIS_URL       redis://...; when set, the heartbeat checks Redis too
  STATSD_ADDR     host:port; when set, heartbeat hooks send heartbeat.pass / heartbeat.fail
  SENTRY_DSN      when set, errors and panics are reported to Sentry
  DOCKERFLOW_*    the dockerflow settings (see the dockerflow crate)";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Serve, applying pending migrations first unless `migrate` is false.
    Serve {
        /// Apply pending migrations before listening.
        migrate: bool,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// GET a path on this machine's `PORT` and exit 0 on a 2xx answer, 1 otherwise.
    Healthcheck {
        /// The path, when given (checked when it runs).
        path: Option<String>,
    },
    /// Print the usage and exit.
    Help,
}

impl Command {
    /// Parses the arguments after the program name.
    pub(crate) fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, SettingError> {
        let args: Vec<String> = args.into_iter().collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match args.as_slice() {
            [] | ["serve"] => Ok(Command::Serve { migrate: true }),
            ["serve", "--no-migrate"] | ["--no-migrate"] => Ok(Command::Serve { migrate: false }),
            ["migrate"] => Ok(Command::Migrate),
            ["healthcheck"] => Ok(Command::Healthcheck { path: None }),
            ["healthcheck", path] => Ok(Command::Healthcheck {
                path: Some((*path).to_owned()),
            }),
            ["help" | "--help" | "-h"] => Ok(Command::Help),
            _ => Err(SettingError::Arguments(args.join(" "))),
        }
    }
}

/// Settings from the environment.
#[derive(Debug)]
pub(crate) struct Settings {
    /// Where to listen.
    pub(crate) listen: SocketAddr,
    /// The database.
    pub(crate) database: DatabaseUrl,
    /// Redis, when `REDIS_URL` is set.
    pub(crate) redis: Option<redis::Client>,
    /// The statsd server, when `STATSD_ADDR` is set.
    pub(crate) statsd: Option<SocketAddr>,
}

/// A setting that cannot be used. Its text names the setting; values are redacted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingError {
    /// The command line is not one of the forms in [`USAGE`].
    #[error("unknown arguments {0:?}\n{USAGE}")]
    Arguments(String),
    /// An environment variable has a value that cannot be used.
    #[error("invalid setting {name}={value:?}: expected {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value, redacted.
        value: String,
        /// What is accepted.
        expected: String,
    },
}

impl SettingError {
    pub(crate) fn invalid(name: &'static str, value: &str, expected: impl Into<String>) -> Self {
        SettingError::Invalid {
            name,
            value: dockerflow::redact::redact(value),
            expected: expected.into(),
        }
    }
}

/// Reads `HOST`, `PORT`, `DATABASE_URL`, `REDIS_URL` and `STATSD_ADDR` through `var`.
pub(crate) fn settings(var: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingError> {
    let port = port(&var)?;
    let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    let host = var("HOST").unwrap_or_else(|| "127.0.0.1".to_owned());
    let listen = format!("{host}:{port}")
        .parse::<SocketAddr>()
        .or_else(|_| format!("[{host}]:{port}").parse::<SocketAddr>())
        .map_err(|_| {
            SettingError::invalid("HOST", &host, "an IP address such as 127.0.0.1 or ::1")
        })?;
    let database = match var("DATABASE_URL") {
        Some(url) => DatabaseUrl::parse(&url)?,
        None => DatabaseUrl::Sqlite(DEFAULT_SQLITE_FILE.to_owned()),
    };
    let redis = var("REDIS_URL")
        .map(|url| {
            redis::Client::open(url.as_str()).map_err(|err| {
                SettingError::invalid(
                    "REDIS_URL",
                    &url,
                    format!("a redis:// or unix:// URL ({err})"),
                )
            })
        })
        .transpose()?;
    let statsd = var("STATSD_ADDR")
        .map(|addr| {
            use std::net::ToSocketAddrs;
            addr.to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .ok_or_else(|| SettingError::invalid("STATSD_ADDR", &addr, "host:port"))
        })
        .transpose()?;
    Ok(Settings {
        listen,
        database,
        redis,
        statsd,
    })
}

/// `PORT` read through `var`: 8000 when unset or empty.
pub(crate) fn port(var: impl Fn(&str) -> Option<String>) -> Result<u16, SettingError> {
    match var("PORT").filter(|value| !value.trim().is_empty()) {
        Some(text) => text
            .trim()
            .parse::<u16>()
            .map_err(|_| SettingError::invalid("PORT", &text, "a port number from 0 to 65535")),
        None => Ok(8000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn commands() {
        let parse = |args: &[&str]| Command::parse(args.iter().map(|a| a.to_string()));
        assert_eq!(parse(&[]).unwrap(), Command::Serve { migrate: true });
        assert_eq!(parse(&["serve"]).unwrap(), Command::Serve { migrate: true });
        assert_eq!(
            parse(&["serve", "--no-migrate"]).unwrap(),
            Command::Serve { migrate: false }
        );
        assert_eq!(parse(&["migrate"]).unwrap(), Command::Migrate);
        assert_eq!(
            parse(&["healthcheck"]).unwrap(),
            Command::Healthcheck { path: None }
        );
        assert_eq!(
            parse(&["healthcheck", "/__heartbeat__"]).unwrap(),
            Command::Healthcheck {
                path: Some("/__heartbeat__".to_owned())
            }
        );
        assert!(parse(&["healthcheck", "/a", "/b"]).is_err());
        assert!(parse(&["migrate", "--now"]).is_err());
    }

    #[test]
    fn defaults() {
        let settings = settings(env(&[])).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8000");
        assert!(
            matches!(settings.database, DatabaseUrl::Sqlite(ref path) if path == "dockerflow-demo.sqlite3")
        );
        assert!(settings.redis.is_none() && settings.statsd.is_none());
    }

    #[test]
    fn bad_values_name_their_setting_and_hide_passwords() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("HOST", "not a host"),
            ("DATABASE_URL", "http://app:hunter2@db/app"),
            ("REDIS_URL", "http://:hunter2@cache:6379"),
            ("STATSD_ADDR", "statsd"),
        ] {
            let err = settings(env(&[(name, value)])).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
}
