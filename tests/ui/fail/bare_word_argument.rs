#[dockerflow::check(critical)]
fn check() -> Result<(), String> {
    Ok(())
}

fn main() {}
