//! The version file: found once, kept, looked at again at most once a second so that a file
//! replaced in place is picked up without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix_web::web::{self, Bytes};

/// How long a lookup is trusted before the file is looked at again.
const RECHECK: Duration = Duration::from_secs(1);

/// Where the file is looked for when no path is set.
const DEFAULT_PATHS: [&str; 2] = ["./version.json", "/app/version.json"];

/// What `/__version__` answers.
#[derive(Debug, Clone)]
pub(crate) enum VersionAnswer {
    /// The file's bytes, a JSON object, unchanged.
    Found(Bytes),
    /// No file.
    Missing,
    /// A file that cannot be read or is not a JSON object; the text says why.
    Broken(String),
}

pub(crate) struct VersionFile {
    configured: Option<PathBuf>,
    cache: Mutex<Option<Cached>>,
}

struct Cached {
    checked: Instant,
    /// The file found and its modification time and length, when there was one.
    stamp: Option<(PathBuf, Option<SystemTime>, u64)>,
    answer: VersionAnswer,
}

impl VersionFile {
    pub(crate) fn new(configured: Option<PathBuf>) -> Arc<Self> {
        Arc::new(VersionFile {
            configured,
            cache: Mutex::new(None),
        })
    }

    pub(crate) async fn answer(self: &Arc<Self>) -> VersionAnswer {
        if let Some(answer) = self.fresh() {
            return answer;
        }
        let this = Arc::clone(self);
        web::block(move || this.refresh())
            .await
            .unwrap_or_else(|_| {
                VersionAnswer::Broken("the version file could not be read".to_owned())
            })
    }

    fn fresh(&self) -> Option<VersionAnswer> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .as_ref()
            .filter(|c| c.checked.elapsed() < RECHECK)
            .map(|c| c.answer.clone())
    }

    /// Looks at the file (blocking): reads it again only when it changed.
    fn refresh(&self) -> VersionAnswer {
        let found = match &self.configured {
            Some(path) => std::fs::metadata(path)
                .ok()
                .map(|meta| (path.clone(), meta)),
            None => DEFAULT_PATHS.iter().find_map(|path| {
                let path = Path::new(path);
                std::fs::metadata(path)
                    .ok()
                    .map(|meta| (path.to_path_buf(), meta))
            }),
        };
        let stamp = found
            .as_ref()
            .map(|(path, meta)| (path.clone(), meta.modified().ok(), meta.len()));
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cached) = cache.as_mut() {
            // Same file, same length, same modification time (when the platform has one).
            let unchanged = cached.stamp == stamp && stamp.as_ref().is_none_or(|s| s.1.is_some());
            if unchanged {
                cached.checked = Instant::now();
                return cached.answer.clone();
            }
        }
        let answer = match &found {
            None => VersionAnswer::Missing,
            Some((path, _)) => read(path),
        };
        *cache = Some(Cached {
            checked: Instant::now(),
            stamp,
            answer: answer.clone(),
        });
        answer
    }
}

fn read(path: &Path) -> VersionAnswer {
    let shown = path.display();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            return VersionAnswer::Broken(format!("version file {shown} cannot be read: {err}"))
        }
    };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(_)) => VersionAnswer::Found(Bytes::from(bytes)),
        Ok(_) => VersionAnswer::Broken(format!("version file {shown} is not a JSON object")),
        Err(err) => VersionAnswer::Broken(format!("version file {shown} is not valid JSON: {err}")),
    }
}
