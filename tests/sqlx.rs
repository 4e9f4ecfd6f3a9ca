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
use dockerflow_tests::databases::{Backend, LockedOutUser, TempDatabase};
use dockerflow_tests::heartbeats::{
    self, assert_level, assert_migrations_unreachable, connect_error, heartbeat_of,
    migrations_story, postgres_refuses_a_wrong_password, session_killed_under_the_pool,
    sqlite_file_that_is_not_a_database, with_checks, CHECK_TIMEOUT,
};
use dockerflow_tests::logs::{self, assert_no_secret};
use dockerflow_tests::net::{closed_port, Listener};
use dockerflow_tests::temp::unique;
use dockerflow_tests::{serve, with_data};
use serde_json::Value;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{MySql, Pool, Postgres, Sqlite};

const FIRST: &str = "20240101000000_create_widgets";
const SECOND: &str = "20240201000000_add_widgets_colour";

/// The settings apps give their pools (lazy, so a pool exists while the database is away),
/// with a long acquire timeout: the check's own, shorter wait must be the one that counts.
fn pool_options<DB: sqlx::Database>() -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
}

/// A pool on `url`, with [`pool_options`].
fn pool<DB: sqlx::Database>(url: &str) -> Pool<DB> {
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
    match db.backend {
        Backend::Sqlite => pool(&format!("sqlite://{}?mode=rwc", db.name)),
        _ => pool(&db.url()),
    }
}

/// One heartbeat with only the sqlx `check_database_connected`.
async fn heartbeat<DB: SqlxDatabase>(pool: Option<Pool<DB>>) -> (StatusCode, Value) {
    heartbeats::heartbeat([checks::sqlx_database_connected::<DB>()], pool).await
}

/// A server with only the sqlx `check_database_connected` and `setup` for the app.
fn server<DB: SqlxDatabase>(
    setup: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> actix_test::TestServer {
    let dockerflow = with_checks([checks::sqlx_database_connected::<DB>()]);
    serve(dockerflow.build().unwrap(), setup)
}

/// The only message of the database check, which must have the id `id`.
fn only_message<'a>(body: &'a Value, id: &str) -> &'a str {
    heartbeats::only_message(body, DATABASE_CONNECTED, id)
}

fn assert_failed(status: StatusCode, body: &Value) {
    assert_level(status, body, DATABASE_CONNECTED, "error");
}

fn assert_ok(status: StatusCode, body: &Value) {
    assert_level(status, body, DATABASE_CONNECTED, "ok");
    assert!(body["details"].as_object().unwrap().is_empty(), "{body}");
}

// check_database_connected: a database that answers.

#[actix_web::test]
async fn sqlx_postgres_that_answers_is_ok() {
    let db = TempDatabase::new(Backend::Postgres);
    let (status, body) = heartbeat::<Postgres>(Some(pool_on(&db))).await;
    assert_ok(status, &body);
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
    let srv = server::<Sqlite>(move |cfg| {
        cfg.app_data(pool.clone());
    });
    let (status, body) = heartbeat_of(&srv).await;
    assert_ok(status, &body);
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
    let srv = server::<Postgres>(move |cfg| {
        cfg.app_data(web::Data::new(pool.clone()))
            .route("/widgets", web::get().to(widgets));
    });
    for _ in 0..3 {
        let (status, body) = heartbeat_of(&srv).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer = dockerflow_tests::get(&srv, "/widgets").await;
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
        let dockerflow = with_checks([checks::sqlx_database_connected::<Postgres>()])
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
    let (status, body) = heartbeat::<Postgres>(Some(pool(&format!(
        "postgres://postgres@127.0.0.1:{port}/test"
    ))))
    .await;
    let text = connect_error(status, &body);
    assert!(text.contains("Connection refused"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}")),
        "the server helps: {text}"
    );
}

#[actix_web::test]
async fn sqlx_mariadb_on_a_closed_port_is_e001_connection_refused() {
    let port = closed_port();
    let (status, body) =
        heartbeat::<MySql>(Some(pool(&format!("mysql://root@127.0.0.1:{port}/test")))).await;
    let text = connect_error(status, &body);
    assert!(text.contains("Connection refused"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
}

#[actix_web::test]
async fn sqlx_sqlite_file_that_cannot_be_opened_is_e001() {
    let (status, body) =
        heartbeat::<Sqlite>(Some(sqlite_pool("/nonexistent/dockerflow/dir/app.sqlite3"))).await;
    let text = connect_error(status, &body);
    assert!(text.contains("unable to open database file"), "{text}");
}

/// A server that accepts and never answers: the check gives up before its timeout, so the
/// heartbeat says E001 (what it was waiting for), not E011.
async fn never_answers<DB: SqlxDatabase>(pool: Pool<DB>, port: u16) {
    let started = Instant::now();
    let (status, body) = heartbeat::<DB>(Some(pool)).await;
    let took = started.elapsed();
    let text = connect_error(status, &body);
    assert!(
        text.starts_with("no connection could be opened within "),
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
    never_answers::<Postgres>(pool(&url), listener.port).await;
}

#[actix_web::test]
async fn sqlx_mariadb_that_never_answers_is_e001_before_the_check_times_out() {
    let listener = Listener::silent();
    let url = format!("mysql://root@127.0.0.1:{}/test", listener.port);
    never_answers::<MySql>(pool(&url), listener.port).await;
}

#[actix_web::test]
async fn sqlx_postgres_wrong_password_is_e001_without_the_password() {
    postgres_refuses_a_wrong_password(async |url| heartbeat::<Postgres>(Some(pool(url))).await)
        .await;
}

#[actix_web::test]
async fn sqlx_mariadb_wrong_password_is_e001_without_the_password() {
    logs::capture();
    let db = TempDatabase::new(Backend::Mysql);
    let password = unique("Pw-s3cret");
    let user = LockedOutUser::new(Backend::Mysql, &password);
    let wrong = format!("{password}-wrong");
    let url = format!("mysql://{}:{wrong}@127.0.0.1:3306/{}", user.name, db.name);
    let (status, body) = heartbeat::<MySql>(Some(pool(&url))).await;
    let text = connect_error(status, &body);
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
    let text = connect_error(status, &body);
    assert!(
        text.starts_with("no free connection in the pool within "),
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
    let pg = checks::sqlx_database_connected::<Postgres>();
    let (_, body) = heartbeats::heartbeat([pg], Some(sqlite)).await;
    assert!(
        only_message(&body, ids::E003).contains("sqlx::Pool<Postgres>"),
        "{body}"
    );
}

// E002: a connection is handed out, and the query fails.

/// [`session_killed_under_the_pool`] with sqlx's `test_before_acquire(false)`, then ok again.
async fn killed_session<DB: SqlxDatabase>(backend: Backend) {
    let db = TempDatabase::new(backend);
    let pool: Pool<DB> = PoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_lazy(&db.url())
        .unwrap();
    let srv = server::<DB>(with_data(web::Data::new(pool)));
    session_killed_under_the_pool(&db, &srv).await;
    // The broken connection was not put back: the next run opens a new one.
    let (status, body) = heartbeat_of(&srv).await;
    assert_ok(status, &body);
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
    sqlite_file_that_is_not_a_database(async |db| heartbeat::<Sqlite>(Some(pool_on(db))).await)
        .await;
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
    heartbeats::heartbeat([checks::sqlx_migrations_applied::<DB>(migrator)], pool).await
}

/// The only message of the migrations check, which must have the id `id`.
fn migrations_message<'a>(body: &'a Value, id: &str) -> &'a str {
    heartbeats::only_message(body, MIGRATIONS_APPLIED, id)
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

/// [`migrations_story`] on a database of `backend`, the migrator given as a static; a newer
/// build's migration is recorded with `checksum`, a literal of the server's.
async fn lifecycle<DB: SqlxDatabase>(backend: Backend, checksum: &str)
where
    DB::Connection: Migrate,
{
    let db = TempDatabase::new(backend);
    let pool: Pool<DB> = pool_on(&db);
    let build: &'static Migrator = Box::leak(Box::new(migrator(backend).await));
    migrations_story(
        [FIRST, SECOND],
        async || migrations_heartbeat::<DB>(build, Some(pool.clone())).await,
        async || migrate(&pool, build, 1).await,
        async || {
            db.execute(&format!(
                "INSERT INTO _sqlx_migrations \
                 (version, description, success, checksum, execution_time) \
                 VALUES (20990101000000, 'from a newer build', TRUE, {checksum}, 0)"
            ))
        },
    )
    .await;
    pool.close().await;
}

#[actix_web::test]
async fn sqlx_postgres_pending_then_applied_then_unknown_migrations() {
    lifecycle::<Postgres>(Backend::Postgres, "decode('00', 'hex')").await;
}

#[actix_web::test]
async fn sqlx_mariadb_pending_then_applied_then_unknown_migrations() {
    lifecycle::<MySql>(Backend::Mysql, "X'00'").await;
}

#[actix_web::test]
async fn sqlx_sqlite_pending_then_applied_then_unknown_migrations() {
    // The SQLite fixtures are reversible (`.up.sql` and `.down.sql`): the down halves are not
    // migrations of their own.
    lifecycle::<Sqlite>(Backend::Sqlite, "X'00'").await;
}

#[actix_web::test]
async fn sqlx_migration_that_failed_part_way_is_still_pending() {
    let db = TempDatabase::new(Backend::Sqlite);
    let pool: Pool<Sqlite> = pool_on(&db);
    let build = migrator(Backend::Sqlite).await;
    migrate(&pool, &build, 1).await;
    // What sqlx records when a migration without a transaction fails part way ("dirty").
    db.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (20240201000000, 'add widgets colour', FALSE, X'00', 0)",
    );
    let (status, body) = migrations_heartbeat::<Sqlite>(build, Some(pool)).await;
    assert_level(status, &body, MIGRATIONS_APPLIED, "warning");
    let pending = format!("Unapplied migration {SECOND}");
    assert_eq!(migrations_message(&body, ids::W001), pending);
}

#[actix_web::test]
async fn sqlx_migrations_check_creates_nothing_in_a_fresh_database() {
    // A heartbeat must not run DDL: sqlx's `Migrator::run` would create `_sqlx_migrations`.
    for (backend, tables) in [
        (Backend::Sqlite, "SELECT COUNT(*) AS n FROM sqlite_master"),
        (
            Backend::Postgres,
            "SELECT COUNT(*) AS n FROM pg_tables WHERE schemaname = 'public'",
        ),
    ] {
        let db = TempDatabase::new(backend);
        let (status, body) = match backend {
            Backend::Sqlite => {
                let pool = pool_on::<Sqlite>(&db);
                migrations_heartbeat(migrator(backend).await, Some(pool)).await
            }
            _ => {
                let pool = pool_on::<Postgres>(&db);
                migrations_heartbeat(migrator(backend).await, Some(pool)).await
            }
        };
        assert_level(status, &body, MIGRATIONS_APPLIED, "warning");
        assert_eq!(db.count(tables), 0, "the heartbeat created something");
    }
}

/// [`assert_migrations_unreachable`] on `pool`.
async fn unreachable<DB: SqlxDatabase>(backend: Backend, pool: Pool<DB>) {
    let (status, body) = migrations_heartbeat::<DB>(migrator(backend).await, Some(pool)).await;
    assert_migrations_unreachable(status, &body);
}

#[actix_web::test]
async fn sqlx_postgres_unreachable_is_i001() {
    let url = format!("postgres://postgres@127.0.0.1:{}/test", closed_port());
    unreachable::<Postgres>(Backend::Postgres, pool(&url)).await;
}

#[actix_web::test]
async fn sqlx_mariadb_that_never_answers_is_i001() {
    let listener = Listener::silent();
    let url = format!("mysql://root@127.0.0.1:{}/test", listener.port);
    unreachable::<MySql>(Backend::Mysql, pool(&url)).await;
}

#[actix_web::test]
async fn sqlx_sqlite_that_cannot_be_opened_is_i001() {
    let pool = sqlite_pool("/nonexistent/dockerflow/dir/app.sqlite3");
    unreachable::<Sqlite>(Backend::Sqlite, pool).await;
}

#[actix_web::test]
async fn sqlx_migrations_without_a_pool_is_i001() {
    let (status, body) =
        migrations_heartbeat::<Postgres>(migrator(Backend::Postgres).await, None).await;
    assert_migrations_unreachable(status, &body);
}

// Both checks on one pool.

#[actix_web::test]
async fn sqlx_both_checks_on_a_closed_port_give_e001_with_the_reason_and_i001() {
    let port = closed_port();
    let pool: Pool<Postgres> = pool(&format!("postgres://postgres@127.0.0.1:{port}/test"));
    let migrator = migrator(Backend::Postgres).await;
    let (status, body) = heartbeats::heartbeat(
        [
            checks::sqlx_database_connected::<Postgres>(),
            checks::sqlx_migrations_applied::<Postgres>(migrator),
        ],
        Some(pool),
    )
    .await;
    let text = connect_error(status, &body);
    assert!(text.contains("Connection refused"), "{body}");
    assert_eq!(
        migrations_message(&body, ids::I001),
        "Can't connect to database to check migrations"
    );
}

#[actix_web::test]
async fn sqlx_both_checks_pass_on_a_migrated_database() {
    let db = TempDatabase::new(Backend::Mysql);
    let pool: Pool<MySql> = pool_on(&db);
    let build = migrator(Backend::Mysql).await;
    migrate(&pool, &build, 2).await;
    let tables = "SELECT COUNT(*) AS n FROM information_schema.tables \
                  WHERE table_schema = DATABASE()";
    assert_eq!(db.count(tables), 2, "widgets and _sqlx_migrations");
    let (status, body) = heartbeats::heartbeat(
        [
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
