//! [`RequestSummary`]: the middleware that gives each request its id, makes the request
//! current while it is handled (for the `rid` of its lines), and logs one `request.summary`
//! line.

use std::fmt;
use std::future::{ready, Future, Ready};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode, Uri};
use actix_web::{Error, HttpRequest, HttpResponse, ResponseError};

use crate::logging::context::RequestContext;
use crate::logging::direct;
use crate::logging::mozlog::now_ns;
use crate::logging::RequestId;
use crate::redact::redacted;
use crate::Dockerflow;

/// Middleware that logs one `request.summary` line per request and gives each request its
/// [`RequestId`].
///
/// For each request it:
///
/// - takes the request id from the request id header (`X-Request-Id` unless configured
///   otherwise) when it is sane, else makes a new UUID v4, and sends it back in the same
///   response header;
/// - makes the request current on the worker while its future is polled, so every line
///   logged meanwhile carries `Fields.rid` (and `Fields.uid`, see [`set_uid`]); a task the
///   handler spawns takes the request along with
///   [`in_current_request`](crate::logging::in_current_request);
/// - logs a `request.summary` event (target `request.summary`) with `agent`, `lang`, `method`,
///   `path`, `code`, `errno`, `t` (ms), `rid`, `uid` (when the app called [`set_uid`]) and
///   `querystring` (when [`Builder::log_querystring`](crate::Builder::log_querystring) is
///   on). The line is `INFO`; it is `ERROR`, with an `error` field, when a handler failed with
///   a 5xx error or panicked. The texts that can carry a secret (`path`, `querystring`,
///   `error`) are [redacted](crate::redact::redact) here, before any subscriber sees them.
///
/// With [`Builder::log_probes(false)`](crate::Builder::log_probes) (or
/// `DOCKERFLOW_LOG_PROBES=false`), requests to the Dockerflow endpoints
/// ([`ENDPOINT_PATHS`](crate::ENDPOINT_PATHS)) get no summary line: load balancers' probes are
/// most of the volume in many services. They keep their request id: in the response header,
/// the [`RequestId`] extractor and the lines logged while they are handled.
///
/// Add it with `.wrap(...)` after every other `.wrap`, so it is the outermost middleware and
/// sees the final status of every request:
///
/// ```
/// use actix_web::App;
/// use dockerflow::Dockerflow;
///
/// # fn main() -> Result<(), dockerflow::StartupError> {
/// let dockerflow = Dockerflow::builder().log_querystring(true).build()?;
/// let app = App::new()
///     .configure(|cfg| dockerflow.configure(cfg))
///     .wrap(dockerflow.request_summary());
/// # Ok(()) }
/// ```
///
/// `RequestSummary::default()` takes the settings of [`Dockerflow::global`], the instance
/// [`configure`](crate::configure) uses.
///
/// A handler that panics gets a summary with `code` and `errno` 500, then the panic goes on
/// as actix handles it (the connection is closed without an answer).
#[derive(Clone)]
pub struct RequestSummary {
    settings: Arc<Settings>,
}

struct Settings {
    header: HeaderName,
    log_querystring: bool,
    log_probes: bool,
}

impl RequestSummary {
    /// The middleware with the request id header and `log_querystring` of `dockerflow`.
    pub fn new(dockerflow: &Dockerflow) -> Self {
        let config = dockerflow.config();
        RequestSummary {
            settings: Arc::new(Settings {
                header: static_name(config.request_id_header()),
                log_querystring: config.log_querystring(),
                log_probes: config.log_probes(),
            }),
        }
    }
}

impl Default for RequestSummary {
    /// The middleware with the settings of [`Dockerflow::global`].
    fn default() -> Self {
        RequestSummary::new(Dockerflow::global())
    }
}

impl fmt::Debug for RequestSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSummary")
            .field("request_id_header", &self.settings.header)
            .field("log_querystring", &self.settings.log_querystring)
            .field("log_probes", &self.settings.log_probes)
            .finish()
    }
}

impl Dockerflow {
    /// The [`RequestSummary`] middleware with these settings: `.wrap(dockerflow.request_summary())`.
    pub fn request_summary(&self) -> RequestSummary {
        RequestSummary::new(self)
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequestSummary
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = RequestSummaryMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        // The workers share the settings: a request reads them and copies the header's name,
        // which is static text, so no reference count moves between their cores.
        ready(Ok(RequestSummaryMiddleware {
            service,
            settings: Arc::clone(&self.settings),
        }))
    }
}

/// `name` as a header name with static text: copying it for each request's response and
/// dropping it touch no reference count (one shared by the workers would move between their
/// cores on every request). Each distinct name is made static once, for the life of the
/// process: the names a process configures are few.
fn static_name(name: &HeaderName) -> HeaderName {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    let text = match names.iter().find(|text| **text == name.as_str()) {
        Some(text) => text,
        None => {
            let text: &'static str = Box::leak(name.as_str().into());
            names.push(text);
            text
        }
    };
    // A header name's text is lower case and valid: `from_static` takes it as it is.
    HeaderName::from_static(text)
}

/// The service [`RequestSummary`] wraps around the app; not used directly.
pub struct RequestSummaryMiddleware<S> {
    service: S,
    settings: Arc<Settings>,
}

impl<S> Drop for RequestSummaryMiddleware<S> {
    /// The app is going away (its server is stopping): the lines of its requests are written
    /// now, not up to 5 ms later, when the process may be gone.
    fn drop(&mut self) {
        crate::logging::flush();
    }
}

impl<S> fmt::Debug for RequestSummaryMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSummaryMiddleware")
            .finish_non_exhaustive()
    }
}

/// Attaches the id of the signed-in user to the request: it goes in the `uid` field of the
/// request's `request.summary` line, and of every log line emitted after this call while the
/// request is handled.
///
/// The app knows who the user is; the library does not. Call it from a handler, or from a
/// middleware placed inside [`RequestSummary`] (with `req.request()` of a `ServiceRequest`):
///
/// ```
/// use actix_web::HttpRequest;
///
/// async fn profile(req: HttpRequest) -> &'static str {
///     dockerflow::logging::set_uid(&req, "user-42");
///     "hello"
/// }
/// ```
///
/// It acts on the request being handled: from the handler, an inner middleware, or a task that
/// took the request along with [`in_current_request`](crate::logging::in_current_request).
/// Without the middleware on the app, or elsewhere (a task spawned without it), it does
/// nothing.
pub fn set_uid(req: &HttpRequest, uid: impl Into<String>) {
    if let Some(context) = RequestContext::of(req) {
        context.set_uid(&uid.into());
    }
}

/// The parts of the request the summary needs, taken before the app gets the request (shared
/// with it, not copied: header values and the URI are reference-counted).
struct Summary {
    /// When the request came in, in nanoseconds since the Unix epoch: the clock of the line's
    /// `Timestamp`, so the line's end time serves both and a request reads the clock twice,
    /// not three times. `t` is wall-clock time, as python-dockerflow's is; a clock stepped
    /// back while a request is handled gives 0.
    start: u64,
    agent: Option<HeaderValue>,
    lang: Option<HeaderValue>,
    method: Method,
    uri: Uri,
    log_querystring: bool,
}

/// Logs the summary of the request of `context`, unless it gets none (a probe, with
/// `log_probes` off).
fn log(
    summary: &Option<Summary>,
    context: &RequestContext,
    status: StatusCode,
    error: Option<&str>,
) {
    if let Some(summary) = summary {
        summary.log(context, status, error);
    }
}

impl Summary {
    /// Logs the summary of a request answered with `status`; `error` is the handler's failure.
    fn log(&self, context: &RequestContext, status: StatusCode, error: Option<&str>) {
        let code = status.as_u16();
        let errno = if code >= 500 { code } else { 0 };
        let now = now_ns();
        let t = now.saturating_sub(self.start) / 1_000_000;
        let uid = context.uid();
        let agent = self.agent.as_ref().map_or(&[][..], HeaderValue::as_bytes);
        let lang = self.lang.as_ref().map_or(&[][..], HeaderValue::as_bytes);
        let level = match error {
            Some(_) => tracing::Level::ERROR,
            None => tracing::Level::INFO,
        };
        // Written straight, every text is redacted as it is written.
        let line = direct::SummaryLine {
            agent,
            lang,
            method: self.method.as_str(),
            path: self.uri.path(),
            code,
            errno,
            t,
            rid: context.rid(),
            uid: uid.as_deref(),
            querystring: self
                .log_querystring
                .then(|| self.uri.query().unwrap_or_default()),
            error,
        };
        if direct::write(level, &line, now) {
            return;
        }
        // Otherwise the event, with the same values; the texts that can carry a secret are
        // redacted here, so that no subscriber can log one from a path or an error.
        let agent = String::from_utf8_lossy(line.agent);
        let lang = String::from_utf8_lossy(line.lang);
        let path = redacted(line.path);
        let querystring = line.querystring.map(redacted);
        let error = line.error.map(redacted);
        macro_rules! summary {
            ($level:expr) => {
                tracing::event!(
                    target: "request.summary",
                    $level,
                    agent = &*agent,
                    lang = &*lang,
                    method = line.method,
                    path = &*path,
                    code = line.code,
                    errno = line.errno,
                    t = line.t,
                    rid = line.rid.as_str(),
                    uid = line.uid,
                    querystring = querystring.as_deref(),
                    error = error.as_deref(),
                )
            };
        }
        match level {
            tracing::Level::ERROR => summary!(tracing::Level::ERROR),
            _ => summary!(tracing::Level::INFO),
        }
    }
}

fn header_value(headers: &HeaderMap, name: HeaderName) -> Option<HeaderValue> {
    headers.get(name).cloned()
}

impl<S, B> Service<ServiceRequest> for RequestSummaryMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = RequestSummaryFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let header = self.settings.header.clone();
        let rid = RequestId::from_header(req.headers().get(&header));
        let context = RequestContext::new(rid, req.head());
        // With `log_probes` off, a Dockerflow endpoint gets no summary line; the lines it logs
        // (a heartbeat hook's, a failing check's) still carry its id.
        let summarised = self.settings.log_probes || !crate::is_endpoint_path(req.path());
        let summary = summarised.then(|| Summary {
            start: now_ns(),
            agent: header_value(req.headers(), header::USER_AGENT),
            lang: header_value(req.headers(), header::ACCEPT_LANGUAGE),
            method: req.method().clone(),
            uri: req.uri().clone(),
            log_querystring: self.settings.log_querystring,
        });

        let call = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let _entered = context.enter();
            self.service.call(req)
        }));
        let (call, panic) = match call {
            Ok(future) => (Some(future), None),
            Err(panic) => (None, Some(panic)),
        };
        RequestSummaryFuture {
            call,
            panic,
            finish: Some(Finish { summary, header }),
            context,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a request that [`RequestSummary`] handles: the app's, polled with the
    /// request current (its lines carry `rid`, and go to the writer thread); once it is done,
    /// the request's summary is logged and the request id header is sent.
    ///
    /// A type of its own rather than a boxed `async` block: a request costs no allocation
    /// for it, and the server keeps it in place instead of copying it into a box.
    pub struct RequestSummaryFuture<F> {
        // `None` when the app's `call` panicked, with the panic in `panic`.
        #[pin]
        call: Option<F>,
        panic: Option<Box<dyn std::any::Any + Send>>,
        // Taken when the future completes.
        finish: Option<Finish>,
        context: Arc<RequestContext>,
    }
}

/// What a request's end needs besides its outcome.
struct Finish {
    summary: Option<Summary>,
    header: HeaderName,
}

impl<F> fmt::Debug for RequestSummaryFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSummaryFuture")
            .field("rid", self.context.rid())
            .finish_non_exhaustive()
    }
}

impl<F, B> Future for RequestSummaryFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<B>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        assert!(
            this.finish.is_some(),
            "RequestSummaryFuture polled after it completed"
        );
        let _entered = this.context.enter();
        let outcome = match this.call.as_pin_mut() {
            Some(call) => match std::panic::catch_unwind(AssertUnwindSafe(|| call.poll(cx))) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(result)) => Ok(result),
                Err(panic) => Err(panic),
            },
            None => Err(this.panic.take().expect("the panic of the app's call")),
        };
        let Finish { summary, header } = this.finish.take().expect("not completed yet");
        let context = &**this.context;
        let rid = context.rid();
        Poll::Ready(match outcome {
            Ok(Ok(mut res)) => {
                let status = res.status();
                let error = res
                    .response()
                    .error()
                    .filter(|_| status.is_server_error())
                    .map(ToString::to_string);
                log(&summary, context, status, error.as_deref());
                send_id(res.headers_mut(), header, rid);
                Ok(res)
            }
            Ok(Err(error)) => {
                // An inner middleware failed instead of answering; actix builds the response
                // from the error later, so the error carries the id header.
                let status = error.as_response_error().status_code();
                let text = status.is_server_error().then(|| error.to_string());
                log(&summary, context, status, text.as_deref());
                Err(WithRequestId {
                    error,
                    header,
                    rid: rid.clone(),
                }
                .into())
            }
            Err(panic) => {
                let text = format!("handler panicked: {}", super::panic_text(&*panic));
                log(
                    &summary,
                    context,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Some(&text),
                );
                std::panic::resume_unwind(panic)
            }
        })
    }
}

/// An error from inside the app, answered as the error itself would be, plus the request id
/// header.
struct WithRequestId {
    error: Error,
    header: HeaderName,
    rid: RequestId,
}

impl fmt::Debug for WithRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.error, f)
    }
}

impl fmt::Display for WithRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for WithRequestId {
    fn status_code(&self) -> StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.error.error_response();
        send_id(response.headers_mut(), self.header.clone(), &self.rid);
        response
    }
}

/// Sends the request id back in `header`.
fn send_id(headers: &mut HeaderMap, header: HeaderName, rid: &RequestId) {
    if let Some(value) = rid.header_value() {
        headers.insert(header, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_name_is_made_static_once_and_keeps_its_text() {
        let configured = HeaderName::from_bytes(b"X-Trace-Id").unwrap();
        let first = static_name(&configured);
        let again = static_name(&HeaderName::from_bytes(b"x-trace-id").unwrap());
        assert_eq!(first, configured);
        assert_eq!(first.as_str(), "x-trace-id");
        // The same leaked text, not a second copy.
        assert!(std::ptr::eq(first.as_str(), again.as_str()));
        assert_eq!(static_name(&header::USER_AGENT), header::USER_AGENT);
    }
}
