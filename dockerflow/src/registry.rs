//! Link-time registration: what `#[dockerflow::check]` and the heartbeat hook attributes
//! submit, and the ordered, validated list a [`Dockerflow`](crate::Dockerflow) runs.
//!
//! `inventory` collects the records of every crate linked into the binary. Two limits follow,
//! and the crate docs repeat them where users meet them: a crate that nothing references is not
//! linked, so its checks are not there; link order means nothing, so the list is ordered by name.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::check::{Check, CheckContext, Level, Prepared};
use crate::error::StartupError;
use crate::report::HeartbeatReport;
use crate::runtime::CheckThreads;

/// What `#[dockerflow::check]` registers.
#[doc(hidden)]
pub struct CheckRecord {
    pub name: &'static str,
    pub id: &'static str,
    pub level: Level,
    pub timeout_ms: Option<u64>,
    pub location: &'static str,
    pub prepare: fn(&CheckContext<'_>) -> Prepared,
}

inventory::collect!(CheckRecord);

/// Which hooks a [`HookRecord`] belongs to.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Passed,
    Failed,
}

/// What `#[dockerflow::on_heartbeat_passed]` and `#[dockerflow::on_heartbeat_failed]` register.
#[doc(hidden)]
pub struct HookRecord {
    pub kind: HookKind,
    pub name: &'static str,
    pub location: &'static str,
    pub call: fn(&HeartbeatReport),
}

inventory::collect!(HookRecord);

impl CheckRecord {
    fn to_check(&self) -> Check {
        Check {
            name: Cow::Borrowed(self.name),
            id: Cow::Borrowed(self.id),
            level: self.level,
            timeout: self.timeout_ms.map(Duration::from_millis),
            location: Cow::Borrowed(self.location),
            prepare: Arc::new(self.prepare),
            threads: Arc::new(CheckThreads::of(self.name, self.location)),
        }
    }
}

/// The checks to run: the registered ones plus `extra`, narrowed to `only` when given,
/// ordered by name. Two checks with one name are an error naming both places.
pub(crate) fn checks(
    extra: Vec<Check>,
    only: Option<&[String]>,
) -> Result<Vec<Check>, StartupError> {
    let mut all: Vec<Check> = inventory::iter::<CheckRecord>
        .into_iter()
        .map(CheckRecord::to_check)
        .chain(extra)
        .collect();
    all.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.location.cmp(&b.location))
    });
    if let Some(pair) = all.windows(2).find(|pair| pair[0].name == pair[1].name) {
        return Err(StartupError::DuplicateCheck {
            name: pair[0].name.to_string(),
            first: pair[0].location.to_string(),
            second: pair[1].location.to_string(),
        });
    }
    if let Some(only) = only {
        let known: BTreeMap<&str, ()> = all.iter().map(|c| (c.name(), ())).collect();
        if let Some(unknown) = only.iter().find(|name| !known.contains_key(name.as_str())) {
            return Err(StartupError::UnknownCheck {
                name: unknown.clone(),
                known: all
                    .iter()
                    .map(|c| c.name().to_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        all.retain(|c| only.iter().any(|name| name == c.name()));
    }
    Ok(all)
}

/// The hooks of one kind, ordered by name.
pub(crate) fn hooks(kind: HookKind) -> Vec<&'static HookRecord> {
    let mut hooks: Vec<&'static HookRecord> = inventory::iter::<HookRecord>
        .into_iter()
        .filter(|record| record.kind == kind)
        .collect();
    hooks.sort_by(|a, b| a.name.cmp(b.name).then_with(|| a.location.cmp(b.location)));
    hooks
}
