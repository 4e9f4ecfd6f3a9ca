//! The demo reports to Sentry when `SENTRY_DSN` is set: run end to end against a local HTTP
//! endpoint that stands in for Sentry's ingestion API and keeps every envelope it receives.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dockerflow_tests::demo::DemoBinary;
use dockerflow_tests::net::Listener;
use dockerflow_tests::temp::WorkDir;
use serde_json::Value;

const DEMO: DemoBinary = DemoBinary(env!("CARGO_BIN_EXE_dockerflow-demo"));

/// One request received by the stand-in: its request line, headers (names in lower case)
/// and body.
#[derive(Debug, Clone)]
struct Received {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The envelope's items of type `event`, as JSON: an envelope is a header line, then
    /// for each item a header line and a payload line.
    fn events(&self) -> Vec<Value> {
        let mut lines = self.body.lines().skip(1);
        let mut events = Vec::new();
        while let Some(item_header) = lines.next() {
            let Ok(item) = serde_json::from_str::<Value>(item_header) else {
                continue;
            };
            let payload = lines.next().unwrap_or_default();
            if item["type"] == "event" {
                events.push(serde_json::from_str(payload).unwrap());
            }
        }
        events
    }
}

/// Sentry's ingestion endpoint, played by a plain HTTP/1.1 server on loopback that answers
/// `200 {}` to every request (with a `Content-Length` or a chunked body).
struct FakeSentry {
    listener: Listener,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FakeSentry {
    fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        let listener = Listener::serving(move |socket| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                let _ = socket.set_read_timeout(Some(Duration::from_secs(30)));
                let mut reader = BufReader::new(socket);
                while let Some(request) = read_request(&mut reader) {
                    sink.lock().unwrap().push(request);
                    let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
                    if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                        break;
                    }
                }
            });
        });
        FakeSentry { listener, received }
    }

    /// A DSN of project `project` on it.
    fn dsn(&self, project: u32) -> String {
        format!("http://{KEY}@127.0.0.1:{}/{project}", self.listener.port)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (up to 60 s) for an event that `wanted` accepts.
    fn wait_for_event(&self, wanted: impl Fn(&Value) -> bool) -> (Received, Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            for request in self.received() {
                if let Some(event) = request.events().into_iter().find(&wanted) {
                    return (request, event);
                }
            }
            assert!(
                Instant::now() < deadline,
                "no such event; received: {:#?}",
                self.received()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn read_request(reader: &mut BufReader<std::net::TcpStream>) -> Option<Received> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v): &(String, String)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = find("content-length") {
        body.resize(length.parse().ok()?, 0);
        reader.read_exact(&mut body).ok()?;
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(Received {
        line: line.trim_end().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

const KEY: &str = "5e7a1b9c0d2f4e6a8b0c1d2e3f4a5b6c";
const TOKEN: &str = "details-token-hunter2";
const COOKIE: &str = "session=cookie-hunter2";

fn exception_value(event: &Value) -> &str {
    event["exception"]["values"][0]["value"]
        .as_str()
        .unwrap_or_default()
}

#[test]
fn error_endpoint_reaches_sentry_once_and_without_secrets() {
    let sentry = FakeSentry::start();
    let dsn = sentry.dsn(42);
    let dir = WorkDir::create();
    let mut server = DEMO.start(
        &dir,
        &[],
        &[
            ("SENTRY_DSN", &dsn),
            ("SENTRY_ENVIRONMENT", "test"),
            ("DOCKERFLOW_ENABLE_ERROR_ENDPOINT", "true"),
            ("DOCKERFLOW_DETAILS_TOKEN", TOKEN),
        ],
    );

    let (status, body) = server.call(
        "GET",
        "/__error__",
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Cookie", COOKIE),
            ("X-Request-Id", "sentry-test-1"),
        ],
    );
    assert_eq!(status, 500);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::json!({"error": "test error from /__error__"})
    );

    let (request, event) =
        sentry.wait_for_event(|event| exception_value(event) == "test error from /__error__");
    // Sentry's envelope API of project 42, authenticated with the DSN's key.
    assert_eq!(request.line, "POST /api/42/envelope/ HTTP/1.1");
    let auth = request.header("x-sentry-auth").unwrap();
    assert!(auth.contains(&format!("sentry_key={KEY}")), "{auth}");
    assert_eq!(event["exception"]["values"][0]["type"], "TestError");
    assert_eq!(event["environment"], "test");
    assert_eq!(event["release"], "dockerflow-demo@0.1.0");
    assert_eq!(event["request"]["method"], "GET");
    assert!(event["request"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/__error__"));

    // SIGTERM: the demo stops, and the Sentry client sends what it still holds.
    assert!(server.terminate().success());
    let received = sentry.received();
    let reports: Vec<Value> = received
        .iter()
        .flat_map(Received::events)
        .filter(|event| event.to_string().contains("/__error__"))
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "one call, one event (the log lines about it are breadcrumbs): {reports:#?}"
    );

    for request in &received {
        assert!(!request.body.contains("hunter2"), "{}", request.body);
    }
    for output in [server.stdout(), server.stderr()] {
        assert!(!output.contains(KEY), "the DSN's key is logged: {output}");
        assert!(!output.contains("hunter2"), "{output}");
    }
}

#[test]
fn an_error_logged_by_the_app_is_an_event() {
    let sentry = FakeSentry::start();
    let dsn = sentry.dsn(7);
    let dir = WorkDir::create();
    // A version file that is not a JSON object: `/__version__` answers 500 and logs an error,
    // with no actix error involved, so the report comes from the log line.
    std::fs::write(dir.join("version.json"), "[1, 2, 3]").unwrap();
    let server = DEMO.start(&dir, &[], &[("SENTRY_DSN", &dsn)]);
    let (status, _) = server.get("/__version__");
    assert_eq!(status, 500);
    let (_, event) = sentry.wait_for_event(|event| event["message"] == "cannot serve /__version__");
    assert_eq!(event["logger"], "dockerflow::version");
    // Sentry leaves out the default level, `error`.
    assert!(
        event["level"].is_null() || event["level"] == "error",
        "{event}"
    );
    assert_eq!(event["request"]["method"], "GET");
}

#[test]
fn without_sentry_dsn_nothing_is_sent() {
    let sentry = FakeSentry::start();
    let dir = WorkDir::create();
    // SENTRY_DSN empty counts as unset; the stand-in's address is only in another variable.
    let elsewhere = sentry.dsn(1);
    let mut server = DEMO.start(
        &dir,
        &[],
        &[
            ("SENTRY_DSN", ""),
            ("NOT_SENTRY_DSN", &elsewhere),
            ("DOCKERFLOW_ENABLE_ERROR_ENDPOINT", "true"),
        ],
    );
    assert_eq!(server.get("/__error__").0, 500);
    assert!(server.terminate().success());
    assert!(sentry.received().is_empty());
}

#[test]
fn a_bad_sentry_dsn_stops_start_up_naming_it_without_its_key() {
    let dsn = format!("https://{KEY}@sentry.example");
    let run = DEMO.run(&WorkDir::create(), &["serve"], &[("SENTRY_DSN", &dsn)]);
    assert_eq!(run.status.code(), Some(78));
    assert!(run.stderr.contains("SENTRY_DSN"), "{}", run.stderr);
    assert!(!run.stderr.contains(KEY), "{}", run.stderr);
}
