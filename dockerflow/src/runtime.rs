//! Where check code runs, and what is known about it while it does.
//!
//! Three kinds of thread, so that no check can take the others, or the server, down with it:
//!
//! - **One coordinator thread** (`dockerflow-heartbeat`) owns the runs: it starts each check,
//!   enforces its timeout and assembles the report. No check code ever runs on it, so its timers
//!   fire whatever the checks do.
//! - **One thread per `async fn` check** (`dockerflow-check`), made on the check's first run and
//!   kept for the life of the process: the check's futures are polled there, and what they open
//!   (a pool's connections, which the app's handlers then use) stays driven by it. An `async fn`
//!   that blocks its thread (a blocking client called by mistake, `std::thread::sleep`) holds its
//!   own thread only.
//! - **A blocking pool** for plain `fn` checks: each runs on a thread of its own while it runs.
//!
//! A check whose earlier run still holds a thread (a blocking check that has not returned, an
//! async check stuck inside a poll) is not started again until it lets go. So hung checks hold at
//! most one thread each, however many heartbeats come; with `n` checks, at most `n` threads.
//!
//! Panics in check code are caught where they happen and reported redacted, whatever panic hook
//! is installed. The hook itself would print the raw message (which can hold a connection
//! string) to stderr, or send it to an error reporter, so the hook the process had when the
//! first [`Dockerflow`](crate::Dockerflow) was built is wrapped to stay quiet for panics inside
//! check code, and only for those. A hook installed later would take the wrapper's place: each
//! run looks first, and wraps the new hook too (with a warning); a hook swapped in while a run is
//! under way is caught by the panic it missed, and wrapped then.

use std::any::Any;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::runtime::{Handle, Runtime};

use crate::check::{Outcome, PreparedKind};

/// What happened to one run of one check.
pub(crate) enum Executed {
    /// It returned.
    Done(Outcome),
    /// It panicked; the panic's text, not yet redacted.
    Panicked(String),
    /// It did not finish in time. `blocked`: it was holding its thread when time ran out (a
    /// blocking check still in its function, or an `async fn` stuck inside a poll).
    TimedOut { blocked: bool },
    /// Not started: a run that started this long ago still holds a thread.
    StillRunning(Duration),
}

/// What the runner keeps about one check across runs. Shared by the clones of a
/// [`Check`](crate::Check).
pub(crate) struct CheckThreads {
    /// When the run holding a thread right now started; `None` when no thread is held.
    busy_since: Mutex<Option<Instant>>,
    /// The thread the check's futures are polled on, shared by every check of the process with
    /// the same name and place, and kept for the life of the process: what a run opens there
    /// (a pool's connections, say) keeps working for the app, however often a `Dockerflow` is
    /// built and dropped.
    lane: Arc<OnceLock<Handle>>,
}

impl CheckThreads {
    /// The threads of the check named `name`, defined at `location`.
    pub(crate) fn of(name: &str, location: &str) -> Self {
        type Lanes = BTreeMap<(String, String), Arc<OnceLock<Handle>>>;
        static LANES: Mutex<Lanes> = Mutex::new(BTreeMap::new());
        let mut lanes = LANES.lock().unwrap_or_else(|p| p.into_inner());
        let lane = lanes
            .entry((name.to_owned(), location.to_owned()))
            .or_default();
        CheckThreads {
            busy_since: Mutex::new(None),
            lane: Arc::clone(lane),
        }
    }

    fn busy_since(&self) -> Option<Instant> {
        *self.busy_since.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_busy(&self, since: Option<Instant>) {
        *self.busy_since.lock().unwrap_or_else(|p| p.into_inner()) = since;
    }

    /// The check's thread: a runtime kept in `block_on`, so that the I/O registered with it is
    /// always driven; made on the check's first run.
    fn lane(&self) -> &Handle {
        self.lane.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("dockerflow: cannot start a check thread");
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name(CHECK_THREAD.to_owned())
                .spawn(move || runtime.block_on(std::future::pending::<()>()))
                .expect("dockerflow: cannot start a check thread");
            handle
        })
    }
}

/// Runs one check: not at all when an earlier run still holds a thread, else on its thread or
/// the blocking pool, under `timeout`. Call it on the coordinator ([`spawn_run`]).
pub(crate) async fn execute(
    threads: &Arc<CheckThreads>,
    prepared: PreparedKind,
    timeout: Duration,
) -> Executed {
    let prepared = match prepared {
        PreparedKind::Failed(reason) => return Executed::Done(Outcome::Failed(reason)),
        prepared => prepared,
    };
    if let Some(since) = threads.busy_since() {
        return Executed::StillRunning(since.elapsed());
    }
    let started = Instant::now();
    let mut handle = match prepared {
        PreparedKind::Future(future) => threads.lane().spawn(Guarded {
            future,
            threads: Arc::clone(threads),
            started,
        }),
        PreparedKind::Blocking(f) => {
            let threads = Arc::clone(threads);
            // Marked busy before it is queued, so a run that never got a thread counts too.
            threads.set_busy(Some(started));
            coordinator().spawn_blocking(move || {
                let result = in_check(f);
                threads.set_busy(None);
                result
            })
        }
        PreparedKind::Failed(_) => unreachable!("returned above"),
    };
    match tokio::time::timeout(timeout, &mut handle).await {
        Ok(Ok(Ok(outcome))) => Executed::Done(outcome),
        Ok(Ok(Err(panic))) => Executed::Panicked(panic),
        Ok(Err(join)) => Executed::Panicked(match join.try_into_panic() {
            Ok(panic) => crate::logging::panic_text(&*panic).to_owned(),
            Err(_) => "the check's task was cancelled".to_owned(),
        }),
        Err(_elapsed) => {
            // An async check that is only waiting is dropped on its thread; one stuck inside a
            // poll, and a blocking check, keep their thread until they return.
            handle.abort();
            Executed::TimedOut {
                blocked: threads.busy_since().is_some(),
            }
        }
    }
}

/// Starts a run on the coordinator.
pub(crate) fn spawn_run(run: impl Future<Output = ()> + Send + 'static) {
    coordinator().spawn(run);
}

/// An async check's future, polled on its thread: marks the check busy while inside a poll and
/// catches a panic there.
struct Guarded {
    future: BoxFuture<'static, Outcome>,
    threads: Arc<CheckThreads>,
    started: Instant,
}

impl Future for Guarded {
    type Output = Result<Outcome, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.threads.set_busy(Some(this.started));
        let polled = in_check(|| this.future.as_mut().poll(cx));
        this.threads.set_busy(None);
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(outcome)) => Poll::Ready(Ok(outcome)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

thread_local! {
    /// Inside check code on this thread.
    static IN_CHECK: Cell<bool> = const { Cell::new(false) };
    /// The wrapper hook saw (and silenced) the panic this thread is unwinding from.
    static HOOK_SAW_PANIC: Cell<bool> = const { Cell::new(false) };
}

/// Calls check code, catching a panic: its text, with the wrapper hook put back in front when a
/// hook installed later had taken its place.
fn in_check<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    IN_CHECK.set(true);
    HOOK_SAW_PANIC.set(false);
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_CHECK.set(false);
    result.map_err(|panic: Box<dyn Any + Send>| {
        if !HOOK_SAW_PANIC.get() {
            tracing::warn!(
                target: "dockerflow::heartbeat",
                "a panic hook installed while checks ran replaced dockerflow's wrapper, so a \
                 check's panic message reached that hook unredacted; dockerflow wraps the new \
                 hook now. Install panic hooks (Sentry's, say) before building Dockerflow"
            );
            wrap_panic_hook();
        }
        crate::logging::panic_text(&*panic).to_owned()
    })
}

/// Wraps the process's panic hook once, at start-up (see the module docs).
pub(crate) fn quiet_check_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(wrap_panic_hook);
}

/// Before a run: when a hook installed since has taken the wrapper's place, wraps that one too,
/// so that no check panic of the run reaches it.
pub(crate) fn keep_check_panics_quiet() {
    let current = std::panic::take_hook();
    if hook_address(&current) == WRAPPER.load(Ordering::Acquire) {
        std::panic::set_hook(current);
    } else {
        tracing::warn!(
            target: "dockerflow::heartbeat",
            "a panic hook was installed after dockerflow started; dockerflow wraps it so that \
             check panics stay out of it (they are logged redacted). Install panic hooks \
             (Sentry's, say) before building Dockerflow"
        );
        install_wrapper(current);
    }
}

fn wrap_panic_hook() {
    install_wrapper(std::panic::take_hook());
}

type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync + 'static>;

/// The address of the wrapper installed last, to tell it from a hook installed after it.
static WRAPPER: AtomicUsize = AtomicUsize::new(0);

fn install_wrapper(previous: Hook) {
    let wrapper: Hook = Box::new(move |info| {
        if IN_CHECK.get() {
            HOOK_SAW_PANIC.set(true);
        } else {
            previous(info);
        }
    });
    WRAPPER.store(hook_address(&wrapper), Ordering::Release);
    std::panic::set_hook(wrapper);
}

fn hook_address(hook: &Hook) -> usize {
    std::ptr::from_ref(&**hook).cast::<()>() as usize
}

const CHECK_THREAD: &str = "dockerflow-check";

/// The coordinator: one worker that never runs check code, and the blocking pool.
fn coordinator() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            // Each check holds at most one thread; this is only a backstop.
            .max_blocking_threads(512)
            .thread_name("dockerflow-heartbeat")
            .enable_all()
            .build()
            .expect("dockerflow: cannot start the heartbeat runtime")
    })
}
