//! The built-in `check_migrations_applied` against the machine's PostgreSQL and MariaDB and a
//! SQLite file: a fresh database (every migration pending: W001), one migrated part way, one fully
//! migrated (ok), one that has a migration this build does not know (I002, info: the old version's
//! state during a rollout, so the heartbeat still passes), and one that cannot be
//! reached (I001).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::{Connection, MysqlConnection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use dockerflow::checks::{self, DatabaseConnection, MIGRATIONS_APPLIED};
use dockerflow::ids;
use dockerflow_tests::databases::{pool, Backend, TempDatabase};
use dockerflow_tests::net::closed_port;
use dockerflow_tests::{get, only, serve};
use serde_json::Value;

const POSTGRES: EmbeddedMigrations = embed_migrations!("fixtures/migrations/postgres");
const MYSQL: EmbeddedMigrations = embed_migrations!("fixtures/migrations/mysql");
const SQLITE: EmbeddedMigrations = embed_migrations!("fixtures/migrations/sqlite");

/// A build's migrations (a `fn`, as `EmbeddedMigrations` is not `Copy`).
type Source = fn() -> EmbeddedMigrations;

const FIRST: &str = "2024-01-01-000000_create_widgets";
const SECOND: &str = "2024-02-01-000000_add_widgets_colour";

/// One heartbeat with only `check_migrations_applied::<C>(migrations)`.
async fn heartbeat<C: DatabaseConnection>(
    migrations: EmbeddedMigrations,
    pool: Option<Pool<ConnectionManager<C>>>,
) -> (StatusCode, Value) {
    let dockerflow = only(&[MIGRATIONS_APPLIED])
        .check(checks::migrations_applied::<C>(migrations))
        .show_details(true)
        .check_timeout(Duration::from_millis(1200))
        .build()
        .unwrap();
    let srv = serve(dockerflow, move |cfg: &mut web::ServiceConfig| {
        if let Some(pool) = &pool {
            cfg.app_data(web::Data::new(pool.clone()));
        }
    });
    let answer = get(&srv, "/__heartbeat__").await;
    (answer.status, answer.json())
}

fn messages(body: &Value) -> &serde_json::Map<String, Value> {
    body["details"][MIGRATIONS_APPLIED]["messages"]
        .as_object()
        .unwrap_or_else(|| panic!("no messages in {body}"))
}

fn assert_warning(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["status"], "warning", "{body}");
    assert_eq!(body["details"][MIGRATIONS_APPLIED]["level"], 30, "{body}");
}

fn assert_ok(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"][MIGRATIONS_APPLIED], "ok", "{body}");
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

/// The whole story on one database: pending, part way, done, then a migration from a newer
/// build.
async fn lifecycle<C>(backend: Backend, migrations: Source, unknown_row: &str)
where
    C: DatabaseConnection + MigrationHarness<<C as Connection>::Backend>,
{
    let db = TempDatabase::new(backend);
    let pool: Pool<ConnectionManager<C>> = pool(&db.url());

    // Fresh: both pending, one W001 each, joined under one id, in version order.
    let (status, body) = heartbeat::<C>(migrations(), Some(pool.clone())).await;
    assert_warning(status, &body);
    assert_eq!(
        messages(&body)[ids::W001],
        format!("Unapplied migration {FIRST}; Unapplied migration {SECOND}"),
        "{body}"
    );
    assert_eq!(messages(&body).len(), 1, "{body}");

    // Part way.
    migrate::<C>(&db, migrations, 1);
    let (status, body) = heartbeat::<C>(migrations(), Some(pool.clone())).await;
    assert_warning(status, &body);
    assert_eq!(
        messages(&body)[ids::W001],
        format!("Unapplied migration {SECOND}"),
        "{body}"
    );

    // Done.
    migrate::<C>(&db, migrations, 1);
    let (status, body) = heartbeat::<C>(migrations(), Some(pool.clone())).await;
    assert_ok(status, &body);

    // A newer build migrated this database while this (older) build still runs: info, and
    // the heartbeat passes, so the old pods stay ready during the rollout.
    db.execute(unknown_row);
    let (status, body) = heartbeat::<C>(migrations(), Some(pool.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "info", "{body}");
    assert_eq!(body["details"][MIGRATIONS_APPLIED]["level"], 20, "{body}");
    assert_eq!(
        messages(&body)[ids::I002],
        "Database has migration 20990101000000 that this build does not know",
        "{body}"
    );
    assert!(messages(&body).get(ids::W001).is_none(), "{body}");
}

#[actix_web::test]
async fn postgres_pending_then_applied_then_unknown_migrations() {
    lifecycle::<PgConnection>(
        Backend::Postgres,
        || POSTGRES,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('20990101000000')",
    )
    .await;
}

#[actix_web::test]
async fn mariadb_pending_then_applied_then_unknown_migrations() {
    lifecycle::<MysqlConnection>(
        Backend::Mysql,
        || MYSQL,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('20990101000000')",
    )
    .await;
}

#[actix_web::test]
async fn sqlite_pending_then_applied_then_unknown_migrations() {
    lifecycle::<SqliteConnection>(
        Backend::Sqlite,
        || SQLITE,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('20990101000000')",
    )
    .await;
}

#[actix_web::test]
async fn the_check_creates_nothing_in_a_fresh_database() {
    // A heartbeat must not run DDL: diesel's own `applied_migrations` would create
    // `__diesel_schema_migrations`; the check only reads it.
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let db = TempDatabase::new(Backend::Sqlite);
    let (status, body) = heartbeat::<SqliteConnection>(SQLITE, Some(pool(&db.url()))).await;
    assert_warning(status, &body);
    let mut conn = SqliteConnection::establish(&db.url()).unwrap();
    let tables: Count = diesel::sql_query("SELECT COUNT(*) AS n FROM sqlite_master")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(tables.n, 0, "the heartbeat created something");
}

/// Unreachable: I001 at info, which does not fail the heartbeat (check_database_connected
/// reports the outage as an error).
async fn unreachable<C: DatabaseConnection>(migrations: EmbeddedMigrations, url: &str) {
    let (status, body) = heartbeat::<C>(migrations, Some(pool(url))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "info", "{body}");
    assert_eq!(body["details"][MIGRATIONS_APPLIED]["level"], 20, "{body}");
    assert_eq!(
        messages(&body)[ids::I001],
        "Can't connect to database to check migrations"
    );
    assert_eq!(messages(&body).len(), 1, "{body}");
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
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        messages(&body)[ids::I001],
        "Can't connect to database to check migrations"
    );
}

#[actix_web::test]
async fn the_unknown_migration_passes_the_heartbeat_as_info_and_can_be_silenced() {
    let db = TempDatabase::new(Backend::Sqlite);
    migrate::<SqliteConnection>(&db, || SQLITE, 2);
    db.execute("INSERT INTO __diesel_schema_migrations (version) VALUES ('20990101000000')");
    let pool: Pool<ConnectionManager<SqliteConnection>> = pool(&db.url());
    let body_and_status = |silenced: &'static [&'static str]| {
        let pool = pool.clone();
        async move {
            let dockerflow = only(&[MIGRATIONS_APPLIED])
                .check(checks::migrations_applied::<SqliteConnection>(SQLITE))
                .silence(silenced.iter().copied())
                .build()
                .unwrap();
            let srv = serve(dockerflow, move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(web::Data::new(pool.clone()));
            });
            let answer = get(&srv, "/__heartbeat__").await;
            (answer.status, answer.json())
        }
    };
    let (status, body) = body_and_status(&[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "info", "{body}");
    let (status, body) = body_and_status(&[ids::I002]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
}
