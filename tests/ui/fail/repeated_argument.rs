#[dockerflow::check(level = "error", level = "warning")]
fn check() -> Result<(), String> {
    Ok(())
}

fn main() {}
