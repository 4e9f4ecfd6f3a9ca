//! [`HeartbeatReport`]: what one run of the checks found, and the heartbeat body made from it:
//! a pure function from results to payload, like python-dockerflow's `_build_results_payload`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::check::{CheckMessage, Level};

/// What one check reported in one run.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub(crate) name: String,
    pub(crate) messages: Vec<CheckMessage>,
    pub(crate) duration: Duration,
}

impl CheckResult {
    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The highest level among the messages; `ok` when there are none.
    pub fn level(&self) -> Level {
        self.messages
            .iter()
            .map(CheckMessage::level)
            .max()
            .unwrap_or(Level::Ok)
    }

    /// The messages, silenced ids already dropped.
    pub fn messages(&self) -> &[CheckMessage] {
        &self.messages
    }

    /// How long the check ran (up to its timeout).
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Messages keyed by id; the texts of messages sharing an id are joined with `; `.
    fn messages_by_id(&self) -> BTreeMap<&str, String> {
        let mut by_id: BTreeMap<&str, String> = BTreeMap::new();
        for message in &self.messages {
            by_id
                .entry(message.id())
                .and_modify(|text| {
                    text.push_str("; ");
                    text.push_str(message.msg());
                })
                .or_insert_with(|| message.msg().to_owned());
        }
        by_id
    }
}

/// One run of every check: what `/__heartbeat__` answers with and the hooks receive.
#[derive(Debug, Clone)]
pub struct HeartbeatReport {
    pub(crate) checks: Vec<CheckResult>,
    pub(crate) duration: Duration,
}

impl HeartbeatReport {
    /// The highest level of all checks; `ok` when there are none.
    pub fn level(&self) -> Level {
        self.checks
            .iter()
            .map(CheckResult::level)
            .max()
            .unwrap_or(Level::Ok)
    }

    /// Every check that ran, ordered by name.
    pub fn checks(&self) -> &[CheckResult] {
        &self.checks
    }

    /// The result of the check named `name`.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// How long the whole run took.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The heartbeat body: `{"status": ...}`, plus `checks` and `details` when `details` is true.
    pub fn to_json(&self, details: bool) -> serde_json::Value {
        serde_json::to_value(self.body(details, false)).unwrap_or_default()
    }

    /// The heartbeat body; `verbose` (with `details` only) puts every check in `details`, `ok`
    /// ones too.
    pub(crate) fn body(&self, details: bool, verbose: bool) -> Body<'_> {
        let status = self.level();
        if !details {
            return Body {
                status,
                checks: None,
                details: None,
            };
        }
        let mut checks = BTreeMap::new();
        let mut detail = BTreeMap::new();
        for check in &self.checks {
            let level = check.level();
            checks.insert(check.name.as_str(), level);
            if level > Level::Ok || verbose {
                detail.insert(
                    check.name.as_str(),
                    Detail {
                        status: level,
                        level: level.value(),
                        messages: check.messages_by_id(),
                        duration_ms: u64::try_from(check.duration.as_millis()).unwrap_or(u64::MAX),
                    },
                );
            }
        }
        Body {
            status,
            checks: Some(checks),
            details: Some(detail),
        }
    }

    /// The same run, with only the checks `keep` accepts: what a request that chooses checks
    /// (`?check=`, `?exclude=`) is answered from.
    pub(crate) fn select(&self, keep: impl Fn(&str) -> bool) -> HeartbeatReport {
        HeartbeatReport {
            checks: self
                .checks
                .iter()
                .filter(|check| keep(&check.name))
                .cloned()
                .collect(),
            duration: self.duration,
        }
    }
}

/// The heartbeat body.
#[derive(Debug, Serialize)]
pub(crate) struct Body<'a> {
    status: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<BTreeMap<&'a str, Level>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<BTreeMap<&'a str, Detail<'a>>>,
}

/// One check in `details`.
#[derive(Debug, Serialize)]
struct Detail<'a> {
    status: Level,
    level: u8,
    messages: BTreeMap<&'a str, String>,
    duration_ms: u64,
}
