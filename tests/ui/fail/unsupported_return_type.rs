#[dockerflow::check]
fn check() -> bool {
    true
}

fn main() {}
