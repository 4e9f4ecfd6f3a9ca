#[dockerflow::check(level = "fatal")]
fn check() -> Result<(), String> {
    Ok(())
}

fn main() {}
