//! The endpoints (`/__heartbeat__`, `/__lbheartbeat__`, `/__version__`, and `/__error__` when
//! enabled) and `configure`, which mounts them.

use std::future::Future;
use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, Responder, ResponseError};
use futures_util::future::Either;
use subtle::ConstantTimeEq;

use crate::check::AppData;
use crate::dockerflow::{Dockerflow, Inner};
use crate::heartbeat;
use crate::version::VersionAnswer;

/// Mounts the Dockerflow endpoints with the settings of the environment.
///
/// ```
/// use actix_web::App;
///
/// let app = App::new().configure(dockerflow::configure);
/// ```
///
/// This uses [`Dockerflow::global`]: an invalid setting stops the process with a message
/// naming it. For settings in code or built-in checks, build a [`Dockerflow`] and call
/// [`Dockerflow::configure`].
pub fn configure(cfg: &mut web::ServiceConfig) {
    Dockerflow::global().configure(cfg);
}

impl Dockerflow {
    /// Mounts the endpoints on an app or scope: `App::new().configure(|cfg| df.configure(cfg))`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let inner = &self.inner;
        let df = Arc::clone(inner);
        // Answered before the future is made: no reference count moves per request.
        let lbheartbeat = move |_| std::future::ready(lbheartbeat(&df));

        let df = Arc::clone(inner);
        // The answer of the last look, when it is fresh, is given before the future is made:
        // no reference count moves (only a look at the file needs `df` in the future).
        let version = move |_| match df.version.fresh() {
            Some(answer) => Either::Left(std::future::ready(version_response(answer))),
            None => {
                let df = Arc::clone(&df);
                Either::Right(async move { version_response(df.version.answer().await) })
            }
        };

        let df = Arc::clone(inner);
        let heartbeat = move |req: HttpRequest| {
            let df = Arc::clone(&df);
            async move { heartbeat(df, req).await }
        };

        // actix tries an app's resources in the order they were added, and each one tried
        // before the one that matches costs a request about 190 instructions: the three paths
        // as probes send them first (the load balancer's, the most frequent, first of all),
        // then the same paths with a trailing slash.
        for slash in ["", "/"] {
            mount(
                cfg,
                &format!("/__lbheartbeat__{slash}"),
                lbheartbeat.clone(),
            );
            mount(cfg, &format!("/__version__{slash}"), version.clone());
            mount(cfg, &format!("/__heartbeat__{slash}"), heartbeat.clone());
            if inner.config.enable_error_endpoint {
                mount(cfg, &format!("/__error__{slash}"), |_| error());
            }
        }
    }
}

/// Mounts `handler` for GET and HEAD at `path`; any other method is answered 405.
///
/// One resource a path, each with one static path, not one resource with both `path` and
/// `path/`: actix-router matches a resource of several paths with a regex set (a quarter of
/// the server's time on `/__lbheartbeat__`, and paid again by every resource tried before the
/// one that matches), while it matches a static path by comparing strings. One route for every
/// method, with the method looked at here: a route per method made actix run its method guards
/// and note each method in the request's extensions (for its own 405), about 700 instructions
/// a request.
fn mount<F, Fut>(cfg: &mut web::ServiceConfig, path: &str, handler: F)
where
    F: Fn(HttpRequest) -> Fut + Clone + 'static,
    Fut: Future + 'static,
    Fut::Output: Responder + 'static,
{
    cfg.service(web::resource(path).to(move |req: HttpRequest| {
        let answer = matches!(*req.method(), Method::GET | Method::HEAD).then(|| handler(req));
        async move {
            match answer {
                Some(answer) => actix_web::Either::Left(answer.await),
                None => actix_web::Either::Right(method_not_allowed()),
            }
        }
    }));
}

/// `application/json`, as a static header value: a `&str` would be copied into a new one on
/// every request (an allocation, for `/__version__` and `/__heartbeat__`).
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

fn no_store(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::build(status);
    builder.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    builder
}

fn method_not_allowed() -> HttpResponse {
    no_store(StatusCode::METHOD_NOT_ALLOWED)
        .insert_header((header::ALLOW, HeaderValue::from_static("GET, HEAD")))
        .finish()
}

/// 200 with an empty body: the process is up. Touches nothing else: 503 while draining, 500
/// with the name of a liveness condition that holds, both decided in memory.
fn lbheartbeat(df: &Inner) -> HttpResponse {
    if df.draining.is_draining() {
        return no_store(StatusCode::SERVICE_UNAVAILABLE).finish();
    }
    if let Some(condition) = df.liveness.iter().find(|c| c.holds()) {
        tracing::error!(
            target: "dockerflow::liveness",
            condition = condition.name(),
            "a liveness condition holds: /__lbheartbeat__ answers 500"
        );
        return no_store(StatusCode::INTERNAL_SERVER_ERROR).json(serde_json::json!({
            "error": format!("liveness condition {} holds", condition.name()),
            "condition": condition.name(),
        }));
    }
    no_store(StatusCode::OK).finish()
}

fn version_response(answer: VersionAnswer) -> HttpResponse {
    match answer {
        VersionAnswer::Found(bytes) => no_store(StatusCode::OK)
            .content_type(APPLICATION_JSON)
            .body(bytes),
        VersionAnswer::Missing => no_store(StatusCode::NOT_FOUND)
            .content_type(HeaderValue::from_static("text/plain; charset=utf-8"))
            .body("version.json not found"),
        VersionAnswer::Broken(reason) => {
            tracing::error!(target: "dockerflow::version", error = %reason, "cannot serve /__version__");
            no_store(StatusCode::INTERNAL_SERVER_ERROR).json(serde_json::json!({ "error": reason }))
        }
    }
}

async fn heartbeat(df: Arc<Inner>, req: HttpRequest) -> HttpResponse {
    let details = df.config.show_details || has_details_token(&df, &req);
    let query = match HeartbeatQuery::parse(req.query_string(), df.runner.checks()) {
        Ok(query) => query,
        Err(unknown) => {
            let mut error = format!("unknown check {unknown:?} in ?check= or ?exclude=");
            if details {
                let known: Vec<&str> = df.runner.checks().iter().map(|c| c.name()).collect();
                error.push_str(&format!("; the checks are: {}", known.join(", ")));
            }
            return no_store(StatusCode::BAD_REQUEST).json(serde_json::json!({ "error": error }));
        }
    };
    let run = df.runner.report(AppData(&req)).await;
    let selected;
    let report = if query.selects() {
        selected = run.report.select(|name| query.keeps(name));
        &selected
    } else {
        &run.report
    };
    let failed = report.level() >= df.config.fail_level;
    df.hooks.fire(report, failed);
    let status = if df.draining.is_draining() {
        StatusCode::SERVICE_UNAVAILABLE
    } else if failed {
        df.config.failed_status
    } else {
        StatusCode::OK
    };
    let verbose = query.verbose && details;
    let body = if query.selects() || verbose {
        heartbeat::render(report, details, verbose)
    } else {
        run.body(details)
    };
    no_store(status).content_type(APPLICATION_JSON).body(body)
}

/// What a heartbeat request asks for in its query string: `check=a,b` keeps only those checks,
/// `exclude=a,b` leaves those out, `verbose` lists every check in `details`.
#[derive(Debug, Default)]
struct HeartbeatQuery {
    check: Option<Vec<String>>,
    exclude: Vec<String>,
    verbose: bool,
}

impl HeartbeatQuery {
    /// The query of `query_string`; `Err` with the first name that is not among `checks`.
    fn parse(query_string: &str, checks: &[crate::Check]) -> Result<Self, String> {
        let mut query = HeartbeatQuery::default();
        if query_string.is_empty() {
            return Ok(query);
        }
        let pairs = web::Query::<Vec<(String, String)>>::from_query(query_string)
            .map(web::Query::into_inner)
            .unwrap_or_default();
        for (key, value) in pairs {
            let names = || {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned)
            };
            match key.as_str() {
                "check" => query.check.get_or_insert_with(Vec::new).extend(names()),
                "exclude" => query.exclude.extend(names()),
                "verbose" => query.verbose = !matches!(value.as_str(), "0" | "false"),
                _ => {}
            }
        }
        let named = query.check.iter().flatten().chain(&query.exclude);
        if let Some(unknown) = named
            .into_iter()
            .find(|name| !checks.iter().any(|c| c.name() == name.as_str()))
        {
            let mut unknown = unknown.clone();
            if unknown.len() > 80 {
                let cut = (0..=80).rev().find(|&i| unknown.is_char_boundary(i));
                unknown.truncate(cut.unwrap_or(0));
                unknown.push('…');
            }
            return Err(unknown);
        }
        Ok(query)
    }

    fn selects(&self) -> bool {
        self.check.is_some() || !self.exclude.is_empty()
    }

    fn keeps(&self, name: &str) -> bool {
        self.check
            .as_ref()
            .is_none_or(|only| only.iter().any(|n| n == name))
            && !self.exclude.iter().any(|n| n == name)
    }
}

/// `Authorization: Bearer <token>` with the configured token, compared in constant time. The
/// scheme is case-insensitive (RFC 9110, section 11.1), and spaces may separate it from the token.
fn has_details_token(df: &Inner, req: &HttpRequest) -> bool {
    let Some(expected) = &df.config.details_token else {
        return false;
    };
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return false;
    };
    bearer_token(value.as_bytes()).is_some_and(|given| bool::from(given.ct_eq(expected.as_bytes())))
}

/// The token of a `Bearer` credential, whatever the scheme's case.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer";
    let (scheme, rest) = value.split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Logs an error and fails through actix-web's error path, so that error reporters which look
/// for an actix [`Error`](actix_web::Error) on the response (sentry-actix among them) see it.
async fn error() -> Result<HttpResponse, TestError> {
    tracing::error!(target: "dockerflow::endpoints", "/__error__ was called: this error is a test of error reporting");
    Err(TestError)
}

/// The error `/__error__` fails with: `500`, `{"error": "test error from /__error__"}`,
/// `Cache-Control: no-store`.
#[derive(Debug, thiserror::Error)]
#[error("test error from /__error__")]
pub(crate) struct TestError;

impl ResponseError for TestError {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        no_store(self.status_code()).json(serde_json::json!({ "error": self.to_string() }))
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR   t0k "] {
            assert_eq!(bearer_token(value.as_bytes()), Some(&b"t0k"[..]), "{value}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_give_nothing() {
        for value in [
            "Basic t0k",
            "Bearert0k",
            "Bearer",
            "Bearer   ",
            "Token t0k",
            "",
            "bear t0k",
        ] {
            assert_eq!(bearer_token(value.as_bytes()), None, "{value}");
        }
    }
}
