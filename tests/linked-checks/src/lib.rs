//! Checks that live in a crate of their own. The app that links this crate gets them in its
//! heartbeat without naming them anywhere; it only has to reference the crate so the linker
//! keeps it (`use linked_checks as _;`).

/// Something for the app to hold, so the check has app data to take.
pub struct Upstream {
    /// Whether the upstream answers.
    pub up: bool,
}

#[dockerflow::check(level = "warning", id = "linked.W001")]
async fn check_linked_upstream(upstream: actix_web::web::Data<Upstream>) -> Result<(), String> {
    if upstream.up {
        Ok(())
    } else {
        Err("upstream is down".to_owned())
    }
}

#[dockerflow::on_heartbeat_failed]
fn linked_hook(level: dockerflow::Level) {
    let _ = level;
}
