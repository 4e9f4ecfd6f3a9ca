//! docs/CONTRACT.md, "Logs (mozlog)": mozlog lines, `request.summary` and request ids, from real
//! servers.
//!
//! One global subscriber per test binary (handlers run on the server's worker threads, where a
//! thread-local subscriber would see nothing) writes into a shared buffer; each test finds its
//! own lines by the request id it sent. Every line captured is validated against
//! `fixtures/mozlog.schema.json`. One test runs a child process that calls
//! `dockerflow::logging::init` and reads its real stdout.

use std::io::{self, BufRead};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::dev::Service as _;
use actix_web::http::header::HeaderValue;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse};
use dockerflow::logging::{MozLogLayer, RequestId};
use dockerflow::Dockerflow;
use dockerflow_tests::logs::{mozlog_schema as validator, Capture};
use dockerflow_tests::temp::unique;
use serde_json::{json, Value};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

const LOGGER: &str = "logging-tests";

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry()
            .with(MozLogLayer::new(LOGGER).with_writer(capture.clone()))
            .with(LevelFilter::DEBUG);
        tracing::subscriber::set_global_default(subscriber)
            .expect("the only global subscriber of this binary");
        capture
    })
}

/// `text` as one mozlog line, valid against the schema.
fn parse_line(text: &str) -> Value {
    let line: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    let errors: Vec<String> = validator()
        .iter_errors(&line)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{text}\ndoes not match the mozlog schema: {errors:#?}"
    );
    line
}

/// Every line captured so far. Each `write` call holds exactly one whole line.
fn all_lines() -> Vec<Value> {
    let writes = capture().writes();
    writes
        .iter()
        .map(|write| {
            let text = std::str::from_utf8(write).expect("UTF-8");
            assert!(
                text.ends_with('\n') && text.matches('\n').count() == 1,
                "a write that is not exactly one line: {text:?}"
            );
            parse_line(text.trim_end())
        })
        .collect()
}

/// The lines whose `Fields.rid` is `rid`, once `done` holds for them (5 s at most).
fn lines_of(rid: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<Value> = all_lines()
            .into_iter()
            .filter(|l| l["Fields"]["rid"] == rid)
            .collect();
        if done(&lines) || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn summaries(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["Type"] == "request.summary")
        .collect()
}

/// The one `request.summary` line of the request `rid`.
fn summary_of(rid: &str) -> Value {
    let lines = lines_of(rid, |lines| !summaries(lines).is_empty());
    let found = summaries(&lines);
    assert_eq!(found.len(), 1, "one summary for {rid}: {lines:#?}");
    found[0].clone()
}

fn is_uuid_v4(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok_and(|id| id.get_version_num() == 4)
}

async fn hello(rid: RequestId) -> String {
    // A span of the app's own (ERROR, so a `RUST_LOG` of warn keeps it), for span directives.
    let span = tracing::error_span!("greeting");
    let _entered = span.enter();
    tracing::info!(step = "inside", "handling hello");
    format!("rid={rid}")
}

async fn failing() -> Result<HttpResponse, actix_web::Error> {
    Err(actix_web::error::ErrorInternalServerError(
        "the payments backend is down",
    ))
}

async fn plain_500() -> HttpResponse {
    HttpResponse::InternalServerError().finish()
}

async fn panicking() -> HttpResponse {
    panic!("boom in the handler");
}

/// A value whose `Debug` fails half-way.
struct Unprintable;

impl std::fmt::Debug for Unprintable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("half of it")?;
        Err(std::fmt::Error)
    }
}

async fn nested() -> HttpResponse {
    tracing::info!(
        bytes = &b"\xff\x00ok"[..],
        control = "bell\u{7} and \"quotes\"\nnew line",
        unprintable = ?Unprintable,
        "odd values"
    );
    tracing::info!(
        tree = ?json!({"a": {"b": [1, 2]}}),
        shown = %json!({"c": [3]}),
        list = ?vec![1, 2, 3],
        count = 3_u64,
        ok = true,
        ratio = 0.5_f64,
        "nested values"
    );
    HttpResponse::Ok().finish()
}

async fn secrets() -> HttpResponse {
    tracing::warn!(
        url = "postgres://app:hunter2@db.internal:5432/app",
        note = "configured secret: tok-logging-s3cret",
        "connecting to postgres://app:hunter2@db.internal:5432/app"
    );
    HttpResponse::Ok().finish()
}

async fn with_uid(req: HttpRequest) -> HttpResponse {
    tracing::info!("before the uid is known");
    dockerflow::logging::set_uid(&req, "user-42");
    tracing::info!("after the uid is known");
    HttpResponse::Ok().finish()
}

/// A hook that logs, as a service's statsd hook might: its line belongs to the heartbeat
/// request.
#[dockerflow::on_heartbeat_passed]
fn heartbeat_passed(_level: dockerflow::Level) {
    tracing::info!(target: "logging.hook", "heartbeat passed");
}

async fn spawned(req: HttpRequest) -> HttpResponse {
    dockerflow::logging::set_uid(&req, "user-7");
    let carried = actix_web::rt::spawn(dockerflow::logging::in_current_request(async {
        tracing::info!("from a local task that took the request along");
    }));
    // The wrapped future is `Send`: it can run on another thread.
    let elsewhere = dockerflow::logging::in_current_request(async {
        tracing::info!("from another thread");
    });
    let thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(elsewhere);
    });
    let unwrapped = actix_web::rt::spawn(async {
        tracing::info!(marker = "unwrapped", "from a task on its own");
    });
    let _ = (carried.await, unwrapped.await, thread.join());
    HttpResponse::Ok().finish()
}

async fn levels() -> HttpResponse {
    let err = Outer(io::Error::new(
        io::ErrorKind::ConnectionRefused,
        "connection refused",
    ));
    tracing::error!(
        error = &err as &dyn std::error::Error,
        "cannot reach the cache"
    );
    tracing::error!(critical = true, "the disk is full");
    tracing::warn!("a warning");
    tracing::debug!("a debug line");
    tracing::info!(target: "custom.type", "a custom type");
    tracing::info!(Type = "type.from.a.field", "a Type field");
    HttpResponse::Ok().finish()
}

#[derive(Debug)]
struct Outer(io::Error);

impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cache client failed")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/hello", web::get().to(hello))
        .route("/failing", web::get().to(failing))
        .route("/plain-500", web::get().to(plain_500))
        .route("/panic", web::get().to(panicking))
        .route("/nested", web::get().to(nested))
        .route("/secrets", web::get().to(secrets))
        .route("/uid", web::get().to(with_uid))
        .route("/spawned", web::get().to(spawned))
        .route("/levels", web::get().to(levels));
}

fn server(dockerflow: Dockerflow) -> actix_test::TestServer {
    capture();
    actix_test::start(move || {
        let dockerflow = dockerflow.clone();
        App::new()
            .configure(routes)
            .configure(|cfg| dockerflow.configure(cfg))
            .wrap(dockerflow.request_summary())
    })
}

fn builder() -> dockerflow::Builder {
    Dockerflow::builder()
        .environment(std::iter::empty::<(String, String)>())
        .only_checks(std::iter::empty::<String>())
}

fn default_server() -> actix_test::TestServer {
    server(builder().build().unwrap())
}

struct Sent {
    status: StatusCode,
    rid_header: Option<String>,
    body: String,
}

async fn send(srv: &actix_test::TestServer, path: &str, headers: &[(&str, HeaderValue)]) -> Sent {
    let mut request = srv.get(path);
    for (name, value) in headers {
        request = request.insert_header((*name, value.clone()));
    }
    let mut response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let body = response.body().await.unwrap();
    Sent {
        status: response.status(),
        rid_header: response
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn rid_header(rid: &str) -> (&'static str, HeaderValue) {
    ("x-request-id", HeaderValue::from_str(rid).unwrap())
}

#[actix_web::test]
async fn the_summary_carries_the_request_id_of_the_header_which_is_echoed_and_extracted() {
    let srv = default_server();
    let rid = unique("sane id");
    let sent = send(
        &srv,
        "/hello?a=1",
        &[
            rid_header(&rid),
            ("user-agent", HeaderValue::from_static("logging-test/1.0")),
            ("accept-language", HeaderValue::from_static("fr-CA")),
        ],
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(sent.rid_header.as_deref(), Some(rid.as_str()));
    assert_eq!(sent.body, format!("rid={rid}"));

    let summary = summary_of(&rid);
    assert_eq!(summary["Logger"], LOGGER);
    assert_eq!(summary["Severity"], 6);
    assert_eq!(summary["EnvVersion"], "2.0");
    assert_eq!(summary["Pid"], std::process::id());
    let fields = &summary["Fields"];
    assert_eq!(fields["agent"], "logging-test/1.0");
    assert_eq!(fields["lang"], "fr-CA");
    assert_eq!(fields["method"], "GET");
    assert_eq!(fields["path"], "/hello");
    assert_eq!(fields["code"], 200);
    assert_eq!(fields["errno"], 0);
    assert!(fields["t"].is_u64(), "{summary}");
    assert!(
        fields.get("querystring").is_none(),
        "querystring is off by default: {summary}"
    );
    assert!(fields.get("uid").is_none(), "{summary}");

    // The handler's own line carries the id of the request it is logged in.
    let lines = lines_of(&rid, |_| true);
    let inside = lines
        .iter()
        .find(|l| l["Fields"]["msg"] == "handling hello")
        .expect("the handler's line");
    assert_eq!(inside["Fields"]["step"], "inside");
    assert_eq!(inside["Type"], "logging");
    assert_eq!(inside["Severity"], 6);
    let timestamp = inside["Timestamp"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(
        now - timestamp < 60_000_000_000,
        "Timestamp is ns since the epoch: {timestamp}"
    );
}

#[actix_web::test]
async fn a_request_without_an_id_gets_a_uuid_v4_in_the_response_and_the_summary() {
    let srv = default_server();
    let sent = send(&srv, "/hello", &[]).await;
    let rid = sent.rid_header.expect("a request id header");
    assert!(is_uuid_v4(&rid), "{rid}");
    assert_eq!(sent.body, format!("rid={rid}"));
    assert_eq!(summary_of(&rid)["Fields"]["path"], "/hello");
}

#[actix_web::test]
async fn hostile_request_ids_are_replaced_by_a_uuid_v4() {
    let srv = default_server();
    let longest = "y".repeat(128);
    let hostile = [
        HeaderValue::from_str(&"x".repeat(300)).unwrap(),
        HeaderValue::from_str(&"z".repeat(129)).unwrap(),
        HeaderValue::from_str("abc\tdef").unwrap(),
        HeaderValue::from_bytes("café-☕".as_bytes()).unwrap(),
        HeaderValue::from_bytes(b"\x80\xff").unwrap(),
    ];
    for value in hostile {
        let sent = send(&srv, "/hello", &[("x-request-id", value.clone())]).await;
        let rid = sent.rid_header.expect("a request id header");
        assert!(is_uuid_v4(&rid), "{value:?} was answered with {rid:?}");
        assert_eq!(sent.body, format!("rid={rid}"));
        assert_eq!(summary_of(&rid)["Fields"]["rid"], rid.as_str());
    }
    let sent = send(&srv, "/hello", &[rid_header(&longest)]).await;
    assert_eq!(
        sent.rid_header.as_deref(),
        Some(longest.as_str()),
        "128 characters are kept"
    );
}

#[actix_web::test]
async fn the_configured_header_is_read_and_answered() {
    let srv = server(builder().request_id_header("X-Trace-Id").build().unwrap());
    let rid = unique("trace");
    let mut response = srv
        .get("/hello")
        .insert_header(("x-trace-id", rid.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("x-trace-id").unwrap(), rid.as_str());
    assert!(response.headers().get("x-request-id").is_none());
    assert_eq!(
        response.body().await.unwrap(),
        format!("rid={rid}").as_bytes()
    );
    assert_eq!(summary_of(&rid)["Fields"]["code"], 200);
}

#[actix_web::test]
async fn a_handler_that_fails_with_a_500_gives_errno_500_and_an_error_line() {
    let srv = default_server();
    let rid = unique("failing");
    let sent = send(&srv, "/failing", &[rid_header(&rid)]).await;
    assert_eq!(sent.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(sent.rid_header.as_deref(), Some(rid.as_str()));
    let summary = summary_of(&rid);
    assert_eq!(summary["Fields"]["code"], 500);
    assert_eq!(summary["Fields"]["errno"], 500);
    assert_eq!(summary["Severity"], 3);
    assert_eq!(summary["Fields"]["error"], "the payments backend is down");

    // A plain 500 answer is not a failure of the handler, but still errno 500.
    let rid = unique("plain 500");
    send(&srv, "/plain-500", &[rid_header(&rid)]).await;
    let summary = summary_of(&rid);
    assert_eq!(
        (
            summary["Fields"]["code"].clone(),
            summary["Fields"]["errno"].clone()
        ),
        (json!(500), json!(500))
    );
    assert_eq!(summary["Severity"], 6);

    // Below 500, errno is 0.
    let rid = unique("not found");
    let sent = send(&srv, "/nowhere", &[rid_header(&rid)]).await;
    assert_eq!(sent.status, StatusCode::NOT_FOUND);
    assert_eq!(sent.rid_header.as_deref(), Some(rid.as_str()));
    let summary = summary_of(&rid);
    assert_eq!(
        (
            summary["Fields"]["code"].clone(),
            summary["Fields"]["errno"].clone()
        ),
        (json!(404), json!(0))
    );
}

#[actix_web::test]
async fn an_error_from_an_inner_middleware_is_summarised_and_answered_with_the_id() {
    capture();
    let dockerflow = builder().build().unwrap();
    let srv = actix_test::start(move || {
        App::new()
            .configure(routes)
            .wrap_fn(|req, srv| {
                let path = req.path().to_owned();
                let answer = srv.call(req);
                async move {
                    match path.as_str() {
                        "/maintenance" => Err(actix_web::error::ErrorServiceUnavailable(
                            "down for maintenance",
                        )),
                        "/forbidden" => Err(actix_web::error::ErrorForbidden("no entry")),
                        _ => answer.await,
                    }
                }
            })
            .wrap(dockerflow.request_summary())
    });
    let rid = unique("inner 503");
    let sent = send(&srv, "/maintenance", &[rid_header(&rid)]).await;
    assert_eq!(sent.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(sent.body, "down for maintenance");
    assert_eq!(sent.rid_header.as_deref(), Some(rid.as_str()));
    let summary = summary_of(&rid);
    assert_eq!(
        (
            summary["Fields"]["code"].clone(),
            summary["Fields"]["errno"].clone()
        ),
        (json!(503), json!(503))
    );
    assert_eq!(summary["Fields"]["error"], "down for maintenance");
    assert_eq!(summary["Severity"], 3);

    let rid = unique("inner 403");
    let sent = send(&srv, "/forbidden", &[rid_header(&rid)]).await;
    assert_eq!(sent.status, StatusCode::FORBIDDEN);
    assert_eq!(sent.rid_header.as_deref(), Some(rid.as_str()));
    let summary = summary_of(&rid);
    assert_eq!(
        (
            summary["Fields"]["code"].clone(),
            summary["Fields"]["errno"].clone()
        ),
        (json!(403), json!(0))
    );
    assert_eq!(summary["Severity"], 6);
}

#[actix_web::test]
async fn a_panicking_handler_gets_a_summary_with_errno_500_and_the_server_keeps_serving() {
    let srv = default_server();
    let rid = unique("panic");
    let result = srv
        .get("/panic")
        .insert_header(("x-request-id", rid.as_str()))
        .send()
        .await;
    assert!(
        result.is_err(),
        "actix closes the connection of a panicking handler: {result:?}"
    );
    let summary = summary_of(&rid);
    assert_eq!(summary["Fields"]["code"], 500);
    assert_eq!(summary["Fields"]["errno"], 500);
    assert_eq!(summary["Severity"], 3);
    assert_eq!(
        summary["Fields"]["error"],
        "handler panicked: boom in the handler"
    );

    assert_eq!(send(&srv, "/hello", &[]).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn a_middleware_that_panics_before_its_future_is_made_gets_a_summary_too() {
    capture();
    let dockerflow = builder().build().unwrap();
    let srv = actix_test::start(move || {
        App::new()
            .configure(routes)
            .wrap_fn(|req, srv| {
                // In `call` itself, not in the future it gives back.
                assert!(req.path() != "/panic-in-call", "boom in call");
                srv.call(req)
            })
            .wrap(dockerflow.request_summary())
    });
    let rid = unique("panic in call");
    let result = srv
        .get("/panic-in-call")
        .insert_header(("x-request-id", rid.as_str()))
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
    let summary = summary_of(&rid);
    assert_eq!(summary["Fields"]["code"], 500);
    assert_eq!(summary["Fields"]["path"], "/panic-in-call");
    assert_eq!(summary["Severity"], 3);
    assert_eq!(summary["Fields"]["error"], "handler panicked: boom in call");

    assert_eq!(send(&srv, "/hello", &[]).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn the_querystring_is_logged_only_when_enabled_and_redacted() {
    let on = server(builder().log_querystring(true).build().unwrap());
    let rid = unique("qs on");
    send(
        &on,
        "/hello?page=2&token=abc123&q=caf%C3%A9",
        &[rid_header(&rid)],
    )
    .await;
    let summary = summary_of(&rid);
    assert_eq!(
        summary["Fields"]["querystring"],
        "page=2&token=***&q=caf%C3%A9"
    );
    assert_eq!(summary["Fields"]["path"], "/hello");

    let rid = unique("qs on, empty");
    send(&on, "/hello", &[rid_header(&rid)]).await;
    assert_eq!(summary_of(&rid)["Fields"]["querystring"], "");

    let off = default_server();
    let rid = unique("qs off");
    send(&off, "/hello?page=2", &[rid_header(&rid)]).await;
    let summary = summary_of(&rid);
    assert!(summary["Fields"].get("querystring").is_none(), "{summary}");
    assert!(!summary.to_string().contains("page=2"), "{summary}");
}

#[actix_web::test]
async fn nested_values_are_flattened_to_strings_and_scalars_keep_their_type() {
    let srv = default_server();
    let rid = unique("nested");
    send(&srv, "/nested", &[rid_header(&rid)]).await;
    let lines = lines_of(&rid, |lines| {
        lines.iter().any(|l| l["Fields"]["msg"] == "nested values")
            && lines.iter().any(|l| l["Fields"]["msg"] == "odd values")
    });
    let line = lines
        .iter()
        .find(|l| l["Fields"]["msg"] == "nested values")
        .expect("the nested line");
    let fields = &line["Fields"];
    assert_eq!(
        fields["tree"],
        r#"Object {"a": Object {"b": Array [Number(1), Number(2)]}}"#
    );
    assert_eq!(fields["shown"], r#"{"c":[3]}"#);
    assert_eq!(fields["list"], "[1, 2, 3]");
    assert_eq!(fields["count"], 3);
    assert_eq!(fields["ok"], true);
    assert_eq!(fields["ratio"], 0.5);
    assert!(fields
        .as_object()
        .unwrap()
        .values()
        .all(|v| !v.is_object() && !v.is_array()));

    // Values that cannot be printed as they are are escaped or marked, never dropped.
    let odd = lines
        .iter()
        .find(|l| l["Fields"]["msg"] == "odd values")
        .expect("the odd line");
    assert_eq!(odd["Fields"]["bytes"], r"\xff\x00ok");
    assert_eq!(
        odd["Fields"]["control"],
        "bell\u{7} and \"quotes\"\nnew line"
    );
    assert_eq!(
        odd["Fields"]["unprintable"],
        "half of it<formatting failed>"
    );
}

#[actix_web::test]
async fn url_passwords_and_configured_secrets_never_reach_a_line() {
    let srv = server(builder().redact("tok-logging-s3cret").build().unwrap());
    let rid = unique("secrets");
    send(&srv, "/secrets", &[rid_header(&rid)]).await;
    let lines = lines_of(&rid, |lines| lines.iter().any(|l| l["Severity"] == 4));
    let line = lines
        .iter()
        .find(|l| l["Severity"] == 4)
        .expect("the warning");
    assert_eq!(
        line["Fields"]["url"],
        "postgres://app:***@db.internal:5432/app"
    );
    assert_eq!(
        line["Fields"]["msg"],
        "connecting to postgres://app:***@db.internal:5432/app"
    );
    assert_eq!(line["Fields"]["note"], "configured secret: ***");
    let every_line = all_lines()
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!every_line.contains("hunter2") && !every_line.contains("tok-logging-s3cret"));
}

#[actix_web::test]
async fn severities_types_and_error_chains() {
    let srv = default_server();
    let rid = unique("levels");
    send(&srv, "/levels", &[rid_header(&rid)]).await;
    let lines = lines_of(&rid, |lines| lines.len() >= 7);
    let by_msg = |msg: &str| {
        lines
            .iter()
            .find(|l| l["Fields"]["msg"] == msg)
            .unwrap_or_else(|| panic!("no line {msg:?} in {lines:#?}"))
    };
    let error = by_msg("cannot reach the cache");
    assert_eq!(error["Severity"], 3);
    assert_eq!(
        error["Fields"]["error"],
        "cache client failed: connection refused"
    );
    let critical = by_msg("the disk is full");
    assert_eq!(critical["Severity"], 2);
    assert!(critical["Fields"].get("critical").is_none());
    assert_eq!(by_msg("a warning")["Severity"], 4);
    assert_eq!(by_msg("a debug line")["Severity"], 7);
    assert_eq!(by_msg("a custom type")["Type"], "custom.type");
    let typed = by_msg("a Type field");
    assert_eq!(typed["Type"], "type.from.a.field");
    assert!(typed["Fields"].get("Type").is_none());
}

#[actix_web::test]
async fn set_uid_reaches_the_summary_and_the_lines_after_it() {
    let srv = default_server();
    let rid = unique("uid");
    send(&srv, "/uid", &[rid_header(&rid)]).await;
    assert_eq!(summary_of(&rid)["Fields"]["uid"], "user-42");
    let lines = lines_of(&rid, |_| true);
    let before = lines
        .iter()
        .find(|l| l["Fields"]["msg"] == "before the uid is known")
        .unwrap();
    let after = lines
        .iter()
        .find(|l| l["Fields"]["msg"] == "after the uid is known")
        .unwrap();
    assert!(before["Fields"].get("uid").is_none(), "{before}");
    assert_eq!(after["Fields"]["uid"], "user-42");
}

#[actix_web::test]
async fn tasks_take_the_request_along_with_in_current_request_only() {
    let srv = default_server();
    let rid = unique("spawned");
    send(&srv, "/spawned", &[rid_header(&rid)]).await;
    let lines = lines_of(&rid, |lines| lines.len() >= 3);
    for msg in [
        "from a local task that took the request along",
        "from another thread",
    ] {
        let line = lines
            .iter()
            .find(|l| l["Fields"]["msg"] == msg)
            .unwrap_or_else(|| panic!("{msg:?} with the request's id in {lines:#?}"));
        assert_eq!(line["Fields"]["uid"], "user-7", "{line}");
    }
    assert_eq!(summary_of(&rid)["Fields"]["uid"], "user-7");
    // A task spawned without it logs outside any request.
    let unwrapped = all_lines()
        .into_iter()
        .find(|l| l["Fields"]["marker"] == "unwrapped")
        .expect("the unwrapped task's line");
    assert!(unwrapped["Fields"].get("rid").is_none(), "{unwrapped}");
}

#[actix_web::test]
async fn the_error_endpoint_logs_a_severity_3_line_with_the_request_id() {
    let srv = server(builder().enable_error_endpoint(true).build().unwrap());
    let rid = unique("error endpoint");
    let sent = send(&srv, "/__error__", &[rid_header(&rid)]).await;
    assert_eq!(sent.status, StatusCode::INTERNAL_SERVER_ERROR);
    let lines = lines_of(&rid, |lines| lines.len() >= 2);
    let error = lines
        .iter()
        .find(|l| l["Type"] != "request.summary")
        .unwrap_or_else(|| panic!("an error line in {lines:#?}"));
    assert_eq!(error["Severity"], 3);
    assert_eq!(error["Type"], "dockerflow::endpoints");
    assert!(error["Fields"]["msg"]
        .as_str()
        .unwrap()
        .contains("/__error__"));
    assert_eq!(summary_of(&rid)["Fields"]["errno"], 500);
}

#[actix_web::test]
async fn dockerflow_endpoints_are_summarised_too() {
    let srv = default_server();
    let rid = unique("lbheartbeat");
    let sent = send(&srv, "/__lbheartbeat__", &[rid_header(&rid)]).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(sent.rid_header.as_deref(), Some(rid.as_str()));
    assert_eq!(summary_of(&rid)["Fields"]["path"], "/__lbheartbeat__");
}

#[test]
fn the_schema_rejects_what_mozlog_forbids() {
    let good = json!({"Timestamp": 1_763_784_000_123_456_789_u64, "Type": "request.summary", "Logger": "app",
        "Hostname": "web-1", "EnvVersion": "2.0", "Severity": 6, "Pid": 7,
        "Fields": {"agent": "", "lang": "", "method": "GET", "path": "/", "code": 200, "errno": 0, "t": 1, "rid": "r"}});
    assert!(validator().is_valid(&good));
    let bad: [(&str, Value); 7] = [
        ("/Fields/nested", json!({"a": 1})),
        ("/Fields/list", json!([1])),
        ("/Severity", json!(8)),
        ("/Timestamp", json!(1.5)),
        ("/EnvVersion", json!("1.0")),
        ("/Fields/errno", json!(404)),
        ("/Fields/rid", json!("x".repeat(129))),
    ];
    for (pointer, value) in bad {
        let mut line = good.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        line.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert(key.to_owned(), value);
        assert!(!validator().is_valid(&line), "{pointer} accepted: {line}");
    }
    let mut line = good.clone();
    line["Fields"].as_object_mut().unwrap().remove("rid");
    assert!(
        !validator().is_valid(&line),
        "a summary without rid accepted"
    );
}

#[test]
fn init_refuses_a_second_global_subscriber() {
    capture();
    let err = dockerflow::logging::init("again").expect_err("a subscriber is already set");
    assert!(err.to_string().contains("already set"), "{err}");
}

const CHILD_ENV: &str = "DOCKERFLOW_LOGGING_TEST_CHILD";
const CHILD_RID: &str = "child-process-rid";
const BIG_LINES: usize = 4 * 100;

/// Runs `child_process_entry` in a new process and checks its real stdout: `init` writes
/// mozlog there, and lines written from many threads at once are never split or interleaved.
#[test]
fn init_writes_whole_mozlog_lines_to_stdout_in_a_real_process() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    };
    let started = now();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_entry",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .output()
        .expect("the test binary runs");
    let ended = now();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed: {stderr}");

    // The `Timestamp`s of the request's lines: its handler's, then its summary's (which the
    // writer thread works out from the moment the request ended).
    let mut request_times = Vec::new();
    let mut summaries = 0;
    let mut big = 0;
    let mut from_log = Vec::new();
    for text in output.stdout.lines() {
        let text = text.unwrap();
        // libtest prints this without a newline before the test runs.
        let text = text
            .strip_prefix("test child_process_entry ... ")
            .unwrap_or(&text);
        if !text.contains("\"Timestamp\"") {
            assert!(!text.starts_with('{'), "a broken line: {text:?}");
            continue; // the test harness's own lines
        }
        let line = parse_line(text);
        assert_eq!(line["Logger"], "child-app");
        if line["Fields"]["rid"] == CHILD_RID {
            request_times.push(line["Timestamp"].as_u64().expect("a Timestamp"));
        }
        if line["Type"] == "request.summary" && line["Fields"]["rid"] == CHILD_RID {
            summaries += 1;
            assert_eq!(line["Fields"]["path"], "/hello");
        }
        if line["Type"] == "legacy.log" {
            from_log.push(line.clone());
        }
        if line["Fields"]["msg"] == "big line" {
            big += 1;
            assert_eq!(line["Fields"]["payload"].as_str().unwrap().len(), 5000);
        }
    }
    assert_eq!(
        summaries,
        1,
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(big, BIG_LINES);
    assert!(request_times.len() >= 2, "{request_times:?}");
    assert!(
        request_times.is_sorted(),
        "the summary is the request's last line, in time too: {request_times:?}"
    );
    assert!(
        request_times
            .iter()
            .all(|time| (started..=ended).contains(time)),
        "{started} {request_times:?} {ended}"
    );
    // A record of the `log` crate: its target as Type, its level as Severity, no `log.*` fields.
    assert_eq!(from_log.len(), 1, "{from_log:#?}");
    assert_eq!(from_log[0]["Severity"], 4);
    assert_eq!(
        from_log[0]["Fields"],
        json!({"msg": "from the log crate, bridged"})
    );
}

#[actix_web::test]
#[ignore = "entry point of the child process of init_writes_whole_mozlog_lines_to_stdout_in_a_real_process"]
async fn child_process_entry() {
    assert_eq!(
        std::env::var(CHILD_ENV).as_deref(),
        Ok("1"),
        "run by its parent test only"
    );
    dockerflow::logging::init("child-app").unwrap();
    assert!(dockerflow::logging::init("child-app").is_err());

    let dockerflow = builder().build().unwrap();
    let srv = actix_test::start(move || {
        let dockerflow = dockerflow.clone();
        App::new()
            .configure(routes)
            .wrap(dockerflow.request_summary())
    });
    let sent = send(&srv, "/hello", &[rid_header(CHILD_RID)]).await;
    assert_eq!(sent.status, StatusCode::OK);
    log::warn!(target: "legacy.log", "from the log crate, {}", "bridged");
    log::debug!(target: "legacy.log", "below INFO: filtered out");

    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let payload = char::from(b'a' + t as u8).to_string().repeat(5000);
                for _ in 0..BIG_LINES / 4 {
                    tracing::info!(payload = payload.as_str(), "big line");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

// Operator control (contract §4 v2) and concurrency, each through a child process that
// calls `dockerflow::logging::init` and serves real HTTP; the parent reads its real stdout.

const SCENARIO_ENV: &str = "DOCKERFLOW_LOGGING_TEST_SCENARIO";
/// The variables a child reads, removed from its environment unless a test sets them.
const LOGGING_VARS: [&str; 3] = ["RUST_LOG", "DOCKERFLOW_LOG_FORMAT", "DOCKERFLOW_LOG_PROBES"];
const CONCURRENT_CLIENTS: usize = 40;
const REQUESTS_PER_CLIENT: usize = 100;

/// What a child process printed: its lines, without the test harness's own.
struct ChildOutput {
    lines: Vec<String>,
    stderr: String,
}

impl ChildOutput {
    /// The lines as mozlog, each validated against the schema.
    fn mozlog(&self) -> Vec<Value> {
        self.lines.iter().map(|l| parse_line(l)).collect()
    }

    /// The mozlog lines whose `Fields.rid` is `rid`.
    fn of(&self, rid: &str) -> Vec<Value> {
        self.mozlog()
            .into_iter()
            .filter(|l| l["Fields"]["rid"] == rid)
            .collect()
    }
}

fn run_child(scenario: &str, env: &[(&str, &str)]) -> ChildOutput {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "settings_child_entry",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO_ENV, scenario)
        .stdin(Stdio::null());
    for var in LOGGING_VARS {
        command.env_remove(var);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("the test binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "child failed: {stderr}");
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    let lines = stdout
        .lines()
        // libtest prints this without a newline before the test runs.
        .map(|l| {
            l.strip_prefix("test settings_child_entry ... ")
                .unwrap_or(l)
        })
        .filter(|l| {
            !(l.is_empty()
                || l.starts_with("running ")
                || l.starts_with("test result:")
                || *l == "ok"
                || l.starts_with("successes:")
                || l.starts_with("    "))
        })
        .map(str::to_owned)
        .collect();
    ChildOutput { lines, stderr }
}

#[actix_web::test]
#[ignore = "entry point of the child processes of the operator-control and concurrency tests"]
async fn settings_child_entry() {
    let scenario = std::env::var(SCENARIO_ENV).expect("run by its parent tests only");
    if let Err(err) = dockerflow::logging::init("child-app") {
        println!("INIT-ERROR: {err}");
        return;
    }
    // The process environment, as a service reads it.
    let mut builder = Dockerflow::builder()
        .only_checks(std::iter::empty::<String>())
        .redact("tok-logging-s3cret");
    if scenario == "id-secret" {
        // In every new id: the version digit of a UUID v4.
        builder = builder.redact("4");
    }
    let dockerflow = match builder.build() {
        Ok(dockerflow) => dockerflow,
        Err(err) => {
            println!("STARTUP-ERROR: {err}");
            return;
        }
    };
    let srv = actix_test::start_with(actix_test::config().workers(4), move || {
        let dockerflow = dockerflow.clone();
        App::new()
            .configure(routes)
            .configure(|cfg| dockerflow.configure(cfg))
            .wrap(dockerflow.request_summary())
    });
    match scenario.as_str() {
        "settings" => {
            for (path, rid) in [
                ("/hello", "child-hello"),
                ("/__lbheartbeat__", "child-lb"),
                ("/__heartbeat__", "child-heartbeat"),
                ("/__version__/", "child-version"),
                ("/secrets", "child-secrets"),
                ("/levels", "child-levels"),
                ("/__error__", "child-error"),
                ("/uid", "child-uid"),
            ] {
                send(&srv, path, &[rid_header(rid)]).await;
            }
        }
        "concurrency" => {
            let clients = (0..CONCURRENT_CLIENTS).map(|c| {
                let srv = &srv;
                async move {
                    for i in 0..REQUESTS_PER_CLIENT {
                        let rid = format!("conc-{c}-{i}");
                        let sent = send(srv, "/hello", &[rid_header(&rid)]).await;
                        assert_eq!(sent.status, StatusCode::OK);
                    }
                }
            });
            futures_util::future::join_all(clients).await;
        }
        "id-secret" => {
            let sent = send(&srv, "/hello", &[]).await;
            println!("{SENT_ID}{}", sent.rid_header.expect("the id is sent back"));
        }
        other => panic!("unknown scenario {other:?}"),
    }
    // The summary is logged before the answer is sent: every line is written by now.
    srv.stop().await;
}

/// How the `id-secret` child prints the id its request was answered with.
const SENT_ID: &str = "SENT-ID: ";

#[test]
fn a_secret_that_could_be_inside_a_new_request_id_is_masked_there_too() {
    // The library's own ids go into lines without a search for secrets, unless a secret made
    // of hex digits and hyphens could be inside one: here "4", which every UUID v4 holds.
    let out = run_child("id-secret", &[]);
    let sent: Vec<&str> = out
        .lines
        .iter()
        .filter_map(|l| l.strip_prefix(SENT_ID))
        .collect();
    let [id] = sent[..] else {
        panic!("one id sent back: {sent:?}\n{}", out.stderr)
    };
    // The response header carries the id as it is.
    assert_eq!((id.len(), &id[14..15]), (36, "4"), "{id}");
    let lines: Vec<Value> = out
        .lines
        .iter()
        .filter(|l| !l.starts_with(SENT_ID))
        .map(|l| parse_line(l))
        .collect();
    let masked = id.replace('4', "***");
    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|l| l["Fields"]["rid"] == masked.as_str())
        .collect();
    // The summary, rendered by the writer thread, and the handler's line, through the layer.
    assert_eq!(summaries(&lines).len(), 1, "{lines:#?}");
    assert!(
        of_request.iter().any(|l| l["Type"] == "request.summary")
            && of_request
                .iter()
                .any(|l| l["Fields"]["msg"] == "handling hello"),
        "the lines of {id} carry {masked}: {lines:#?}"
    );
    assert!(
        out.lines
            .iter()
            .all(|l| l.starts_with(SENT_ID) || !l.contains(id)),
        "{id} unmasked in a line: {:#?}",
        out.lines
    );
}

#[test]
fn rust_log_filters_events_and_defaults_to_info() {
    let default = run_child("settings", &[]);
    let empty = run_child("settings", &[("RUST_LOG", " ")]);
    for out in [&default, &empty] {
        assert_eq!(summaries(&out.of("child-hello")).len(), 1, "{}", out.stderr);
        let levels = out.of("child-levels");
        assert!(levels.iter().any(|l| l["Fields"]["msg"] == "a warning"));
        assert!(
            levels.iter().all(|l| l["Fields"]["msg"] != "a debug line"),
            "DEBUG is below the default: {levels:#?}"
        );
    }

    let warn = run_child(
        "settings",
        &[
            ("RUST_LOG", "warn"),
            ("DOCKERFLOW_ENABLE_ERROR_ENDPOINT", "true"),
        ],
    );
    // The filter's answer is per level: a failed request's summary is ERROR, and stays.
    let failed = warn.of("child-error");
    assert_eq!(summaries(&failed).len(), 1, "{failed:#?}");
    assert_eq!(summaries(&failed)[0]["Severity"], 3);
    assert!(
        summaries(&warn.mozlog())
            .iter()
            .all(|l| l["Fields"]["rid"] == "child-error"),
        "the other summaries are INFO"
    );
    let levels = warn.of("child-levels");
    assert!(levels.iter().any(|l| l["Fields"]["msg"] == "a warning"));
    assert!(levels.iter().all(|l| l["Fields"]["msg"] != "a custom type"));

    // Per-target directives: summaries on, the app's own lines down to DEBUG.
    let targets = run_child(
        "settings",
        &[("RUST_LOG", "warn,request.summary=info,logging=debug")],
    );
    assert_eq!(summaries(&targets.of("child-hello")).len(), 1);
    let levels = targets.of("child-levels");
    assert!(levels.iter().any(|l| l["Fields"]["msg"] == "a debug line"));
    assert!(
        levels.iter().all(|l| l["Fields"]["msg"] != "a custom type"),
        "custom.type is at warn: {levels:#?}"
    );

    // A span directive (EnvFilter proper): INFO only inside the handler's span, where it
    // logs; the summary is logged outside it.
    let in_span = run_child("settings", &[("RUST_LOG", "warn,[greeting]=info")]);
    let hello = in_span.of("child-hello");
    assert!(
        hello.iter().any(|l| l["Fields"]["msg"] == "handling hello"),
        "{hello:#?}"
    );
    assert!(summaries(&hello).is_empty(), "{hello:#?}");
}

#[test]
fn log_probes_false_drops_the_summaries_of_the_dockerflow_endpoints_only() {
    let on = run_child("settings", &[]);
    for rid in [
        "child-lb",
        "child-heartbeat",
        "child-version",
        "child-hello",
    ] {
        assert_eq!(summaries(&on.of(rid)).len(), 1, "{rid}: {}", on.stderr);
    }
    let off = run_child(
        "settings",
        &[
            ("DOCKERFLOW_LOG_PROBES", "false"),
            ("DOCKERFLOW_ENABLE_ERROR_ENDPOINT", "true"),
        ],
    );
    for rid in ["child-lb", "child-heartbeat", "child-version"] {
        assert!(
            summaries(&off.of(rid)).is_empty(),
            "{rid}: {:#?}",
            off.of(rid)
        );
    }
    for rid in ["child-hello", "child-secrets", "child-levels"] {
        assert_eq!(summaries(&off.of(rid)).len(), 1, "{rid} keeps its summary");
    }
    // A probe without its summary still lends its id to the lines logged while it is
    // handled: the heartbeat hook's.
    let heartbeat = off.of("child-heartbeat");
    assert!(
        heartbeat.iter().any(|l| l["Type"] == "logging.hook"),
        "{heartbeat:#?}"
    );
    // `/__error__` is an endpoint too: no summary, but its error line keeps the request id.
    let error = off.of("child-error");
    assert!(summaries(&error).is_empty(), "{error:#?}");
    assert!(
        error.iter().any(|l| l["Severity"] == 3),
        "the error line with its id: {error:#?}"
    );
    // An empty value counts as unset: probes are logged.
    let empty = run_child("settings", &[("DOCKERFLOW_LOG_PROBES", "")]);
    assert_eq!(summaries(&empty.of("child-lb")).len(), 1);
}

#[test]
fn summaries_written_straight_match_those_logged_through_tracing_byte_for_byte() {
    // With `init` and a filter on targets and levels, a summary line is written straight by
    // the middleware; a span directive makes the filter an `EnvFilter`, and the summary goes
    // through `tracing` and the layer. The same requests must give the same bytes.
    let error_endpoint = ("DOCKERFLOW_ENABLE_ERROR_ENDPOINT", "true");
    let straight = run_child("settings", &[("RUST_LOG", "info"), error_endpoint]);
    let through = run_child(
        "settings",
        &[("RUST_LOG", "info,[no_such_span]=trace"), error_endpoint],
    );
    /// The summary line of `rid`, its clock readings and process id masked.
    fn summary_line(out: &ChildOutput, rid: &str) -> String {
        let marker = format!(r#""rid":"{rid}""#);
        let line = out
            .lines
            .iter()
            .find(|l| l.contains(r#""Type":"request.summary""#) && l.contains(&marker))
            .unwrap_or_else(|| panic!("a summary of {rid}: {}", out.stderr));
        let mask = |line: &str, key: &str| {
            let start = line.find(key).expect("the key") + key.len();
            let digits = line[start..].bytes().take_while(u8::is_ascii_digit).count();
            format!("{}N{}", &line[..start], &line[start + digits..])
        };
        let line = mask(line, r#""Timestamp":"#);
        mask(&mask(&line, r#","Pid":"#), r#","t":"#)
    }
    for rid in [
        "child-hello",
        "child-lb",
        "child-heartbeat",
        "child-version",
        "child-secrets",
        "child-levels",
        "child-error",
        "child-uid",
    ] {
        assert_eq!(
            summary_line(&straight, rid),
            summary_line(&through, rid),
            "{rid}"
        );
    }
}

#[test]
fn log_format_text_prints_one_readable_redacted_line_per_event() {
    let out = run_child("settings", &[("DOCKERFLOW_LOG_FORMAT", "text")]);
    assert!(!out.lines.is_empty(), "{}", out.stderr);
    for line in &out.lines {
        assert!(!line.starts_with('{'), "a JSON line in text format: {line}");
        // 2026-11-22T04:00:00.123Z LEVEL type: …
        let (time, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        assert!(
            time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{line:?}"
        );
        let level = rest.split(' ').next().unwrap();
        assert!(
            ["CRITICAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level),
            "{line:?}"
        );
    }
    let summary = out
        .lines
        .iter()
        .find(|l| l.contains("request.summary:") && l.contains(r#"rid="child-hello""#))
        .unwrap_or_else(|| panic!("the summary of /hello in {:#?}", out.lines));
    assert!(summary.contains(" INFO request.summary:"), "{summary}");
    for field in [r#"path="/hello""#, r#"method="GET""#, "code=200", "errno=0"] {
        assert!(summary.contains(field), "{field} in {summary}");
    }
    let handler = out
        .lines
        .iter()
        .find(|l| l.contains("handling hello"))
        .expect("the handler's line");
    assert!(
        handler.contains(" INFO logging: handling hello"),
        "{handler}"
    );
    assert!(handler.contains(r#"step="inside""#), "{handler}");
    let critical = out
        .lines
        .iter()
        .find(|l| l.contains("the disk is full"))
        .expect("the critical line");
    assert!(critical.contains(" CRITICAL "), "{critical}");
    // Redacted as the JSON lines are; a newline in a value stays escaped on its line.
    let all = out.lines.join("\n");
    assert!(
        all.contains("postgres://app:***@db.internal:5432/app"),
        "{all}"
    );
    assert!(
        !all.contains("hunter2") && !all.contains("tok-logging-s3cret"),
        "{all}"
    );

    for json in ["json", "JSON", ""] {
        let out = run_child("settings", &[("DOCKERFLOW_LOG_FORMAT", json)]);
        assert_eq!(
            summaries(&out.of("child-hello")).len(),
            1,
            "{json:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn bad_logging_settings_stop_start_up_naming_the_variable_and_the_accepted_values() {
    let cases = [
        ("RUST_LOG", "info,=bogus=[", "EnvFilter directives"),
        ("RUST_LOG", "app=loudest", "EnvFilter directives"),
        ("DOCKERFLOW_LOG_FORMAT", "xml", "json or text"),
        ("DOCKERFLOW_LOG_PROBES", "sometimes", "true or false"),
    ];
    for (var, value, accepted) in cases {
        let out = run_child("settings", &[(var, value)]);
        let error = out
            .lines
            .iter()
            .find(|l| l.starts_with("INIT-ERROR: ") || l.starts_with("STARTUP-ERROR: "))
            .unwrap_or_else(|| panic!("{var}={value} was accepted: {:#?}", out.lines));
        assert!(error.contains(var), "{error}");
        assert!(error.contains(accepted), "{error}");
        assert!(
            !out.lines.iter().any(|l| l.contains("request.summary")),
            "{var}={value}: the service started"
        );
    }
}

#[test]
fn under_concurrency_every_summary_is_written_once_on_a_line_of_its_own() {
    let out = run_child("concurrency", &[]);
    let lines = out.mozlog(); // each a whole, valid mozlog line
    let mut seen = std::collections::HashMap::new();
    for line in summaries(&lines) {
        let rid = line["Fields"]["rid"].as_str().unwrap();
        *seen.entry(rid.to_owned()).or_insert(0) += 1;
    }
    let expected = CONCURRENT_CLIENTS * REQUESTS_PER_CLIENT;
    for c in 0..CONCURRENT_CLIENTS {
        for i in 0..REQUESTS_PER_CLIENT {
            let rid = format!("conc-{c}-{i}");
            assert_eq!(seen.get(&rid), Some(&1), "summaries of {rid}");
        }
    }
    assert_eq!(seen.len(), expected, "no summary of another request");
    // The handler's own line of each request, with the id of its request: requests handled
    // side by side on one worker never lend each other their ids.
    let mut inside = std::collections::HashMap::<String, usize>::new();
    for line in lines
        .iter()
        .filter(|l| l["Fields"]["msg"] == "handling hello")
    {
        let rid = line["Fields"]["rid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        *inside.entry(rid).or_default() += 1;
    }
    assert_eq!(inside.len(), expected, "one id per request");
    assert!(inside
        .iter()
        .all(|(rid, n)| *n == 1 && seen.contains_key(rid)));
}
