#[dockerflow::check]
fn check(_x: impl Send) -> Result<(), String> {
    Ok(())
}

fn main() {}
