//! Built-in checks, each behind the feature of the client it talks to. Add one with
//! [`Builder::check`](crate::Builder::check); it finds the pool or client in the app data.
//!
//! | check | family | feature | needs in the app data | turn it on |
//! |---|---|---|---|---|
//! | `check_database_connected` | diesel over r2d2 | `postgres`, `mysql`, `sqlite` | `web::Data<r2d2::Pool<ConnectionManager<C>>>` | `.check(checks::database_connected::<C>())` |
//! | `check_migrations_applied` | diesel over r2d2 | `postgres`, `mysql`, `sqlite` | the same pool | `.check(checks::migrations_applied::<C>(MIGRATIONS))` |
//! | `check_database_connected` | sqlx | `sqlx-postgres`, `sqlx-mysql`, `sqlx-sqlite` | `web::Data<sqlx::Pool<DB>>` | `.check(checks::sqlx_database_connected::<DB>())` |
//! | `check_migrations_applied` | sqlx | `sqlx-postgres`, `sqlx-mysql`, `sqlx-sqlite` | the same pool | `.check(checks::sqlx_migrations_applied::<DB>(&MIGRATOR))` |
//! | `check_redis_connected` | redis-rs | `redis` | `web::Data<redis::Client>` | `.check(checks::redis_connected())` |
//!
//! `C` is diesel's `PgConnection`, `MysqlConnection` or `SqliteConnection`; `DB` is sqlx's
//! `Postgres`, `MySql` or `Sqlite`. An app uses one family for a database: both register the
//! same check names. The sqlx features turn on sqlx's features of the same name (`sqlite` is
//! SQLite bundled, as sqlx recommends) with the tokio runtime; TLS is the app's choice.
//!
//! Their names, ids, levels and messages are those of python-dockerflow's Django checks (the
//! ids are in [`ids`](crate::ids)); both database families build them in one place, so they say the same
//! thing for the same finding. A check whose pool or client is missing from the app data says
//! so, naming the type to add (`dockerflow.health.E003` or `E006`); nothing panics, and every
//! failure is a message. diesel's work runs on the blocking pool, Redis' on the check's own
//! thread, sqlx's on a runtime that outlives the checks (the connections it opens go back into
//! the app's pool and must keep working there), and each waits for its server a little less than the check's
//! timeout, so that a server that does not answer is reported with the driver's reason rather
//! than as a timed-out check.
//!
//! # Migrations the build does not know
//!
//! Besides one `dockerflow.health.W001` (warning) per migration the database has not applied,
//! `check_migrations_applied` reports each migration the database *has* applied but this build
//! does not know, as `dockerflow.health.I002` at level **info**. That is the normal state of
//! every pod of the old version in an expand/contract rollout, from the moment the migration
//! job of the new version finishes: were it a warning, the default fail level would make all of
//! them answer 500 at once, and with the heartbeat as readiness probe a Service could be left
//! with no ready pod. It shows in `details` (and in the status, `info`) without failing the
//! heartbeat. A pending migration (W001) stays a warning: this build needs a migration that has
//! not run, and that should hold a rollout. To fail on I002 too (a rollback deployed over a
//! schema it was not written for), alert on the `info` status or the id, or check it in a check
//! of your own.
//!
//! # Secrets
//!
//! Every text a driver gives passes [`redact`](crate::redact::redact) before it reaches a body or
//! a log line, keeping what helps (host, port, "connection refused") and masking URL passwords.
//! The Redis check also masks the password of the client it uses. A diesel pool does not tell the
//! URL it was built from: register the database password with
//! [`Builder::redact`](crate::Builder::redact).
#![cfg_attr(
    all(feature = "postgres", feature = "redis"),
    doc = r#"
# Example

All three, for PostgreSQL and Redis:

```no_run
use actix_web::{web, App, HttpServer};
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::PgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use dockerflow::{checks, Dockerflow};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/demo/migrations/postgres");

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")?;
    let pool = Pool::builder().build_unchecked(ConnectionManager::<PgConnection>::new(&url));
    let redis = redis::Client::open(std::env::var("REDIS_URL")?)?;
    let dockerflow = Dockerflow::builder()
        .check(checks::database_connected::<PgConnection>())
        .check(checks::migrations_applied::<PgConnection>(MIGRATIONS))
        .check(checks::redis_connected())
        .build()?;
    HttpServer::new(move || {
        let dockerflow = dockerflow.clone();
        App::new()
            .app_data(web::Data::new(pool.clone()))
            .app_data(web::Data::new(redis.clone()))
            .configure(move |cfg| dockerflow.configure(cfg))
    })
    .bind(("127.0.0.1", 8000))?
    .run()
    .await?;
    Ok(())
}
```
"#
)]

#[cfg(feature = "diesel-checks")]
mod database;
#[cfg(any(feature = "diesel-checks", feature = "sqlx-checks"))]
mod messages;
#[cfg(feature = "diesel-checks")]
mod migrations;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlx-checks")]
mod sqlx_database;
#[cfg(feature = "sqlx-checks")]
mod sqlx_migrations;

#[cfg(feature = "diesel-checks")]
pub use self::database::{check_database_connected, database_connected, DatabaseConnection};
#[cfg(feature = "diesel-checks")]
pub use self::migrations::{check_migrations_applied, migrations_applied};
#[cfg(feature = "redis")]
pub use self::redis::{check_redis_connected, redis_connected, redis_connected_to};
#[cfg(feature = "sqlx-checks")]
pub use self::sqlx_database::{
    check_sqlx_database_connected, sqlx_database_connected, SqlxDatabase,
};
#[cfg(feature = "sqlx-checks")]
pub use self::sqlx_migrations::{check_sqlx_migrations_applied, sqlx_migrations_applied};

/// The pool type the database checks look for in the app data, for a diesel connection `C`:
/// `r2d2::Pool<diesel::r2d2::ConnectionManager<C>>`.
#[cfg(feature = "diesel-checks")]
pub type DieselPool<C> = r2d2::Pool<diesel::r2d2::ConnectionManager<C>>;

/// The name of the database check in the heartbeat.
pub const DATABASE_CONNECTED: &str = "check_database_connected";
/// The name of the migrations check in the heartbeat.
pub const MIGRATIONS_APPLIED: &str = "check_migrations_applied";
/// The name of the Redis check in the heartbeat.
pub const REDIS_CONNECTED: &str = "check_redis_connected";

/// Driver texts span lines (libpq adds a tab-indented hint): one line, single spaces.
#[cfg(any(feature = "diesel-checks", feature = "sqlx-checks", feature = "redis"))]
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
