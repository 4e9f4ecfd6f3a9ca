#[dockerflow::on_heartbeat_passed(level = "error")]
fn hook(_level: dockerflow::Level) {}

fn main() {}
