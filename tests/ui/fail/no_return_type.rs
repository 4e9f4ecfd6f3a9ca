#[dockerflow::check]
fn check() {}

fn main() {}
