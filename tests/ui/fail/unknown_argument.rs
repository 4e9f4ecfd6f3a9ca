#[dockerflow::check(severity = "error")]
fn check() -> Result<(), String> {
    Ok(())
}

fn main() {}
