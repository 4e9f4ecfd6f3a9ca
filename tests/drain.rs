//! `Dockerflow::serve` on a real SIGTERM: the probes answer 503 for the drain time while other
//! routes serve, then the server stops accepting, finishes the request under way, and `serve`
//! returns `Ok`. The signal goes to this test process, so this file holds this test alone.

use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use dockerflow_tests::net::request;
use dockerflow_tests::only;

/// `GET path` on a fresh connection: its status, or `None` when nothing answers.
fn status(port: u16, path: &str) -> Option<u16> {
    request(port, "GET", path, &[]).map(|(status, _)| status)
}

#[test]
fn sigterm_drains_finishes_the_request_under_way_and_serve_returns_ok() {
    let drain = Duration::from_millis(1000);
    let dockerflow = only(&[]).drain(drain).build().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();

    let served = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app_dockerflow = dockerflow.clone();
            let server = HttpServer::new(move || {
                let dockerflow = app_dockerflow.clone();
                App::new()
                    .route("/", web::get().to(|| async { "up" }))
                    .route(
                        "/slow",
                        web::get().to(|| async {
                            actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
                            "finished"
                        }),
                    )
                    .configure(move |cfg| dockerflow.configure(cfg))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run();
            dockerflow.serve(server).await
        })
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(port, "/__lbheartbeat__") != Some(200) {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let slow = std::thread::spawn(move || request(port, "GET", "/slow", &[]));
    std::thread::sleep(Duration::from_millis(100));
    let terminated = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(status(port, "/__lbheartbeat__"), Some(503));
    assert_eq!(status(port, "/__heartbeat__"), Some(503));
    assert_eq!(status(port, "/"), Some(200));
    assert!(
        terminated.elapsed() < drain,
        "the requests above took the whole drain"
    );

    // The slow request outlives the drain (it ends 1.5 s after it began) and is answered.
    assert_eq!(slow.join().unwrap(), Some((200, "finished".to_owned())));
    served.join().unwrap().unwrap();
    assert!(terminated.elapsed() >= drain);
    assert_eq!(
        status(port, "/"),
        None,
        "still accepting after serve returned"
    );
}
