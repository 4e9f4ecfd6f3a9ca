//! docs/CONTRACT.md, "Endpoints": every row of the endpoint table, through real HTTP.

use actix_web::http::{Method, StatusCode};
use dockerflow_tests::{call, get, only, serve};

fn server() -> actix_test::TestServer {
    serve(only(&[]).build().unwrap(), |_| {})
}

#[actix_web::test]
async fn lbheartbeat_is_200_with_an_empty_body_on_both_paths_and_for_head() {
    let srv = server();
    for path in ["/__lbheartbeat__", "/__lbheartbeat__/"] {
        for method in [Method::GET, Method::HEAD] {
            let answer = call(&srv, method.clone(), path, &[]).await;
            assert_eq!(answer.status, StatusCode::OK, "{method} {path}");
            assert!(answer.body.is_empty(), "{method} {path}");
            assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
        }
    }
}

#[actix_web::test]
async fn other_methods_get_405_with_allow_on_every_endpoint() {
    let df = only(&[]).enable_error_endpoint(true).build().unwrap();
    let srv = serve(df, |_| {});
    for path in [
        "/__lbheartbeat__",
        "/__version__",
        "/__heartbeat__/",
        "/__error__",
    ] {
        for method in [
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
        ] {
            let answer = call(&srv, method.clone(), path, &[]).await;
            assert_eq!(
                answer.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(
                answer.header("allow").as_deref(),
                Some("GET, HEAD"),
                "{method} {path}"
            );
            assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
        }
    }
}

fn version_server(path: &std::path::Path) -> actix_test::TestServer {
    serve(only(&[]).version_file(path).build().unwrap(), |_| {})
}

fn temp_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dockerflow-endpoints-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("version.json");
    std::fs::write(&path, contents).unwrap();
    path
}

#[actix_web::test]
async fn version_serves_the_file_unchanged_as_json() {
    let contents = br#"{"source": "https://github.com/mozilla/x", "version": "", "commit": "abc123", "build": "https://ci/1", "extra": [1, 2]}"#;
    let srv = version_server(&temp_file("ok", contents));
    for path in ["/__version__", "/__version__/"] {
        let answer = get(&srv, path).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
        assert_eq!(answer.body, contents);
    }
    let head = call(&srv, Method::HEAD, "/__version__", &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
}

#[actix_web::test]
async fn version_is_404_with_a_plain_body_when_there_is_no_file() {
    let srv = version_server(std::path::Path::new("/nonexistent/dockerflow/version.json"));
    let answer = get(&srv, "/__version__").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert!(!answer.text().is_empty() && answer.text().len() < 100);
    assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
}

#[actix_web::test]
async fn version_is_500_with_a_json_error_for_a_broken_file_and_the_server_keeps_serving() {
    for (name, contents, reason) in [
        ("broken", &b"{\"version\": "[..], "is not valid JSON"),
        ("array", b"[1, 2]", "is not a JSON object"),
        ("binary", b"\xff\xfe\x00", "is not valid JSON"),
    ] {
        let srv = version_server(&temp_file(name, contents));
        let answer = get(&srv, "/__version__").await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR, "{name}");
        let error = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // The error says which file and what is wrong with it.
        assert!(error.contains(name), "{name}: {error}");
        assert!(error.contains(reason), "{name}: {error}");
        assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
        assert_eq!(get(&srv, "/__lbheartbeat__").await.status, StatusCode::OK);
    }
}

#[actix_web::test]
async fn version_picks_up_a_replaced_file() {
    let path = temp_file("replaced", br#"{"version": "1"}"#);
    let srv = version_server(&path);
    assert_eq!(get(&srv, "/__version__").await.body, br#"{"version": "1"}"#);
    std::fs::write(&path, br#"{"version": "2.0"}"#).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let body = get(&srv, "/__version__").await.body;
        if body == br#"{"version": "2.0"}"# {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {:?}",
            String::from_utf8_lossy(&body)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn heartbeat_answers_on_both_paths_and_for_head() {
    let srv = server();
    for path in ["/__heartbeat__", "/__heartbeat__/"] {
        let answer = get(&srv, path).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.json(), serde_json::json!({"status": "ok"}));
        assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("application/json")
        );
    }
    let head = call(&srv, Method::HEAD, "/__heartbeat__", &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
}

#[actix_web::test]
async fn error_endpoint_exists_only_when_enabled() {
    let srv = server();
    assert_eq!(get(&srv, "/__error__").await.status, StatusCode::NOT_FOUND);

    let srv = serve(
        only(&[]).enable_error_endpoint(true).build().unwrap(),
        |_| {},
    );
    let answer = get(&srv, "/__error__").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        answer.json(),
        serde_json::json!({"error": "test error from /__error__"})
    );
    assert_eq!(get(&srv, "/__lbheartbeat__").await.status, StatusCode::OK);
}

/// A version path that points at something endless or odd: a 500 with a JSON error, soon, and
/// the process's memory stays flat.
#[actix_web::test]
async fn version_paths_that_are_not_regular_files_are_500s_and_cost_no_memory() {
    let dir = std::env::temp_dir().join(format!("dockerflow-version-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo.json");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let large = dir.join("large.json");
    // A valid JSON object of 2 MiB: too large, however well formed.
    let mut text = String::from("{\"pad\": \"");
    text.push_str(&"x".repeat(2 << 20));
    text.push_str("\"}");
    std::fs::write(&large, text).unwrap();

    let cases = [
        ("/dev/zero".into(), "not a regular file"),
        (fifo.clone(), "not a regular file"),
        (dir.clone(), "not a regular file"),
        (large.clone(), "larger than 1 MiB"),
    ];
    for (path, reason) in cases {
        let df = only(&[]).version_file(&path).build().unwrap();
        let srv = serve(df, |_| {});
        let before = rss_kib();
        for _ in 0..20 {
            let started = std::time::Instant::now();
            let answer = get(&srv, "/__version__").await;
            assert!(
                started.elapsed() < std::time::Duration::from_secs(1),
                "{} took {:?}",
                path.display(),
                started.elapsed()
            );
            assert_eq!(
                answer.status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{}",
                path.display()
            );
            let error = answer.json()["error"].as_str().unwrap().to_owned();
            assert!(error.contains(reason), "{}: {error}", path.display());
            assert_eq!(
                answer.header("content-type").as_deref(),
                Some("application/json")
            );
        }
        // Reading /dev/zero without a bound grew the process by about 500 MB a second.
        let grown = rss_kib().saturating_sub(before);
        assert!(grown < 64 * 1024, "{}: grew by {grown} KiB", path.display());
        assert_eq!(get(&srv, "/__lbheartbeat__").await.status, StatusCode::OK);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The resident memory of this process, from `/proc/self/status`.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Error reporters such as sentry-actix report a 500 only when the response carries an actix
/// `Error`: `/__error__` fails through that path, not with a plain 500 response.
#[actix_web::test]
async fn error_endpoint_answers_with_an_actix_error() {
    let dockerflow = only(&[]).enable_error_endpoint(true).build().unwrap();
    let app = actix_web::test::init_service(
        actix_web::App::new().configure(move |cfg| dockerflow.configure(cfg)),
    )
    .await;
    for method in [Method::GET, Method::HEAD] {
        let req = actix_web::test::TestRequest::default()
            .method(method.clone())
            .uri("/__error__")
            .to_request();
        let res = actix_web::test::call_service(&app, req).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{method}");
        let error = res
            .response()
            .error()
            .expect("the response carries an actix Error");
        assert_eq!(error.to_string(), "test error from /__error__");
    }
}
