#[dockerflow::check(timeout_ms = "250", name = renamed)]
fn check() -> Result<(), String> {
    Ok(())
}

fn main() {}
