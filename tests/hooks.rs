//! docs/CONTRACT.md, "Signals": exactly one kind of hook fires for each heartbeat response, with
//! the highest level; a hook that panics changes nothing.
//!
//! Hooks are registered for the whole test binary, so this binary holds one test that drives
//! every case in turn.

use std::sync::Mutex;

use actix_web::http::{Method, StatusCode};
use actix_web::web;
use dockerflow::{CheckMessage, HeartbeatReport, Level};
use dockerflow_tests::{call, get, only, serve, with_data};

static FIRED: Mutex<Vec<(&'static str, Level)>> = Mutex::new(Vec::new());

struct Script(Vec<CheckMessage>);

#[dockerflow::check]
fn check_scripted(script: web::Data<Script>) -> Vec<CheckMessage> {
    script.0.clone()
}

#[dockerflow::on_heartbeat_passed]
fn record_pass(level: Level) {
    FIRED.lock().unwrap().push(("passed", level));
}

#[dockerflow::on_heartbeat_failed]
fn record_fail(level: Level, report: &HeartbeatReport) {
    assert_eq!(level, report.level());
    assert!(report.check("check_scripted").is_some());
    FIRED.lock().unwrap().push(("failed", level));
}

/// Runs before `record_fail` (hooks run ordered by name) and panics every time.
#[dockerflow::on_heartbeat_failed]
fn a_hook_that_panics() {
    panic!("hook bug");
}

fn take() -> Vec<(&'static str, Level)> {
    std::mem::take(&mut *FIRED.lock().unwrap())
}

#[actix_web::test]
async fn one_kind_fires_once_per_response_with_the_highest_level() {
    // The fail level, what the check says, and the status and hook (passed on 200) with its level.
    let (ok, failed) = (StatusCode::OK, StatusCode::INTERNAL_SERVER_ERROR);
    let (info, warning) = (
        CheckMessage::info("t.I", "x"),
        CheckMessage::warning("t.W", "y"),
    );
    let warned = vec![info.clone(), warning.clone()];
    let worst = vec![
        CheckMessage::critical("t.C", "z"),
        CheckMessage::error("t.E", "w"),
    ];
    let cases = [
        (Level::Warning, vec![], ok, Level::Ok),
        (Level::Warning, vec![info], ok, Level::Info),
        (Level::Warning, warned, failed, Level::Warning),
        (Level::Error, vec![warning], ok, Level::Warning),
        (Level::Error, worst, failed, Level::Critical),
    ];
    for (fail_level, messages, status, level) in cases {
        let fired = (if status == ok { "passed" } else { "failed" }, level);
        let data = web::Data::new(Script(messages));
        // A long cache: the second and third responses reuse the run, and still fire.
        let df = only(&["check_scripted"])
            .fail_level(fail_level)
            .cache_ttl(std::time::Duration::from_secs(60))
            .build()
            .unwrap();
        let srv = serve(df, with_data(data));
        take();
        assert_eq!(get(&srv, "/__heartbeat__").await.status, status);
        assert_eq!(get(&srv, "/__heartbeat__/").await.status, status);
        assert_eq!(
            call(&srv, Method::HEAD, "/__heartbeat__", &[]).await.status,
            status
        );
        assert_eq!(take(), vec![fired; 3], "fail level {fail_level}");

        // Other endpoints fire nothing.
        get(&srv, "/__lbheartbeat__").await;
        get(&srv, "/__version__").await;
        call(&srv, Method::POST, "/__heartbeat__", &[]).await;
        assert_eq!(take(), vec![]);
    }
}
