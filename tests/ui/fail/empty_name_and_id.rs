#[dockerflow::check(name = "", id = "  ")]
fn check() -> Result<(), String> {
    Ok(())
}

fn main() {}
