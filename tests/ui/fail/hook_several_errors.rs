#[dockerflow::on_heartbeat_failed(level = "error")]
async fn hook<T>(_x: impl Send) -> bool {
    true
}

fn main() {}
