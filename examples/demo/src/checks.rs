//! The demo's own checks, next to the built-in ones: one blocking, one async.

use std::path::PathBuf;

use actix_web::web;

use crate::db::Database;

/// Where the demo writes (the working directory): a full or read-only disk breaks SQLite and
/// uploads alike.
pub(crate) struct ScratchDir(pub(crate) PathBuf);

/// Blocking (a plain `fn`, so it runs on the blocking pool): the greetings table answers.
/// A warning, not an error: the service still answers the heartbeat and its other routes.
#[dockerflow::check(level = "warning", id = "demo.W001")]
fn check_greetings_readable(db: web::Data<Database>) -> Result<(), String> {
    db.count_greetings()
        .map(|_| ())
        .map_err(|err| format!("cannot count greetings: {err}"))
}

/// Async: a file can be written and removed in the scratch directory.
#[dockerflow::check(level = "error", id = "demo.E001", timeout_ms = 1000)]
async fn check_scratch_dir_writable(dir: web::Data<ScratchDir>) -> Result<(), String> {
    let path = dir
        .0
        .join(format!(".dockerflow-demo-probe-{}", std::process::id()));
    tokio::fs::write(&path, b"probe")
        .await
        .map_err(|err| format!("cannot write in {}: {err}", dir.0.display()))?;
    tokio::fs::remove_file(&path)
        .await
        .map_err(|err| format!("cannot remove {}: {err}", path.display()))
}
