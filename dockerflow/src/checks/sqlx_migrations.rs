//! `check_migrations_applied` for sqlx: the database has applied exactly the migrations of
//! this build's `sqlx::migrate::Migrator`.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::Pool;

use super::messages;
use super::one_line;
use super::sqlx_database::{acquire, find_pool, missing_pool, on_pool_runtime, SqlxDatabase};
use super::MIGRATIONS_APPLIED;
use crate::check::{Check, CheckContext, CheckMessage, Prepared};
use crate::redact::redact;

/// The built-in `check_migrations_applied` for a sqlx pool: the same check as
/// [`migrations_applied`](super::migrations_applied) (same name, ids, levels and texts),
/// comparing the migrations of `migrator` (`sqlx::migrate!()`, given as `&'static Migrator`
/// or as a `Migrator` value) with those the database of the app's `sqlx::Pool<DB>` (the one
/// [`sqlx_database_connected`](super::sqlx_database_connected) uses) has applied.
///
/// | finding | id | level | message |
/// |---|---|---|---|
/// | a migration the database has not applied, one message each | `dockerflow.health.W001` | warning | `Unapplied migration <version>_<description>` |
/// | a migration the database has applied that this build does not know, one message each | `dockerflow.health.I002` | info | `Database has migration <version> that this build does not know` |
/// | the database cannot be reached (or the app has no pool) | `dockerflow.health.I001` | info | `Can't connect to database to check migrations` |
///
/// A migration is named as its file is (`20240101000000_create_widgets`); the down halves of
/// reversible migrations are not counted, and a migration sqlx recorded as failed part way
/// ("dirty") is pending. It only reads `_sqlx_migrations` (a database that has never been
/// migrated has none applied), never creates it, and runs where the database check does.
///
/// ```no_run
/// use sqlx::migrate::Migrator;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // `static MIGRATOR: Migrator = sqlx::migrate!();` with sqlx's `macros` feature, or:
/// let migrator = Migrator::new(std::path::Path::new("./migrations")).await?;
/// let dockerflow = dockerflow::Dockerflow::builder()
///     .check(dockerflow::checks::sqlx_database_connected::<sqlx::Postgres>())
///     .check(dockerflow::checks::sqlx_migrations_applied::<sqlx::Postgres>(migrator))
///     .build()?;
/// # Ok(()) }
/// ```
#[track_caller]
pub fn sqlx_migrations_applied<DB: SqlxDatabase>(
    migrator: impl Borrow<Migrator> + Send + Sync + 'static,
) -> Check {
    let migrator = Arc::new(migrator);
    Check::new(MIGRATIONS_APPLIED, move |ctx: &CheckContext<'_>| {
        let timeout = ctx.timeout();
        match find_pool::<DB>(ctx) {
            Some(pool) => {
                let migrator = Arc::clone(&migrator);
                Prepared::future(async move {
                    check_sqlx_migrations_applied(&pool, (*migrator).borrow(), timeout).await
                })
            }
            None => Prepared::messages(vec![messages::cannot_check_migrations(
                &missing_pool::<DB>(),
            )]),
        }
    })
}

/// What the sqlx `check_migrations_applied` does, on a pool you hold. An empty list means the
/// database has applied exactly the migrations of `migrator`.
pub async fn check_sqlx_migrations_applied<DB: SqlxDatabase>(
    pool: &Pool<DB>,
    migrator: &Migrator,
    timeout: Duration,
) -> Vec<CheckMessage> {
    let known: BTreeMap<i64, String> = migrator
        .iter()
        .filter(|migration| !migration.migration_type.is_down_migration())
        .map(|migration| {
            let name = format!(
                "{}_{}",
                migration.version,
                migration.description.replace(' ', "_")
            );
            (migration.version, name)
        })
        .collect();
    let pool = pool.clone();
    on_pool_runtime(async move { compare_now(&pool, &known, timeout).await }).await
}

async fn compare_now<DB: SqlxDatabase>(
    pool: &Pool<DB>,
    known: &BTreeMap<i64, String>,
    timeout: Duration,
) -> Vec<CheckMessage> {
    let started = Instant::now();
    let mut conn = match acquire(pool, timeout, 0.85, false).await {
        Ok(conn) => conn,
        Err(failure) => return vec![messages::cannot_check_migrations(failure.reason())],
    };
    let left = timeout
        .mul_f64(0.9)
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    let applied = match tokio::time::timeout(left, DB::applied_migration_versions(&mut conn)).await
    {
        Ok(Ok(applied)) => applied,
        Ok(Err(reason)) => {
            return vec![messages::cannot_check_migrations(&one_line(&redact(
                &reason,
            )))];
        }
        Err(_) => {
            conn.close_on_drop();
            return vec![messages::cannot_check_migrations(&format!(
                "no answer within {} ms",
                left.as_millis()
            ))];
        }
    };
    messages::compare_migrations(known, &applied)
}
