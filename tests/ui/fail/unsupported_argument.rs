#[dockerflow::check]
fn check(port: u16) -> Result<(), String> {
    let _ = port;
    Ok(())
}

fn main() {}
