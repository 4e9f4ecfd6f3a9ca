#[dockerflow::on_heartbeat_passed]
fn hook(_level: u8) {}

fn main() {}
