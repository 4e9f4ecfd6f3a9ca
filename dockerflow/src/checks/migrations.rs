//! `check_migrations_applied`: the database has applied exactly the migrations this build embeds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use diesel::migration::MigrationSource;

use super::database::{checkout, find_pool, missing_pool, pool_wait, DatabaseConnection};
use super::messages;
use super::one_line;
use super::{DieselPool, MIGRATIONS_APPLIED};
use crate::check::{Check, CheckContext, CheckMessage, Prepared};
use crate::redact::redact;

/// The built-in `check_migrations_applied`: compares the migrations the build embeds
/// (`diesel_migrations::embed_migrations!`, or any diesel `MigrationSource`) with those the
/// database of the app's pool (the one [`database_connected`](super::database_connected) uses)
/// has applied.
///
/// | finding | id | level | message |
/// |---|---|---|---|
/// | a migration the database has not applied, one message each | `dockerflow.health.W001` | warning | `Unapplied migration <name>` |
/// | a migration the database has applied that this build does not know, one message each | `dockerflow.health.I002` | info | `Database has migration <version> that this build does not know` |
/// | the database cannot be reached (or the app has no pool) | `dockerflow.health.I001` | info | `Can't connect to database to check migrations` |
///
/// I002 is the normal state of the old version while a newer one rolls out; see
/// [the module docs](super#migrations-the-build-does-not-know) for why it is only `info`.
/// I001 is only `info` because `check_database_connected` already reports the database being
/// away as an error; the reason is logged.
///
/// It only reads `__diesel_schema_migrations` (a database that has never been migrated has none
/// applied), never creates it, and runs on the blocking pool.
///
/// ```no_run
/// use diesel::PgConnection;
/// use diesel_migrations::{embed_migrations, EmbeddedMigrations};
///
/// const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/demo/migrations/postgres");
///
/// let dockerflow = dockerflow::Dockerflow::builder()
///     .check(dockerflow::checks::database_connected::<PgConnection>())
///     .check(dockerflow::checks::migrations_applied::<PgConnection>(MIGRATIONS))
///     .build()?;
/// # Ok::<(), dockerflow::StartupError>(())
/// ```
#[track_caller]
pub fn migrations_applied<C: DatabaseConnection>(
    migrations: impl MigrationSource<C::Backend> + Send + Sync + 'static,
) -> Check {
    let migrations = Arc::new(migrations);
    Check::new(MIGRATIONS_APPLIED, move |ctx: &CheckContext<'_>| {
        let timeout = ctx.timeout();
        match find_pool::<C>(ctx) {
            Some(pool) => {
                let migrations = Arc::clone(&migrations);
                Prepared::blocking(move || check_migrations_applied(&pool, &*migrations, timeout))
            }
            None => {
                Prepared::messages(vec![
                    messages::cannot_check_migrations(&missing_pool::<C>()),
                ])
            }
        }
    })
}

/// What `check_migrations_applied` does, on a pool you hold: blocking, like
/// [`check_database_connected`](super::check_database_connected). An empty list means the
/// database has applied exactly the migrations of `migrations`.
pub fn check_migrations_applied<C, S>(
    pool: &DieselPool<C>,
    migrations: &S,
    timeout: Duration,
) -> Vec<CheckMessage>
where
    C: DatabaseConnection,
    S: MigrationSource<C::Backend> + ?Sized,
{
    let known: BTreeMap<String, String> = match migrations.migrations() {
        Ok(list) => list
            .iter()
            .map(|m| (m.name().version().to_string(), m.name().to_string()))
            .collect(),
        Err(err) => {
            // An embedded source cannot fail; a file-based one can (a folder that is gone).
            let reason = one_line(&redact(&err.to_string()));
            tracing::warn!(
                target: "dockerflow::checks",
                check = MIGRATIONS_APPLIED,
                reason = %reason,
                "cannot list this build's migrations"
            );
            return vec![CheckMessage::warning(
                MIGRATIONS_APPLIED,
                format!("Cannot list this build's migrations: {reason}"),
            )];
        }
    };
    let applied = checkout(pool, pool_wait(pool, timeout, 0.85))
        .map_err(|failure| failure.reason())
        .and_then(|mut conn| {
            C::applied_migration_versions(&mut conn)
                .map_err(|err| one_line(&redact(&err.to_string())))
        });
    let applied = match applied {
        Ok(applied) => applied,
        Err(reason) => return vec![messages::cannot_check_migrations(&reason)],
    };
    messages::compare_migrations(&known, &applied)
}
