#[dockerflow::check]
unsafe extern "C" fn check() -> ()
where
    u8: Copy,
{
}

fn main() {}
