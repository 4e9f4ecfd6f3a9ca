//! The built-in `check_redis_connected` against real Redis servers: the machine's, one the test
//! starts and kills mid-run, one that wants a password, plus a closed port, a listener that never
//! answers, and a server of the test's own that answers PING wrongly.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::web;
use dockerflow::checks::{self, REDIS_CONNECTED};
use dockerflow::ids;
use dockerflow::Check;
use dockerflow_tests::net::{closed_port, Listener};
use dockerflow_tests::redis_server::{fake_redis, RedisServer};
use dockerflow_tests::temp::unique;
use dockerflow_tests::{get, logs, only, serve};
use serde_json::Value;

const CHECK_TIMEOUT: Duration = Duration::from_millis(1200);

fn dockerflow(check: Check) -> dockerflow::Dockerflow {
    only(&[REDIS_CONNECTED])
        .check(check)
        .show_details(true)
        .check_timeout(CHECK_TIMEOUT)
        .build()
        .unwrap()
}

/// A server with `redis_connected()` and `client` (if any) in the app data.
fn server(client: Option<redis::Client>) -> actix_test::TestServer {
    serve(
        dockerflow(checks::redis_connected()),
        move |cfg: &mut web::ServiceConfig| {
            if let Some(client) = &client {
                cfg.app_data(web::Data::new(client.clone()));
            }
        },
    )
}

async fn heartbeat(srv: &actix_test::TestServer) -> (StatusCode, Value) {
    let answer = get(srv, "/__heartbeat__").await;
    (answer.status, answer.json())
}

async fn heartbeat_of(url: &str) -> (StatusCode, Value) {
    heartbeat(&server(Some(redis::Client::open(url).unwrap()))).await
}

/// The only message, which must have the id `id`; the heartbeat failed at `error`.
fn only_error<'a>(status: StatusCode, body: &'a Value, id: &str) -> &'a str {
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["details"][REDIS_CONNECTED]["level"], 40, "{body}");
    let messages = body["details"][REDIS_CONNECTED]["messages"]
        .as_object()
        .unwrap_or_else(|| panic!("no messages in {body}"));
    assert_eq!(messages.len(), 1, "{body}");
    messages
        .get(id)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {id} in {body}"))
}

#[actix_web::test]
async fn the_machines_redis_answers_pong() {
    let (status, body) = heartbeat_of("redis://127.0.0.1:6379/").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"][REDIS_CONNECTED], "ok");
}

#[actix_web::test]
async fn a_closed_port_is_e004_connection_refused() {
    let port = closed_port();
    let (status, body) = heartbeat_of(&format!("redis://127.0.0.1:{port}/")).await;
    let text = only_error(status, &body, ids::E004);
    assert!(text.starts_with("Could not connect to redis: "), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
}

#[actix_web::test]
async fn a_server_that_never_answers_is_e004_before_the_check_times_out() {
    let listener = Listener::silent();
    let started = Instant::now();
    let (status, body) = heartbeat_of(&format!("redis://127.0.0.1:{}/", listener.port)).await;
    let took = started.elapsed();
    let text = only_error(status, &body, ids::E004);
    assert!(text.starts_with("Could not connect to redis: "), "{text}");
    assert!(
        took < CHECK_TIMEOUT + Duration::from_secs(2),
        "took {took:?}"
    );
}

#[actix_web::test]
async fn a_redis_killed_mid_run_is_e004_and_ok_again_once_back() {
    let mut redis = RedisServer::start();
    let srv = server(Some(redis::Client::open(redis.url()).unwrap()));

    let pings = redis.calls("ping");
    let (status, body) = heartbeat(&srv).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        redis.calls("ping") > pings,
        "the check sent PING to this server"
    );

    redis.kill();
    let (status, body) = heartbeat(&srv).await;
    let text = only_error(status, &body, ids::E004);
    assert!(text.starts_with("Could not connect to redis: "), "{text}");

    redis.restart();
    let (status, body) = heartbeat(&srv).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
async fn a_ping_answered_with_an_error_is_e004() {
    // A real server that wants a password answers PING with -NOAUTH.
    let password = unique("Pw-s3cret");
    let redis = RedisServer::with_password(&password);
    let (status, body) = heartbeat_of(&format!("redis://127.0.0.1:{}/", redis.port)).await;
    let text = only_error(status, &body, ids::E004);
    assert!(text.contains("NOAUTH"), "{text}");

    // And one of the test's own that refuses PING outright.
    let fake = fake_redis("-ERR unknown command 'PING'\r\n");
    let (status, body) = heartbeat_of(&format!("redis://127.0.0.1:{}/", fake.port)).await;
    let text = only_error(status, &body, ids::E004);
    assert!(text.contains("unknown command"), "{text}");
}

#[actix_web::test]
async fn a_wrong_password_is_e004_without_the_password() {
    logs::capture();
    let password = unique("Pw-s3cret");
    let redis = RedisServer::with_password(&password);
    let wrong = format!("{password}-wrong");
    let (status, body) = heartbeat_of(&format!("redis://:{wrong}@127.0.0.1:{}/", redis.port)).await;
    let text = only_error(status, &body, ids::E004);
    assert!(text.starts_with("Could not connect to redis: "), "{text}");
    for secret in [&password, &wrong] {
        assert!(!body.to_string().contains(secret.as_str()), "{body}");
        assert!(
            !logs::captured().contains(secret.as_str()),
            "a log line has the password"
        );
    }

    // With the right one, it answers.
    let (status, body) =
        heartbeat_of(&format!("redis://:{password}@127.0.0.1:{}/", redis.port)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
async fn any_answer_but_pong_is_e007() {
    for reply in ["+HELLO\r\n", ":1\r\n", "$4\r\nPING\r\n", "$-1\r\n"] {
        let fake = fake_redis(reply);
        let (status, body) = heartbeat_of(&format!("redis://127.0.0.1:{}/", fake.port)).await;
        let text = only_error(status, &body, ids::E007);
        assert_eq!(text, "Redis ping failed", "{reply:?}");
    }
}

#[actix_web::test]
async fn no_client_is_e006_naming_what_to_add() {
    let (status, body) = heartbeat(&server(None)).await;
    let text = only_error(status, &body, ids::E006);
    assert!(text.starts_with("Redis misconfigured: \""), "{text}");
    assert!(text.contains("web::Data<redis::Client>"), "{text}");
}

#[actix_web::test]
async fn a_bogus_url_scheme_is_e006_without_the_password() {
    logs::capture();
    let password = unique("Pw-hunter2");
    let check = checks::redis_connected_to(format!("http://:{password}@127.0.0.1:6379/"));
    let srv = serve(dockerflow(check), |_: &mut web::ServiceConfig| {});
    let (status, body) = heartbeat(&srv).await;
    let text = only_error(status, &body, ids::E006);
    assert!(text.starts_with("Redis misconfigured: \""), "{text}");
    assert_eq!(text, "Redis misconfigured: \"Redis URL did not parse\"");
    assert!(!body.to_string().contains(&password), "{body}");
    assert!(
        !logs::captured().contains(&password),
        "a log line has the password"
    );
}

#[actix_web::test]
async fn a_check_with_a_url_of_its_own_answers_like_the_app_data_one() {
    let redis = RedisServer::start();
    let srv = serve(
        dockerflow(checks::redis_connected_to(redis.url())),
        |_: &mut web::ServiceConfig| {},
    );
    let (status, body) = heartbeat(&srv).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
async fn a_password_only_the_client_knows_is_masked_in_what_the_server_says() {
    // Whatever a server echoes, the client's password is masked: a fake server that repeats
    // the password in its error.
    logs::capture();
    let fake = fake_redis("-ERR the password tiger-Pw-7781 is not welcome here\r\n");
    let url = format!("redis://:tiger-Pw-7781@127.0.0.1:{}/", fake.port);
    let (status, body) = heartbeat_of(&url).await;
    let text = only_error(status, &body, ids::E004);
    assert!(text.contains("is not welcome here"), "{text}");
    assert!(!body.to_string().contains("tiger-Pw-7781"), "{body}");
    assert!(
        !logs::captured().contains("tiger-Pw-7781"),
        "a log line has the password"
    );
}
