//! `check_migrations_applied`: the database has applied exactly the migrations this build embeds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use diesel::migration::MigrationSource;

use super::database::{checkout, find_pool, missing_pool, one_line, pool_wait, DatabaseConnection};
use super::{ids, DieselPool, MIGRATIONS_APPLIED};
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
/// | a migration the database has applied that this build does not know, one message each | `dockerflow.health.W002` | warning | `Database has migration <version> that this build does not know` |
/// | the database cannot be reached (or the app has no pool) | `dockerflow.health.I001` | info | `Can't connect to database to check migrations` |
///
/// W002 is what a rollback deployed over a newer schema looks like; see
/// [the module docs](super#migrations-the-build-does-not-know) for why it is a warning.
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
                log_cannot_check(&missing_pool::<C>());
                super::report(vec![cannot_check()])
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
        Err(reason) => {
            log_cannot_check(&reason);
            return vec![cannot_check()];
        }
    };
    compare(&known, &applied)
}

/// W001 for each known migration not applied, W002 for each applied one not known, in version
/// order.
fn compare(known: &BTreeMap<String, String>, applied: &[String]) -> Vec<CheckMessage> {
    let mut messages: Vec<CheckMessage> = known
        .iter()
        .filter(|(version, _)| !applied.contains(version))
        .map(|(_, name)| CheckMessage::warning(ids::W001, format!("Unapplied migration {name}")))
        .collect();
    let mut unknown: Vec<&String> = applied
        .iter()
        .filter(|version| !known.contains_key(*version))
        .collect();
    unknown.sort();
    unknown.dedup();
    messages.extend(unknown.into_iter().map(|version| {
        CheckMessage::warning(
            ids::W002,
            format!("Database has migration {version} that this build does not know"),
        )
    }));
    messages
}

fn cannot_check() -> CheckMessage {
    CheckMessage::info(ids::I001, "Can't connect to database to check migrations")
}

fn log_cannot_check(reason: &str) {
    tracing::info!(
        target: "dockerflow::checks",
        check = MIGRATIONS_APPLIED,
        reason = %reason,
        "cannot check migrations"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_and_unknown_migrations_are_reported_in_version_order() {
        let known: BTreeMap<String, String> = [
            ("20240101000000", "2024-01-01-000000_create_users"),
            ("20240201000000", "2024-02-01-000000_add_email"),
            ("20240301000000", "2024-03-01-000000_add_index"),
        ]
        .into_iter()
        .map(|(v, n)| (v.to_owned(), n.to_owned()))
        .collect();
        let applied = vec!["20240101000000".to_owned(), "20250101000000".to_owned()];
        let found: Vec<(String, String)> = compare(&known, &applied)
            .into_iter()
            .map(|m| (m.id().to_owned(), m.msg().to_owned()))
            .collect();
        assert_eq!(
            found,
            [
                (ids::W001, "Unapplied migration 2024-02-01-000000_add_email"),
                (ids::W001, "Unapplied migration 2024-03-01-000000_add_index"),
                (
                    ids::W002,
                    "Database has migration 20250101000000 that this build does not know"
                ),
            ]
            .map(|(id, msg)| (id.to_owned(), msg.to_owned()))
        );
        let all: Vec<String> = known.keys().cloned().collect();
        assert!(compare(&known, &all).is_empty());
    }
}
