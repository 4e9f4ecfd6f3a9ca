#[dockerflow::on_heartbeat_failed]
async fn hook(_level: dockerflow::Level) {}

fn main() {}
