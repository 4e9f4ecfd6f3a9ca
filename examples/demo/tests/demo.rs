//! docs/CONTRACT.md, "The demo service": the `dockerflow-demo` binary end to end, run as an
//! operator runs it: in a working directory of its own, configured by environment only, against
//! real servers.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use dockerflow_tests::databases::{Backend, TempDatabase};
use dockerflow_tests::demo::DemoBinary;
use dockerflow_tests::net::{closed_port, request};
use dockerflow_tests::redis_server::RedisServer;
use dockerflow_tests::temp::{unique, WorkDir};
use serde_json::Value;

const DEMO: DemoBinary = DemoBinary(env!("CARGO_BIN_EXE_dockerflow-demo"));

fn message<'a>(body: &'a Value, check: &str, id: &str) -> &'a str {
    body["details"][check]["messages"][id]
        .as_str()
        .unwrap_or_else(|| panic!("no {id} for {check} in {body}"))
}

#[test]
fn with_no_environment_at_all_it_listens_on_8000_and_answers_ok() {
    // The operator's first try: no variable set, not even PATH. The default port 8000 must be
    // free on this machine for this one test; the others use ports of their own.
    let dir = WorkDir::create();
    let server = DEMO.start_on(&dir, &[], &[], 8000);
    let (status, body) = server.get("/__heartbeat__");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    assert!(dir.join("dockerflow-demo.sqlite3").exists());
}

#[test]
fn with_no_settings_it_serves_from_a_sqlite_file_and_answers_ok() {
    let dir = WorkDir::create();
    // Nothing in the environment but the port, so that tests can run side by side.
    let server = DEMO.start(&dir, &[], &[]);
    let (status, body) = server.get("/__heartbeat__");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    assert!(dir.join("dockerflow-demo.sqlite3").exists());
    assert_eq!(server.get("/__lbheartbeat__"), (200, String::new()));

    // Its own routes work on the database it migrated.
    let (status, body) = server.call("POST", "/greetings/ann", &[]);
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.get("/greetings");
    assert_eq!(status, 200);
    let greetings: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(greetings[0]["name"], "ann", "{body}");
}

#[test]
fn without_redis_url_redis_is_not_part_of_the_heartbeat() {
    let dir = WorkDir::create();
    let server = DEMO.start(&dir, &["serve"], &[("DOCKERFLOW_SHOW_DETAILS", "true")]);
    let (status, body) = server.heartbeat();
    assert_eq!(status, 200, "{body}");
    let checks = body["checks"].as_object().unwrap();
    let names: Vec<&str> = checks.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "check_database_connected",
            "check_greetings_readable",
            "check_migrations_applied",
            "check_scratch_dir_writable",
        ],
        "{body}"
    );
}

#[test]
fn postgres_and_redis_then_redis_goes_away() {
    let db = TempDatabase::new(Backend::Postgres);
    let mut redis = RedisServer::start();
    let dir = WorkDir::create();
    let database_url = db.url();
    let redis_url = redis.url();
    let server = DEMO.start(
        &dir,
        &["serve"],
        &[
            ("DATABASE_URL", &database_url),
            ("REDIS_URL", &redis_url),
            ("DOCKERFLOW_SHOW_DETAILS", "true"),
            ("DOCKERFLOW_CACHE_TTL_MS", "0"),
        ],
    );
    let (status, body) = server.heartbeat();
    assert_eq!(status, 200, "{body}");
    for check in [
        "check_database_connected",
        "check_migrations_applied",
        "check_redis_connected",
    ] {
        assert_eq!(body["checks"][check], "ok", "{body}");
    }
    assert!(
        !dir.join("dockerflow-demo.sqlite3").exists(),
        "it used PostgreSQL"
    );

    // The routes use both.
    let (status, body) = server.call("POST", "/greetings/bob", &[]);
    assert_eq!(status, 201, "{body}");
    let greeting: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(greeting["count"], 1, "{body}");

    redis.kill();
    let (status, body) = server.heartbeat();
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["checks"]["check_database_connected"], "ok", "{body}");
    let text = message(&body, "check_redis_connected", "dockerflow.health.E004");
    assert!(text.starts_with("Could not connect to redis: "), "{text}");
}

/// `serve --no-migrate` on a fresh database warns of both migrations; `migrate` applies them
/// and exits; `serve --no-migrate` is then ok.
fn migrate_then_serve(dir: &WorkDir, env: &[(&str, &str)]) {
    let mut env = env.to_vec();
    env.push(("DOCKERFLOW_SHOW_DETAILS", "true"));

    let server = DEMO.start(dir, &["serve", "--no-migrate"], &env);
    let (status, body) = server.heartbeat();
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["status"], "warning", "{body}");
    assert_eq!(
        message(&body, "check_migrations_applied", "dockerflow.health.W001"),
        "Unapplied migration 2024-01-01-000000_create_greetings; \
         Unapplied migration 2024-02-01-000000_add_greetings_language"
    );
    drop(server);

    let migrate = DEMO.run(dir, &["migrate"], &env);
    assert!(
        migrate.status.success(),
        "migrate failed: {}",
        migrate.stderr
    );

    let server = DEMO.start(dir, &["serve", "--no-migrate"], &env);
    let (status, body) = server.heartbeat();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
}

#[test]
fn sqlite_migrate_then_serve_no_migrate() {
    let dir = WorkDir::create();
    migrate_then_serve(&dir, &[("DATABASE_URL", "sqlite://demo.db")]);
    assert!(dir.join("demo.db").exists());
}

#[test]
fn mariadb_migrate_then_serve_no_migrate() {
    let db = TempDatabase::new(Backend::Mysql);
    let dir = WorkDir::create();
    migrate_then_serve(&dir, &[("DATABASE_URL", &db.url())]);
}

#[test]
fn bad_settings_stop_start_up_naming_them_without_passwords() {
    let dir = WorkDir::create();
    for (name, value) in [
        ("DATABASE_URL", "mongodb://app:Pw-hunter2@db:27017/app"),
        ("PORT", "eighty"),
        ("REDIS_URL", "http://:Pw-hunter2@cache:6379"),
        ("STATSD_ADDR", "statsd-without-port"),
        ("DOCKERFLOW_FAIL_LEVEL", "loud"),
        ("DOCKERFLOW_CHECK_TIMEOUT_MS", "3s"),
    ] {
        let run = DEMO.run(&dir, &["serve"], &[(name, value)]);
        assert!(!run.status.success(), "{name}={value} was accepted");
        assert!(run.stderr.contains(name), "{name}: {}", run.stderr);
        assert!(
            !run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"),
            "{run:?}"
        );
    }
    assert!(
        !dir.join("dockerflow-demo.sqlite3").exists(),
        "nothing started"
    );
    let run = DEMO.run(&dir, &["serve", "--now"], &[]);
    assert!(!run.status.success());
    assert!(run.stderr.contains("usage:"), "{}", run.stderr);
}

#[test]
fn a_database_password_never_shows() {
    let dir = WorkDir::create();
    let password = unique("Pw-s3cret");
    let url = format!(
        "postgres://postgres:{password}@127.0.0.1:{}/app",
        closed_port()
    );
    let server = DEMO.start(
        &dir,
        &["serve", "--no-migrate"],
        &[("DATABASE_URL", &url), ("DOCKERFLOW_SHOW_DETAILS", "true")],
    );
    let (status, body) = server.heartbeat();
    assert_eq!(status, 500, "{body}");
    let text = message(&body, "check_database_connected", "dockerflow.health.E001");
    // The driver's reason ("Connection refused") is tested in tests/database.rs; here two
    // checks and a route share one pool, and r2d2 hands its last error to one waiter only.
    assert!(
        text.starts_with("Could not connect to database: "),
        "{text}"
    );
    // Routes that fail say nothing of the driver either.
    let (status, _) = server.get("/greetings");
    assert_eq!(status, 503);
    std::thread::sleep(Duration::from_millis(200));
    for output in [body.to_string(), server.stdout(), server.stderr()] {
        assert!(!output.contains(&password), "the password shows: {output}");
    }
}

#[test]
fn statsd_gets_a_counter_for_each_heartbeat() {
    let statsd = UdpSocket::bind("127.0.0.1:0").unwrap();
    statsd
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let statsd_addr = statsd.local_addr().unwrap().to_string();
    let mut redis = RedisServer::start();
    let redis_url = redis.url();
    let dir = WorkDir::create();
    let server = DEMO.start(
        &dir,
        &[],
        &[
            ("STATSD_ADDR", &statsd_addr),
            ("REDIS_URL", &redis_url),
            ("DOCKERFLOW_CACHE_TTL_MS", "0"),
        ],
    );
    let receive = || {
        let mut buf = [0; 512];
        let n = statsd.recv(&mut buf).expect("a statsd packet");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };

    assert_eq!(server.get("/__heartbeat__").0, 200);
    assert_eq!(receive(), "heartbeat.pass:1|c");

    redis.kill();
    assert_eq!(server.get("/__heartbeat__").0, 500);
    assert_eq!(receive(), "heartbeat.fail:1|c");
}

/// SIGTERM with `DOCKERFLOW_DRAIN_MS`: the probes answer 503 while the service's own routes
/// keep serving, then the process stops accepting and exits 0. (That requests under way are
/// finished is shown in tests/drain.rs, with a slow route.)
#[test]
fn sigterm_drains_then_exits_0() {
    let dir = WorkDir::create();
    let mut server = DEMO.start(&dir, &[], &[("DOCKERFLOW_DRAIN_MS", "1500")]);
    assert_eq!(server.get("/__heartbeat__").0, 200);
    let terminated = Instant::now();
    server.signal_term();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.get("/__lbheartbeat__").0, 503);
    assert_eq!(server.get("/__heartbeat__").0, 503);
    assert_eq!(server.get("/").0, 200);
    assert!(
        terminated.elapsed() < Duration::from_millis(1500),
        "the requests above took the whole drain"
    );

    let status = server.wait(Duration::from_secs(20));
    assert!(
        terminated.elapsed() >= Duration::from_millis(1500),
        "it did not drain"
    );
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    assert!(request(server.port, "GET", "/__lbheartbeat__", &[]).is_none());
    assert!(server.stdout().contains("draining"), "{}", server.stdout());
}
