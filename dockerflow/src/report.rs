//! [`HeartbeatReport`]: what one run of the checks found, and its JSON.

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::web::Bytes;

use serde_json::{json, Map, Value};

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
    fn messages_json(&self) -> Map<String, Value> {
        let mut by_id: Map<String, Value> = Map::new();
        for message in &self.messages {
            match by_id.get_mut(message.id()) {
                Some(Value::String(text)) => {
                    text.push_str("; ");
                    text.push_str(message.msg());
                }
                _ => {
                    by_id.insert(
                        message.id().to_owned(),
                        Value::String(message.msg().to_owned()),
                    );
                }
            }
        }
        by_id
    }
}

/// One run of every check: what `/__heartbeat__` answers with and the hooks receive.
#[derive(Debug, Clone)]
pub struct HeartbeatReport {
    pub(crate) checks: Vec<CheckResult>,
    pub(crate) duration: Duration,
    /// The two bodies, rendered once: a reused report answers many requests.
    pub(crate) bodies: [OnceLock<Bytes>; 2],
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

    /// [`to_json`](Self::to_json) as bytes, rendered once per report.
    pub(crate) fn body(&self, details: bool) -> Bytes {
        self.bodies[usize::from(details)]
            .get_or_init(|| Bytes::from(self.to_json(details).to_string()))
            .clone()
    }

    /// The heartbeat body: `{"status": ...}`, plus `checks` and `details` when `details` is true.
    pub fn to_json(&self, details: bool) -> Value {
        self.render(details, false)
    }

    /// The heartbeat body; `verbose` (with `details` only) puts every check in `details`, `ok`
    /// ones too.
    pub(crate) fn render(&self, details: bool, verbose: bool) -> Value {
        let status = self.level().as_str();
        if !details {
            return json!({ "status": status });
        }
        let mut checks = Map::new();
        let mut detail = Map::new();
        for check in &self.checks {
            let level = check.level();
            checks.insert(check.name.clone(), Value::from(level.as_str()));
            if level > Level::Ok || verbose {
                detail.insert(
                    check.name.clone(),
                    json!({
                        "status": level.as_str(),
                        "level": level.value(),
                        "messages": check.messages_json(),
                        "duration_ms": u64::try_from(check.duration.as_millis()).unwrap_or(u64::MAX),
                    }),
                );
            }
        }
        json!({ "status": status, "checks": checks, "details": detail })
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
            bodies: Default::default(),
        }
    }
}
