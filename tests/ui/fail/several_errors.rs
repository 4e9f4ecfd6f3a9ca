#[dockerflow::check(level = "fatal", severity = "high", timeout_ms = 0, level = "info")]
fn check<T>(_x: impl Send) {}

fn main() {}
