//! The checks the bench's servers run: ones that take a known time, ones that hang, and the
//! built-in database, migrations and Redis checks on the real backends.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use diesel::PgConnection;
use dockerflow::{Check, CheckContext, Prepared};

use crate::backends::MIGRATIONS;

/// `n` async checks named `sleep_<i>` that each sleep `delay` and pass.
pub(crate) fn sleeping_async(n: usize, delay: Duration) -> Vec<Check> {
    (0..n)
        .map(|i| {
            Check::new(format!("sleep_{i:02}"), move |_ctx: &CheckContext<'_>| {
                Prepared::future(async move {
                    tokio::time::sleep(delay).await;
                    Ok::<(), String>(())
                })
            })
        })
        .collect()
}

/// `n` blocking checks named `block_<i>` that each hold a thread for `delay` and pass.
pub(crate) fn sleeping_blocking(n: usize, delay: Duration) -> Vec<Check> {
    (0..n)
        .map(|i| {
            Check::new(format!("block_{i:02}"), move |_ctx: &CheckContext<'_>| {
                Prepared::blocking(move || {
                    std::thread::sleep(delay);
                    Ok::<(), String>(())
                })
            })
        })
        .collect()
}

/// An async check that never answers; the runner gives up on it at the check timeout.
pub(crate) fn hanging_async(name: String) -> Check {
    Check::new(name, |_ctx: &CheckContext<'_>| {
        Prepared::future(std::future::pending::<Result<(), String>>())
    })
}

/// Holds blocking checks until it is opened (or dropped), and never longer than its bound.
#[derive(Clone)]
pub(crate) struct Gate {
    state: Arc<(Mutex<bool>, Condvar)>,
    bound: Duration,
}

impl Gate {
    pub(crate) fn closed(bound: Duration) -> Self {
        Gate {
            state: Arc::new((Mutex::new(false), Condvar::new())),
            bound,
        }
    }

    pub(crate) fn open(&self) {
        let (open, changed) = &*self.state;
        *open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        changed.notify_all();
    }

    fn wait(&self) {
        let (open, changed) = &*self.state;
        let deadline = Instant::now() + self.bound;
        let mut is_open = open.lock().unwrap_or_else(|p| p.into_inner());
        while !*is_open {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            is_open = changed
                .wait_timeout(is_open, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A blocking check that holds its thread until `gate` opens: a hung driver call.
pub(crate) fn hanging_blocking(name: String, gate: &Gate) -> Check {
    let gate = gate.clone();
    Check::new(name, move |_ctx: &CheckContext<'_>| {
        let gate = gate.clone();
        Prepared::blocking(move || {
            gate.wait();
            Ok::<(), String>(())
        })
    })
}

/// The built-in database, migrations and Redis checks, as a service adds them. They take the
/// `web::Data<PgPool>` and the `web::Data<redis::Client>` from the app data.
pub(crate) fn backend_checks() -> Vec<Check> {
    vec![
        dockerflow::checks::database_connected::<PgConnection>(),
        dockerflow::checks::migrations_applied::<PgConnection>(MIGRATIONS),
        dockerflow::checks::redis_connected(),
    ]
}
