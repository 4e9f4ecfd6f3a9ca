#[dockerflow::check]
fn check<T: Default>() -> Result<(), String> {
    Ok(())
}

fn main() {}
