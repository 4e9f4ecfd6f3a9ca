use actix_web::web;
use dockerflow::CheckMessage;

struct Pool;
struct Client;

#[dockerflow::check]
fn plain() -> Result<(), String> {
    Ok(())
}

#[dockerflow::check(level = "warning", name = "renamed", id = "app.W001", timeout_ms = 250)]
async fn all_arguments(
    _pool: web::Data<Pool>,
    _client: web::Data<Client>,
) -> Result<(), std::io::Error> {
    Ok(())
}

#[dockerflow::check(level = "debug")]
fn several_messages() -> Vec<CheckMessage> {
    vec![CheckMessage::info("app.I001", "fine")]
}

#[dockerflow::check(level = "critical")]
async fn both(_pool: web::Data<Pool>) -> Result<Vec<CheckMessage>, String> {
    Ok(vec![])
}

#[dockerflow::check(level = "info")]
pub(crate) fn visible_in_crate() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}

mod nested {
    /// Documented checks keep their docs and attributes.
    #[dockerflow::check]
    #[allow(clippy::unnecessary_wraps)]
    pub fn inner() -> Result<(), String> {
        Ok(())
    }
}

#[dockerflow::on_heartbeat_passed]
fn passed(_level: dockerflow::Level) {}

#[dockerflow::on_heartbeat_failed]
fn failed(_level: dockerflow::Level, _report: &dockerflow::HeartbeatReport) {}

#[dockerflow::on_heartbeat_failed]
fn failed_without_arguments() -> () {}

fn main() {
    // The annotated functions stay callable as they were.
    let _ = plain();
    let _ = nested::inner();
    let _ = several_messages();
    let _ = visible_in_crate();
    passed(dockerflow::Level::Ok);
    failed_without_arguments();
    let df = dockerflow::Dockerflow::builder()
        .environment(std::iter::empty::<(String, String)>())
        .build()
        .unwrap();
    let names: Vec<&str> = df.checks().iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "both",
            "inner",
            "plain",
            "renamed",
            "several_messages",
            "visible_in_crate"
        ]
    );
}
