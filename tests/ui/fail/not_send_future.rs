use std::rc::Rc;

#[dockerflow::check]
async fn check() -> Result<(), String> {
    let shared = Rc::new(1);
    std::future::ready(()).await;
    drop(shared);
    Ok(())
}

fn main() {}
