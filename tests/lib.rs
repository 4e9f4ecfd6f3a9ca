//! Helpers shared by the behaviour tests: a real HTTP server on loopback with the Dockerflow
//! endpoints mounted, and a client that returns what came back.

use actix_web::http::{Method, StatusCode};
use actix_web::{web, App};
use dockerflow::Dockerflow;

/// What a request got back.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: actix_web::http::header::HeaderMap,
    /// Response body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as JSON, with the `duration_ms` of each `details` entry checked to be a whole
    /// number and taken out, for tests that compare whole bodies.
    pub fn json_without_durations(&self) -> serde_json::Value {
        let mut body = self.json();
        if let Some(details) = body.get_mut("details").and_then(|d| d.as_object_mut()) {
            for (name, entry) in details {
                let duration = entry.as_object_mut().and_then(|e| e.remove("duration_ms"));
                assert!(
                    duration.as_ref().is_some_and(serde_json::Value::is_u64),
                    "{name} has no whole duration_ms: {duration:?}"
                );
            }
        }
        body
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

/// Starts a real server on a free loopback port with `dockerflow` mounted and `data` added
/// to the app by `setup`.
pub fn serve<F>(dockerflow: Dockerflow, setup: F) -> actix_test::TestServer
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    actix_test::start(move || {
        let dockerflow = dockerflow.clone();
        let setup = setup.clone();
        App::new()
            .configure(setup)
            .configure(move |cfg| dockerflow.configure(cfg))
    })
}

/// Sends a request and reads the whole answer.
pub async fn call(
    srv: &actix_test::TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = srv.request(method, srv.url(path));
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let body = response
        .body()
        .limit(1 << 20)
        .await
        .unwrap_or_default()
        .to_vec();
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body,
    }
}

/// `GET path`.
pub async fn get(srv: &actix_test::TestServer, path: &str) -> Answer {
    call(srv, Method::GET, path, &[]).await
}

/// A builder that runs only the named checks, reads no environment, and reuses no finished
/// run (each heartbeat after a run has finished starts another), for tests that count runs.
pub fn only(names: &[&str]) -> dockerflow::Builder {
    Dockerflow::builder()
        .environment(std::iter::empty::<(String, String)>())
        .only_checks(names.iter().copied())
        .cache_ttl(std::time::Duration::ZERO)
}

/// App data for [`serve`]: registers each value with `App::app_data`.
pub fn with_data<T: Send + Sync + 'static>(
    data: web::Data<T>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(data.clone());
    }
}

/// A loopback port nothing listens on: bound, then released.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A listener that accepts connections and never says a word: the hung backend.
pub struct SilentListener {
    /// Its port on 127.0.0.1.
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SilentListener {
    /// Starts accepting on a free port; accepted sockets are held open until dropped.
    pub fn start() -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((socket, _)) => held.push(socket),
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        });
        SilentListener { port, stop }
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A redis-server of the test's own on a free port, killed when dropped.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<std::process::Child>,
}

impl RedisServer {
    /// Starts one and waits until it answers.
    pub fn start() -> Self {
        let mut server = RedisServer {
            port: closed_port(),
            child: None,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to connected clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH (scripts/setup installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.command(&["PING"]).as_deref() != Some("+PONG") {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server on port {} did not start",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Sends one command in RESP and returns the first line of the answer.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        use std::io::{BufRead, Write};
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        socket.write_all(request.as_bytes()).ok()?;
        let mut reader = std::io::BufReader::new(socket);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if let Some(len) = line
            .strip_prefix('$')
            .and_then(|n| n.trim().parse::<usize>().ok())
        {
            let mut body = vec![0; len + 2];
            std::io::Read::read_exact(&mut reader, &mut body).ok()?;
            return Some(String::from_utf8_lossy(&body[..len]).into_owned());
        }
        Some(line.trim_end().to_owned())
    }

    /// How many times a command ran, from `INFO commandstats` (`ping` → `cmdstat_ping:calls=N`).
    pub fn calls(&self, command: &str) -> u64 {
        let info = self.command(&["INFO", "commandstats"]).unwrap_or_default();
        let key = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|line| line.strip_prefix(&key))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL server of the test's own, with password authentication (the machine's server
/// trusts loopback, so it cannot refuse a wrong password). Stopped and removed when dropped.
pub struct PrivatePostgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
}

impl PrivatePostgres {
    /// `initdb` with `scram-sha-256` for the user `postgres` with `password`, then starts it on
    /// a free port and waits until it accepts connections.
    pub fn start(password: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries (scripts/setup installs them)")
            .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("dockerflow-pg-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pwfile = dir.join("password");
        std::fs::write(&pwfile, password).unwrap();
        as_postgres(
            std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir),
            false,
        );
        let data = dir.join("data");
        as_postgres(
            std::process::Command::new(bin.join("initdb"))
                .args([
                    "--username=postgres",
                    "--auth=scram-sha-256",
                    "--no-sync",
                    "--encoding=UTF8",
                ])
                .arg(format!("--pwfile={}", pwfile.display()))
                .arg("-D")
                .arg(&data),
            true,
        );
        let server = PrivatePostgres {
            port: closed_port(),
            dir,
            bin,
        };
        as_postgres(
            std::process::Command::new(server.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-o")
                .arg(format!(
                    "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
                    server.port,
                    server.dir.display()
                ))
                .arg("-l")
                .arg(server.dir.join("log"))
                .args(["-w", "-t", "30", "start"]),
            true,
        );
        server
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let mut stop = std::process::Command::new(self.bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"]);
        if is_root() {
            let mut runuser = std::process::Command::new("runuser");
            runuser
                .args(["-u", "postgres", "--"])
                .arg(stop.get_program())
                .args(stop.get_args());
            stop = runuser;
        }
        stop.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// Runs `command` as the `postgres` user when this process is root (PostgreSQL refuses to run
/// as root); `as_user` false runs it as is. Panics with its output when it fails.
fn as_postgres(command: &mut std::process::Command, as_user: bool) {
    let output = if as_user && is_root() {
        std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(command.get_program())
            .args(command.get_args())
            .output()
    } else {
        command.output()
    }
    .unwrap_or_else(|e| panic!("{:?}: {e}", command.get_program()));
    assert!(
        output.status.success(),
        "{:?} failed: {}{}",
        command.get_program(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
