//! The one place that decides the ids, levels and texts of the database checks, for every
//! family (diesel over r2d2, sqlx): both build their messages here, so they cannot drift.

use std::collections::BTreeMap;
use std::fmt::Display;

use super::{DATABASE_CONNECTED, MIGRATIONS_APPLIED};
use crate::check::CheckMessage;
use crate::ids;

/// E001, error: no connection could be had. `reason` is already redacted and on one line.
pub(super) fn cannot_connect(reason: &str) -> CheckMessage {
    CheckMessage::error(
        ids::E001,
        format!("Could not connect to database: {reason}"),
    )
}

/// E002, error: a connection was handed out and failed the trivial query. The driver's
/// `reason` (already redacted and on one line) is logged and kept as the hint; the body says
/// only what the reference says.
pub(super) fn not_usable(reason: &str) -> CheckMessage {
    tracing::warn!(
        target: "dockerflow::checks",
        check = DATABASE_CONNECTED,
        reason = %reason,
        "a pooled database connection failed the trivial query"
    );
    CheckMessage::error(ids::E002, "Database connection is not usable").with_hint(reason)
}

/// E003, error: the URL, the driver's settings or the app are wrong.
pub(super) fn misconfigured(reason: &str) -> CheckMessage {
    CheckMessage::error(ids::E003, format!("Database misconfigured: \"{reason}\""))
}

/// I001, info: the migrations could not be read; the `reason` is logged, not shown (the
/// database check reports the outage as an error).
pub(super) fn cannot_check_migrations(reason: &str) -> CheckMessage {
    tracing::info!(
        target: "dockerflow::checks",
        check = MIGRATIONS_APPLIED,
        reason = %reason,
        "cannot check migrations"
    );
    CheckMessage::info(ids::I001, "Can't connect to database to check migrations")
}

/// W001, warning: this build needs a migration the database has not applied.
pub(super) fn unapplied_migration(name: &str) -> CheckMessage {
    CheckMessage::warning(ids::W001, format!("Unapplied migration {name}"))
}

/// I002, info: the database has applied a migration this build does not know (the normal
/// state of the old version during a rollout, so never a failure by default).
pub(super) fn unknown_migration(version: impl Display) -> CheckMessage {
    CheckMessage::info(
        ids::I002,
        format!("Database has migration {version} that this build does not know"),
    )
}

/// The migrations of the build (`known`: version to name) against those the database has
/// applied: one W001 per known migration not applied, then one I002 per applied migration not
/// known, each in version order.
pub(super) fn compare_migrations<V: Ord + Display>(
    known: &BTreeMap<V, String>,
    applied: &[V],
) -> Vec<CheckMessage> {
    let mut messages: Vec<CheckMessage> = known
        .iter()
        .filter(|(version, _)| !applied.contains(version))
        .map(|(_, name)| unapplied_migration(name))
        .collect();
    let mut unknown: Vec<&V> = applied
        .iter()
        .filter(|version| !known.contains_key(*version))
        .collect();
    unknown.sort();
    unknown.dedup();
    messages.extend(unknown.into_iter().map(unknown_migration));
    messages
}

/// The reason E003 (and I001) give when the app has no such pool: what to add, e.g.
/// `web::Data<sqlx::Pool<Postgres>>`.
pub(super) fn missing_pool(pool_type: &str) -> String {
    format!(
        "no database pool in the app data: add web::Data<{pool_type}> \
         with App::app_data(web::Data::new(pool))"
    )
}

/// How long a check with `timeout` waits for a connection: `share` of it (the rest is for its
/// queries), never longer than the pool's own limit, and at least a millisecond.
pub(super) fn pool_wait(
    pool_timeout: std::time::Duration,
    check_timeout: std::time::Duration,
    share: f64,
) -> std::time::Duration {
    check_timeout
        .mul_f64(share)
        .min(pool_timeout)
        .max(std::time::Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::checks::one_line;
    use crate::Level;

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
        let found: Vec<(String, Level, String)> = compare_migrations(&known, &applied)
            .into_iter()
            .map(|m| (m.id().to_owned(), m.level(), m.msg().to_owned()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    ids::W001,
                    Level::Warning,
                    "Unapplied migration 2024-02-01-000000_add_email"
                ),
                (
                    ids::W001,
                    Level::Warning,
                    "Unapplied migration 2024-03-01-000000_add_index"
                ),
                (
                    ids::I002,
                    Level::Info,
                    "Database has migration 20250101000000 that this build does not know"
                ),
            ]
            .map(|(id, level, msg)| (id.to_owned(), level, msg.to_owned()))
        );
        let all: Vec<String> = known.keys().cloned().collect();
        assert!(compare_migrations(&known, &all).is_empty());
    }

    #[test]
    fn integer_versions_compare_the_same_way() {
        let known: BTreeMap<i64, String> = [(2, "2_b".to_owned()), (10, "10_c".to_owned())]
            .into_iter()
            .collect();
        let texts: Vec<String> = compare_migrations(&known, &[10, 30, 3, 30])
            .iter()
            .map(|m| m.msg().to_owned())
            .collect();
        assert_eq!(
            texts,
            [
                "Unapplied migration 2_b",
                "Database has migration 3 that this build does not know",
                "Database has migration 30 that this build does not know",
            ]
        );
    }

    #[test]
    fn the_ids_levels_and_texts_are_the_contracts() {
        for (message, id, level, text) in [
            (
                cannot_connect("refused"),
                ids::E001,
                Level::Error,
                "Could not connect to database: refused",
            ),
            (
                not_usable("gone"),
                ids::E002,
                Level::Error,
                "Database connection is not usable",
            ),
            (
                misconfigured("bad url"),
                ids::E003,
                Level::Error,
                "Database misconfigured: \"bad url\"",
            ),
            (
                cannot_check_migrations("refused"),
                ids::I001,
                Level::Info,
                "Can't connect to database to check migrations",
            ),
        ] {
            assert_eq!(
                (message.id(), message.level(), message.msg()),
                (id, level, text)
            );
        }
    }

    #[test]
    fn the_pool_waits_less_than_the_check() {
        let three = Duration::from_secs(3);
        assert_eq!(
            pool_wait(Duration::from_secs(30), three, 0.75),
            Duration::from_millis(2250)
        );
        assert_eq!(
            pool_wait(Duration::from_millis(500), three, 0.75),
            Duration::from_millis(500)
        );
        assert_eq!(
            pool_wait(Duration::from_secs(30), Duration::from_millis(1), 0.75),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn driver_text_becomes_one_line() {
        assert_eq!(
            one_line("failed: Connection refused\n\tIs the server running?\n"),
            "failed: Connection refused Is the server running?"
        );
    }
}
