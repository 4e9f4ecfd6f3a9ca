//! The built-in `check_redis_connected` against real Redis servers: the machine's, one the test
//! starts and kills mid-run, one that wants a password, plus a closed port, a listener that never
//! answers, and a server of the test's own that answers PING wrongly.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::web;
use dockerflow::checks::{self, REDIS_CONNECTED};
use dockerflow::ids;
use dockerflow_tests::heartbeats::{
    assert_level, heartbeat, heartbeat_of, only_message, with_checks, CHECK_TIMEOUT,
};
use dockerflow_tests::logs::{self, assert_no_secret};
use dockerflow_tests::net::{closed_port, Listener};
use dockerflow_tests::redis_server::{fake_redis, RedisServer};
use dockerflow_tests::temp::unique;
use dockerflow_tests::{serve, with_data};
use serde_json::Value;

/// One heartbeat with only `redis_connected()` and a client of `url` in the app data.
async fn heartbeat_with(url: &str) -> (StatusCode, Value) {
    let client = redis::Client::open(url).unwrap();
    heartbeat([checks::redis_connected()], Some(client)).await
}

/// The only message, which must have the id `id`; the heartbeat failed at `error`.
fn only_error<'a>(status: StatusCode, body: &'a Value, id: &str) -> &'a str {
    assert_level(status, body, REDIS_CONNECTED, "error");
    only_message(body, REDIS_CONNECTED, id)
}

#[actix_web::test]
async fn the_machines_redis_answers_pong() {
    let (status, body) = heartbeat_with("redis://127.0.0.1:6379/").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"][REDIS_CONNECTED], "ok");
}

#[actix_web::test]
async fn a_closed_port_is_e004_connection_refused() {
    let port = closed_port();
    let (status, body) = heartbeat_with(&format!("redis://127.0.0.1:{port}/")).await;
    let text = only_error(status, &body, ids::E004);
    assert!(text.starts_with("Could not connect to redis: "), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
}

#[actix_web::test]
async fn a_server_that_never_answers_is_e004_before_the_check_times_out() {
    let listener = Listener::silent();
    let started = Instant::now();
    let (status, body) = heartbeat_with(&format!("redis://127.0.0.1:{}/", listener.port)).await;
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
    let client = redis::Client::open(redis.url()).unwrap();
    let dockerflow = with_checks([checks::redis_connected()]).build().unwrap();
    let srv = serve(dockerflow, with_data(web::Data::new(client)));

    let pings = redis.calls("ping");
    let (status, body) = heartbeat_of(&srv).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        redis.calls("ping") > pings,
        "the check sent PING to this server"
    );

    redis.kill();
    let (status, body) = heartbeat_of(&srv).await;
    let text = only_error(status, &body, ids::E004);
    assert!(text.starts_with("Could not connect to redis: "), "{text}");

    redis.restart();
    let (status, body) = heartbeat_of(&srv).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
async fn a_ping_answered_with_an_error_is_e004() {
    // A real server that wants a password answers PING with -NOAUTH.
    let password = unique("Pw-s3cret");
    let redis = RedisServer::with_password(&password);
    let (status, body) = heartbeat_with(&format!("redis://127.0.0.1:{}/", redis.port)).await;
    let text = only_error(status, &body, ids::E004);
    assert!(text.contains("NOAUTH"), "{text}");

    // And one of the test's own that refuses PING outright.
    let fake = fake_redis("-ERR unknown command 'PING'\r\n");
    let (status, body) = heartbeat_with(&format!("redis://127.0.0.1:{}/", fake.port)).await;
    let text = only_error(status, &body, ids::E004);
    assert!(text.contains("unknown command"), "{text}");
}

#[actix_web::test]
async fn a_wrong_password_is_e004_without_the_password() {
    logs::capture();
    let password = unique("Pw-s3cret");
    let redis = RedisServer::with_password(&password);
    let wrong = format!("{password}-wrong");
    let (status, body) =
        heartbeat_with(&format!("redis://:{wrong}@127.0.0.1:{}/", redis.port)).await;
    let text = only_error(status, &body, ids::E004);
    assert!(text.starts_with("Could not connect to redis: "), "{text}");
    assert_no_secret(&body, &[&password, &wrong]);

    // With the right one, it answers.
    let (status, body) =
        heartbeat_with(&format!("redis://:{password}@127.0.0.1:{}/", redis.port)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
async fn any_answer_but_pong_is_e007() {
    for reply in ["+HELLO\r\n", ":1\r\n", "$4\r\nPING\r\n", "$-1\r\n"] {
        let fake = fake_redis(reply);
        let (status, body) = heartbeat_with(&format!("redis://127.0.0.1:{}/", fake.port)).await;
        let text = only_error(status, &body, ids::E007);
        assert_eq!(text, "Redis ping failed", "{reply:?}");
    }
}

#[actix_web::test]
async fn no_client_is_e006_naming_what_to_add() {
    let (status, body) = heartbeat([checks::redis_connected()], None::<()>).await;
    let text = only_error(status, &body, ids::E006);
    assert!(text.starts_with("Redis misconfigured: \""), "{text}");
    assert!(text.contains("web::Data<redis::Client>"), "{text}");
}

#[actix_web::test]
async fn a_bogus_url_scheme_is_e006_without_the_password() {
    logs::capture();
    let password = unique("Pw-hunter2");
    let check = checks::redis_connected_to(format!("http://:{password}@127.0.0.1:6379/"));
    let (status, body) = heartbeat([check], None::<()>).await;
    let text = only_error(status, &body, ids::E006);
    assert!(text.starts_with("Redis misconfigured: \""), "{text}");
    assert_eq!(text, "Redis misconfigured: \"Redis URL did not parse\"");
    assert_no_secret(&body, &[&password]);
}

#[actix_web::test]
async fn a_check_with_a_url_of_its_own_answers_like_the_app_data_one() {
    let redis = RedisServer::start();
    let (status, body) = heartbeat([checks::redis_connected_to(redis.url())], None::<()>).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[actix_web::test]
async fn a_password_only_the_client_knows_is_masked_in_what_the_server_says() {
    // Whatever a server echoes, the client's password is masked: a fake server that repeats
    // the password in its error.
    logs::capture();
    let fake = fake_redis("-ERR the password tiger-Pw-7781 is not welcome here\r\n");
    let url = format!("redis://:tiger-Pw-7781@127.0.0.1:{}/", fake.port);
    let (status, body) = heartbeat_with(&url).await;
    let text = only_error(status, &body, ids::E004);
    assert!(text.contains("is not welcome here"), "{text}");
    assert_no_secret(&body, &["tiger-Pw-7781"]);
}
