#[dockerflow::check(timeout_ms = 0)]
fn check() -> Result<(), String> {
    Ok(())
}

fn main() {}
