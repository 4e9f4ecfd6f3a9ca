//! The built-in `check_database_connected` against the machine's PostgreSQL and MariaDB and a
//! SQLite file, each fault made for real: a closed port, a server that never answers, a login the
//! server refuses, a malformed URL, a session killed under the pool, a file that is not a database,
//! and no pool at all.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::web;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::{MysqlConnection, PgConnection, SqliteConnection};
use dockerflow::checks::{self, DatabaseConnection, DATABASE_CONNECTED};
use dockerflow::ids;
use dockerflow_tests::databases::{pool, pool_builder, Backend, LockedOutUser, TempDatabase};
use dockerflow_tests::heartbeats::{
    self, assert_level, connect_error, heartbeat_of, postgres_refuses_a_wrong_password,
    session_killed_under_the_pool, sqlite_file_that_is_not_a_database, with_checks, CHECK_TIMEOUT,
};
use dockerflow_tests::logs::{self, assert_no_secret};
use dockerflow_tests::net::{closed_port, Listener};
use dockerflow_tests::temp::unique;
use dockerflow_tests::{serve, with_data};
use serde_json::Value;

/// One heartbeat with only `check_database_connected::<C>` and `pool` (if any) in the app.
async fn heartbeat<C: DatabaseConnection>(
    pool: Option<Pool<ConnectionManager<C>>>,
) -> (StatusCode, Value) {
    heartbeats::heartbeat([checks::database_connected::<C>()], pool).await
}

/// A server with only `check_database_connected::<C>` and `pool` in the app.
fn server<C: DatabaseConnection>(pool: Pool<ConnectionManager<C>>) -> actix_test::TestServer {
    let dockerflow = with_checks([checks::database_connected::<C>()]);
    serve(dockerflow.build().unwrap(), with_data(web::Data::new(pool)))
}

/// The only message of the check, which must have the id `id`.
fn only_message<'a>(body: &'a Value, id: &str) -> &'a str {
    heartbeats::only_message(body, DATABASE_CONNECTED, id)
}

fn assert_failed(status: StatusCode, body: &Value) {
    assert_level(status, body, DATABASE_CONNECTED, "error");
}

// A database that answers.

async fn answers<C: DatabaseConnection>(backend: Backend) {
    let db = TempDatabase::new(backend);
    let (status, body) = heartbeat::<C>(Some(pool(&db.url()))).await;
    assert_level(status, &body, DATABASE_CONNECTED, "ok");
    assert!(body["details"].as_object().unwrap().is_empty(), "{body}");
}

#[actix_web::test]
async fn postgres_that_answers_is_ok() {
    answers::<PgConnection>(Backend::Postgres).await;
}

#[actix_web::test]
async fn mariadb_that_answers_is_ok() {
    answers::<MysqlConnection>(Backend::Mysql).await;
}

#[actix_web::test]
async fn sqlite_that_opens_is_ok() {
    answers::<SqliteConnection>(Backend::Sqlite).await;
}

// E001: no connection.

#[actix_web::test]
async fn postgres_on_a_closed_port_is_e001_connection_refused() {
    let port = closed_port();
    let (status, body) = heartbeat::<PgConnection>(Some(pool(&format!(
        "postgres://postgres@127.0.0.1:{port}/test"
    ))))
    .await;
    let text = connect_error(status, &body);
    assert!(text.contains("Connection refused"), "{text}");
    assert!(
        text.contains(&port.to_string()),
        "the driver's host and port help: {text}"
    );
    assert!(!text.contains('\n'), "one line: {text:?}");
}

#[actix_web::test]
async fn mariadb_on_a_closed_port_is_e001() {
    let port = closed_port();
    let (status, body) =
        heartbeat::<MysqlConnection>(Some(pool(&format!("mysql://root@127.0.0.1:{port}/test"))))
            .await;
    let text = connect_error(status, &body);
    assert!(text.contains("127.0.0.1"), "{text}");
}

#[actix_web::test]
async fn sqlite_file_that_cannot_be_opened_is_e001() {
    let (status, body) =
        heartbeat::<SqliteConnection>(Some(pool("/nonexistent/dockerflow/dir/app.sqlite3"))).await;
    let text = connect_error(status, &body);
    // SQLite's text for SQLITE_CANTOPEN, or libsqlite3-sys' own before 0.31 (which a build
    // with sqlx-sqlite 0.8 has).
    assert!(
        [
            "unable to open database file",
            "Unable to open the database file"
        ]
        .contains(&text),
        "{text}"
    );
}

/// A server that accepts and never answers: the pool gives up before the check's timeout, so
/// the heartbeat says E001 (what it was waiting for), not E011.
async fn never_answers<C: DatabaseConnection>(scheme: &str) {
    let listener = Listener::silent();
    let started = Instant::now();
    let (status, body) = heartbeat::<C>(Some(pool(&format!(
        "{scheme}://root@127.0.0.1:{}/test",
        listener.port
    ))))
    .await;
    let took = started.elapsed();
    connect_error(status, &body);
    assert!(
        took < CHECK_TIMEOUT + Duration::from_secs(2),
        "took {took:?}"
    );
}

#[actix_web::test]
async fn postgres_that_never_answers_is_e001_before_the_check_times_out() {
    never_answers::<PgConnection>("postgres").await;
}

#[actix_web::test]
async fn mariadb_that_never_answers_is_e001_before_the_check_times_out() {
    never_answers::<MysqlConnection>("mysql").await;
}

/// The server refuses the login; the password is in neither the body nor a log line.
async fn refused_login<C: DatabaseConnection>(backend: Backend, scheme: &str, port: u16) -> String {
    logs::capture();
    let db = TempDatabase::new(backend);
    let password = unique("Pw-s3cret");
    let user = LockedOutUser::new(backend, &password);
    let wrong = format!("{password}-wrong");
    let url = format!(
        "{scheme}://{}:{wrong}@127.0.0.1:{port}/{}",
        user.name, db.name
    );
    let (status, body) = heartbeat::<C>(Some(pool(&url))).await;
    let text = connect_error(status, &body).to_owned();
    assert!(
        text.contains(&user.name),
        "the driver names the user: {text}"
    );
    assert_no_secret(&body, &[&password, &wrong]);
    text
}

#[actix_web::test]
async fn mariadb_wrong_password_is_e001_without_the_password() {
    let text = refused_login::<MysqlConnection>(Backend::Mysql, "mysql", 3306).await;
    assert!(text.contains("Access denied"), "{text}");
}

#[actix_web::test]
async fn postgres_wrong_password_is_e001_without_the_password() {
    postgres_refuses_a_wrong_password(async |url| heartbeat::<PgConnection>(Some(pool(url))).await)
        .await;
}

#[actix_web::test]
async fn postgres_refused_login_is_e001_without_the_password() {
    // This machine's PostgreSQL trusts 127.0.0.1, so it accepts any password: the refusal it
    // can give is a role that may not log in.
    let text = refused_login::<PgConnection>(Backend::Postgres, "postgres", 5432).await;
    assert!(text.contains("not permitted to log in"), "{text}");
}

// E003: the URL or the app is wrong.

async fn malformed<C: DatabaseConnection>(url: &str, password: &str, expected: &[&str]) {
    logs::capture();
    let (status, body) = heartbeat::<C>(Some(pool(url))).await;
    assert_failed(status, &body);
    let text = only_message(&body, ids::E003);
    assert!(text.starts_with("Database misconfigured: \""), "{text}");
    assert!(text.ends_with('"'), "{text}");
    assert!(expected.iter().any(|e| text.contains(e)), "{text}");
    assert_no_secret(&body, &[password]);
}

#[actix_web::test]
async fn postgres_with_a_bogus_url_scheme_is_e003_without_the_password() {
    // libpq reads it as a connection string and echoes it whole: the password is masked.
    let password = unique("Pw-hunter2");
    malformed::<PgConnection>(
        &format!("http://app:{password}@127.0.0.1:5432/test"),
        &password,
        &["missing \"=\" after \"http://app:***@127.0.0.1:5432/test\""],
    )
    .await;
}

#[actix_web::test]
async fn postgres_with_a_port_that_is_no_number_is_e003() {
    malformed::<PgConnection>(
        "postgres://postgres@127.0.0.1:fivefour/test",
        "no password here",
        &["invalid integer value \"fivefour\""],
    )
    .await;
}

#[actix_web::test]
async fn mariadb_with_a_bogus_url_scheme_is_e003_without_the_password() {
    let password = unique("Pw-hunter2");
    malformed::<MysqlConnection>(
        &format!("http://root:{password}@127.0.0.1:3306/test"),
        &password,
        &["MySQL connection URLs must be in the form"],
    )
    .await;
}

#[actix_web::test]
async fn sqlite_with_a_bogus_uri_parameter_is_e003() {
    let db = TempDatabase::new(Backend::Sqlite);
    malformed::<SqliteConnection>(
        &format!("sqlite://{}?mode=sometimes", db.name),
        "no password here",
        // SQLite's text for SQLITE_ERROR, or libsqlite3-sys' own before 0.31.
        &[
            "SQL logic error (SQLite rejected the URI or one of its parameters)",
            "SQL error or missing database (SQLite rejected the URI or one of its parameters)",
        ],
    )
    .await;
}

async fn no_pool<C: DatabaseConnection>(conn: &str) {
    let (status, body) = heartbeat::<C>(None).await;
    assert_failed(status, &body);
    let text = only_message(&body, ids::E003);
    let wanted = format!("web::Data<r2d2::Pool<ConnectionManager<{conn}>>>");
    assert!(text.starts_with("Database misconfigured: \""), "{text}");
    assert!(text.contains(&wanted), "names what to add: {text}");
}

#[actix_web::test]
async fn no_pool_is_e003_naming_what_to_add() {
    no_pool::<PgConnection>("PgConnection").await;
    no_pool::<MysqlConnection>("MysqlConnection").await;
    no_pool::<SqliteConnection>("SqliteConnection").await;
}

#[actix_web::test]
async fn a_pool_for_another_backend_is_not_taken_for_this_one() {
    let db = TempDatabase::new(Backend::Sqlite);
    let sqlite: Pool<ConnectionManager<SqliteConnection>> = pool(&db.url());
    let pg = checks::database_connected::<PgConnection>();
    let (_, body) = heartbeats::heartbeat([pg], Some(sqlite)).await;
    assert!(
        only_message(&body, ids::E003).contains("ConnectionManager<PgConnection>"),
        "{body}"
    );
}

// E002: a connection is handed out, and the query fails.

/// [`session_killed_under_the_pool`] with r2d2's `test_on_check_out(false)`.
async fn killed_session<C: DatabaseConnection>(backend: Backend) {
    let db = TempDatabase::new(backend);
    let pool: Pool<ConnectionManager<C>> = pool_builder()
        .max_size(1)
        .test_on_check_out(false)
        .build_unchecked(ConnectionManager::new(db.url()));
    session_killed_under_the_pool(&db, &server(pool)).await;
}

#[actix_web::test]
async fn postgres_session_killed_under_the_pool_is_e002() {
    killed_session::<PgConnection>(Backend::Postgres).await;
}

#[actix_web::test]
async fn mariadb_session_killed_under_the_pool_is_e002() {
    killed_session::<MysqlConnection>(Backend::Mysql).await;
}

#[actix_web::test]
async fn sqlite_file_that_is_not_a_database_is_e002() {
    // r2d2's own test of a connection is `SELECT 1`.
    sqlite_file_that_is_not_a_database(async |db| {
        heartbeat::<SqliteConnection>(Some(pool(&db.url()))).await
    })
    .await;
}

// Recovery: the check reports what is true now.

#[actix_web::test]
async fn postgres_back_after_its_sessions_were_killed_is_ok_again_with_a_tested_pool() {
    let db = TempDatabase::new(Backend::Postgres);
    let srv = server::<PgConnection>(pool(&db.url()));
    assert_eq!(heartbeat_of(&srv).await.0, StatusCode::OK);
    db.kill_sessions();
    // r2d2 tests the idle connection on checkout, drops it and opens a new one.
    let (status, body) = heartbeat_of(&srv).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

// What the pool cannot say.

#[actix_web::test]
async fn a_pool_with_every_connection_in_use_is_e001_saying_so() {
    let db = TempDatabase::new(Backend::Postgres);
    let pool: Pool<ConnectionManager<PgConnection>> = pool_builder()
        .max_size(1)
        .build_unchecked(ConnectionManager::new(db.url()));
    let held = pool.get().unwrap();
    let (status, body) = heartbeat::<PgConnection>(Some(pool.clone())).await;
    let text = connect_error(status, &body);
    assert_eq!(
        text,
        "no free connection in the pool within 900 ms (all 1 in use)"
    );
    drop(held);
    let (status, body) = heartbeat::<PgConnection>(Some(pool)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
async fn both_checks_on_one_pool_still_get_the_drivers_reason() {
    // r2d2 hands its last error to one waiter only; the database check waits less long than
    // the migrations check, so the reason is the database check's.
    const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
        diesel_migrations::embed_migrations!("fixtures/migrations/postgres");
    let port = closed_port();
    let pool: Pool<ConnectionManager<PgConnection>> =
        pool(&format!("postgres://postgres@127.0.0.1:{port}/test"));
    let dockerflow = with_checks([
        checks::database_connected::<PgConnection>(),
        checks::migrations_applied::<PgConnection>(MIGRATIONS),
    ]);
    let srv = serve(dockerflow.build().unwrap(), with_data(web::Data::new(pool)));
    for _ in 0..3 {
        let (status, body) = heartbeat_of(&srv).await;
        let reason = connect_error(status, &body);
        assert!(reason.contains("Connection refused"), "{body}");
        assert_eq!(
            heartbeats::only_message(&body, checks::MIGRATIONS_APPLIED, ids::I001),
            "Can't connect to database to check migrations"
        );
    }
}

#[actix_web::test]
async fn the_pool_wait_follows_the_checks_own_timeout() {
    // A check given its own timeout (shorter than the configured 1.2 s) still answers E001
    // with what it waited for, not E011: the pool is given three quarters of 400 ms.
    let listener = Listener::silent();
    let url = format!("postgres://postgres@127.0.0.1:{}/test", listener.port);
    let pool: Pool<ConnectionManager<PgConnection>> = pool(&url);
    let check = checks::database_connected::<PgConnection>();
    let (status, body) =
        heartbeats::heartbeat([check.with_timeout(Duration::from_millis(400))], Some(pool)).await;
    assert_eq!(
        connect_error(status, &body),
        "no connection could be opened within 300 ms"
    );
}
