//! docs/CONTRACT.md, "The demo service": the `dockerflow-demo` binary end to end, run as an
//! operator runs it: in a working directory of its own, configured by environment only, against
//! real servers.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use dockerflow_tests::databases::{Backend, TempDatabase};
use dockerflow_tests::net::closed_port;
use dockerflow_tests::redis_server::RedisServer;
use dockerflow_tests::temp::unique;
use serde_json::Value;

/// Builds the demo once per test run (a no-op when it is fresh) and returns its path, as
/// cargo reports it.
fn demo_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let output = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "dockerflow-demo",
                "--message-format=json",
            ])
            .current_dir(&workspace)
            .stderr(Stdio::inherit())
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "cargo build -p dockerflow-demo failed"
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|msg| {
                msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "dockerflow-demo"
            })
            .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the dockerflow-demo executable")
    })
}

/// A working directory of the test's own, removed at the end.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("dockerflow_demo"));
        std::fs::create_dir_all(&dir).unwrap();
        WorkDir(dir)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The command, in `dir`, with exactly the environment `env` (nothing inherited).
fn demo(dir: &WorkDir, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(demo_binary());
    command
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A run to its end (start-up failures, `migrate`): status, stdout, stderr.
fn run_to_end(mut command: Command) -> (ExitStatus, String, String) {
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stdout, stderr)
}

/// A running demo server, killed when dropped; its output is collected as it comes.
struct Server {
    child: Child,
    port: u16,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `dockerflow-demo args` on a free port and waits until `/__lbheartbeat__` answers.
    fn start(dir: &WorkDir, args: &[&str], env: &[(&str, &str)]) -> Server {
        let port = closed_port();
        let port_text = port.to_string();
        let mut env = env.to_vec();
        env.push(("PORT", &port_text));
        Server::start_on(dir, args, &env, port)
    }

    /// Starts `dockerflow-demo args` with exactly `env`, expecting it on `port`.
    fn start_on(dir: &WorkDir, args: &[&str], env: &[(&str, &str)], port: u16) -> Server {
        let mut child = demo(dir, args, env).spawn().unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let mut server = Server {
            child,
            port,
            stdout,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("the demo exited ({status}): {}", server.stderr());
            }
            if http(port, "GET", "/__lbheartbeat__").is_some_and(|(status, _)| status == 200) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "the demo did not start: {}",
                server.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        http(self.port, "GET", path).unwrap_or_else(|| panic!("GET {path} got no answer"))
    }

    fn post(&self, path: &str) -> (u16, String) {
        http(self.port, "POST", path).unwrap_or_else(|| panic!("POST {path} got no answer"))
    }

    /// `GET /__heartbeat__`: status and JSON body.
    fn heartbeat(&self) -> (u16, Value) {
        let (status, body) = self.get("/__heartbeat__");
        let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        (status, json)
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

/// One HTTP/1.1 request on a fresh connection: status and body, or `None` when nothing
/// listens yet.
fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).ok()?;
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(
        socket,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    socket.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

fn message<'a>(body: &'a Value, check: &str, id: &str) -> &'a str {
    body["details"][check]["messages"][id]
        .as_str()
        .unwrap_or_else(|| panic!("no {id} for {check} in {body}"))
}

#[test]
fn with_no_environment_at_all_it_listens_on_8000_and_answers_ok() {
    // The operator's first try: no variable set, not even PATH. The default port 8000 must be
    // free on this machine for this one test; the others use ports of their own.
    let dir = WorkDir::new();
    let server = Server::start_on(&dir, &[], &[], 8000);
    let (status, body) = server.get("/__heartbeat__");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    assert!(dir.0.join("dockerflow-demo.sqlite3").exists());
}

#[test]
fn with_no_settings_it_serves_from_a_sqlite_file_and_answers_ok() {
    let dir = WorkDir::new();
    // Nothing in the environment but the port, so that tests can run side by side.
    let server = Server::start(&dir, &[], &[]);
    let (status, body) = server.get("/__heartbeat__");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    assert!(dir.0.join("dockerflow-demo.sqlite3").exists());
    assert_eq!(server.get("/__lbheartbeat__"), (200, String::new()));

    // Its own routes work on the database it migrated.
    let (status, body) = server.post("/greetings/ann");
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.get("/greetings");
    assert_eq!(status, 200);
    let greetings: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(greetings[0]["name"], "ann", "{body}");
}

#[test]
fn without_redis_url_redis_is_not_part_of_the_heartbeat() {
    let dir = WorkDir::new();
    let server = Server::start(&dir, &["serve"], &[("DOCKERFLOW_SHOW_DETAILS", "true")]);
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
    let dir = WorkDir::new();
    let database_url = db.url();
    let redis_url = redis.url();
    let server = Server::start(
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
        !dir.0.join("dockerflow-demo.sqlite3").exists(),
        "it used PostgreSQL"
    );

    // The routes use both.
    let (status, body) = server.post("/greetings/bob");
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

    let server = Server::start(dir, &["serve", "--no-migrate"], &env);
    let (status, body) = server.heartbeat();
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["status"], "warning", "{body}");
    assert_eq!(
        message(&body, "check_migrations_applied", "dockerflow.health.W001"),
        "Unapplied migration 2024-01-01-000000_create_greetings; \
         Unapplied migration 2024-02-01-000000_add_greetings_language"
    );
    drop(server);

    let (status, _, stderr) = run_to_end(demo(dir, &["migrate"], &env));
    assert!(status.success(), "migrate failed: {stderr}");

    let server = Server::start(dir, &["serve", "--no-migrate"], &env);
    let (status, body) = server.heartbeat();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
}

#[test]
fn sqlite_migrate_then_serve_no_migrate() {
    let dir = WorkDir::new();
    migrate_then_serve(&dir, &[("DATABASE_URL", "sqlite://demo.db")]);
    assert!(dir.0.join("demo.db").exists());
}

#[test]
fn mariadb_migrate_then_serve_no_migrate() {
    let db = TempDatabase::new(Backend::Mysql);
    let dir = WorkDir::new();
    migrate_then_serve(&dir, &[("DATABASE_URL", &db.url())]);
}

#[test]
fn bad_settings_stop_start_up_naming_them_without_passwords() {
    let dir = WorkDir::new();
    for (name, value) in [
        ("DATABASE_URL", "mongodb://app:Pw-hunter2@db:27017/app"),
        ("PORT", "eighty"),
        ("REDIS_URL", "http://:Pw-hunter2@cache:6379"),
        ("STATSD_ADDR", "statsd-without-port"),
        ("DOCKERFLOW_FAIL_LEVEL", "loud"),
        ("DOCKERFLOW_CHECK_TIMEOUT_MS", "3s"),
    ] {
        let (status, stdout, stderr) = run_to_end(demo(&dir, &["serve"], &[(name, value)]));
        assert!(!status.success(), "{name}={value} was accepted");
        assert!(stderr.contains(name), "{name}: {stderr}");
        assert!(
            !stderr.contains("hunter2") && !stdout.contains("hunter2"),
            "{stderr}{stdout}"
        );
    }
    assert!(
        !dir.0.join("dockerflow-demo.sqlite3").exists(),
        "nothing started"
    );
    let (status, _, stderr) = run_to_end(demo(&dir, &["serve", "--now"], &[]));
    assert!(!status.success());
    assert!(stderr.contains("usage:"), "{stderr}");
}

#[test]
fn a_database_password_never_shows() {
    let dir = WorkDir::new();
    let password = unique("Pw-s3cret");
    let url = format!(
        "postgres://postgres:{password}@127.0.0.1:{}/app",
        closed_port()
    );
    let server = Server::start(
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
    let dir = WorkDir::new();
    let server = Server::start(
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
    let dir = WorkDir::new();
    let mut server = Server::start(&dir, &[], &[("DOCKERFLOW_DRAIN_MS", "1500")]);
    assert_eq!(server.get("/__heartbeat__").0, 200);
    let terminated = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.get("/__lbheartbeat__").0, 503);
    assert_eq!(server.get("/__heartbeat__").0, 503);
    assert_eq!(server.get("/").0, 200);
    assert!(
        terminated.elapsed() < Duration::from_millis(1500),
        "the requests above took the whole drain"
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not exit after draining"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        terminated.elapsed() >= Duration::from_millis(1500),
        "it did not drain"
    );
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    assert!(http(server.port, "GET", "/__lbheartbeat__").is_none());
    assert!(server.stdout().contains("draining"), "{}", server.stdout());
}
