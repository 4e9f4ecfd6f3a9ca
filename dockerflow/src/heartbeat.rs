//! Running the checks: concurrently, off the async workers, each under a timeout, with panics
//! caught; one run shared by concurrent requests and reused for the cache time.
//!
//! Runs happen on a small runtime of dockerflow's own (`dockerflow-check` threads) so that a run
//! outlives the request that started it, is shared by requests of every worker, and a check
//! that blocks its thread cannot stall a worker that serves traffic.

use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use tokio::runtime::Runtime;

use crate::check::{Check, CheckContext, CheckMessage, Outcome, PreparedKind};
use crate::redact;
use crate::report::{CheckResult, HeartbeatReport};

/// At most this many runs of one check may be unfinished at once. A blocking check that hangs
/// keeps its thread until it returns; without a bound, every heartbeat would add one more.
const MAX_RUNNING_PER_CHECK: usize = 1;

/// How long a timed-out run waits for its aborted task to be dropped.
const ABORT_GRACE: Duration = Duration::from_millis(10);

pub(crate) const TIMEOUT_ID: &str = "dockerflow.health.E011";
pub(crate) const PANIC_ID: &str = "dockerflow.health.E012";

type SharedRun = Shared<BoxFuture<'static, Arc<HeartbeatReport>>>;

/// Settings the runner needs.
pub(crate) struct RunSettings {
    pub(crate) check_timeout: Duration,
    pub(crate) cache_ttl: Duration,
    pub(crate) silenced: Vec<String>,
}

pub(crate) struct Runner {
    checks: Vec<Check>,
    settings: RunSettings,
    state: Mutex<RunState>,
}

#[derive(Default)]
struct RunState {
    in_flight: Option<SharedRun>,
    last: Option<(Instant, Arc<HeartbeatReport>)>,
}

impl Runner {
    pub(crate) fn new(checks: Vec<Check>, settings: RunSettings) -> Arc<Runner> {
        Arc::new(Runner {
            checks,
            settings,
            state: Mutex::default(),
        })
    }

    pub(crate) fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The latest report: a fresh cached one, the one being made, or a new run.
    pub(crate) async fn report(self: &Arc<Self>, ctx: &CheckContext<'_>) -> Arc<HeartbeatReport> {
        let run = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((finished, report)) = &state.last {
                if finished.elapsed() < self.settings.cache_ttl {
                    return report.clone();
                }
            }
            match &state.in_flight {
                Some(run) => run.clone(),
                None => {
                    let run = self.start(ctx);
                    state.in_flight = Some(run.clone());
                    run
                }
            }
        };
        run.await
    }

    /// Prepares every check here (taking what it needs from the request) and runs them on the
    /// check runtime. The run records itself when done, whoever is still waiting.
    fn start(self: &Arc<Self>, ctx: &CheckContext<'_>) -> SharedRun {
        let prepared: Vec<_> = self
            .checks
            .iter()
            .map(|check| {
                let timeout = check.timeout.unwrap_or(self.settings.check_timeout);
                (check.clone(), (check.prepare)(&ctx.with_timeout(timeout)).0)
            })
            .collect();
        let runner = Arc::clone(self);
        let task = runtime().spawn(async move {
            // Whatever happens to this run, the next heartbeat must be able to start another.
            let _clear = ClearInFlight(Arc::clone(&runner));
            let started = Instant::now();
            let timeout = runner.settings.check_timeout;
            let runs = prepared.into_iter().map(|(check, prepared)| {
                let silenced = &runner.settings.silenced;
                async move {
                    let started = Instant::now();
                    let messages = run_check(&check, prepared, timeout).await;
                    let messages = messages
                        .into_iter()
                        .filter(|m| !silenced.iter().any(|id| id == m.id()))
                        .map(|m| m.map_text(redact::redact))
                        .collect();
                    CheckResult {
                        name: check.name.to_string(),
                        messages,
                        duration: started.elapsed(),
                    }
                }
            });
            let checks = futures_util::future::join_all(runs).await;
            let report = Arc::new(HeartbeatReport {
                checks,
                duration: started.elapsed(),
                bodies: Default::default(),
            });
            log_run(&report);
            runner.state.lock().unwrap_or_else(|p| p.into_inner()).last =
                Some((Instant::now(), report.clone()));
            report
        });
        async move {
            match task.await {
                Ok(report) => report,
                // Only a panic in dockerflow's own code gets here; checks' panics are caught.
                Err(err) => std::panic::resume_unwind(err.into_panic()),
            }
        }
        .boxed()
        .shared()
    }
}

/// Forgets the run in flight when the run's task ends, by finishing or by a panic in
/// dockerflow's own code (a shared run that panicked would otherwise be awaited forever).
struct ClearInFlight(Arc<Runner>);

impl Drop for ClearInFlight {
    fn drop(&mut self) {
        self.0
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .in_flight = None;
    }
}

/// Runs one check under its timeout and turns what happened into messages.
async fn run_check(
    check: &Check,
    prepared: PreparedKind,
    default_timeout: Duration,
) -> Vec<CheckMessage> {
    let timeout = check.timeout.unwrap_or(default_timeout);
    let timed_out = || {
        vec![CheckMessage::error(
            TIMEOUT_ID,
            format!("Check timed out after {} ms", timeout.as_millis()),
        )]
    };
    let outcome = match prepared {
        PreparedKind::Failed(reason) => Outcome::Failed(reason),
        _ if check.running() >= MAX_RUNNING_PER_CHECK => {
            tracing::warn!(
                target: "dockerflow::heartbeat",
                check = %check.name,
                "an earlier run of this check has not returned; not starting another"
            );
            return timed_out();
        }
        prepared => {
            let guard = RunningGuard::enter(check);
            let handle = match prepared {
                PreparedKind::Future(future) => tokio::spawn(async move {
                    let _guard = guard;
                    std::panic::AssertUnwindSafe(future).catch_unwind().await
                }),
                PreparedKind::Blocking(f) => {
                    let blocking = tokio::task::spawn_blocking(move || {
                        let _guard = guard;
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                    });
                    tokio::spawn(
                        async move { blocking.await.unwrap_or_else(|e| Err(e.into_panic())) },
                    )
                }
                PreparedKind::Failed(_) => unreachable!("handled above"),
            };
            let mut handle = handle;
            match tokio::time::timeout(timeout, &mut handle).await {
                Err(_) => {
                    handle.abort();
                    // Aborting only schedules the drop of the task. Wait for it (briefly), so
                    // that an async check's running count is released before this run answers
                    // and the next heartbeat runs the check again, instead of reporting it as
                    // still hung without trying. A future that blocks inside `poll` keeps its
                    // count, as a hung blocking check keeps its thread.
                    let _ = tokio::time::timeout(ABORT_GRACE, handle).await;
                    tracing::warn!(
                        target: "dockerflow::heartbeat",
                        check = %check.name,
                        timeout_ms = timeout.as_millis() as u64,
                        "check timed out"
                    );
                    return timed_out();
                }
                Ok(Ok(Ok(outcome))) => outcome,
                Ok(Ok(Err(panic))) => return panicked(check, panic),
                Ok(Err(join)) if join.is_panic() => return panicked(check, join.into_panic()),
                Ok(Err(_cancelled)) => return timed_out(),
            }
        }
    };
    match outcome {
        Outcome::Messages(messages) => messages,
        Outcome::Failed(text) => vec![CheckMessage::new(check.level, check.id.clone(), text)],
    }
}

/// A check's panic message can carry anything (a connection string, say): the default hook
/// would print it raw to stderr. On dockerflow's check threads the panic is reported by
/// [`panicked`] instead, redacted; every other thread keeps the hook it had.
fn quiet_check_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some(THREAD_NAME) {
            previous(info);
        }
    }));
}

fn panicked(check: &Check, panic: Box<dyn Any + Send>) -> Vec<CheckMessage> {
    let text = crate::logging::panic_text(&*panic);
    tracing::error!(
        target: "dockerflow::heartbeat",
        check = %check.name,
        location = %check.location,
        panic = %redact::redact(text),
        "check panicked"
    );
    vec![CheckMessage::critical(PANIC_ID, "Check panicked")]
}

/// Counts a run of a check as unfinished until the run's future or thread lets go of it.
struct RunningGuard(Arc<std::sync::atomic::AtomicUsize>);

impl RunningGuard {
    fn enter(check: &Check) -> Self {
        check.running.fetch_add(1, Ordering::AcqRel);
        RunningGuard(Arc::clone(&check.running))
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn log_run(report: &HeartbeatReport) {
    for check in report.checks() {
        let level = check.level();
        let duration_ms = check.duration().as_secs_f64() * 1000.0;
        if level >= crate::Level::Warning {
            let messages = check
                .messages()
                .iter()
                .map(|m| format!("{}: {}", m.id(), m.msg()))
                .collect::<Vec<_>>()
                .join("; ");
            tracing::warn!(
                target: "dockerflow::heartbeat",
                check = check.name(),
                level = level.as_str(),
                duration_ms,
                messages,
                "check reported a problem"
            );
        } else {
            tracing::debug!(
                target: "dockerflow::heartbeat",
                check = check.name(),
                level = level.as_str(),
                duration_ms,
                "check ran"
            );
        }
    }
}

const THREAD_NAME: &str = "dockerflow-check";

/// dockerflow's own runtime for check runs; lives as long as the process.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        quiet_check_panics();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(64)
            .thread_name(THREAD_NAME)
            .enable_all()
            .build()
            .expect("dockerflow: cannot start the check runtime")
    })
}
