//! The sqlx built-ins (docs/CONTRACT.md, "Checks"), `check_database_connected` and `check_migrations_applied` for a
//! `sqlx::Pool`, against the machine's PostgreSQL and MariaDB and a SQLite file. Every id is
//! provoked for real: a closed port, a server that never answers, a password the private scram
//! PostgreSQL refuses, a login MariaDB refuses, settings sqlx calls a misconfiguration, a
//! session killed under the pool, a pool with every connection in use, a fresh database, one
//! with a migration from a newer build, and no pool at all. No password reaches a body or a
//! log line.

use std::borrow::Borrow;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::web;
use dockerflow::checks::{self, SqlxDatabase, DATABASE_CONNECTED, MIGRATIONS_APPLIED};
use dockerflow::ids;
use dockerflow_tests::databases::{Backend, LockedOutUser, PrivatePostgres, TempDatabase};
use dockerflow_tests::logs::{self, assert_no_secret};
use dockerflow_tests::net::{closed_port, Listener};
use dockerflow_tests::temp::unique;
use dockerflow_tests::{get, only, serve};
use serde_json::Value;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, MySql, Pool, Postgres, Sqlite};

/// The check's timeout in these tests.
const CHECK_TIMEOUT: Duration = Duration::from_millis(1200);

const FIRST: &str = "20240101000000_create_widgets";
const SECOND: &str = "20240201000000_add_widgets_colour";

/// The settings apps give their pools (lazy, so a pool exists while the database is away),
/// with a long acquire timeout: the check's own, shorter wait must be the one that counts.
fn pool_options<DB: sqlx::Database>() -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
}

fn pg_pool(url: &str) -> Pool<Postgres> {
    pool_options().connect_lazy(url).unwrap()
}

fn mysql_pool(url: &str) -> Pool<MySql> {
    pool_options().connect_lazy(url).unwrap()
}

/// A pool on the SQLite file at `path`, created when missing (unless it cannot be).
fn sqlite_pool(path: &str) -> Pool<Sqlite> {
    pool_options().connect_lazy_with(
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true),
    )
}

/// A pool on `db`, as its superuser.
fn pool_on<DB: SqlxDatabase>(db: &TempDatabase) -> Pool<DB> {
    let url = match db.backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", db.name),
        _ => db.url(),
    };
    pool_options().connect_lazy(&url).unwrap()
}

/// One heartbeat with `checks` only, and `pool` (if any) in the app data.
async fn heartbeat_of<DB: SqlxDatabase>(
    checks: Vec<dockerflow::Check>,
    pool: Option<Pool<DB>>,
) -> (StatusCode, Value) {
    let names: Vec<String> = checks.iter().map(|c| c.name().to_owned()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut builder = only(&names).show_details(true).check_timeout(CHECK_TIMEOUT);
    for check in checks {
        builder = builder.check(check);
    }
    let dockerflow = builder.build().unwrap();
    let srv = serve(dockerflow, move |cfg: &mut web::ServiceConfig| {
        if let Some(pool) = &pool {
            cfg.app_data(web::Data::new(pool.clone()));
        }
    });
    let answer = get(&srv, "/__heartbeat__").await;
    (answer.status, answer.json())
}

/// One heartbeat with only the sqlx `check_database_connected`.
async fn heartbeat<DB: SqlxDatabase>(pool: Option<Pool<DB>>) -> (StatusCode, Value) {
    heartbeat_of(vec![checks::sqlx_database_connected::<DB>()], pool).await
}

/// The messages of `check`, by id.
fn messages_of<'a>(body: &'a Value, check: &str) -> &'a serde_json::Map<String, Value> {
    body["details"][check]["messages"]
        .as_object()
        .unwrap_or_else(|| panic!("no messages of {check} in {body}"))
}

/// The only message of the database check, which must have the id `id`.
fn only_message<'a>(body: &'a Value, id: &str) -> &'a str {
    let messages = messages_of(body, DATABASE_CONNECTED);
    assert_eq!(messages.len(), 1, "{body}");
    messages
        .get(id)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {id} in {body}"))
}

fn assert_failed(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["checks"][DATABASE_CONNECTED], "error", "{body}");
    assert_eq!(body["details"][DATABASE_CONNECTED]["level"], 40, "{body}");
}

fn assert_ok(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    assert!(body["details"].as_object().unwrap().is_empty(), "{body}");
}

// check_database_connected: a database that answers.

#[actix_web::test]
async fn sqlx_postgres_that_answers_is_ok() {
    let db = TempDatabase::new(Backend::Postgres);
    let (status, body) = heartbeat::<Postgres>(Some(pool_on(&db))).await;
    assert_ok(status, &body);
    assert_eq!(body["checks"][DATABASE_CONNECTED], "ok");
}

#[actix_web::test]
async fn sqlx_mariadb_that_answers_is_ok() {
    let db = TempDatabase::new(Backend::Mysql);
    let (status, body) = heartbeat::<MySql>(Some(pool_on(&db))).await;
    assert_ok(status, &body);
}

#[actix_web::test]
async fn sqlx_sqlite_that_opens_is_ok() {
    let db = TempDatabase::new(Backend::Sqlite);
    let (status, body) = heartbeat::<Sqlite>(Some(pool_on(&db))).await;
    assert_ok(status, &body);
}

#[actix_web::test]
async fn sqlx_pool_registered_bare_is_found_too() {
    let db = TempDatabase::new(Backend::Sqlite);
    let pool: Pool<Sqlite> = pool_on(&db);
    let dockerflow = only(&[DATABASE_CONNECTED])
        .check(checks::sqlx_database_connected::<Sqlite>())
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(dockerflow, move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(pool.clone());
    });
    let answer = get(&srv, "/__heartbeat__").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[actix_web::test]
async fn sqlx_pool_shared_by_the_apps_handlers_and_the_checks_serves_both() {
    // The checks open connections on dockerflow's threads, the app's handlers on actix's
    // workers; the pool hands each side's connections to the other.
    async fn widgets(pool: web::Data<Pool<Postgres>>) -> String {
        let n: i32 = sqlx::query_scalar("SELECT 41 + 1")
            .fetch_one(pool.get_ref())
            .await
            .unwrap();
        n.to_string()
    }
    let db = TempDatabase::new(Backend::Postgres);
    let pool: Pool<Postgres> = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy(&db.url())
        .unwrap();
    let dockerflow = only(&[DATABASE_CONNECTED])
        .check(checks::sqlx_database_connected::<Postgres>())
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(dockerflow, move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(pool.clone()))
            .route("/widgets", web::get().to(widgets));
    });
    for _ in 0..3 {
        let answer = get(&srv, "/__heartbeat__").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let answer = get(&srv, "/widgets").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.text(), "42");
    }
}

#[actix_web::test]
async fn sqlx_connections_the_check_opened_outlive_its_dockerflow() {
    // A Dockerflow that is dropped ends its check threads. The connection the check opened
    // went back into the app's pool, and must still work for the app afterwards.
    let db = TempDatabase::new(Backend::Postgres);
    let pool: Pool<Postgres> = PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_lazy(&db.url())
        .unwrap();
    {
        let dockerflow = only(&[DATABASE_CONNECTED])
            .check(checks::sqlx_database_connected::<Postgres>())
            .build()
            .unwrap();
        let app = actix_web::test::init_service(
            actix_web::App::new()
                .app_data(web::Data::new(pool.clone()))
                .configure(|cfg| dockerflow.configure(cfg)),
        )
        .await;
        let request = actix_web::test::TestRequest::get()
            .uri("/__heartbeat__")
            .to_request();
        let response = actix_web::test::call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    // The app and its Dockerflow are gone; give the check's thread time to end.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pool.size(), 1, "the check's connection is in the pool");
    let n: i32 = tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::query_scalar("SELECT 41 + 1").fetch_one(&pool),
    )
    .await
    .expect("the pool's connection answers in time")
    .expect("the pool's connection works");
    assert_eq!(n, 42);
}

// E001: no connection.

#[actix_web::test]
async fn sqlx_postgres_on_a_closed_port_is_e001_connection_refused() {
    let port = closed_port();
    let (status, body) = heartbeat::<Postgres>(Some(pg_pool(&format!(
        "postgres://postgres@127.0.0.1:{port}/test"
    ))))
    .await;
    assert_failed(status, &body);
    let text = only_message(&body, ids::E001);
    assert!(
        text.starts_with("Could not connect to database: "),
        "{text}"
    );
    assert!(text.contains("Connection refused"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}")),
        "the server helps: {text}"
    );
}

#[actix_web::test]
async fn sqlx_mariadb_on_a_closed_port_is_e001_connection_refused() {
    let port = closed_port();
    let (status, body) = heartbeat::<MySql>(Some(mysql_pool(&format!(
        "mysql://root@127.0.0.1:{port}/test"
    ))))
    .await;
    assert_failed(status, &body);
    let text = only_message(&body, ids::E001);
    assert!(text.contains("Connection refused"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
}

#[actix_web::test]
async fn sqlx_sqlite_file_that_cannot_be_opened_is_e001() {
    let (status, body) =
        heartbeat::<Sqlite>(Some(sqlite_pool("/nonexistent/dockerflow/dir/app.sqlite3"))).await;
    assert_failed(status, &body);
    let text = only_message(&body, ids::E001);
    assert!(
        text.starts_with("Could not connect to database: "),
        "{text}"
    );
    assert!(text.contains("unable to open database file"), "{text}");
}

/// A server that accepts and never answers: the check gives up before its timeout, so the
/// heartbeat says E001 (what it was waiting for), not E011.
async fn never_answers<DB: SqlxDatabase>(pool: Pool<DB>, port: u16) {
    let started = Instant::now();
    let (status, body) = heartbeat::<DB>(Some(pool)).await;
    let took = started.elapsed();
    assert_failed(status, &body);
    let text = only_message(&body, ids::E001);
    assert!(
        text.starts_with("Could not connect to database: no connection could be opened within "),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("(server 127.0.0.1:{port})")),
        "{text}"
    );
    assert!(
        took < CHECK_TIMEOUT + Duration::from_secs(2),
        "took {took:?}"
    );
}

#[actix_web::test]
async fn sqlx_postgres_that_never_answers_is_e001_before_the_check_times_out() {
    let listener = Listener::silent();
    let url = format!("postgres://postgres@127.0.0.1:{}/test", listener.port);
    never_answers::<Postgres>(pg_pool(&url), listener.port).await;
}

#[actix_web::test]
async fn sqlx_mariadb_that_never_answers_is_e001_before_the_check_times_out() {
    let listener = Listener::silent();
    let url = format!("mysql://root@127.0.0.1:{}/test", listener.port);
    never_answers::<MySql>(mysql_pool(&url), listener.port).await;
}

#[actix_web::test]
async fn sqlx_postgres_wrong_password_is_e001_without_the_password() {
    logs::capture();
    let password = unique("Pw-s3cret");
    let server = PrivatePostgres::start(&password);
    let wrong = format!("{password}-wrong");
    let url = format!(
        "postgres://postgres:{wrong}@127.0.0.1:{}/postgres",
        server.port
    );
    let (status, body) = heartbeat::<Postgres>(Some(pg_pool(&url))).await;
    assert_failed(status, &body);
    let text = only_message(&body, ids::E001);
    assert!(text.contains("password authentication failed"), "{text}");
    assert_no_secret(&body, &[&password, &wrong]);
    // The same server with the right password: the check passes.
    let url = format!(
        "postgres://postgres:{password}@127.0.0.1:{}/postgres",
        server.port
    );
    let (status, body) = heartbeat::<Postgres>(Some(pg_pool(&url))).await;
    assert_ok(status, &body);
}

#[actix_web::test]
async fn sqlx_mariadb_wrong_password_is_e001_without_the_password() {
    logs::capture();
    let db = TempDatabase::new(Backend::Mysql);
    let password = unique("Pw-s3cret");
    let user = LockedOutUser::new(Backend::Mysql, &password);
    let wrong = format!("{password}-wrong");
    let url = format!("mysql://{}:{wrong}@127.0.0.1:3306/{}", user.name, db.name);
    let (status, body) = heartbeat::<MySql>(Some(mysql_pool(&url))).await;
    assert_failed(status, &body);
    let text = only_message(&body, ids::E001);
    assert!(text.contains("Access denied"), "{text}");
    assert!(
        text.contains(&user.name),
        "the driver names the user: {text}"
    );
    assert_no_secret(&body, &[&password, &wrong]);
}

#[actix_web::test]
async fn sqlx_pool_with_every_connection_in_use_is_e001_saying_so() {
    let db = TempDatabase::new(Backend::Postgres);
    let pool: Pool<Postgres> = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy(&db.url())
        .unwrap();
    let held = pool.acquire().await.unwrap();
    let (status, body) = heartbeat::<Postgres>(Some(pool.clone())).await;
    assert_failed(status, &body);
    let text = only_message(&body, ids::E001);
    assert!(
        text.starts_with("Could not connect to database: no free connection in the pool within "),
        "{text}"
    );
    assert!(text.ends_with(" ms (all 1 in use)"), "{text}");
    drop(held);
    let (status, body) = heartbeat::<Postgres>(Some(pool)).await;
    assert_ok(status, &body);
}

// E003: settings sqlx calls a misconfiguration, or no pool.

#[actix_web::test]
async fn sqlx_mariadb_with_a_charset_it_does_not_have_is_e003() {
    logs::capture();
    let password = unique("Pw-hunter2");
    let options =
        MySqlConnectOptions::from_str(&format!("mysql://root:{password}@127.0.0.1:3306/test"))
            .unwrap()
            .charset("klingon");
    let pool: Pool<MySql> = MySqlPoolOptions::new().connect_lazy_with(options);
    let (status, body) = heartbeat::<MySql>(Some(pool)).await;
    assert_failed(status, &body);
    assert_eq!(
        only_message(&body, ids::E003),
        "Database misconfigured: \"error with configuration: unsupported MySQL charset: klingon\""
    );
    assert_no_secret(&body, &[&password]);
}

#[actix_web::test]
async fn sqlx_postgres_requiring_tls_from_a_build_without_it_is_e003() {
    // The tests build sqlx without a TLS feature, as an app that never asked for one does.
    let options = PgConnectOptions::from_str("postgres://postgres@127.0.0.1:5432/test")
        .unwrap()
        .ssl_mode(sqlx::postgres::PgSslMode::Require);
    let pool: Pool<Postgres> = PgPoolOptions::new().connect_lazy_with(options);
    let (status, body) = heartbeat::<Postgres>(Some(pool)).await;
    assert_failed(status, &body);
    let text = only_message(&body, ids::E003);
    assert!(text.starts_with("Database misconfigured: \""), "{text}");
    assert!(text.contains("built without TLS support"), "{text}");
}

#[actix_web::test]
async fn sqlx_no_pool_is_e003_naming_what_to_add() {
    for (body, db) in [
        (heartbeat::<Postgres>(None).await.1, "Postgres"),
        (heartbeat::<MySql>(None).await.1, "MySql"),
        (heartbeat::<Sqlite>(None).await.1, "Sqlite"),
    ] {
        let text = only_message(&body, ids::E003);
        assert!(text.starts_with("Database misconfigured: \""), "{text}");
        assert!(
            text.contains(&format!("web::Data<sqlx::Pool<{db}>>")),
            "names what to add: {text}"
        );
    }
}

#[actix_web::test]
async fn sqlx_pool_for_another_backend_is_not_taken_for_this_one() {
    let db = TempDatabase::new(Backend::Sqlite);
    let sqlite: Pool<Sqlite> = pool_on(&db);
    let dockerflow = only(&[DATABASE_CONNECTED])
        .check(checks::sqlx_database_connected::<Postgres>())
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(dockerflow, move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(sqlite.clone()));
    });
    let body = get(&srv, "/__heartbeat__").await.json();
    assert!(
        only_message(&body, ids::E003).contains("sqlx::Pool<Postgres>"),
        "{body}"
    );
}

// E002: a connection is handed out, and the query fails.

/// A pool that hands out its idle connection untested (sqlx's `test_before_acquire(false)`,
/// which apps set to save a round trip), whose server session is then killed.
async fn killed_session<DB: SqlxDatabase>(backend: Backend) {
    let db = TempDatabase::new(backend);
    let pool: Pool<DB> = PoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_lazy(&db.url())
        .unwrap();
    let dockerflow = only(&[DATABASE_CONNECTED])
        .check(checks::sqlx_database_connected::<DB>())
        .show_details(true)
        .check_timeout(CHECK_TIMEOUT)
        .build()
        .unwrap();
    let srv = serve(dockerflow, move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(pool.clone()));
    });
    let before = get(&srv, "/__heartbeat__").await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text());

    db.kill_sessions();

    let after = get(&srv, "/__heartbeat__").await;
    let body = after.json();
    assert_failed(after.status, &body);
    assert_eq!(
        only_message(&body, ids::E002),
        "Database connection is not usable"
    );

    // The broken connection was not put back: the next run opens a new one.
    let again = get(&srv, "/__heartbeat__").await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
}

#[actix_web::test]
async fn sqlx_postgres_session_killed_under_the_pool_is_e002_then_ok() {
    killed_session::<Postgres>(Backend::Postgres).await;
}

#[actix_web::test]
async fn sqlx_mariadb_session_killed_under_the_pool_is_e002_then_ok() {
    killed_session::<MySql>(Backend::Mysql).await;
}

#[actix_web::test]
async fn sqlx_sqlite_file_that_is_not_a_database_is_e002() {
    // SQLite opens any file lazily and answers `SELECT 1` without reading it; the check's
    // query reads the schema, and fails.
    let db = TempDatabase::new(Backend::Sqlite);
    std::fs::write(&db.name, "this is a text file, not a database. ".repeat(40)).unwrap();
    let (status, body) = heartbeat::<Sqlite>(Some(pool_on(&db))).await;
    assert_failed(status, &body);
    assert_eq!(
        only_message(&body, ids::E002),
        "Database connection is not usable"
    );
}

// check_migrations_applied.

/// This build's migrations for `backend`, read at run time from the fixtures.
async fn migrator(backend: Backend) -> Migrator {
    let dir = match backend {
        Backend::Postgres => "postgres",
        Backend::Mysql => "mysql",
        Backend::Sqlite => "sqlite",
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sqlx-migrations")
        .join(dir);
    Migrator::new(path).await.unwrap()
}

/// One heartbeat with only the sqlx `check_migrations_applied`.
async fn migrations_heartbeat<DB: SqlxDatabase>(
    migrator: impl Borrow<Migrator> + Send + Sync + 'static,
    pool: Option<Pool<DB>>,
) -> (StatusCode, Value) {
    heartbeat_of(vec![checks::sqlx_migrations_applied::<DB>(migrator)], pool).await
}

fn migration_messages(body: &Value) -> &serde_json::Map<String, Value> {
    messages_of(body, MIGRATIONS_APPLIED)
}

fn assert_warning(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["status"], "warning", "{body}");
    assert_eq!(body["details"][MIGRATIONS_APPLIED]["level"], 30, "{body}");
}

/// Applies the first `n` up migrations of `migrator`, as `sqlx migrate run` would.
async fn migrate<DB: SqlxDatabase>(pool: &Pool<DB>, migrator: &Migrator, n: usize)
where
    DB::Connection: Migrate,
{
    let mut conn = pool.acquire().await.unwrap();
    conn.ensure_migrations_table().await.unwrap();
    let applied = conn.list_applied_migrations().await.unwrap().len();
    for migration in migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .skip(applied)
        .take(n)
    {
        conn.apply(migration).await.unwrap();
    }
}

/// The whole story on one database: pending, part way, done, then a migration from a newer
/// build (info: the heartbeat passes), with the migrator given by value or as a static.
async fn lifecycle<DB: SqlxDatabase>(backend: Backend, newer_build: &str)
where
    DB::Connection: Migrate,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    let db = TempDatabase::new(backend);
    let pool: Pool<DB> = pool_on(&db);
    let build: &'static Migrator = Box::leak(Box::new(migrator(backend).await));

    // Fresh: both pending, one W001 each, joined under one id, in version order.
    let (status, body) = migrations_heartbeat::<DB>(build, Some(pool.clone())).await;
    assert_warning(status, &body);
    assert_eq!(
        migration_messages(&body)[ids::W001],
        format!("Unapplied migration {FIRST}; Unapplied migration {SECOND}"),
        "{body}"
    );
    assert_eq!(migration_messages(&body).len(), 1, "{body}");

    // Part way.
    migrate(&pool, build, 1).await;
    let (status, body) =
        migrations_heartbeat::<DB>(migrator(backend).await, Some(pool.clone())).await;
    assert_warning(status, &body);
    assert_eq!(
        migration_messages(&body)[ids::W001],
        format!("Unapplied migration {SECOND}"),
        "{body}"
    );

    // Done.
    migrate(&pool, build, 1).await;
    let (status, body) = migrations_heartbeat::<DB>(build, Some(pool.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"][MIGRATIONS_APPLIED], "ok", "{body}");

    // A newer build migrated this database while this (older) build still runs: info, and
    // the heartbeat passes, so the old pods stay ready during the rollout.
    sqlx::raw_sql(newer_build)
        .execute(&mut *pool.acquire().await.unwrap())
        .await
        .unwrap();
    let (status, body) = migrations_heartbeat::<DB>(build, Some(pool.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "info", "{body}");
    assert_eq!(body["details"][MIGRATIONS_APPLIED]["level"], 20, "{body}");
    assert_eq!(
        migration_messages(&body)[ids::I002],
        "Database has migration 20990101000000 that this build does not know",
        "{body}"
    );
    assert_eq!(migration_messages(&body).len(), 1, "{body}");
    pool.close().await;
}

#[actix_web::test]
async fn sqlx_postgres_pending_then_applied_then_unknown_migrations() {
    lifecycle::<Postgres>(
        Backend::Postgres,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (20990101000000, 'from a newer build', TRUE, decode('00', 'hex'), 0)",
    )
    .await;
}

#[actix_web::test]
async fn sqlx_mariadb_pending_then_applied_then_unknown_migrations() {
    lifecycle::<MySql>(
        Backend::Mysql,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (20990101000000, 'from a newer build', TRUE, X'00', 0)",
    )
    .await;
}

#[actix_web::test]
async fn sqlx_sqlite_pending_then_applied_then_unknown_migrations() {
    // The SQLite fixtures are reversible (`.up.sql` and `.down.sql`): the down halves are not
    // migrations of their own.
    lifecycle::<Sqlite>(
        Backend::Sqlite,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (20990101000000, 'from a newer build', TRUE, X'00', 0)",
    )
    .await;
}

#[actix_web::test]
async fn sqlx_migration_that_failed_part_way_is_still_pending() {
    let db = TempDatabase::new(Backend::Sqlite);
    let pool: Pool<Sqlite> = pool_on(&db);
    let build = migrator(Backend::Sqlite).await;
    migrate(&pool, &build, 1).await;
    // What sqlx records when a migration without a transaction fails part way ("dirty").
    sqlx::raw_sql(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (20240201000000, 'add widgets colour', FALSE, X'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (status, body) = migrations_heartbeat::<Sqlite>(build, Some(pool)).await;
    assert_warning(status, &body);
    assert_eq!(
        migration_messages(&body)[ids::W001],
        format!("Unapplied migration {SECOND}"),
        "{body}"
    );
}

#[actix_web::test]
async fn sqlx_migrations_check_creates_nothing_in_a_fresh_database() {
    // A heartbeat must not run DDL: sqlx's `Migrator::run` would create `_sqlx_migrations`.
    let db = TempDatabase::new(Backend::Sqlite);
    let pool: Pool<Sqlite> = pool_on(&db);
    let (status, body) =
        migrations_heartbeat::<Sqlite>(migrator(Backend::Sqlite).await, Some(pool.clone())).await;
    assert_warning(status, &body);
    let tables: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tables, 0, "the heartbeat created something");

    let db = TempDatabase::new(Backend::Postgres);
    let pool: Pool<Postgres> = pool_on(&db);
    let (status, body) =
        migrations_heartbeat::<Postgres>(migrator(Backend::Postgres).await, Some(pool.clone()))
            .await;
    assert_warning(status, &body);
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(table, None, "the heartbeat created _sqlx_migrations");
    pool.close().await;
}

/// Unreachable: I001 at info, which does not fail the heartbeat (check_database_connected
/// reports the outage as an error).
async fn unreachable<DB: SqlxDatabase>(backend: Backend, pool: Pool<DB>) {
    let (status, body) = migrations_heartbeat::<DB>(migrator(backend).await, Some(pool)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "info", "{body}");
    assert_eq!(body["details"][MIGRATIONS_APPLIED]["level"], 20, "{body}");
    assert_eq!(
        migration_messages(&body)[ids::I001],
        "Can't connect to database to check migrations"
    );
    assert_eq!(migration_messages(&body).len(), 1, "{body}");
}

#[actix_web::test]
async fn sqlx_postgres_unreachable_is_i001() {
    let url = format!("postgres://postgres@127.0.0.1:{}/test", closed_port());
    unreachable::<Postgres>(Backend::Postgres, pg_pool(&url)).await;
}

#[actix_web::test]
async fn sqlx_mariadb_that_never_answers_is_i001() {
    let listener = Listener::silent();
    let url = format!("mysql://root@127.0.0.1:{}/test", listener.port);
    unreachable::<MySql>(Backend::Mysql, mysql_pool(&url)).await;
}

#[actix_web::test]
async fn sqlx_sqlite_that_cannot_be_opened_is_i001() {
    unreachable::<Sqlite>(
        Backend::Sqlite,
        sqlite_pool("/nonexistent/dockerflow/dir/app.sqlite3"),
    )
    .await;
}

#[actix_web::test]
async fn sqlx_migrations_without_a_pool_is_i001() {
    let (status, body) =
        migrations_heartbeat::<Postgres>(migrator(Backend::Postgres).await, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        migration_messages(&body)[ids::I001],
        "Can't connect to database to check migrations"
    );
}

// Both checks on one pool.

#[actix_web::test]
async fn sqlx_both_checks_on_a_closed_port_give_e001_with_the_reason_and_i001() {
    let port = closed_port();
    let pool = pg_pool(&format!("postgres://postgres@127.0.0.1:{port}/test"));
    let (status, body) = heartbeat_of(
        vec![
            checks::sqlx_database_connected::<Postgres>(),
            checks::sqlx_migrations_applied::<Postgres>(migrator(Backend::Postgres).await),
        ],
        Some(pool),
    )
    .await;
    assert_failed(status, &body);
    let text = messages_of(&body, DATABASE_CONNECTED)[ids::E001]
        .as_str()
        .unwrap();
    assert!(text.contains("Connection refused"), "{body}");
    assert_eq!(
        migration_messages(&body)[ids::I001],
        "Can't connect to database to check migrations"
    );
}

#[actix_web::test]
async fn sqlx_both_checks_pass_on_a_migrated_database() {
    let db = TempDatabase::new(Backend::Mysql);
    let pool: Pool<MySql> = pool_on(&db);
    let build = migrator(Backend::Mysql).await;
    migrate(&pool, &build, 2).await;
    let mut conn = sqlx::MySqlConnection::connect(&db.url()).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 2, "widgets and _sqlx_migrations");
    conn.close().await.unwrap();
    let (status, body) = heartbeat_of(
        vec![
            checks::sqlx_database_connected::<MySql>(),
            checks::sqlx_migrations_applied::<MySql>(build),
        ],
        Some(pool.clone()),
    )
    .await;
    assert_ok(status, &body);
    assert_eq!(body["checks"][MIGRATIONS_APPLIED], "ok", "{body}");
    pool.close().await;
}
