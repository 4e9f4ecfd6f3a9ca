//! `check_database_connected` for sqlx: a connection from the app's `sqlx::Pool` answers a
//! trivial query. Async all the way, on a runtime that lives as long as the process (see
//! [`on_pool_runtime`]).

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{ConnectOptions, Connection, Database, Pool};

use super::messages;
use super::one_line;
use super::DATABASE_CONNECTED;
use crate::check::{short_type_name, Check, CheckContext, CheckMessage, Prepared};
use crate::redact::{add_secret, redact};

/// A sqlx database the sqlx checks can use: `sqlx::Postgres` (feature `sqlx-postgres`),
/// `sqlx::MySql` (`sqlx-mysql`) or `sqlx::Sqlite` (`sqlx-sqlite`).
///
/// The checks need a few queries that differ by backend (the trivial query, whether sqlx's
/// bookkeeping table exists), so the trait is implemented here for sqlx's three databases and
/// cannot be implemented elsewhere.
pub trait SqlxDatabase: Database + sqlx_sealed::Sealed {
    /// The trivial query `check_database_connected` runs.
    ///
    /// `SELECT 1` for PostgreSQL and MySQL. SQLite answers `SELECT 1` without reading the file,
    /// so there the query reads the schema: a file that is not a database then fails it.
    const USABLE_QUERY: &'static str;

    /// Runs [`USABLE_QUERY`](Self::USABLE_QUERY).
    #[doc(hidden)]
    fn run_usable_query(conn: &mut Self::Connection) -> BoxFuture<'_, Result<(), sqlx::Error>>;

    /// The versions sqlx recorded as applied in `_sqlx_migrations` (a migration that failed
    /// part way, sqlx's "dirty" one, is not applied), or none when the table does not exist.
    /// Read-only: unlike sqlx's `Migrator::run`, this never creates the table.
    #[doc(hidden)]
    fn applied_migration_versions(
        conn: &mut Self::Connection,
    ) -> BoxFuture<'_, Result<Vec<i64>, String>>;
}

mod sqlx_sealed {
    pub trait Sealed {}
}

/// Implements [`SqlxDatabase`] for one of sqlx's databases: the trivial query, and a query
/// giving a count > 0 when `_sqlx_migrations` exists.
macro_rules! sqlx_database {
    ($feature:literal, $db:ty, usable: $usable:expr, migrations_table_exists: $exists:expr) => {
        #[cfg(feature = $feature)]
        impl sqlx_sealed::Sealed for $db {}

        #[cfg(feature = $feature)]
        impl SqlxDatabase for $db {
            const USABLE_QUERY: &'static str = $usable;

            fn run_usable_query(
                conn: &mut Self::Connection,
            ) -> BoxFuture<'_, Result<(), sqlx::Error>> {
                Box::pin(async move {
                    sqlx::query(Self::USABLE_QUERY)
                        .execute(conn)
                        .await
                        .map(|_| ())
                })
            }

            fn applied_migration_versions(
                conn: &mut Self::Connection,
            ) -> BoxFuture<'_, Result<Vec<i64>, String>> {
                Box::pin(async move {
                    use sqlx::migrate::Migrate;
                    let tables: i64 = sqlx::query_scalar($exists)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(|err| err.to_string())?;
                    if tables == 0 {
                        return Ok(Vec::new());
                    }
                    let dirty = conn.dirty_version().await.map_err(|err| err.to_string())?;
                    let applied = conn
                        .list_applied_migrations()
                        .await
                        .map_err(|err| err.to_string())?;
                    Ok(applied
                        .into_iter()
                        .map(|migration| migration.version)
                        .filter(|version| Some(*version) != dirty)
                        .collect())
                })
            }
        }
    };
}

sqlx_database!(
    "sqlx-postgres",
    sqlx::Postgres,
    usable: "SELECT 1",
    // `to_regclass` resolves the name through the search path, as sqlx does.
    migrations_table_exists: "SELECT COUNT(*) \
        FROM (SELECT to_regclass('_sqlx_migrations') AS t) AS lookup WHERE t IS NOT NULL"
);

sqlx_database!(
    "sqlx-mysql",
    sqlx::MySql,
    usable: "SELECT 1",
    migrations_table_exists: "SELECT COUNT(*) FROM information_schema.tables \
        WHERE table_schema = DATABASE() AND table_name = '_sqlx_migrations'"
);

sqlx_database!(
    "sqlx-sqlite",
    sqlx::Sqlite,
    usable: "SELECT COUNT(*) FROM sqlite_master",
    migrations_table_exists: "SELECT COUNT(*) FROM sqlite_master \
        WHERE type = 'table' AND name = '_sqlx_migrations'"
);

/// The built-in `check_database_connected` for a sqlx pool of `DB` in the app data: the same
/// check as [`database_connected`](super::database_connected) (same name, ids, levels and
/// texts), async all the way.
///
/// It takes a connection from the app's `web::Data<sqlx::Pool<DB>>` (a bare `sqlx::Pool<DB>`
/// registered with `App::app_data` is found too) and runs a trivial query, on a runtime of
/// dockerflow's that lives as long as the process, so that the connections it opens for the
/// pool keep working for the app's handlers whatever becomes of the check:
///
/// | finding | id | message |
/// |---|---|---|
/// | no connection within the time allowed (refused, timed out, wrong password, ...) | `dockerflow.health.E001` | `Could not connect to database: <reason>` |
/// | a connection was handed out but the query failed | `dockerflow.health.E002` | `Database connection is not usable` |
/// | sqlx reports a configuration error (a charset MySQL does not have, TLS required by a build without TLS), or the app has no such pool | `dockerflow.health.E003` | `Database misconfigured: "<reason>"` |
///
/// The wait for a connection is bounded below the check's timeout (and the pool's own
/// `acquire_timeout`). sqlx's pool keeps retrying a refused connection until its deadline and
/// then says only that it timed out, so when it gives up the check opens one connection of
/// its own with the pool's options to learn the driver's reason: a database that does not
/// answer is reported as E001 with what went wrong, rather than as a timed-out check. The
/// pool's password is registered with [`redact`](crate::redact) before anything is reported.
///
/// ```no_run
/// use actix_web::{web, App, HttpServer};
/// use sqlx::postgres::PgPoolOptions;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = PgPoolOptions::new().connect_lazy("postgres://app@db/app")?;
/// let dockerflow = dockerflow::Dockerflow::builder()
///     .check(dockerflow::checks::sqlx_database_connected::<sqlx::Postgres>())
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
pub fn sqlx_database_connected<DB: SqlxDatabase>() -> Check {
    Check::new(DATABASE_CONNECTED, |ctx: &CheckContext<'_>| {
        let timeout = ctx.timeout();
        match find_pool::<DB>(ctx) {
            Some(pool) => {
                Prepared::future(async move { check_sqlx_database_connected(&pool, timeout).await })
            }
            None => Prepared::messages(vec![messages::misconfigured(&missing_pool::<DB>())]),
        }
    })
}

/// What the sqlx `check_database_connected` does, on a pool you hold, for an `async`
/// check of your own (a second database under a name of its own, say).
///
/// `timeout` is how long the caller can wait; the pool is given a part of it, the query the
/// rest. An empty list means the database answered.
///
/// ```no_run
/// use actix_web::web;
/// use dockerflow::CheckMessage;
///
/// struct Replica(sqlx::PgPool);
///
/// #[dockerflow::check]
/// async fn check_replica_connected(replica: web::Data<Replica>) -> Vec<CheckMessage> {
///     dockerflow::checks::check_sqlx_database_connected(&replica.0, std::time::Duration::from_secs(2)).await
/// }
/// # fn main() {}
/// ```
pub async fn check_sqlx_database_connected<DB: SqlxDatabase>(
    pool: &Pool<DB>,
    timeout: Duration,
) -> Vec<CheckMessage> {
    let pool = pool.clone();
    on_pool_runtime(async move { database_connected_now(&pool, timeout).await }).await
}

async fn database_connected_now<DB: SqlxDatabase>(
    pool: &Pool<DB>,
    timeout: Duration,
) -> Vec<CheckMessage> {
    let started = Instant::now();
    let mut conn = match acquire(pool, timeout, 0.75, true).await {
        Ok(conn) => conn,
        Err(failure) => return vec![failure.into_message()],
    };
    let left = timeout
        .mul_f64(0.9)
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    let reason = match tokio::time::timeout(left, DB::run_usable_query(&mut conn)).await {
        Ok(Ok(())) => return Vec::new(),
        Ok(Err(err)) => one_line(&redact(&err.to_string())),
        Err(_) => format!("no answer to the query within {} ms", left.as_millis()),
    };
    // The connection is broken or stuck: it must not go back to the pool.
    conn.close_on_drop();
    vec![messages::not_usable(&reason)]
}

/// Runs `work` on a runtime of its own that lives as long as the process, and cancels it when
/// the returned future is dropped (the check timed out).
///
/// A sqlx connection belongs to the runtime that opened it, and the ones the checks open go
/// back into the app's pool, where the app's handlers take them. Opened on the check's own
/// thread, they would die with it (a `Dockerflow` that is dropped and built again, in tests or
/// in an app that rebuilds its service, ends its check threads) and break the app's queries.
pub(super) async fn on_pool_runtime<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> T {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dockerflow-sqlx")
            .enable_all()
            .build()
            .expect("dockerflow: cannot start the sqlx checks' runtime")
    });
    /// Aborts the task when the check's future is dropped before it finished.
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut task = AbortOnDrop(runtime.spawn(work));
    match (&mut task.0).await {
        Ok(value) => value,
        // The runner reports a panic as E012, as if it had happened here.
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(_) => panic!("the sqlx check's task was cancelled"),
    }
}

/// The pool of `DB` in the app data, as `web::Data<Pool>` or a bare `Pool`.
pub(super) fn find_pool<DB: Database>(ctx: &CheckContext<'_>) -> Option<Pool<DB>> {
    ctx.data::<Pool<DB>>()
}

/// The reason E003 (and I001) give when the app has no pool of `DB`: what to add.
pub(super) fn missing_pool<DB>() -> String {
    let db = short_type_name::<DB>();
    messages::missing_pool(&format!("sqlx::Pool<{db}>"))
}

/// Why no connection came out of the pool; every reason is redacted and on one line.
pub(super) enum AcquireFailure {
    /// sqlx says the settings cannot work (E003).
    Misconfigured(String),
    /// The database did not let us in within the time allowed (E001).
    Unreachable(String),
}

impl AcquireFailure {
    pub(super) fn reason(&self) -> &str {
        match self {
            AcquireFailure::Misconfigured(reason) | AcquireFailure::Unreachable(reason) => reason,
        }
    }

    fn into_message(self) -> CheckMessage {
        match self {
            AcquireFailure::Misconfigured(reason) => messages::misconfigured(&reason),
            AcquireFailure::Unreachable(reason) => messages::cannot_connect(&reason),
        }
    }

    /// A failure from sqlx's error, naming the server for a network error.
    fn from_error(err: &sqlx::Error, server: Option<&str>) -> Self {
        let text = one_line(&redact(&err.to_string()));
        match err {
            sqlx::Error::Configuration(_) => AcquireFailure::Misconfigured(text),
            // Only sqlx itself says this: the connect options ask for TLS and the build has none.
            sqlx::Error::Tls(_) if text.contains("built without TLS support") => {
                AcquireFailure::Misconfigured(text)
            }
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => match server {
                Some(server) => AcquireFailure::Unreachable(format!("{text} ({server})")),
                None => AcquireFailure::Unreachable(text),
            },
            _ => AcquireFailure::Unreachable(text),
        }
    }
}

/// A connection from `pool` within `share` of `timeout` (and the pool's `acquire_timeout`).
///
/// With `diagnose`, the pool is given half of that; when it only says it timed out (sqlx
/// retries a refused connection until its deadline and keeps no reason), one connection of the
/// check's own, with the pool's options and the rest of the time, tells why.
pub(super) async fn acquire<DB: Database>(
    pool: &Pool<DB>,
    timeout: Duration,
    share: f64,
    diagnose: bool,
) -> Result<PoolConnection<DB>, AcquireFailure> {
    let started = Instant::now();
    let options = pool.connect_options();
    let url = options.to_url_lossy();
    register_password(url.password());
    let server = url
        .host_str()
        .filter(|host| !host.is_empty())
        .map(|host| match url.port() {
            Some(port) => format!("server {host}:{port}"),
            None => format!("server {host}"),
        });
    let budget = timeout.mul_f64(share);
    let pool_share = if diagnose { share / 2.0 } else { share };
    let wait = messages::pool_wait(pool.options().get_acquire_timeout(), timeout, pool_share);
    match tokio::time::timeout(wait, pool.acquire()).await {
        Ok(Ok(conn)) => return Ok(conn),
        Ok(Err(sqlx::Error::PoolTimedOut)) | Err(_) => {}
        Ok(Err(sqlx::Error::PoolClosed)) => {
            return Err(AcquireFailure::Unreachable(
                "the pool was closed by the app".to_owned(),
            ))
        }
        Ok(Err(err)) => return Err(AcquireFailure::from_error(&err, server.as_deref())),
    }
    let waited = started.elapsed();
    let max = pool.options().get_max_connections();
    if pool.size() >= max && pool.num_idle() == 0 {
        return Err(AcquireFailure::Unreachable(format!(
            "no free connection in the pool within {} ms (all {max} in use)",
            waited.as_millis()
        )));
    }
    if !diagnose {
        return Err(AcquireFailure::Unreachable(format!(
            "the pool had no connection within {} ms",
            waited.as_millis()
        )));
    }
    let left = budget.saturating_sub(waited).max(Duration::from_millis(1));
    match tokio::time::timeout(left, options.connect()).await {
        Ok(Err(err)) => Err(AcquireFailure::from_error(&err, server.as_deref())),
        // The server let this one in: the pool's own attempts were slower than allowed.
        Ok(Ok(conn)) => {
            let _ = tokio::time::timeout(Duration::from_millis(100), conn.close()).await;
            Err(AcquireFailure::Unreachable(format!(
                "the pool had no connection within {} ms",
                waited.as_millis()
            )))
        }
        Err(_) => {
            let waited = started.elapsed().as_millis();
            Err(AcquireFailure::Unreachable(match &server {
                Some(server) => {
                    format!("no connection could be opened within {waited} ms ({server})")
                }
                None => format!("no connection could be opened within {waited} ms"),
            }))
        }
    }
}

/// The pool knows its password (unlike an r2d2 pool): mask it, as written and percent-decoded
/// (drivers echo either), wherever it might appear, as `Builder::redact_url_password` does.
fn register_password(encoded: Option<&str>) {
    if let Some(encoded) = encoded.filter(|password| !password.is_empty()) {
        add_secret(percent_encoding::percent_decode_str(encoded).decode_utf8_lossy());
        add_secret(encoded);
    }
}
