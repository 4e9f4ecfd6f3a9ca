//! The runner: one run of every check shared by concurrent requests and reused for the cache
//! time, each check under its timeout, and a deadline on the request side that holds whatever
//! the checks do.
//!
//! Where check code runs (and why a check that blocks its thread cannot stall the others or the
//! server) is in [`runtime`](crate::runtime).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use crate::check::{AppData, Check, CheckContext, CheckMessage, Outcome};
use crate::config::Config;
use crate::report::{CheckResult, HeartbeatReport};
use crate::runtime::{self, Executed};
use crate::{ids, redact};

/// How long after the longest check timeout a request stops waiting for the run and answers
/// with what it has: the contract promises an answer within the longest timeout plus 250 ms.
const REQUEST_GRACE: Duration = Duration::from_millis(200);

pub(crate) struct Runner {
    checks: Vec<Check>,
    config: Config,
    /// The longest timeout of any check: how long a run may take.
    longest_timeout: Duration,
    state: Mutex<RunState>,
}

#[derive(Default)]
struct RunState {
    in_flight: Option<Arc<Run>>,
    last: Option<(Instant, Arc<Finished>)>,
}

/// A finished run: its report, and its two plain bodies (details hidden, shown), each rendered
/// once, since a reused run answers many requests.
pub(crate) struct Finished {
    pub(crate) report: HeartbeatReport,
    bodies: [OnceLock<Bytes>; 2],
}

impl Finished {
    /// The body with details hidden or shown, as JSON bytes.
    pub(crate) fn body(&self, details: bool) -> Bytes {
        self.bodies[usize::from(details)]
            .get_or_init(|| render(&self.report, details, false))
            .clone()
    }
}

/// `report`'s body as JSON bytes.
pub(crate) fn render(report: &HeartbeatReport, details: bool, verbose: bool) -> Bytes {
    let body = report.body(details, verbose);
    Bytes::from(serde_json::to_vec(&body).expect("a heartbeat body always serializes"))
}

/// One run of every check, as the requests waiting for it see it.
struct Run {
    started: Instant,
    /// Each check's result as it comes in, in the order of [`Runner::checks`].
    results: Mutex<Vec<Option<CheckResult>>>,
    /// The report, made once when the run is finished (by the coordinator, or by a request
    /// whose deadline came first).
    done: OnceLock<Arc<Finished>>,
    /// Wakes the requests waiting for the run once `done` is set and the runner knows.
    report: watch::Sender<Option<Arc<Finished>>>,
}

impl Runner {
    pub(crate) fn new(checks: Vec<Check>, config: Config) -> Arc<Runner> {
        runtime::quiet_check_panics();
        let longest_timeout = checks
            .iter()
            .map(|check| check.timeout.unwrap_or(config.check_timeout))
            .max()
            .unwrap_or(Duration::ZERO);
        Arc::new(Runner {
            checks,
            config,
            longest_timeout,
            state: Mutex::default(),
        })
    }

    pub(crate) fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The latest report: a fresh cached one, the one being made, or a new run. Answers by the
    /// run's deadline whatever the checks do, reporting the checks that have not finished then
    /// as timed out.
    pub(crate) async fn report(self: &Arc<Self>, app: AppData<'_>) -> Arc<Finished> {
        let run = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((finished, report)) = &state.last {
                if finished.elapsed() < self.config.cache_ttl {
                    return report.clone();
                }
            }
            match &state.in_flight {
                Some(run) => Arc::clone(run),
                None => {
                    let run = self.start(app);
                    state.in_flight = Some(Arc::clone(&run));
                    run
                }
            }
        };
        // This timer runs on the request's own worker, not on the threads the checks hold.
        let deadline = run.started + self.longest_timeout + REQUEST_GRACE;
        let mut finished = run.report.subscribe();
        let waited = tokio::time::timeout_at(deadline.into(), finished.wait_for(Option::is_some));
        if let Ok(Ok(report)) = waited.await {
            if let Some(report) = report.as_ref() {
                return Arc::clone(report);
            }
        }
        self.finish(&run)
    }

    /// Prepares every check here (taking what it needs from the request) and starts the run on
    /// the coordinator. The run records itself when done, whoever is still waiting.
    fn start(self: &Arc<Self>, app: AppData<'_>) -> Arc<Run> {
        runtime::keep_check_panics_quiet();
        let prepared: Vec<_> = self
            .checks
            .iter()
            .map(|check| (check.prepare)(&CheckContext::new(app, self.timeout_of(check))).0)
            .collect();
        let (report, _) = watch::channel(None);
        let run = Arc::new(Run {
            started: Instant::now(),
            results: Mutex::new(vec![None; self.checks.len()]),
            done: OnceLock::new(),
            report,
        });
        let runner = Arc::clone(self);
        let this_run = Arc::clone(&run);
        runtime::spawn_run(async move {
            // Whatever happens to this task, the run gets finished.
            let finish = FinishOnDrop(&runner, &this_run);
            let checks = prepared.into_iter().enumerate().map(|(i, prepared)| {
                let (runner, run) = (&runner, &this_run);
                async move {
                    let check = &runner.checks[i];
                    let started = Instant::now();
                    let executed =
                        runtime::execute(&check.threads, prepared, runner.timeout_of(check)).await;
                    let messages = runner.messages(check, executed);
                    run.results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(CheckResult {
                        name: check.name.to_string(),
                        messages,
                        duration: started.elapsed(),
                    });
                }
            });
            futures_util::future::join_all(checks).await;
            drop(finish);
        });
        run
    }

    /// Finishes `run` once: its report from the results in, every missing one as timed out;
    /// recorded as the latest report and no longer in flight.
    fn finish(&self, run: &Arc<Run>) -> Arc<Finished> {
        let mut made = false;
        let finished = run.done.get_or_init(|| {
            made = true;
            let results = run.results.lock().unwrap_or_else(|p| p.into_inner());
            let checks = self
                .checks
                .iter()
                .zip(results.iter())
                .map(|(check, result)| match result {
                    Some(result) => result.clone(),
                    None => CheckResult {
                        name: check.name.to_string(),
                        messages: self.messages(check, Executed::TimedOut { blocked: false }),
                        duration: run.started.elapsed(),
                    },
                })
                .collect();
            Arc::new(Finished {
                report: HeartbeatReport {
                    checks,
                    duration: run.started.elapsed(),
                },
                bodies: Default::default(),
            })
        });
        if made {
            log_run(&finished.report);
            // The runner's state first, the waiting requests second: a client that got its
            // answer and asks again must find this run finished, not still in flight.
            {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.last = Some((Instant::now(), Arc::clone(finished)));
                if state
                    .in_flight
                    .as_ref()
                    .is_some_and(|r| Arc::ptr_eq(r, run))
                {
                    state.in_flight = None;
                }
            }
            run.report.send_replace(Some(Arc::clone(finished)));
        }
        Arc::clone(finished)
    }

    fn timeout_of(&self, check: &Check) -> Duration {
        check.timeout.unwrap_or(self.config.check_timeout)
    }

    /// What a run of `check` reports, silenced ids dropped and every text redacted.
    fn messages(&self, check: &Check, executed: Executed) -> Vec<CheckMessage> {
        let timeout_ms = self.timeout_of(check).as_millis();
        let messages = match executed {
            Executed::Done(Outcome::Messages(messages)) => messages,
            Executed::Done(Outcome::Failed(text)) => {
                vec![CheckMessage::new(check.level, check.id.clone(), text)]
            }
            Executed::Panicked(text) => {
                tracing::error!(
                    target: "dockerflow::heartbeat",
                    check = %check.name,
                    location = %check.location,
                    panic = %redact::redact(&text),
                    "check panicked"
                );
                vec![CheckMessage::critical(ids::E012, "Check panicked")]
            }
            Executed::TimedOut { blocked } => {
                if blocked {
                    tracing::warn!(
                        target: "dockerflow::heartbeat",
                        check = %check.name,
                        location = %check.location,
                        timeout_ms = timeout_ms as u64,
                        "check timed out while blocking its thread: a plain fn check runs on a \
                         thread of its own, but an async fn must never make a blocking call"
                    );
                } else {
                    tracing::warn!(
                        target: "dockerflow::heartbeat",
                        check = %check.name,
                        timeout_ms = timeout_ms as u64,
                        "check timed out"
                    );
                }
                vec![CheckMessage::error(
                    ids::E011,
                    format!("Check timed out after {timeout_ms} ms"),
                )]
            }
            Executed::StillRunning(since) => {
                let since_ms = since.as_millis();
                tracing::warn!(
                    target: "dockerflow::heartbeat",
                    check = %check.name,
                    location = %check.location,
                    running_ms = since_ms as u64,
                    "an earlier run of this check still holds its thread; not starting another"
                );
                vec![CheckMessage::error(
                    ids::E011,
                    format!("Check still running from a run started {since_ms} ms ago"),
                )]
            }
        };
        let silenced = &self.config.silenced;
        messages
            .into_iter()
            .filter(|m| !silenced.iter().any(|id| id == m.id()))
            .map(|m| m.map_text(redact::redact))
            .collect()
    }
}

/// Finishes the run when the coordinator's task ends, by completing or by a panic in
/// dockerflow's own code (a run never finished would be awaited until every deadline).
struct FinishOnDrop<'a>(&'a Arc<Runner>, &'a Arc<Run>);

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        self.0.finish(self.1);
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
