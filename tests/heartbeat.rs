//! docs/CONTRACT.md, "Heartbeat body and status" and "Checks": the heartbeat body, levels, the fail
//! level and failed status, details hidden and shown, silenced ids, check arguments from app data,
//! and check kinds.

use actix_web::http::StatusCode;
use actix_web::web;
use dockerflow::{Builder, CheckMessage, Level};
use dockerflow_tests::{call, get, only, serve, with_data, Answer};
use serde_json::json;

/// What `check_scripted` reports: set per server through app data.
struct Script(Vec<CheckMessage>);

#[dockerflow::check]
fn check_scripted(script: web::Data<Script>) -> Vec<CheckMessage> {
    script.0.clone()
}

#[dockerflow::check(level = "warning", id = "tests.W100")]
async fn check_async_plain(fail: web::Data<AsyncFail>) -> Result<(), String> {
    match fail.0 {
        Some(text) => Err(text.to_owned()),
        None => Ok(()),
    }
}
struct AsyncFail(Option<&'static str>);

/// Two arguments, the second one never registered in these tests.
#[dockerflow::check(name = "needs_two")]
fn check_with_missing_data(
    _a: web::Data<Script>,
    _b: web::Data<NeverRegistered>,
) -> Result<(), String> {
    Ok(())
}
struct NeverRegistered;

#[dockerflow::check(level = "critical")]
fn check_always_ok() -> Result<(), std::io::Error> {
    Ok(())
}

fn scripted(
    messages: Vec<CheckMessage>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    with_data(web::Data::new(Script(messages)))
}

/// One heartbeat of a server `builder` makes, whose `check_scripted` reports `messages`.
async fn heartbeat(builder: Builder, messages: Vec<CheckMessage>) -> Answer {
    let srv = serve(builder.build().unwrap(), scripted(messages));
    get(&srv, "/__heartbeat__").await
}

#[actix_web::test]
async fn each_level_gives_its_status_text_and_the_default_fail_level_is_warning() {
    for level in Level::ALL {
        let messages = match level {
            Level::Ok => vec![],
            level => vec![CheckMessage::new(level, "tests.X001", "something")],
        };
        let answer = heartbeat(only(&["check_scripted"]), messages).await;
        assert_eq!(answer.json(), json!({"status": level.as_str()}), "{level}");
        let expected = if level >= Level::Warning {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        assert_eq!(answer.status, expected, "{level}");
    }
}

#[actix_web::test]
async fn the_fail_level_can_be_raised_and_the_failed_status_changed() {
    let cases = [
        (Level::Error, Level::Warning, StatusCode::OK),
        (Level::Error, Level::Error, StatusCode::SERVICE_UNAVAILABLE),
        (Level::Critical, Level::Error, StatusCode::OK),
        (
            Level::Critical,
            Level::Critical,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    ];
    for (fail_level, found, status) in cases {
        let builder = only(&["check_scripted"])
            .fail_level(fail_level)
            .failed_status(503);
        let answer = heartbeat(builder, vec![CheckMessage::new(found, "tests.X002", "x")]).await;
        assert_eq!(
            answer.status, status,
            "fail level {fail_level}, found {found}"
        );
        assert_eq!(answer.json()["status"], found.as_str());
    }
}

#[actix_web::test]
async fn details_name_every_check_and_hold_only_those_above_ok() {
    let builder = only(&["check_scripted", "check_always_ok"]).show_details(true);
    let messages = vec![
        CheckMessage::warning("dockerflow.health.W001", "Unapplied migration 1"),
        CheckMessage::info("tests.I001", "just so you know"),
        CheckMessage::warning("dockerflow.health.W001", "Unapplied migration 2"),
    ];
    let answer = heartbeat(builder, messages).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer.json_without_durations(),
        json!({
            "status": "warning",
            "checks": {"check_always_ok": "ok", "check_scripted": "warning"},
            "details": {"check_scripted": {"status": "warning", "level": 30, "messages": {
                "dockerflow.health.W001": "Unapplied migration 1; Unapplied migration 2",
                "tests.I001": "just so you know",
            }}},
        })
    );
}

#[actix_web::test]
async fn details_are_hidden_by_default_and_unlocked_by_the_bearer_token_only() {
    let df = only(&["check_scripted"])
        .details_token("s3cret-token-value")
        .build()
        .unwrap();
    let srv = serve(
        df,
        scripted(vec![CheckMessage::error("tests.E001", "broken")]),
    );
    let hidden = get(&srv, "/__heartbeat__").await;
    assert_eq!(hidden.json(), json!({"status": "error"}));
    let with_authorization = async |value| {
        let header = [("Authorization", value)];
        call(
            &srv,
            actix_web::http::Method::GET,
            "/__heartbeat__",
            &header,
        )
        .await
    };

    for wrong in [
        "Bearer nope",
        "Bearer s3cret-token-valu",
        "Bearer s3cret-token-value2",
        "s3cret-token-value",
        "Basic s3cret-token-value",
        "Bearers3cret-token-value",
        "bearer",
    ] {
        let answer = with_authorization(wrong).await;
        assert_eq!(answer.json(), json!({"status": "error"}), "{wrong}");
    }
    // The scheme is case-insensitive (RFC 9110, section 11.1) and one or more spaces follow it.
    for right in [
        "Bearer s3cret-token-value",
        "bearer s3cret-token-value",
        "BEARER  s3cret-token-value",
    ] {
        let shown = with_authorization(right).await;
        assert_eq!(
            shown.json()["details"]["check_scripted"]["messages"]["tests.E001"],
            "broken",
            "{right}"
        );
        assert!(!shown.text().contains("s3cret-token-value"));
    }
}

#[actix_web::test]
async fn details_come_from_the_environment_too() {
    let df = dockerflow::Dockerflow::builder()
        .environment([("DOCKERFLOW_SHOW_DETAILS", "true")])
        .only_checks(["check_always_ok"])
        .build()
        .unwrap();
    let srv = serve(df, |_| {});
    assert_eq!(
        get(&srv, "/__heartbeat__").await.json(),
        json!({"status": "ok", "checks": {"check_always_ok": "ok"}, "details": {}})
    );
}

#[actix_web::test]
async fn silenced_ids_are_dropped_before_levels_are_computed() {
    let builder = only(&["check_scripted"])
        .environment([("DOCKERFLOW_SILENCED_CHECKS", "tests.E009, tests.W009")])
        .show_details(true);
    let messages = vec![
        CheckMessage::error("tests.E009", "silenced error"),
        CheckMessage::warning("tests.W009", "silenced warning"),
        CheckMessage::info("tests.I009", "kept"),
    ];
    let answer = heartbeat(builder, messages).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json_without_durations(),
        json!({"status": "info", "checks": {"check_scripted": "info"},
               "details": {"check_scripted": {"status": "info", "level": 20, "messages": {"tests.I009": "kept"}}}})
    );
}

#[actix_web::test]
async fn a_plain_failure_gets_the_attribute_level_and_id_and_async_checks_run() {
    let df = only(&["check_async_plain"])
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(df, with_data(web::Data::new(AsyncFail(Some("disk full")))));
    let answer = get(&srv, "/__heartbeat__").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer.json_without_durations()["details"]["check_async_plain"],
        json!({"status": "warning", "level": 30, "messages": {"tests.W100": "disk full"}})
    );

    let df = only(&["check_async_plain"]).build().unwrap();
    let srv = serve(df, with_data(web::Data::new(AsyncFail(None))));
    assert_eq!(
        get(&srv, "/__heartbeat__").await.json(),
        json!({"status": "ok"})
    );
}

#[actix_web::test]
async fn missing_app_data_fails_the_check_naming_the_type_and_never_panics() {
    let df = only(&["needs_two", "check_always_ok"])
        .show_details(true)
        .build()
        .unwrap();
    let srv = serve(df, scripted(vec![]));
    let answer = get(&srv, "/__heartbeat__").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = answer.json();
    assert_eq!(body["checks"]["check_always_ok"], "ok");
    let text = body["details"]["needs_two"]["messages"]["needs_two"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("Data<heartbeat::NeverRegistered>"), "{text}");
    assert_eq!(body["details"]["needs_two"]["status"], "error");
    // The server is fine.
    assert_eq!(get(&srv, "/__lbheartbeat__").await.status, StatusCode::OK);
}

#[actix_web::test]
async fn the_registry_is_ordered_by_name_and_knows_where_each_check_lives() {
    let df = dockerflow::Dockerflow::builder()
        .environment(std::iter::empty::<(String, String)>())
        .build()
        .unwrap();
    let names: Vec<&str> = df.checks().iter().map(|c| c.name()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for name in [
        "check_scripted",
        "check_async_plain",
        "needs_two",
        "check_always_ok",
    ] {
        let check = df.checks().iter().find(|c| c.name() == name).unwrap();
        assert!(
            check.location().starts_with("tests/heartbeat.rs:"),
            "{}",
            check.location()
        );
    }
    let always = df
        .checks()
        .iter()
        .find(|c| c.name() == "check_always_ok")
        .unwrap();
    assert_eq!(
        (always.level(), always.id()),
        (Level::Critical, "check_always_ok")
    );
}

#[actix_web::test]
async fn only_checks_rejects_unknown_names() {
    let err = only(&["check_nope"]).build().unwrap_err().to_string();
    assert!(
        err.contains("check_nope") && err.contains("check_scripted"),
        "{err}"
    );
}
