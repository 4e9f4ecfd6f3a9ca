//! The version file: found once, kept, looked at again at most once a second so that a file
//! replaced in place is picked up without a restart.
//!
//! Whatever the path points at, an answer comes within a second and costs at most 1 MiB: only a
//! regular file is read, never more than [`MAX_LEN`] of it, and only one read is under way at a
//! time (a request that comes while one is stuck gets the last answer, or a 500).

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Tells this file's answers from another's in a worker's copy ([`LOCAL`]).
    id: u64,
    configured: Option<PathBuf>,
    /// The version compiled in, served when no file exists.
    compiled: Option<Bytes>,
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

/// A worker's copy of the last answer of one version file: workers answering side by side
/// then share no lock and no reference count (each a cache line both cores would pull back
/// and forth), and a file is still looked at again once a second.
struct Local {
    id: u64,
    checked: Instant,
    answer: VersionAnswer,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

impl VersionFile {
    pub(crate) fn new(
        configured: Option<PathBuf>,
        compiled: Option<&CompiledVersion>,
    ) -> Arc<Self> {
        static IDS: AtomicU64 = AtomicU64::new(0);
        Arc::new(VersionFile {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            configured,
            compiled: compiled.map(|v| Bytes::from(v.to_json().to_string())),
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

    /// The answer of the last look, unless it is older than [`RECHECK`]: this worker's copy
    /// when it has one, else the shared one (then copied for this worker).
    pub(crate) fn fresh(&self) -> Option<VersionAnswer> {
        let local = LOCAL.with(|local| {
            local
                .borrow()
                .as_ref()
                .filter(|l| l.id == self.id && l.checked.elapsed() < RECHECK)
                .map(|l| l.answer.clone())
        });
        if local.is_some() {
            return local;
        }
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let cached = cache.as_ref().filter(|c| c.checked.elapsed() < RECHECK)?;
        // The worker's own bytes: their reference count is not shared with other workers.
        let answer = match &cached.answer {
            VersionAnswer::Found(bytes) => VersionAnswer::Found(Bytes::copy_from_slice(bytes)),
            other => other.clone(),
        };
        LOCAL.with(|local| {
            *local.borrow_mut() = Some(Local {
                id: self.id,
                checked: cached.checked,
                answer: answer.clone(),
            });
        });
        Some(answer)
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
            None => match &self.compiled {
                Some(bytes) => VersionAnswer::Found(bytes.clone()),
                None => VersionAnswer::Missing,
            },
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

/// A version object embedded at build time, served by `/__version__` when no version file
/// exists (a file, when there is one, always wins). Make it with [`compiled_version!`], which
/// reads the app's own crate version and the build's environment:
///
/// ```
/// let dockerflow = dockerflow::Dockerflow::builder()
///     .compiled_version(dockerflow::compiled_version!())
///     .build()?;
/// # Ok::<(), dockerflow::StartupError>(())
/// ```
///
/// Its JSON has the four fields of a Dockerflow `version.json`, each a string, empty when
/// unknown: `{"source": …, "version": …, "commit": …, "build": …}`.
///
/// [`compiled_version!`]: crate::compiled_version
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompiledVersion {
    source: String,
    version: String,
    commit: String,
    build: String,
}

impl CompiledVersion {
    /// A version with only its human version set.
    pub fn new(version: impl Into<String>) -> Self {
        CompiledVersion {
            version: version.into(),
            ..Self::default()
        }
    }

    /// The repository URL.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// The commit hash.
    pub fn commit(mut self, commit: impl Into<String>) -> Self {
        self.commit = commit.into();
        self
    }

    /// The CI build URL.
    pub fn build(mut self, build: impl Into<String>) -> Self {
        self.build = build.into();
        self
    }

    /// The version object, as `/__version__` serves it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "source": self.source,
            "version": self.version,
            "commit": self.commit,
            "build": self.build,
        })
    }

    #[doc(hidden)]
    pub fn __from_build(
        version: &str,
        repository: &str,
        sources: &[Option<&str>],
        commits: &[Option<&str>],
        builds: &[Option<&str>],
        github: [Option<&str>; 3],
    ) -> Self {
        let first = |values: &[Option<&str>]| {
            values
                .iter()
                .flatten()
                .map(|v| v.trim())
                .find(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let [server, repo, run] = github;
        let github_repo = server.zip(repo).map(|(s, r)| format!("{s}/{r}"));
        CompiledVersion {
            source: first(sources)
                .or_else(|| (!repository.is_empty()).then(|| repository.to_owned()))
                .or_else(|| github_repo.clone())
                .unwrap_or_default(),
            version: version.to_owned(),
            commit: first(commits).unwrap_or_default(),
            build: first(builds)
                .or_else(|| {
                    github_repo
                        .zip(run)
                        .map(|(repo, run)| format!("{repo}/actions/runs/{run}"))
                })
                .unwrap_or_default(),
        }
    }
}

/// The app's [`CompiledVersion`], read at build time: its crate version (`CARGO_PKG_VERSION`),
/// and from the build's environment when present, the repository (`DOCKERFLOW_SOURCE`, else the
/// crate's `repository`, else GitHub Actions'), the commit (`DOCKERFLOW_COMMIT`, `GIT_COMMIT`,
/// `GITHUB_SHA`, `CI_COMMIT_SHA`, `CIRCLE_SHA1`) and the build URL (`DOCKERFLOW_BUILD_URL`,
/// `BUILD_URL`, `CIRCLE_BUILD_URL`, `CI_JOB_URL`, else the GitHub Actions run). Cargo rebuilds
/// when one of them changes.
#[macro_export]
macro_rules! compiled_version {
    () => {
        $crate::CompiledVersion::__from_build(
            ::core::env!("CARGO_PKG_VERSION"),
            ::core::env!("CARGO_PKG_REPOSITORY"),
            &[::core::option_env!("DOCKERFLOW_SOURCE")],
            &[
                ::core::option_env!("DOCKERFLOW_COMMIT"),
                ::core::option_env!("GIT_COMMIT"),
                ::core::option_env!("GITHUB_SHA"),
                ::core::option_env!("CI_COMMIT_SHA"),
                ::core::option_env!("CIRCLE_SHA1"),
            ],
            &[
                ::core::option_env!("DOCKERFLOW_BUILD_URL"),
                ::core::option_env!("BUILD_URL"),
                ::core::option_env!("CIRCLE_BUILD_URL"),
                ::core::option_env!("CI_JOB_URL"),
            ],
            [
                ::core::option_env!("GITHUB_SERVER_URL"),
                ::core::option_env!("GITHUB_REPOSITORY"),
                ::core::option_env!("GITHUB_RUN_ID"),
            ],
        )
    };
}

#[cfg(test)]
mod tests {
    use super::CompiledVersion;

    #[test]
    fn the_first_value_the_build_has_wins() {
        let v = CompiledVersion::__from_build(
            "1.2.3",
            "",
            &[None],
            &[None, Some(" "), Some("abc123"), Some("later")],
            &[None],
            [Some("https://github.com"), Some("org/app"), Some("42")],
        );
        assert_eq!(
            v.to_json(),
            serde_json::json!({
                "source": "https://github.com/org/app",
                "version": "1.2.3",
                "commit": "abc123",
                "build": "https://github.com/org/app/actions/runs/42",
            })
        );
    }

    #[test]
    fn unknown_fields_are_empty_strings() {
        let v = CompiledVersion::__from_build(
            "0.1.0",
            "https://example.org/app",
            &[None],
            &[],
            &[],
            [None; 3],
        );
        assert_eq!(v.to_json()["source"], "https://example.org/app");
        assert_eq!(v.to_json()["commit"], "");
        assert_eq!(v.to_json()["build"], "");
    }
}
