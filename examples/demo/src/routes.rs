//! The demo's own routes: greetings stored in the database, counted in Redis when there is one.

use actix_web::{error, web, HttpResponse};
use redis::AsyncCommands;
use serde_json::json;

use crate::db::Database;

/// Mounts `/` and `/greetings`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/greetings", web::get().to(latest))
        .route("/greetings/{name}", web::post().to(greet));
}

async fn index() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "service": "dockerflow-demo",
        "try": ["/__heartbeat__", "/__lbheartbeat__", "/__version__", "POST /greetings/{name}", "/greetings"],
    }))
}

async fn latest(db: web::Data<Database>) -> actix_web::Result<HttpResponse> {
    let rows = web::block(move || db.latest_greetings(10))
        .await?
        .map_err(unavailable)?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(|(id, name, language)| json!({ "id": id, "name": name, "language": language }))
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}

async fn greet(
    db: web::Data<Database>,
    redis: Option<web::Data<redis::Client>>,
    name: web::Path<String>,
) -> actix_web::Result<HttpResponse> {
    let name = name.into_inner();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(error::ErrorBadRequest("a name has 1 to 100 characters"));
    }
    let stored = name.clone();
    let id = web::block(move || db.add_greeting(&stored, "en"))
        .await?
        .map_err(unavailable)?;
    let mut body = json!({ "id": id, "greeting": format!("Hello, {name}!") });
    if let Some(redis) = redis {
        let mut conn = redis
            .get_multiplexed_async_connection()
            .await
            .map_err(unavailable)?;
        let count: i64 = conn
            .incr("dockerflow-demo:greetings", 1)
            .await
            .map_err(unavailable)?;
        body["count"] = json!(count);
    }
    Ok(HttpResponse::Created().json(body))
}

/// A 503 whose body says nothing of the driver's text; the text, redacted, goes to the log.
fn unavailable(err: impl std::fmt::Display) -> actix_web::Error {
    tracing::error!(error = %dockerflow::redact::redact(&err.to_string()), "backend unavailable");
    error::ErrorServiceUnavailable("a backend is unavailable; see /__heartbeat__")
}
