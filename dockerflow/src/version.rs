//! The version file: found once, kept, looked at again at most once a second so that a file
//! replaced in place is picked up without a restart.
//!
//! Whatever the path points at, an answer comes within a second and costs at most 1 MiB: only a
//! regular file is read, never more than [`MAX_LEN`] of it, and only one read is under way at a
//! time (a request that comes while one is stuck gets the last answer, or a 500).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix_web::web::{self, Bytes};

/// How long a lookup is trusted before the file is looked at again.
const RECHECK: Duration = Duration::from_secs(1);

/// The most of a version file that is read: a larger one is an error.
const MAX_LEN: u64 = 1 << 20;

/// How long a request waits for the file to be read.
const READ_TIMEOUT: Duration = Duration::from_secs(1);

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
    /// A read is under way on the blocking pool.
    reading: AtomicBool,
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
            reading: AtomicBool::new(false),
        })
    }

    pub(crate) async fn answer(self: &Arc<Self>) -> VersionAnswer {
        if let Some(answer) = self.fresh() {
            return answer;
        }
        if self.reading.swap(true, Ordering::AcqRel) {
            // A read is stuck (a path on a hung file system, say): don't start another.
            return self.last().unwrap_or_else(|| {
                VersionAnswer::Broken("the version file is still being read".to_owned())
            });
        }
        let this = Arc::clone(self);
        let read = web::block(move || {
            let answer = this.refresh();
            this.reading.store(false, Ordering::Release);
            answer
        });
        match tokio::time::timeout(READ_TIMEOUT, read).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => {
                self.reading.store(false, Ordering::Release);
                VersionAnswer::Broken("the version file could not be read".to_owned())
            }
            Err(_) => VersionAnswer::Broken(format!(
                "the version file could not be read within {} s",
                READ_TIMEOUT.as_secs()
            )),
        }
    }

    /// The last answer, however old.
    fn last(&self) -> Option<VersionAnswer> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.as_ref().map(|c| c.answer.clone())
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
            Some((path, meta)) => read(path, meta),
        };
        *cache = Some(Cached {
            checked: Instant::now(),
            stamp,
            answer: answer.clone(),
        });
        answer
    }
}

fn read(path: &Path, meta: &std::fs::Metadata) -> VersionAnswer {
    let shown = path.display();
    if !meta.is_file() {
        return VersionAnswer::Broken(format!("version file {shown} is not a regular file"));
    }
    let bytes = match read_bounded(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return VersionAnswer::Broken(format!(
                "version file {shown} is larger than {} MiB",
                MAX_LEN >> 20
            ))
        }
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

/// At most [`MAX_LEN`] bytes of the regular file at `path`; `None` when it holds more. Opened
/// without blocking, so a file swapped for a FIFO after it was looked at cannot hang the read.
fn read_bounded(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_LEN + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= MAX_LEN).then_some(bytes))
}
