//! `check_redis_connected`: Redis answers PING with PONG.

use std::sync::Arc;
use std::time::Duration;

use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, Value};

use super::{one_line, REDIS_CONNECTED};
use crate::check::{Check, CheckContext, CheckMessage, Prepared};
use crate::ids;
use crate::redact::{add_secret, redact};

/// The built-in `check_redis_connected`, for the `web::Data<redis::Client>` in the app data
/// (a bare `redis::Client` registered with `App::app_data` is found too).
///
/// It opens a connection and sends PING, on dockerflow's check runtime:
///
/// | finding | id | message |
/// |---|---|---|
/// | refused, reset or timed-out connection, failed authentication, PING answered with an error | `dockerflow.health.E004` | `Could not connect to redis: <reason>` |
/// | the client's settings cannot work, or the app has no client | `dockerflow.health.E006` | `Redis misconfigured: "<reason>"` |
/// | PING answered with anything but `PONG` | `dockerflow.health.E007` | `Redis ping failed` |
///
/// Connecting and the answer are each given a little less than the check's timeout. Every
/// failure is a message, never a panic; the client's password is masked wherever it could
/// appear.
///
/// ```no_run
/// use actix_web::{web, App};
///
/// let client = redis::Client::open("redis://127.0.0.1:6379/0")?;
/// let dockerflow = dockerflow::Dockerflow::builder()
///     .check(dockerflow::checks::redis_connected())
///     .build()?;
/// let app = App::new()
///     .app_data(web::Data::new(client))
///     .configure(|cfg| dockerflow.configure(cfg));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[track_caller]
pub fn redis_connected() -> Check {
    Check::new(REDIS_CONNECTED, |ctx: &CheckContext<'_>| {
        let timeout = ctx.timeout();
        let client = ctx.data::<Client>();
        match client {
            Some(client) => {
                Prepared::future(async move { check_redis_connected(&client, timeout).await })
            }
            None => Prepared::messages(vec![misconfigured(
                "no redis::Client in the app data: add web::Data<redis::Client> \
                 with App::app_data(web::Data::new(redis::Client::open(url)?))",
            )]),
        }
    })
}

/// `check_redis_connected` with a client of its own, for the Redis at `url`: for apps that
/// reach Redis through something else (a pool, a connection manager) and have no
/// `redis::Client` in their app data.
///
/// A URL that cannot be used (`http://...`, a database that is not a number) is reported by
/// every run as `dockerflow.health.E006` with redis-rs' reason; the URL's password is masked.
///
/// ```
/// let dockerflow = dockerflow::Dockerflow::builder()
///     .check(dockerflow::checks::redis_connected_to("redis://:s3cret@cache:6379/0"))
///     .build()?;
/// # Ok::<(), dockerflow::StartupError>(())
/// ```
#[track_caller]
pub fn redis_connected_to(url: impl AsRef<str>) -> Check {
    let client = Client::open(url.as_ref()).map_err(|err| {
        // The URL did not parse, so its password is not known: mask what looks like one.
        let reason = redact(&config_error(&err));
        tracing::warn!(
            target: "dockerflow::checks",
            check = REDIS_CONNECTED,
            reason = %reason,
            "the Redis URL cannot be used"
        );
        reason
    });
    let client = Arc::new(client);
    Check::new(REDIS_CONNECTED, move |ctx: &CheckContext<'_>| {
        let timeout = ctx.timeout();
        match &*client {
            Ok(client) => {
                let client = client.clone();
                Prepared::future(async move { check_redis_connected(&client, timeout).await })
            }
            Err(reason) => Prepared::messages(vec![misconfigured(reason)]),
        }
    })
}

/// What `check_redis_connected` does, with a client you hold. An empty list means Redis
/// answered PONG. It waits a little less than `timeout` in all.
pub async fn check_redis_connected(client: &Client, timeout: Duration) -> Vec<CheckMessage> {
    if let Some(password) = client.get_connection_info().redis_settings().password() {
        add_secret(password);
    }
    let wait = timeout
        .saturating_sub(timeout / 4)
        .max(Duration::from_millis(1));
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(wait))
        .set_response_timeout(Some(wait));
    let ping = async {
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("PING").query_async::<Value>(&mut conn).await
    };
    let answer = match tokio::time::timeout(wait, ping).await {
        Ok(answer) => answer,
        Err(_) => {
            return vec![cannot_connect(&format!(
                "no answer within {} ms",
                wait.as_millis()
            ))]
        }
    };
    match answer {
        Ok(value) if is_pong(&value) => Vec::new(),
        Ok(value) => {
            let answer = one_line(&redact(&format!("{value:?}")));
            tracing::warn!(
                target: "dockerflow::checks",
                check = REDIS_CONNECTED,
                answer = %truncate(&answer, 200),
                "Redis answered PING with something else than PONG"
            );
            vec![CheckMessage::error(ids::E007, "Redis ping failed")
                .with_hint(format!("PING answered {}", truncate(&answer, 200)))]
        }
        Err(err) if is_misconfiguration(&err) => vec![misconfigured(&config_error(&err))],
        Err(err) => vec![cannot_connect(&err.to_string())],
    }
}

fn is_pong(value: &Value) -> bool {
    match value {
        Value::SimpleString(text) => text == "PONG",
        Value::BulkString(bytes) => bytes == b"PONG",
        _ => false,
    }
}

fn is_misconfiguration(err: &RedisError) -> bool {
    matches!(err.kind(), ErrorKind::InvalidClientConfig)
}

/// redis-rs writes `Redis URL did not parse - InvalidClientConfig`: the kind is said by E006.
fn config_error(err: &RedisError) -> String {
    err.to_string().replacen(" - InvalidClientConfig", "", 1)
}

fn cannot_connect(reason: &str) -> CheckMessage {
    CheckMessage::error(
        ids::E004,
        format!("Could not connect to redis: {}", one_line(&redact(reason))),
    )
}

fn misconfigured(reason: &str) -> CheckMessage {
    CheckMessage::error(
        ids::E006,
        format!("Redis misconfigured: \"{}\"", one_line(&redact(reason))),
    )
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pong_is_pong() {
        assert!(is_pong(&Value::SimpleString("PONG".into())));
        assert!(is_pong(&Value::BulkString(b"PONG".to_vec())));
        assert!(!is_pong(&Value::SimpleString("pong?".into())));
        assert!(!is_pong(&Value::Okay));
        assert!(!is_pong(&Value::Nil));
    }

    #[test]
    fn an_unusable_url_is_a_misconfiguration_with_the_password_masked() {
        let err = Client::open("http://user:hunter2@cache:6379").unwrap_err();
        assert!(is_misconfiguration(&err));
        let message = misconfigured(&config_error(&err));
        assert_eq!(
            message.msg(),
            "Redis misconfigured: \"Redis URL did not parse\""
        );
        assert_eq!(message.id(), ids::E006);
        assert!(
            message.msg().starts_with("Redis misconfigured: \""),
            "{}",
            message.msg()
        );
        assert!(!message.msg().contains("hunter2"));
    }
}
