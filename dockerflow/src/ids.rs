//! Every message id dockerflow reports, in one place: the built-in checks' (python-dockerflow's
//! ids, and I002), and the two any check can get from the runner (E011, E012). Use them to
//! silence some in code (`Builder::silence([ids::W001])`) or to match in tests.

/// `check_database_connected`, error: `Could not connect to database: <reason>`.
pub const E001: &str = "dockerflow.health.E001";
/// `check_database_connected`, error: `Database connection is not usable`.
pub const E002: &str = "dockerflow.health.E002";
/// `check_database_connected`, error: `Database misconfigured: "<reason>"`.
pub const E003: &str = "dockerflow.health.E003";
/// `check_redis_connected`, error: `Could not connect to redis: <reason>`.
pub const E004: &str = "dockerflow.health.E004";
/// `check_redis_connected`, error: `Redis misconfigured: "<reason>"`.
pub const E006: &str = "dockerflow.health.E006";
/// `check_redis_connected`, error: `Redis ping failed`.
pub const E007: &str = "dockerflow.health.E007";
/// `check_migrations_applied`, info: `Can't connect to database to check migrations`.
pub const I001: &str = "dockerflow.health.I001";
/// `check_migrations_applied`, warning: `Unapplied migration <name>`, one per migration.
pub const W001: &str = "dockerflow.health.W001";
/// `check_migrations_applied`, info: `Database has migration <version> that this build
/// does not know`, one per migration (normal during a rollout, so never a failure by
/// default).
pub const I002: &str = "dockerflow.health.I002";
/// Any check, error: `Check timed out after <n> ms`.
pub const E011: &str = "dockerflow.health.E011";
/// Any check, critical: `Check panicked`.
pub const E012: &str = "dockerflow.health.E012";
