//! The built-in `check_migrations_applied` against the machine's PostgreSQL and MariaDB and a
//! SQLite file: a fresh database (every migration pending: W001), one migrated part way, one fully
//! migrated (ok), one that has a migration this build does not know (I002, info: the old version's
//! state during a rollout, so the heartbeat still passes), and one that cannot be
//! reached (I001).

use actix_web::http::StatusCode;
use actix_web::web;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::{Connection, MysqlConnection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use dockerflow::checks::{self, DatabaseConnection, MIGRATIONS_APPLIED};
use dockerflow::ids;
use dockerflow_tests::databases::{pool, Backend, TempDatabase};
use dockerflow_tests::heartbeats::{
    self, assert_level, assert_migrations_unreachable, migrations_story, with_checks,
};
use dockerflow_tests::net::closed_port;
use dockerflow_tests::{serve, with_data};
use serde_json::Value;

const POSTGRES: EmbeddedMigrations = embed_migrations!("fixtures/migrations/postgres");
const MYSQL: EmbeddedMigrations = embed_migrations!("fixtures/migrations/mysql");
const SQLITE: EmbeddedMigrations = embed_migrations!("fixtures/migrations/sqlite");

/// A build's migrations (a `fn`, as `EmbeddedMigrations` is not `Copy`).
type Source = fn() -> EmbeddedMigrations;

/// One heartbeat with only `check_migrations_applied::<C>(migrations)`.
async fn heartbeat<C: DatabaseConnection>(
    migrations: EmbeddedMigrations,
    pool: Option<Pool<ConnectionManager<C>>>,
) -> (StatusCode, Value) {
    heartbeats::heartbeat([checks::migrations_applied::<C>(migrations)], pool).await
}

/// Applies the first `n` migrations, as `diesel migration run` would.
fn migrate<C>(db: &TempDatabase, migrations: Source, n: usize)
where
    C: Connection + MigrationHarness<C::Backend>,
{
    let mut conn = C::establish(&db.url()).unwrap();
    for _ in 0..n {
        conn.run_next_migration(migrations()).unwrap();
    }
}

/// [`migrations_story`] on a database of `backend`.
async fn lifecycle<C>(backend: Backend, migrations: Source)
where
    C: DatabaseConnection + MigrationHarness<<C as Connection>::Backend>,
{
    let db = TempDatabase::new(backend);
    let pool: Pool<ConnectionManager<C>> = pool(&db.url());
    migrations_story(
        [
            "2024-01-01-000000_create_widgets",
            "2024-02-01-000000_add_widgets_colour",
        ],
        async || heartbeat::<C>(migrations(), Some(pool.clone())).await,
        async || migrate::<C>(&db, migrations, 1),
        async || db.execute(NEWER_BUILD),
    )
    .await;
}

/// What a newer build's `diesel migration run` records.
const NEWER_BUILD: &str =
    "INSERT INTO __diesel_schema_migrations (version) VALUES ('20990101000000')";

#[actix_web::test]
async fn postgres_pending_then_applied_then_unknown_migrations() {
    lifecycle::<PgConnection>(Backend::Postgres, || POSTGRES).await;
}

#[actix_web::test]
async fn mariadb_pending_then_applied_then_unknown_migrations() {
    lifecycle::<MysqlConnection>(Backend::Mysql, || MYSQL).await;
}

#[actix_web::test]
async fn sqlite_pending_then_applied_then_unknown_migrations() {
    lifecycle::<SqliteConnection>(Backend::Sqlite, || SQLITE).await;
}

#[actix_web::test]
async fn the_check_creates_nothing_in_a_fresh_database() {
    // A heartbeat must not run DDL: diesel's own `applied_migrations` would create
    // `__diesel_schema_migrations`; the check only reads it.
    let db = TempDatabase::new(Backend::Sqlite);
    let (status, body) = heartbeat::<SqliteConnection>(SQLITE, Some(pool(&db.url()))).await;
    assert_level(status, &body, MIGRATIONS_APPLIED, "warning");
    let tables = db.count("SELECT COUNT(*) AS n FROM sqlite_master");
    assert_eq!(tables, 0, "the heartbeat created something");
}

/// [`assert_migrations_unreachable`] on a pool of `url`.
async fn unreachable<C: DatabaseConnection>(migrations: EmbeddedMigrations, url: &str) {
    let (status, body) = heartbeat::<C>(migrations, Some(pool(url))).await;
    assert_migrations_unreachable(status, &body);
}

#[actix_web::test]
async fn postgres_unreachable_is_i001() {
    let url = format!("postgres://postgres@127.0.0.1:{}/test", closed_port());
    unreachable::<PgConnection>(POSTGRES, &url).await;
}

#[actix_web::test]
async fn mariadb_unreachable_is_i001() {
    let url = format!("mysql://root@127.0.0.1:{}/test", closed_port());
    unreachable::<MysqlConnection>(MYSQL, &url).await;
}

#[actix_web::test]
async fn sqlite_that_cannot_be_opened_is_i001() {
    unreachable::<SqliteConnection>(SQLITE, "/nonexistent/dockerflow/dir/app.sqlite3").await;
}

#[actix_web::test]
async fn sqlite_file_that_is_not_a_database_is_i001() {
    let db = TempDatabase::new(Backend::Sqlite);
    std::fs::write(&db.name, "not a database ".repeat(100)).unwrap();
    unreachable::<SqliteConnection>(SQLITE, &db.url()).await;
}

#[actix_web::test]
async fn no_pool_is_i001() {
    let (status, body) = heartbeat::<PgConnection>(POSTGRES, None).await;
    assert_migrations_unreachable(status, &body);
}

#[actix_web::test]
async fn the_unknown_migration_passes_the_heartbeat_as_info_and_can_be_silenced() {
    let db = TempDatabase::new(Backend::Sqlite);
    migrate::<SqliteConnection>(&db, || SQLITE, 2);
    db.execute(NEWER_BUILD);
    let pool: Pool<ConnectionManager<SqliteConnection>> = pool(&db.url());
    for (silenced, level) in [(&[][..], "info"), (&[ids::I002][..], "ok")] {
        let dockerflow = with_checks([checks::migrations_applied::<SqliteConnection>(SQLITE)])
            .silence(silenced.iter().copied())
            .build()
            .unwrap();
        let srv = serve(dockerflow, with_data(web::Data::new(pool.clone())));
        let (status, body) = heartbeats::heartbeat_of(&srv).await;
        assert_level(status, &body, MIGRATIONS_APPLIED, level);
    }
}
