//! Mozilla's [Dockerflow](https://github.com/mozilla-services/Dockerflow) conventions for
//! actix-web: `/__heartbeat__`, `/__lbheartbeat__` and `/__version__` that load balancers,
//! Kubernetes and on-call engineers can trust.
//!
//! # One call mounts the endpoints
//!
//! ```
//! use actix_web::App;
//!
//! let app = App::new().configure(dockerflow::configure);
//! ```
//!
//! - `/__lbheartbeat__`: `200`, empty body. It touches nothing, so a load balancer can call it
//!   as often as it likes.
//! - `/__version__`: the JSON object of `version.json` (`DOCKERFLOW_VERSION_FILE`, else
//!   `./version.json`, else `/app/version.json`), `404` when there is none.
//! - `/__heartbeat__`: runs every check and answers `{"status": "ok"}` with `200`, or the
//!   highest level found with `500` once it reaches the fail level (`warning` by default).
//!
//! # Checks are annotated functions
//!
//! ```
//! use actix_web::web;
//! use dockerflow::CheckMessage;
//!
//! struct Disk { free_bytes: u64 }
//!
//! /// A blocking check (a plain `fn`) runs on the blocking pool, never on an async worker.
//! #[dockerflow::check(level = "warning")]
//! fn check_disk_space(disk: web::Data<Disk>) -> Result<(), String> {
//!     if disk.free_bytes < 1 << 30 {
//!         return Err(format!("only {} bytes free", disk.free_bytes));
//!     }
//!     Ok(())
//! }
//!
//! /// An `async fn` check; this one reports several messages with ids of its own.
//! #[dockerflow::check(name = "queues", timeout_ms = 500)]
//! async fn check_queues() -> Vec<CheckMessage> {
//!     vec![CheckMessage::info("myapp.I001", "2 jobs waiting")]
//! }
//! # fn main() {}
//! ```
//!
//! Arguments are `web::Data<T>` values from the app's data, taken when the heartbeat runs; a
//! missing one fails that check with a message naming the type. A check returns
//! `Result<(), E>` with `E: Display` (an `Err` becomes one message at the attribute's level,
//! `error` by default, under its `id`, the check's name by default), `Vec<CheckMessage>`, or
//! `Result<Vec<CheckMessage>, E>`.
//!
//! Each heartbeat runs the checks concurrently on dockerflow's own threads, each under a timeout
//! (3 s; `DOCKERFLOW_CHECK_TIMEOUT_MS`), with panics caught. Concurrent heartbeat requests share
//! one run, and a finished run is reused for 1 s (`DOCKERFLOW_CACHE_TTL_MS`), so probes from
//! many places cost the backends one run a second. Async checks must be `Send`.
//!
//! Nothing a check does can hang the heartbeat: it answers within the longest check timeout plus
//! 250 ms, reporting what has not finished as `dockerflow.health.E011`. Each `async fn` check is
//! polled on a thread of its own, so one that blocks (calling a blocking client from an
//! `async fn` is a common mistake) holds only that thread, and a warning log line names it. A
//! check whose earlier run still holds its thread is not started again until it lets go ("Check
//! still running from a run started … ms ago"): hung checks hold **at most one thread each**,
//! so `n` checks can never hold more than `n` threads, however many heartbeats come.
//!
//! ## Where checks come from, and inventory's limits
//!
//! Annotated functions are collected at link time with [`inventory`](https://docs.rs/inventory)
//! from every crate linked into the binary. A crate that nothing in the binary references is not
//! linked, and its checks are silently absent: if your checks live in a crate of their own,
//! reference it from `main`, for example with `use my_checks as _;`. The heartbeat lists checks
//! by name, never by link order; two checks with the same name stop start-up with a message
//! naming both places.
//!
//! # Hooks on the heartbeat
//!
//! Exactly one kind of hook runs for each heartbeat response: `failed` when the response is a
//! failure, `passed` otherwise. Hooks take the highest [`Level`] or the whole
//! [`&HeartbeatReport`](HeartbeatReport) (each check's messages and duration).
//!
//! ```
//! use dockerflow::Level;
//!
//! #[dockerflow::on_heartbeat_failed]
//! fn count_failure(level: Level) {
//!     eprintln!("heartbeat failed at {level}");
//! }
//! # fn main() {}
//! ```
//!
//! # Settings, built-in checks and fail-fast start-up
//!
//! [`configure`] reads the environment (`DOCKERFLOW_*`, see [`config::env`]). To set things in
//! code (code wins over the environment) or add the built-in checks of [`checks`], build a
//! [`Dockerflow`] in `main`, where a bad setting is an error you can report:
//!
//! ```
//! use actix_web::App;
//! use dockerflow::{Dockerflow, Level};
//!
//! # fn main() -> Result<(), dockerflow::StartupError> {
//! let dockerflow = Dockerflow::builder().fail_level(Level::Error).build()?;
//! let app = App::new().configure(|cfg| dockerflow.configure(cfg));
//! # Ok(()) }
//! ```
//!
//! # Logs
//!
//! [`logging::init`] makes every `tracing` event a mozlog line on stdout, and
//! [`Dockerflow::request_summary`] is the middleware that gives each request an id and one
//! `request.summary` line:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! dockerflow::logging::init("my-app")?;
//! let dockerflow = dockerflow::Dockerflow::from_env()?;
//! let app = actix_web::App::new()
//!     .configure(|cfg| dockerflow.configure(cfg))
//!     .wrap(dockerflow.request_summary());
//! # Ok(()) }
//! ```
//!
//! Details (`checks` and `details` in the heartbeat body) are hidden unless
//! `DOCKERFLOW_SHOW_DETAILS=true`, or the request carries `Authorization: Bearer <token>` with
//! `DOCKERFLOW_DETAILS_TOKEN`. Every text from a check passes [`redact::redact`] first: URL
//! passwords and configured secrets never reach a body or a log line.

// On docs.rs (which builds with `--cfg docsrs` on nightly), each item behind a feature says
// which feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod builder;
mod check;
pub mod checks;
pub mod config;
mod dockerflow;
mod drain;
mod endpoints;
mod error;
mod heartbeat;
mod hooks;
pub mod ids;
pub mod liveness;
pub mod logging;
mod paths;
pub mod redact;
mod registry;
mod report;
mod runtime;
mod version;

#[doc(hidden)]
pub mod __private;

/// The README's Rust examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

pub use crate::builder::Builder;
pub use crate::check::{
    Check, CheckContext, CheckMessage, FromCheckContext, IntoCheckOutcome, Level, MissingData,
    Outcome, ParseLevelError, Prepared,
};
pub use crate::config::Config;
pub use crate::dockerflow::Dockerflow;
pub use crate::endpoints::configure;
pub use crate::error::StartupError;
pub use crate::hooks::FromReport;
pub use crate::liveness::LivenessCondition;
pub use crate::paths::{is_endpoint_path, ENDPOINT_PATHS};
pub use crate::report::{CheckResult, HeartbeatReport};
pub use crate::version::CompiledVersion;

/// Registers a function as a health check of `/__heartbeat__`.
///
/// Arguments: `level` (`"debug"`, `"info"`, `"warning"`, `"error"` or `"critical"`; default
/// `"error"`), `name` (default: the function's name), `id` (the id a plain failure is reported
/// under; default: the name), `timeout_ms` (default: the configured check timeout).
///
/// ```
/// # use actix_web::web;
/// # struct Payments;
/// # impl Payments { fn ping(&self) -> Result<(), std::io::Error> { Ok(()) } }
/// #[dockerflow::check(level = "warning", id = "payments.W001")]
/// fn check_payments(payments: web::Data<Payments>) -> Result<(), std::io::Error> {
///     payments.ping()
/// }
/// # fn main() {}
/// ```
///
/// stands for the function, unchanged, plus this registration (simplified):
///
/// ```text
/// const _: () = {
///     fn prepare(ctx: &CheckContext<'_>) -> Prepared {
///         let payments: web::Data<Payments> = match FromCheckContext::from_context(ctx) {
///             Ok(value) => value,
///             Err(missing) => return Prepared::failed(missing),
///         };
///         Prepared::blocking(move || check_payments(payments))  // Prepared::future for async fn
///     }
///     inventory::submit! {
///         CheckRecord { name: "check_payments", id: "payments.W001", level: Level::Warning,
///                       timeout_ms: None, location: "src/main.rs:5:4", prepare }
///     }
/// };
/// ```
///
/// On a mistake the function is still emitted as written, and every mistake in the arguments
/// and the signature is reported at once, each at its token; the body is left to the compiler.
#[doc(inline)]
pub use dockerflow_macros::check;

/// Registers a function run when a heartbeat response is not a failure.
///
/// The function is a plain `fn` returning nothing; its arguments are [`Level`] (the highest
/// level found) and/or `&HeartbeatReport`. A hook that panics is logged and changes nothing.
///
/// ```
/// #[dockerflow::on_heartbeat_passed]
/// fn count_pass(level: dockerflow::Level, report: &dockerflow::HeartbeatReport) {
///     let _ = (level, report.duration());
/// }
/// # fn main() {}
/// ```
///
/// stands for the function, unchanged, plus
///
/// ```text
/// const _: () = {
///     fn hook(report: &HeartbeatReport) { count_pass(report.level(), report) }
///     inventory::submit! { HookRecord { kind: HookKind::Passed, name: "count_pass", location: "...", call: hook } }
/// };
/// ```
#[doc(inline)]
pub use dockerflow_macros::on_heartbeat_passed;

/// Registers a function run when a heartbeat response is a failure (its level reached the fail
/// level). Same shape as [`on_heartbeat_passed`].
///
/// ```
/// #[dockerflow::on_heartbeat_failed]
/// fn count_failure(level: dockerflow::Level) {
///     eprintln!("heartbeat failed: {level}");
/// }
/// # fn main() {}
/// ```
#[doc(inline)]
pub use dockerflow_macros::on_heartbeat_failed;
