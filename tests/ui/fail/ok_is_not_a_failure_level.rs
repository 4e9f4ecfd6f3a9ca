#[dockerflow::check(level = "ok")]
fn check() -> Result<(), String> {
    Ok(())
}

fn main() {}
