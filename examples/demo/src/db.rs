//! The database: which backend `DATABASE_URL` names, its pool, its migrations and its checks,
//! and the few queries the routes need.

use std::time::Duration;

use actix_web::web;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, HandleError, Pool};
use diesel::{MysqlConnection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use dockerflow::checks::{self, DieselPool};
use dockerflow::Check;

use crate::cli::SettingError;

/// The SQLite file used when `DATABASE_URL` is not set.
pub(crate) const DEFAULT_SQLITE_FILE: &str = "dockerflow-demo.sqlite3";

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

diesel::table! {
    greetings (id) {
        id -> Integer,
        name -> Text,
        language -> Text,
    }
}

/// `DATABASE_URL`, sorted by backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DatabaseUrl {
    /// `postgres://` or `postgresql://`.
    Postgres(String),
    /// `mysql://` (MySQL or MariaDB).
    Mysql(String),
    /// `sqlite://...` or a file path.
    Sqlite(String),
}

impl DatabaseUrl {
    /// Sorts `url` by its scheme; one that is none of the three is an error naming
    /// `DATABASE_URL`.
    pub(crate) fn parse(url: &str) -> Result<DatabaseUrl, SettingError> {
        let url = url.trim();
        let scheme = url.find("://").map(|end| url[..end].to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => Ok(DatabaseUrl::Postgres(url.to_owned())),
            Some("mysql") => Ok(DatabaseUrl::Mysql(url.to_owned())),
            Some("sqlite") | None => Ok(DatabaseUrl::Sqlite(url.to_owned())),
            Some(_) => Err(SettingError::invalid(
                "DATABASE_URL",
                url,
                "postgres://..., mysql://..., sqlite://... or a SQLite file path",
            )),
        }
    }

    /// `check_database_connected` and `check_migrations_applied` for this backend.
    pub(crate) fn checks(&self) -> [Check; 2] {
        match self {
            DatabaseUrl::Postgres(_) => [
                checks::database_connected::<PgConnection>(),
                checks::migrations_applied::<PgConnection>(POSTGRES_MIGRATIONS),
            ],
            DatabaseUrl::Mysql(_) => [
                checks::database_connected::<MysqlConnection>(),
                checks::migrations_applied::<MysqlConnection>(MYSQL_MIGRATIONS),
            ],
            DatabaseUrl::Sqlite(_) => [
                checks::database_connected::<SqliteConnection>(),
                checks::migrations_applied::<SqliteConnection>(SQLITE_MIGRATIONS),
            ],
        }
    }

    /// The URL (or SQLite path) as given.
    pub(crate) fn url(&self) -> &str {
        match self {
            DatabaseUrl::Postgres(url) | DatabaseUrl::Mysql(url) | DatabaseUrl::Sqlite(url) => url,
        }
    }
}

/// The pool of whichever backend `DATABASE_URL` names.
#[derive(Clone)]
pub(crate) enum Database {
    /// PostgreSQL.
    Postgres(DieselPool<PgConnection>),
    /// MySQL or MariaDB.
    Mysql(DieselPool<MysqlConnection>),
    /// SQLite.
    Sqlite(DieselPool<SqliteConnection>),
}

/// Runs `$body` with `$conn` a `&mut` connection of whichever backend, from the pool.
macro_rules! with_connection {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db {
            Database::Postgres(pool) => {
                let mut pooled = pool.get()?;
                let $conn = &mut *pooled;
                $body
            }
            Database::Mysql(pool) => {
                let mut pooled = pool.get()?;
                let $conn = &mut *pooled;
                $body
            }
            Database::Sqlite(pool) => {
                let mut pooled = pool.get()?;
                let $conn = &mut *pooled;
                $body
            }
        }
    };
}

/// What can go wrong with a query of the demo's.
pub(crate) type DbError = Box<dyn std::error::Error + Send + Sync>;

impl Database {
    /// A pool that connects lazily: the server starts even when the database is away, and the
    /// heartbeat says so.
    pub(crate) fn new(url: &DatabaseUrl) -> Database {
        fn pool<C: diesel::r2d2::R2D2Connection + Send + 'static>(
        ) -> r2d2::Builder<ConnectionManager<C>> {
            Pool::builder()
                .max_size(4)
                .min_idle(Some(1))
                // Below the heartbeat's check timeout (3 s), so the demo's own check of the
                // greetings table reports a database that is away instead of timing out.
                .connection_timeout(Duration::from_secs(2))
                .error_handler(Box::new(LogConnectionErrors))
        }
        match url {
            DatabaseUrl::Postgres(url) => {
                Database::Postgres(pool().build_unchecked(ConnectionManager::new(url)))
            }
            DatabaseUrl::Mysql(url) => {
                Database::Mysql(pool().build_unchecked(ConnectionManager::new(url)))
            }
            DatabaseUrl::Sqlite(url) => Database::Sqlite(
                pool()
                    .connection_customizer(Box::new(SqliteSettings))
                    .build_unchecked(ConnectionManager::new(url)),
            ),
        }
    }

    /// Adds the pool to the app data, where the checks and the routes find it.
    pub(crate) fn register(&self, cfg: &mut web::ServiceConfig) {
        match self {
            Database::Postgres(pool) => cfg.app_data(web::Data::new(pool.clone())),
            Database::Mysql(pool) => cfg.app_data(web::Data::new(pool.clone())),
            Database::Sqlite(pool) => cfg.app_data(web::Data::new(pool.clone())),
        };
        cfg.app_data(web::Data::new(self.clone()));
    }

    /// Applies the pending migrations; returns the names of those applied. Blocking.
    pub(crate) fn migrate(&self) -> Result<Vec<String>, DbError> {
        fn run<C: MigrationHarness<C::Backend> + diesel::r2d2::R2D2Connection + 'static>(
            pool: &DieselPool<C>,
            migrations: EmbeddedMigrations,
        ) -> Result<Vec<String>, DbError> {
            let mut conn = pool.get()?;
            let applied = conn.run_pending_migrations(migrations)?;
            Ok(applied.iter().map(ToString::to_string).collect())
        }
        match self {
            Database::Postgres(pool) => run(pool, POSTGRES_MIGRATIONS),
            Database::Mysql(pool) => run(pool, MYSQL_MIGRATIONS),
            Database::Sqlite(pool) => run(pool, SQLITE_MIGRATIONS),
        }
    }

    /// Stores a greeting; returns its id. Blocking.
    pub(crate) fn add_greeting(&self, name: &str, language: &str) -> Result<i32, DbError> {
        let row = (greetings::name.eq(name), greetings::language.eq(language));
        let id = with_connection!(self, |conn| conn.transaction(|conn| {
            diesel::insert_into(greetings::table)
                .values(row)
                .execute(conn)?;
            greetings::table
                .select(greetings::id)
                .order(greetings::id.desc())
                .first::<i32>(conn)
        }))?;
        Ok(id)
    }

    /// The latest greetings, newest first. Blocking.
    pub(crate) fn latest_greetings(
        &self,
        limit: i64,
    ) -> Result<Vec<(i32, String, String)>, DbError> {
        Ok(with_connection!(self, |conn| greetings::table
            .select((greetings::id, greetings::name, greetings::language))
            .order(greetings::id.desc())
            .limit(limit)
            .load(conn))?)
    }

    /// How many greetings there are. Blocking.
    pub(crate) fn count_greetings(&self) -> Result<i64, DbError> {
        Ok(with_connection!(self, |conn| greetings::table
            .count()
            .get_result(conn))?)
    }
}

/// r2d2 logs connection errors through the `log` crate, as the driver wrote them; here they go
/// to `tracing`, redacted.
#[derive(Debug)]
struct LogConnectionErrors;

impl HandleError<diesel::r2d2::Error> for LogConnectionErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(
            error = %dockerflow::redact::redact(&error.to_string()),
            "cannot open a database connection"
        );
    }
}

/// SQLite: wait for a lock instead of failing at once, and let readers run beside a writer.
#[derive(Debug)]
struct SqliteSettings;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqliteSettings {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        use diesel::connection::SimpleConnection;
        conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_sorted_by_scheme() {
        assert!(matches!(
            DatabaseUrl::parse("postgres://db/app"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse("postgresql://db/app"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse("mysql://root@db/test"),
            Ok(DatabaseUrl::Mysql(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse("sqlite://app.db"),
            Ok(DatabaseUrl::Sqlite(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse("/data/app.sqlite3"),
            Ok(DatabaseUrl::Sqlite(_))
        ));
        let err = DatabaseUrl::parse("mongodb://app:hunter2@db/app")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("DATABASE_URL") && !err.contains("hunter2"),
            "{err}"
        );
    }
}
