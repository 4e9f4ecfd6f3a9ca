#[dockerflow::check(level = error)]
fn check() -> Result<(), String> {
    Ok(())
}

fn main() {}
