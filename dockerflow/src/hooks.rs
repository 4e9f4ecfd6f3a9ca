//! The heartbeat hooks: `#[dockerflow::on_heartbeat_passed]` and
//! `#[dockerflow::on_heartbeat_failed]`, Django's `heartbeat_passed` and `heartbeat_failed`
//! signals. Exactly one kind fires for each heartbeat response.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::check::Level;
use crate::registry::{self, HookKind, HookRecord};
use crate::report::HeartbeatReport;

/// What a hook can take: the highest [`Level`], or the whole [`HeartbeatReport`] (with each
/// check's messages and duration).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a heartbeat hook argument",
    label = "hooks take `dockerflow::Level` or `&dockerflow::HeartbeatReport`"
)]
pub trait FromReport<'a> {
    /// Takes the value from the report.
    fn from_report(report: &'a HeartbeatReport) -> Self;
}

impl FromReport<'_> for Level {
    fn from_report(report: &HeartbeatReport) -> Self {
        report.level()
    }
}

impl<'a> FromReport<'a> for &'a HeartbeatReport {
    fn from_report(report: &'a HeartbeatReport) -> Self {
        report
    }
}

/// The hooks of both kinds, collected once.
pub(crate) struct Hooks {
    passed: Vec<&'static HookRecord>,
    failed: Vec<&'static HookRecord>,
}

impl Hooks {
    pub(crate) fn collect() -> Self {
        Hooks {
            passed: registry::hooks(HookKind::Passed),
            failed: registry::hooks(HookKind::Failed),
        }
    }

    /// Runs the `failed` hooks when `failed`, else the `passed` ones. A hook that panics is
    /// logged; the others still run and the response is unchanged.
    pub(crate) fn fire(&self, report: &HeartbeatReport, failed: bool) {
        let hooks = if failed { &self.failed } else { &self.passed };
        for hook in hooks {
            if catch_unwind(AssertUnwindSafe(|| (hook.call)(report))).is_err() {
                tracing::error!(
                    target: "dockerflow::hooks",
                    hook = hook.name,
                    location = hook.location,
                    "heartbeat hook panicked"
                );
            }
        }
    }
}
