//! `check_database_connected`: a connection from the app's diesel pool answers a trivial query.

use std::time::Duration;

use diesel::r2d2::{ConnectionManager, R2D2Connection};
use diesel::{QueryResult, RunQueryDsl};

use super::messages;
use super::one_line;
use super::{DieselPool, DATABASE_CONNECTED};
use crate::check::{short_type_name, Check, CheckContext, CheckMessage, Prepared};
use crate::redact::redact;

/// A diesel connection type the database checks can use: `PgConnection` (feature `postgres`),
/// `MysqlConnection` (`mysql`) or `SqliteConnection` (`sqlite`).
///
/// The checks need a few queries that differ by backend (the trivial query, the list of
/// applied migrations), so the trait is implemented here for diesel's three connections and
/// cannot be implemented elsewhere.
pub trait DatabaseConnection: R2D2Connection + Send + 'static + sealed::Sealed {
    /// The trivial query `check_database_connected` runs.
    ///
    /// `SELECT 1` for PostgreSQL and MySQL. SQLite answers `SELECT 1` without reading the file,
    /// so there the query reads the schema: a file that is not a database then fails it.
    const USABLE_QUERY: &'static str;

    /// Runs [`USABLE_QUERY`](Self::USABLE_QUERY).
    #[doc(hidden)]
    fn run_usable_query(&mut self) -> QueryResult<()>;

    /// The versions recorded in `__diesel_schema_migrations`, or none when the table does not
    /// exist. Read-only: unlike diesel's `MigrationHarness::applied_migrations`, this never
    /// creates the table (a heartbeat must not run DDL, and the app's role may not be allowed to).
    #[doc(hidden)]
    fn applied_migration_versions(&mut self) -> QueryResult<Vec<String>>;
}

mod sealed {
    pub trait Sealed {}
}

diesel::table! {
    /// diesel_migrations' bookkeeping table (only the column read here).
    __diesel_schema_migrations (version) {
        version -> VarChar,
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Implements [`DatabaseConnection`] for one of diesel's connections: the trivial query, and
/// a query giving one row `n` > 0 when `__diesel_schema_migrations` exists.
macro_rules! database_connection {
    ($feature:literal, $conn:ty, usable: $usable:expr, migrations_table_exists: $exists:expr) => {
        #[cfg(feature = $feature)]
        impl sealed::Sealed for $conn {}

        #[cfg(feature = $feature)]
        impl DatabaseConnection for $conn {
            const USABLE_QUERY: &'static str = $usable;

            fn run_usable_query(&mut self) -> QueryResult<()> {
                diesel::sql_query(Self::USABLE_QUERY)
                    .execute(self)
                    .map(|_| ())
            }

            fn applied_migration_versions(&mut self) -> QueryResult<Vec<String>> {
                use diesel::QueryDsl;
                let exists = diesel::sql_query($exists).get_result::<Count>(self)?.n > 0;
                if !exists {
                    return Ok(Vec::new());
                }
                __diesel_schema_migrations::table
                    .select(__diesel_schema_migrations::version)
                    .load::<String>(self)
            }
        }
    };
}

database_connection!(
    "postgres",
    diesel::PgConnection,
    usable: "SELECT 1",
    // `to_regclass` resolves the name through the search path, as diesel does.
    migrations_table_exists: "SELECT COUNT(*) AS n \
        FROM (SELECT to_regclass('__diesel_schema_migrations') AS t) AS lookup WHERE t IS NOT NULL"
);

database_connection!(
    "mysql",
    diesel::MysqlConnection,
    usable: "SELECT 1",
    migrations_table_exists: "SELECT COUNT(*) AS n FROM information_schema.tables \
        WHERE table_schema = DATABASE() AND table_name = '__diesel_schema_migrations'"
);

database_connection!(
    "sqlite",
    diesel::SqliteConnection,
    usable: "SELECT COUNT(*) FROM sqlite_master",
    migrations_table_exists: "SELECT COUNT(*) AS n FROM sqlite_master \
        WHERE type = 'table' AND name = '__diesel_schema_migrations'"
);

/// The built-in `check_database_connected`, for the pool of connections `C` in the app data.
///
/// It takes a connection from the app's
/// `web::Data<r2d2::Pool<ConnectionManager<C>>>` (a bare `r2d2::Pool<ConnectionManager<C>>`
/// registered with `App::app_data` is found too) and runs a trivial query, on the blocking pool:
///
/// | finding | id | message |
/// |---|---|---|
/// | no connection within the time allowed (refused, timed out, wrong password, ...) | `dockerflow.health.E001` | `Could not connect to database: <reason>` |
/// | a connection was handed out but the query failed | `dockerflow.health.E002` | `Database connection is not usable` |
/// | the URL is malformed, or the app has no such pool | `dockerflow.health.E003` | `Database misconfigured: "<reason>"` |
///
/// The wait for a connection is bounded below the check's timeout (and the pool's own
/// `connection_timeout`), so a database that does not answer is reported as E001 with what the
/// driver said, rather than as a timed-out check. The driver's reasons pass
/// [`redact`](crate::redact::redact); the pool does not tell what URL it was built from, so
/// register the database password with [`Builder::redact`](crate::Builder::redact) too.
///
/// ```no_run
/// use actix_web::{web, App, HttpServer};
/// use diesel::r2d2::{ConnectionManager, Pool};
/// use diesel::PgConnection;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder().build_unchecked(ConnectionManager::<PgConnection>::new("postgres://db/app"));
/// let dockerflow = dockerflow::Dockerflow::builder()
///     .check(dockerflow::checks::database_connected::<PgConnection>())
///     .build()?;
/// HttpServer::new(move || {
///     let dockerflow = dockerflow.clone();
///     App::new()
///         .app_data(web::Data::new(pool.clone()))
///         .configure(move |cfg| dockerflow.configure(cfg))
/// })
/// .bind(("127.0.0.1", 8000))?
/// .run()
/// .await?;
/// # Ok(()) }
/// ```
#[track_caller]
pub fn database_connected<C: DatabaseConnection>() -> Check {
    Check::new(DATABASE_CONNECTED, |ctx: &CheckContext<'_>| {
        let timeout = ctx.timeout();
        match find_pool::<C>(ctx) {
            Some(pool) => Prepared::blocking(move || check_database_connected(&pool, timeout)),
            None => Prepared::messages(vec![messages::misconfigured(&missing_pool::<C>())]),
        }
    })
}

/// What `check_database_connected` does, on a pool you hold: blocking, so call it from a
/// blocking check (a plain `fn` annotated with `#[dockerflow::check]`) or `spawn_blocking`.
///
/// `timeout` is how long the caller can wait; the pool is given a part of it, the query the
/// rest. An empty list means the database answered.
///
/// ```no_run
/// use actix_web::web;
/// use diesel::r2d2::{ConnectionManager, Pool};
/// use diesel::PgConnection;
/// use dockerflow::CheckMessage;
///
/// /// A second database, reported under a name of its own.
/// struct Replica(Pool<ConnectionManager<PgConnection>>);
///
/// #[dockerflow::check]
/// fn check_replica_connected(replica: web::Data<Replica>) -> Vec<CheckMessage> {
///     dockerflow::checks::check_database_connected(&replica.0, std::time::Duration::from_secs(2))
/// }
/// # fn main() {}
/// ```
pub fn check_database_connected<C: DatabaseConnection>(
    pool: &DieselPool<C>,
    timeout: Duration,
) -> Vec<CheckMessage> {
    let mut conn = match checkout(pool, pool_wait(pool, timeout, 0.75)) {
        Ok(conn) => conn,
        Err(failure) => return vec![failure.into_message()],
    };
    match C::run_usable_query(&mut conn) {
        Ok(()) => Vec::new(),
        Err(err) => vec![messages::not_usable(&one_line(&redact(&err.to_string())))],
    }
}

/// The pool for `C` in the app data, as `web::Data<Pool>` or a bare `Pool`.
pub(super) fn find_pool<C: DatabaseConnection>(ctx: &CheckContext<'_>) -> Option<DieselPool<C>> {
    ctx.data::<DieselPool<C>>()
}

/// The reason E003 (and I001) give when the app has no pool for `C`: what to add.
pub(super) fn missing_pool<C>() -> String {
    let conn = short_type_name::<C>();
    messages::missing_pool(&format!("r2d2::Pool<ConnectionManager<{conn}>>"))
}

/// Why no connection came out of the pool.
pub(super) enum CheckoutFailure {
    /// The URL itself is wrong (E003).
    Misconfigured(String),
    /// The database did not let us in within the time allowed (E001).
    Unreachable(String),
    /// The pool gave no driver error after waiting this long: every connection is in use, or
    /// its attempts are still waiting on a server that does not answer, or another waiter had
    /// the error (r2d2 hands its last error to one waiter only).
    NoReason {
        waited: Duration,
        in_use: u32,
        max_size: u32,
    },
}

impl CheckoutFailure {
    /// The reason, already redacted and on one line.
    pub(super) fn reason(&self) -> String {
        match self {
            CheckoutFailure::Misconfigured(reason) | CheckoutFailure::Unreachable(reason) => {
                reason.clone()
            }
            CheckoutFailure::NoReason {
                waited,
                in_use,
                max_size,
            } if in_use >= max_size => format!(
                "no free connection in the pool within {} ms (all {max_size} in use)",
                waited.as_millis()
            ),
            CheckoutFailure::NoReason { waited, .. } => format!(
                "no connection could be opened within {} ms",
                waited.as_millis()
            ),
        }
    }

    fn into_message(self) -> CheckMessage {
        match self {
            CheckoutFailure::Misconfigured(reason) => messages::misconfigured(&reason),
            failure => messages::cannot_connect(&failure.reason()),
        }
    }

    /// A failure from a driver's text: E003 when it says the URL is wrong, E001 otherwise.
    fn from_driver(text: &str) -> Self {
        let mut reason = one_line(&redact(text));
        if SQLITE_BAD_URI.contains(&reason.as_str()) {
            reason.push_str(" (SQLite rejected the URI or one of its parameters)");
        }
        if is_misconfiguration(&reason) {
            CheckoutFailure::Misconfigured(reason)
        } else {
            CheckoutFailure::Unreachable(reason)
        }
    }
}

/// A connection from `pool`, waiting no longer than `wait`.
pub(super) fn checkout<C: DatabaseConnection>(
    pool: &DieselPool<C>,
    wait: Duration,
) -> Result<r2d2::PooledConnection<ConnectionManager<C>>, CheckoutFailure> {
    pool.get_timeout(wait).map_err(|err| {
        // r2d2 keeps only the text of the last error; its own part is a fixed prefix.
        let text = err.to_string();
        match text.strip_prefix("timed out waiting for connection: ") {
            Some(driver) => CheckoutFailure::from_driver(driver),
            None => {
                let state = pool.state();
                CheckoutFailure::NoReason {
                    waited: wait,
                    in_use: state.connections.saturating_sub(state.idle_connections),
                    max_size: pool.max_size(),
                }
            }
        }
    })
}

/// How long a check with `timeout` waits for a connection: `share` of it (the rest is for
/// its queries), and never longer than the pool's own `connection_timeout`.
///
/// `check_database_connected` waits three quarters, `check_migrations_applied` a little more:
/// r2d2 hands the driver's last error to one waiter only, and when both checks wait on a pool
/// that cannot connect, the one that reports the reason should have it.
pub(super) fn pool_wait<C: DatabaseConnection>(
    pool: &DieselPool<C>,
    timeout: Duration,
    share: f64,
) -> Duration {
    messages::pool_wait(pool.connection_timeout(), timeout, share)
}

/// Driver texts that mean the URL itself is wrong, not that the server is away: libpq's
/// connection string and URI parser, diesel's MySQL URL parser (SQLite: see [`SQLITE_BAD_URI`]).
const MISCONFIGURATION: &[&str] = &[
    // libpq
    "missing \"=\" after",
    "invalid connection option",
    "unterminated quoted string in connection info",
    "invalid percent-encoded token",
    "invalid uri",
    "in uri",
    "key/value separator",
    "invalid integer value",
    "invalid port number",
    // diesel (MySQL URLs, and any URL with a NUL byte)
    "mysql connection urls must be in the form",
    "unknown ssl_mode",
    "nul byte found",
];

/// What diesel reports when `sqlite3_open_v2` fails with `SQLITE_ERROR` (a file that cannot
/// be opened is `unable to open database file`): only a URI it cannot use (`?mode=sometimes`,
/// an unknown `vfs`) does that. The text depends on the `libsqlite3-sys` in the build: SQLite's
/// own `sqlite3_errstr` since 0.31, a table of its own before (which sqlx-sqlite 0.8 pins, and a
/// build has one version of it for diesel and sqlx alike).
const SQLITE_BAD_URI: &[&str] = &["SQL logic error", "SQL error or missing database"];

fn is_misconfiguration(reason: &str) -> bool {
    let lower = reason.to_ascii_lowercase();
    SQLITE_BAD_URI.iter().any(|text| reason.starts_with(text))
        || MISCONFIGURATION.iter().any(|pattern| lower.contains(pattern))
        // libpq: `invalid sslmode value: "x"`, `invalid target_session_attrs value: "x"`, ...
        || (lower.contains("invalid ") && lower.contains(" value: \""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_urls_are_told_apart_from_unreachable_servers() {
        for text in [
            "missing \"=\" after \"http://db\" in connection info string",
            "invalid integer value \"x\" for connection option \"port\"",
            "invalid sslmode value: \"sometimes\"",
            "MySQL connection URLs must be in the form `mysql://[[user]:[password]@]host[:port][/database][?unix_socket=socket-path]`",
            "SQL logic error (SQLite rejected the URI or one of its parameters)",
            "SQL error or missing database (SQLite rejected the URI or one of its parameters)",
        ] {
            assert!(is_misconfiguration(text), "{text}");
        }
        for text in [
            "connection to server at \"127.0.0.1\", port 1 failed: Connection refused Is the server running on that host and accepting TCP/IP connections?",
            "connection to server at \"127.0.0.1\", port 5432 failed: FATAL: password authentication failed for user \"app\"",
            "Access denied for user 'app'@'localhost' (using password: YES)",
            "Can't connect to server on '127.0.0.1' (115)",
            "unable to open database file",
            "Unable to open the database file",
        ] {
            assert!(!is_misconfiguration(text), "{text}");
        }
    }
}
