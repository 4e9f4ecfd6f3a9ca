#[dockerflow::check]
struct Check;

fn main() {}
