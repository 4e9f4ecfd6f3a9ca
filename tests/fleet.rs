//! Operating in a fleet (docs/CONTRACT.md, "Operating in a fleet" and "Heartbeat body and
//! status"): choosing checks per request, durations and `?verbose`, liveness conditions on
//! `/__lbheartbeat__`, draining, and the compiled-in version, through real HTTP.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use actix_web::web;
use diesel::r2d2::ConnectionManager;
use diesel::PgConnection;
use dockerflow::{checks, liveness, CompiledVersion, LivenessCondition};
use dockerflow_tests::databases::{pool, pool_builder, Backend, TempDatabase};
use dockerflow_tests::net::closed_port;
use dockerflow_tests::temp::WorkDir;
use dockerflow_tests::{call, get, only, serve, with_data};
use futures_util::future::join_all;
use serde_json::json;

#[derive(Default)]
struct Runs(AtomicUsize);

#[dockerflow::check]
async fn check_fleet_counted(runs: web::Data<Runs>) -> Result<(), String> {
    runs.0.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

#[dockerflow::check(level = "warning")]
async fn check_fleet_warns(runs: web::Data<Runs>) -> Result<(), String> {
    runs.0.fetch_add(1, Ordering::SeqCst);
    Err("an optional cache is cold".to_owned())
}

/// PostgreSQL that answers and a Redis on a closed port: `?exclude=` and `?check=` choose what
/// counts, over one shared run.
#[actix_web::test]
async fn choosing_checks_filters_the_status_and_the_body_of_one_shared_run() {
    let db = TempDatabase::new(Backend::Postgres);
    let pg = web::Data::new(pool::<PgConnection>(&db.url()));
    let redis_url = format!("redis://127.0.0.1:{}", closed_port());
    let df = only(&[checks::DATABASE_CONNECTED, checks::REDIS_CONNECTED])
        .check(checks::database_connected::<PgConnection>())
        .check(checks::redis_connected_to(&redis_url))
        .cache_ttl(Duration::from_secs(60))
        .build()
        .unwrap();
    let srv = serve(df, with_data(pg));

    let both = "?check=check_redis_connected&exclude=check_redis_connected";
    for (query, code, status) in [
        ("", 500, "error"),
        ("?exclude=check_redis_connected", 200, "ok"),
        ("?check=check_database_connected", 200, "ok"),
        ("?check=check_redis_connected", 500, "error"),
        (both, 200, "ok"),
    ] {
        let answer = get(&srv, &format!("/__heartbeat__{query}")).await;
        let expected = (code, json!({ "status": status }));
        assert_eq!((answer.status.as_u16(), answer.json()), expected, "{query}");
    }
    let unknown = get(&srv, "/__heartbeat__?check=nope").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn choosing_checks_never_starts_an_extra_run() {
    let runs = web::Data::new(Runs::default());
    let df = only(&["check_fleet_counted", "check_fleet_warns"])
        .cache_ttl(Duration::from_secs(60))
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(df, with_data(runs.clone()));
    // Together and one after another, with every kind of selection: one run serves them all.
    let paths = [
        "/__heartbeat__",
        "/__heartbeat__?check=check_fleet_counted",
        "/__heartbeat__?exclude=check_fleet_warns",
        "/__heartbeat__?check=check_fleet_warns&verbose",
    ];
    let mut answers = join_all((0..32).map(|i| get(&srv, paths[i % paths.len()]))).await;
    for path in paths {
        answers.push(get(&srv, path).await);
    }
    assert_eq!(
        runs.0.load(Ordering::SeqCst),
        2,
        "one run is one call of each check"
    );
    for (i, answer) in answers.iter().enumerate() {
        let body = answer.json();
        match i % paths.len() {
            0 | 3 => assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR, "{body}"),
            _ => {
                assert_eq!(answer.status, StatusCode::OK, "{body}");
                assert_eq!(body["checks"], json!({"check_fleet_counted": "ok"}));
            }
        }
    }
}

#[actix_web::test]
async fn an_unknown_check_name_is_a_400_that_lists_names_only_with_details() {
    let runs = web::Data::new(Runs::default());
    let build = |details: bool| {
        only(&["check_fleet_warns"])
            .show_details(details)
            .build()
            .unwrap()
    };
    let hidden = serve(build(false), with_data(runs.clone()));
    for path in [
        "/__heartbeat__?check=nope",
        "/__heartbeat__?exclude=check_fleet_warns,nope",
    ] {
        let answer = get(&hidden, path).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        let error = answer.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains("\"nope\""), "{error}");
        assert!(!error.contains("check_fleet_warns"), "{error}");
    }
    let shown = serve(build(true), with_data(runs.clone()));
    let answer = get(&shown, "/__heartbeat__?check=nope").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.json()["error"]
        .as_str()
        .unwrap()
        .contains("check_fleet_warns"));
    // An unknown name is refused before any check runs.
    assert_eq!(runs.0.load(Ordering::SeqCst), 0);
}

#[actix_web::test]
async fn details_carry_durations_and_verbose_lists_every_check() {
    let runs = web::Data::new(Runs::default());
    let df = only(&["check_fleet_counted", "check_fleet_warns"])
        .details_token("fleet-token")
        .build()
        .unwrap();
    let srv = serve(df, with_data(runs.clone()));
    let token = [("Authorization", "Bearer fleet-token")];

    let body = call(&srv, Method::GET, "/__heartbeat__", &token)
        .await
        .json();
    let warns = &body["details"]["check_fleet_warns"];
    assert!(warns["duration_ms"].is_u64(), "{body}");
    assert!(
        body["details"].get("check_fleet_counted").is_none(),
        "{body}"
    );

    let verbose = call(&srv, Method::GET, "/__heartbeat__?verbose", &token)
        .await
        .json();
    let counted = &verbose["details"]["check_fleet_counted"];
    assert_eq!(counted["status"], "ok");
    assert_eq!(counted["level"], 0);
    assert_eq!(counted["messages"], json!({}));
    // It slept 200 ms: the duration shows it creeping toward a timeout.
    assert!(counted["duration_ms"].as_u64().unwrap() >= 200, "{verbose}");

    // Without details, `verbose` shows nothing more.
    let plain = get(&srv, "/__heartbeat__?verbose").await;
    assert_eq!(plain.json(), json!({"status": "warning"}));
}

#[actix_web::test]
async fn a_liveness_condition_that_holds_makes_lbheartbeat_a_500_naming_it() {
    let wedged = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&wedged);
    let df = only(&[])
        .liveness(LivenessCondition::new("queue_stuck", move || {
            flag.load(Ordering::SeqCst)
        }))
        .build()
        .unwrap();
    let srv = serve(df, |_| {});
    assert_eq!(get(&srv, "/__lbheartbeat__").await.status, StatusCode::OK);
    wedged.store(true, Ordering::SeqCst);
    let answer = get(&srv, "/__lbheartbeat__").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.json()["condition"], "queue_stuck");
    assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
    wedged.store(false, Ordering::SeqCst);
    assert_eq!(get(&srv, "/__lbheartbeat__").await.status, StatusCode::OK);
}

/// A real PostgreSQL pool of one connection, held by the test: after the limit,
/// `/__lbheartbeat__` asks for a restart; once the connection is back, it stops asking.
#[actix_web::test]
async fn a_pool_held_exhausted_past_the_limit_fails_lbheartbeat() {
    let db = TempDatabase::new(Backend::Postgres);
    let pg = pool_builder::<PgConnection>()
        .max_size(1)
        .build(ConnectionManager::<PgConnection>::new(db.url()))
        .unwrap();
    let limit = Duration::from_millis(300);
    let df = only(&[])
        .liveness(liveness::r2d2_pool_exhausted(pg.clone(), limit))
        .build()
        .unwrap();
    let srv = serve(df, |_| {});
    assert_eq!(get(&srv, "/__lbheartbeat__").await.status, StatusCode::OK);

    let held = web::block({
        let pg = pg.clone();
        move || pg.get()
    })
    .await
    .unwrap()
    .unwrap();
    // Exhausted, but not for long yet.
    assert_eq!(get(&srv, "/__lbheartbeat__").await.status, StatusCode::OK);
    tokio::time::sleep(limit + Duration::from_millis(100)).await;
    let answer = get(&srv, "/__lbheartbeat__").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.json()["condition"], "database_pool_exhausted");

    drop(held);
    assert_eq!(get(&srv, "/__lbheartbeat__").await.status, StatusCode::OK);
}

#[actix_web::test]
async fn the_compiled_in_version_is_served_when_no_file_exists_and_a_file_wins() {
    let compiled = dockerflow::compiled_version!();
    assert_eq!(compiled.to_json()["version"], env!("CARGO_PKG_VERSION"));

    let version = CompiledVersion::new("1.4.0")
        .source("https://example.org/app")
        .commit("0123abcd")
        .build("https://ci.example.org/build/7");
    let df = only(&[])
        .version_file("/nonexistent/dockerflow/version.json")
        .compiled_version(version.clone())
        .build()
        .unwrap();
    let srv = serve(df, |_| {});
    let answer = get(&srv, "/__version__").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        answer.json(),
        json!({"source": "https://example.org/app", "version": "1.4.0",
               "commit": "0123abcd", "build": "https://ci.example.org/build/7"})
    );

    let dir = WorkDir::create();
    let file = dir.join("version.json");
    std::fs::write(&file, r#"{"version": "from-file"}"#).unwrap();
    let df = only(&[])
        .version_file(&file)
        .compiled_version(version)
        .build()
        .unwrap();
    let srv = serve(df, |_| {});
    assert_eq!(
        get(&srv, "/__version__").await.json(),
        json!({"version": "from-file"})
    );
}

#[actix_web::test]
async fn while_draining_the_heartbeats_answer_503_and_other_routes_serve() {
    let df = only(&[]).build().unwrap();
    let handle = df.clone();
    let srv = serve(df, |cfg| {
        cfg.route("/work", web::get().to(|| async { "done" }));
    });
    assert_eq!(get(&srv, "/__heartbeat__").await.status, StatusCode::OK);
    handle.start_draining();
    assert_eq!(
        get(&srv, "/__lbheartbeat__").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let heartbeat = get(&srv, "/__heartbeat__").await;
    assert_eq!(heartbeat.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(heartbeat.json(), json!({"status": "ok"}));
    let work = get(&srv, "/work").await;
    assert_eq!(
        (work.status, work.text().as_str()),
        (StatusCode::OK, "done")
    );
    assert_eq!(
        get(&srv, "/__version__").await.status,
        StatusCode::NOT_FOUND
    );
}
