//! A heartbeat that holds under probe storms, hung checks and panics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use actix_web::web;
use dockerflow_tests::net::Listener;
use dockerflow_tests::redis_server::RedisServer;
use dockerflow_tests::{call, get, logs, only, serve, with_data, Answer};
use futures_util::future::join_all;
use serde_json::json;

#[derive(Default)]
struct Runs(AtomicUsize);

#[dockerflow::check]
async fn check_counted(runs: web::Data<Runs>) -> Result<(), String> {
    runs.0.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

#[dockerflow::check(timeout_ms = 300)]
async fn check_sleeps_forever() -> Result<(), String> {
    std::future::pending::<()>().await;
    Ok(())
}

/// Blocks its thread until the test lets go of the sender.
struct Gate {
    entered: AtomicUsize,
    release: Mutex<mpsc::Receiver<()>>,
}

#[dockerflow::check(timeout_ms = 300)]
fn check_blocks(gate: web::Data<Gate>) -> Result<(), String> {
    gate.entered.fetch_add(1, Ordering::SeqCst);
    let _ = gate.release.lock().unwrap().recv();
    Ok(())
}

/// Hangs on its first call only.
#[derive(Default)]
struct HangsOnce(AtomicUsize);

#[dockerflow::check(timeout_ms = 200)]
async fn check_hangs_once(calls: web::Data<HangsOnce>) -> Result<(), String> {
    if calls.0.fetch_add(1, Ordering::SeqCst) == 0 {
        std::future::pending::<()>().await;
    }
    Ok(())
}

#[dockerflow::check]
fn check_panics() -> Result<(), String> {
    panic!("boom: could not reach postgres://app:hunter2-secret@db/app");
}

#[dockerflow::check]
async fn check_panics_async() -> Result<(), String> {
    panic!("async boom");
}

#[dockerflow::check(level = "info")]
fn check_fine() -> Result<(), String> {
    Ok(())
}

/// An `async fn` that makes a blocking call: it holds its thread for the whole sleep.
#[dockerflow::check]
async fn check_blocks_async_a() -> Result<(), String> {
    std::thread::sleep(Duration::from_secs(3));
    Ok(())
}

#[dockerflow::check]
async fn check_blocks_async_b() -> Result<(), String> {
    std::thread::sleep(Duration::from_secs(3));
    Ok(())
}

#[dockerflow::check]
async fn check_blocks_async_c() -> Result<(), String> {
    std::thread::sleep(Duration::from_secs(3));
    Ok(())
}

/// An async check that awaits properly, run beside the ones that block.
#[dockerflow::check]
async fn check_awaits() -> Result<(), String> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(())
}

#[actix_web::test]
async fn async_checks_that_block_their_thread_cannot_hang_the_heartbeat() {
    logs::capture();
    let blocking = [
        "check_blocks_async_a",
        "check_blocks_async_b",
        "check_blocks_async_c",
    ];
    let names: Vec<&str> = blocking
        .iter()
        .copied()
        .chain(["check_awaits", "check_fine"])
        .collect();
    let df = only(&names)
        .environment([("DOCKERFLOW_CHECK_TIMEOUT_MS", "500")])
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(df, |_| {});
    for round in 0..4 {
        // The contract's bound is 500 + 250 ms; this bound is generous for a loaded machine,
        // and far below the hang this test was written for.
        let body = fails_within(&srv, Duration::from_millis(1500)).await.json();
        for name in blocking {
            let text = body["details"][name]["messages"]["dockerflow.health.E011"]
                .as_str()
                .unwrap_or_else(|| panic!("round {round}: {body}"));
            if round == 0 {
                assert_eq!(text, "Check timed out after 500 ms");
            } else {
                assert!(
                    text.starts_with("Check still running from a run started "),
                    "{text}"
                );
            }
        }
        // The checks that behave still run, and pass: the blocked threads are not theirs.
        assert_eq!(
            body["checks"]["check_awaits"], "ok",
            "round {round}: {body}"
        );
        assert_eq!(body["checks"]["check_fine"], "ok", "round {round}: {body}");
    }
    let logs = logs::captured();
    for name in blocking {
        assert!(
            logs.lines().any(|l| l.contains("WARN")
                && l.contains("blocking its thread")
                && l.contains(name)),
            "no warning names {name}"
        );
    }
    assert_eq!(get(&srv, "/__lbheartbeat__").await.status, StatusCode::OK);
}

/// Counts the heartbeat requests that reached the server; the gated check holds its run open
/// until all of them have.
#[derive(Default)]
struct Arrivals {
    entered: AtomicUsize,
    runs: AtomicUsize,
}

const STORM: usize = 64;

#[dockerflow::check]
async fn check_gated(arrivals: web::Data<Arrivals>) -> Result<(), String> {
    arrivals.runs.fetch_add(1, Ordering::SeqCst);
    while arrivals.entered.load(Ordering::SeqCst) < STORM {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The last request to arrive joins the run a few microseconds after it is counted, on the
    // server's worker; this leaves it ample time.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

#[actix_web::test]
async fn concurrent_requests_share_one_run_when_reuse_is_off() {
    let arrivals = web::Data::new(Arrivals::default());
    let df = only(&["check_gated"]).build().unwrap();
    let counted = arrivals.clone();
    let srv = actix_test::start(move || {
        let df = df.clone();
        let counted = counted.clone();
        actix_web::App::new()
            .app_data(counted.clone())
            .configure(move |cfg| df.configure(cfg))
            .wrap_fn(move |req, srv| {
                use actix_web::dev::Service;
                counted.entered.fetch_add(1, Ordering::SeqCst);
                srv.call(req)
            })
    });
    // Every request arrives while the one run is held open: exactly one run serves them all.
    let answers = join_all((0..STORM).map(|_| get(&srv, "/__heartbeat__"))).await;
    assert!(answers
        .iter()
        .all(|a| a.status == StatusCode::OK && a.json() == json!({"status": "ok"})));
    assert_eq!(
        arrivals.runs.load(Ordering::SeqCst),
        1,
        "runs for {STORM} requests"
    );

    // With reuse off, a request after the run has finished starts a new one.
    get(&srv, "/__heartbeat__").await;
    assert_eq!(arrivals.runs.load(Ordering::SeqCst), 2);
}

#[actix_web::test]
async fn a_finished_run_is_reused_for_the_cache_time() {
    let runs = web::Data::new(Runs::default());
    let df = only(&["check_counted"])
        .cache_ttl(Duration::from_secs(60))
        .build()
        .unwrap();
    let srv = serve(df, with_data(runs.clone()));
    for _ in 0..10 {
        assert_eq!(get(&srv, "/__heartbeat__").await.status, StatusCode::OK);
    }
    assert_eq!(runs.0.load(Ordering::SeqCst), 1);
}

#[actix_web::test]
async fn a_check_that_never_returns_times_out_with_e011_and_the_answer_comes_on_time() {
    let df = only(&["check_sleeps_forever", "check_fine"])
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(df, |_| {});
    for _ in 0..3 {
        let body = fails_within(&srv, Duration::from_secs(2))
            .await
            .json_without_durations();
        assert_eq!(
            body["details"]["check_sleeps_forever"],
            json!({"status": "error", "level": 40, "messages": {"dockerflow.health.E011": "Check timed out after 300 ms"}})
        );
        assert_eq!(body["checks"]["check_fine"], "ok");
    }
}

#[actix_web::test]
async fn the_check_timeout_setting_applies_to_checks_without_their_own() {
    let runs = web::Data::new(Runs::default());
    let df = only(&["check_counted"])
        .environment([("DOCKERFLOW_CHECK_TIMEOUT_MS", "100")])
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(df, with_data(runs.clone()));
    let body = get(&srv, "/__heartbeat__").await.json();
    assert_eq!(
        body["details"]["check_counted"]["messages"]["dockerflow.health.E011"],
        "Check timed out after 100 ms"
    );
}

#[actix_web::test]
async fn a_hung_blocking_check_holds_one_thread_however_many_heartbeats_come() {
    let (release, receiver) = mpsc::channel();
    let gate = web::Data::new(Gate {
        entered: AtomicUsize::new(0),
        release: Mutex::new(receiver),
    });
    let df = only(&["check_blocks"]).show_details(true).build().unwrap();
    let srv = serve(df, with_data(gate.clone()));
    for i in 0..5 {
        let answer = fails_within(&srv, Duration::from_secs(2)).await;
        let text = answer.json()["details"]["check_blocks"]["messages"]["dockerflow.health.E011"]
            .as_str()
            .unwrap()
            .to_owned();
        if i == 0 {
            assert_eq!(text, "Check timed out after 300 ms");
        } else {
            // Not started again, and it says so rather than claiming a timeout.
            assert!(
                text.starts_with("Check still running from a run started ")
                    && text.ends_with(" ms ago"),
                "{text}"
            );
        }
    }
    assert_eq!(
        gate.entered.load(Ordering::SeqCst),
        1,
        "a second run started while the first was stuck"
    );

    // Once the stuck run returns, the check runs again.
    release.send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while gate.entered.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "the check never ran again");
        release.send(()).ok();
        get(&srv, "/__heartbeat__").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(release);
}

#[actix_web::test]
async fn a_panicking_check_reports_e012_and_the_server_keeps_serving() {
    let df = only(&["check_panics", "check_panics_async", "check_fine"])
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(df, |_| {});
    for _ in 0..3 {
        let answer = get(&srv, "/__heartbeat__").await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        let body = answer.json_without_durations();
        assert_eq!(body["status"], "critical");
        for name in ["check_panics", "check_panics_async"] {
            assert_eq!(
                body["details"][name],
                json!({"status": "critical", "level": 50, "messages": {"dockerflow.health.E012": "Check panicked"}})
            );
        }
        assert_eq!(body["checks"]["check_fine"], "ok");
        assert!(!answer.text().contains("hunter2"));
    }
    assert_eq!(get(&srv, "/__lbheartbeat__").await.status, StatusCode::OK);
}

/// Panics an app's own panic hook was shown.
static APP_HOOK_SAW: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[actix_web::test]
async fn check_panics_stay_out_of_a_panic_hook_the_app_installs_later() {
    logs::capture();
    let df = only(&["check_panics"]).show_details(true).build().unwrap();
    // After dockerflow is built, as an error reporter set up late would.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        APP_HOOK_SAW.lock().unwrap().push(info.to_string());
        previous(info);
    }));
    let srv = serve(df, |_| {});
    for _ in 0..3 {
        let body = get(&srv, "/__heartbeat__").await.json();
        assert_eq!(
            body["details"]["check_panics"]["messages"]["dockerflow.health.E012"],
            "Check panicked"
        );
    }
    let seen = APP_HOOK_SAW.lock().unwrap().clone();
    assert!(
        !seen.iter().any(|panic| panic.contains("hunter2")),
        "the app's hook saw a check panic: {seen:?}"
    );
    let logs = logs::captured();
    assert!(logs.contains("a panic hook was installed after dockerflow started"));
    assert!(logs.contains("check panicked"));
    assert!(!logs.contains("hunter2-secret"));
}

#[actix_web::test]
async fn lbheartbeat_and_version_answer_at_once_while_a_heartbeat_is_stuck() {
    let df = only(&["check_sleeps_forever"])
        .check_timeout(Duration::from_secs(30))
        .version_file("/nonexistent/version.json")
        .build()
        .unwrap();
    let srv = serve(df, |_| {});
    let stuck = get(&srv, "/__heartbeat__");
    let others = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..20 {
            let started = Instant::now();
            assert_eq!(get(&srv, "/__lbheartbeat__").await.status, StatusCode::OK);
            assert_eq!(
                get(&srv, "/__version__").await.status,
                StatusCode::NOT_FOUND
            );
            assert_eq!(
                call(&srv, Method::HEAD, "/__lbheartbeat__", &[])
                    .await
                    .status,
                StatusCode::OK
            );
            assert!(started.elapsed() < Duration::from_secs(1));
        }
    };
    // The stuck heartbeat is still waiting when the others are done.
    tokio::select! {
        _ = stuck => panic!("the heartbeat answered though its check never returns"),
        () = others => {}
    }
}

/// 400 heartbeat requests from 64 concurrent clients, against a Redis of the test's own whose
/// `INFO commandstats` counts the PINGs that arrived.
#[actix_web::test]
async fn a_probe_storm_costs_redis_about_one_ping_per_cache_time() {
    let redis = RedisServer::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let df = only(&["check_redis_connected"])
        .check(dockerflow::checks::redis_connected())
        .cache_ttl(Duration::from_millis(500))
        .build()
        .unwrap();
    let srv = serve(df, with_data(web::Data::new(client)));
    let before = redis.calls("ping");
    let started = Instant::now();
    let sent = AtomicUsize::new(0);
    let ok = AtomicUsize::new(0);
    join_all((0..64).map(|_| async {
        while sent.fetch_add(1, Ordering::SeqCst) < 400 {
            let answer = get(&srv, "/__heartbeat__").await;
            if answer.status == StatusCode::OK && answer.json() == json!({"status": "ok"}) {
                ok.fetch_add(1, Ordering::SeqCst);
            }
        }
    }))
    .await;
    let elapsed = started.elapsed();
    let pings = redis.calls("ping") - before;
    assert_eq!(ok.load(Ordering::SeqCst), 400);
    // One run per 500 ms of cache time, plus the first: whatever the request rate.
    let allowed = (elapsed.as_millis() / 500) as u64 + 2;
    assert!(
        (1..=allowed).contains(&pings),
        "{pings} PINGs for 400 requests in {elapsed:?}"
    );
}

#[actix_web::test]
async fn the_heartbeat_recovers_when_a_killed_redis_comes_back() {
    let mut redis = RedisServer::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let df = only(&["check_redis_connected"])
        .check(dockerflow::checks::redis_connected())
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(df, with_data(web::Data::new(client)));
    assert_eq!(get(&srv, "/__heartbeat__").await.json()["status"], "ok");

    redis.kill();
    let answer = get(&srv, "/__heartbeat__").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let messages = &answer.json()["details"]["check_redis_connected"]["messages"];
    assert!(
        messages["dockerflow.health.E004"]
            .as_str()
            .is_some_and(|m| m.starts_with("Could not connect to redis: ")),
        "{messages}"
    );

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = get(&srv, "/__heartbeat__").await;
        if answer.status == StatusCode::OK {
            assert_eq!(answer.json()["status"], "ok");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never recovered: {}",
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn a_redis_that_never_answers_fails_the_check_on_time() {
    let silent = Listener::silent();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", silent.port)).unwrap();
    let df = only(&["check_redis_connected"])
        .check(dockerflow::checks::redis_connected())
        .check_timeout(Duration::from_millis(300))
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(df, with_data(web::Data::new(client)));
    for _ in 0..3 {
        let (_, details) = errors_on_time(&srv, "check_redis_connected").await;
        assert!(
            details["messages"]["dockerflow.health.E004"].is_string(),
            "{details}"
        );
    }
}

#[actix_web::test]
async fn a_database_that_never_answers_fails_the_check_on_time() {
    use diesel::r2d2::{ConnectionManager, Pool};
    let silent = Listener::silent();
    let url = format!(
        "postgres://app:hunter2-pw@127.0.0.1:{}/app?connect_timeout=30",
        silent.port
    );
    let pool = Pool::builder()
        .max_size(2)
        .build_unchecked(ConnectionManager::<diesel::PgConnection>::new(url));
    let df = only(&["check_database_connected"])
        .check(dockerflow::checks::database_connected::<diesel::PgConnection>())
        .check_timeout(Duration::from_millis(500))
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(df, with_data(web::Data::new(pool)));
    for _ in 0..3 {
        let (answer, details) = errors_on_time(&srv, "check_database_connected").await;
        assert!(
            details["messages"]["dockerflow.health.E001"]
                .as_str()
                .is_some_and(|m| m.starts_with("Could not connect to database: ")),
            "{details}"
        );
        assert!(!answer.text().contains("hunter2-pw"));
        assert_eq!(get(&srv, "/__lbheartbeat__").await.status, StatusCode::OK);
    }
}

#[actix_web::test]
async fn the_heartbeat_after_a_timeout_runs_the_async_check_again() {
    let calls = web::Data::new(HangsOnce::default());
    let df = only(&["check_hangs_once"])
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(df, with_data(calls.clone()));
    let first = get(&srv, "/__heartbeat__").await;
    assert_eq!(
        first.json()["details"]["check_hangs_once"]["messages"]["dockerflow.health.E011"],
        "Check timed out after 200 ms"
    );
    // Right away: the timed-out run is gone, so the check is tried again and passes.
    let second = get(&srv, "/__heartbeat__").await;
    assert_eq!(
        second.json(),
        json!({"status": "ok", "checks": {"check_hangs_once": "ok"}, "details": {}})
    );
    assert_eq!(calls.0.load(Ordering::SeqCst), 2);
}

/// One heartbeat, which must answer with a 500 within `bound`.
async fn fails_within(srv: &actix_test::TestServer, bound: Duration) -> Answer {
    let started = Instant::now();
    let answer = get(srv, "/__heartbeat__").await;
    let took = started.elapsed();
    assert!(took < bound, "took {took:?}");
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    answer
}

/// One heartbeat that must answer within 2 s with a 500 in which `check` is at `error`: its
/// whole answer and the check's details.
async fn errors_on_time(srv: &actix_test::TestServer, check: &str) -> (Answer, serde_json::Value) {
    let answer = fails_within(srv, Duration::from_secs(2)).await;
    let details = answer.json()["details"][check].clone();
    assert_eq!(details["status"], "error", "{details}");
    (answer, details)
}

/// A connection an async check opened, kept in the app's data for the app to use too.
#[derive(Default)]
struct SharedRedis {
    url: String,
    conn: tokio::sync::OnceCell<redis::aio::MultiplexedConnection>,
}

#[dockerflow::check]
async fn check_opens_a_shared_connection(shared: web::Data<SharedRedis>) -> Result<(), String> {
    let client = redis::Client::open(shared.url.as_str()).map_err(|e| e.to_string())?;
    let conn = shared
        .conn
        .get_or_try_init(|| client.get_multiplexed_async_connection())
        .await
        .map_err(|e| e.to_string())?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn.clone())
        .await
        .map_err(|e| e.to_string())?;
    (pong == "PONG").then_some(()).ok_or(pong)
}

/// What a check's run opens (here a Redis connection; in an app, a pool's connections) is
/// driven by the check's thread; it must keep working for the app after the Dockerflow that ran
/// the check is gone, and in the next one.
#[actix_web::test]
async fn what_an_async_check_opens_outlives_its_dockerflow() {
    let redis = RedisServer::start();
    let shared = web::Data::new(SharedRedis {
        url: redis.url(),
        conn: Default::default(),
    });
    for _ in 0..2 {
        let df = only(&["check_opens_a_shared_connection"]).build().unwrap();
        let srv = serve(df, with_data(shared.clone()));
        assert_eq!(get(&srv, "/__heartbeat__").await.status, StatusCode::OK);
        drop(srv);
    }
    let mut conn = shared.conn.get().expect("the check opened it").clone();
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
}
