#[dockerflow::on_heartbeat_failed]
fn hook(_level: dockerflow::Level) -> bool {
    true
}

fn main() {}
