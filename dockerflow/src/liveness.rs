//! Liveness conditions: in-process signs that this process is wedged and should be restarted,
//! which `/__lbheartbeat__` answers `500` for (naming the condition) while one holds.
//!
//! They are opt-in and set in code with [`Builder::liveness`](crate::Builder::liveness). A
//! condition is asked on every `/__lbheartbeat__` request, so it must be constant-time and
//! in-process: read a counter, compare a time; never I/O, never waiting. With none set,
//! `/__lbheartbeat__` does no more work than before.
//!
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//! use dockerflow::{Dockerflow, LivenessCondition};
//!
//! let stuck = Arc::new(AtomicBool::new(false));
//! let flag = Arc::clone(&stuck);
//! let dockerflow = Dockerflow::builder()
//!     .liveness(LivenessCondition::new("job_queue_stuck", move || flag.load(Ordering::Relaxed)))
//!     .build()?;
//! # Ok::<(), dockerflow::StartupError>(())
//! ```
//!
//! Liveness is not readiness: a database that is down makes `/__heartbeat__` fail, and the
//! process should be taken out of rotation, not restarted (a restart does not bring the database
//! back, and restarting every pod at once makes the outage worse). A liveness condition is for a
//! state that only a restart clears, like a pool whose connections all leaked.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// A named in-process condition under which `/__lbheartbeat__` answers `500`.
#[derive(Clone)]
pub struct LivenessCondition {
    name: Cow<'static, str>,
    holds: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl LivenessCondition {
    /// A condition named `name` (shown in the `500` body and the log line) that holds when
    /// `holds` returns true. `holds` runs on every `/__lbheartbeat__` request, on the server's
    /// worker: it must be constant-time, in memory, and never block.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        holds: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        LivenessCondition {
            name: name.into(),
            holds: Arc::new(holds),
        }
    }

    /// The condition's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the condition holds now.
    pub fn holds(&self) -> bool {
        (self.holds)()
    }
}

impl fmt::Debug for LivenessCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LivenessCondition")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "diesel-checks")]
pub use self::pool::r2d2_pool_exhausted;

#[cfg(feature = "diesel-checks")]
mod pool {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use super::LivenessCondition;

    /// Holds when the r2d2 pool has had every connection in use (none idle, as many as its
    /// maximum) at every look for longer than `limit`: Mozilla syncstorage's "deadman" for a
    /// process whose connections leaked or hang, which only a restart clears.
    ///
    /// The condition is named `database_pool_exhausted`. It reads the pool's counters (a short
    /// lock, no I/O) each time `/__lbheartbeat__` asks, and counts the time from the first look
    /// that found the pool exhausted; a look that finds a free connection starts it over. r2d2
    /// does not tell how many callers wait for a connection, so "exhausted" means every
    /// connection is checked out: pick `limit` well above the longest a request holds one.
    ///
    /// ```no_run
    /// # #[cfg(feature = "postgres")] {
    /// use std::time::Duration;
    /// use diesel::r2d2::{ConnectionManager, Pool};
    /// use diesel::PgConnection;
    /// use dockerflow::{liveness, Dockerflow};
    ///
    /// let pool = Pool::builder().build_unchecked(ConnectionManager::<PgConnection>::new("postgres://db/app"));
    /// let dockerflow = Dockerflow::builder()
    ///     .liveness(liveness::r2d2_pool_exhausted(pool.clone(), Duration::from_secs(60)))
    ///     .build()?;
    /// # }
    /// # Ok::<(), dockerflow::StartupError>(())
    /// ```
    pub fn r2d2_pool_exhausted<M: r2d2::ManageConnection>(
        pool: r2d2::Pool<M>,
        limit: Duration,
    ) -> LivenessCondition {
        let since: Mutex<Option<Instant>> = Mutex::new(None);
        LivenessCondition::new("database_pool_exhausted", move || {
            let state = pool.state();
            let exhausted = state.idle_connections == 0 && state.connections >= pool.max_size();
            let mut since = since.lock().unwrap_or_else(|p| p.into_inner());
            if !exhausted {
                *since = None;
                return false;
            }
            since.get_or_insert_with(Instant::now).elapsed() > limit
        })
    }
}
