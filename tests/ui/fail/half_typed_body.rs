use actix_web::web;

struct Pool;

impl Pool {
    fn ping(&self) -> Result<u32, String> {
        Ok(1)
    }
}

#[dockerflow::check]
fn check_pool(pool: web::Data<Pool>) -> Result<(), String> {
    let latency = pool.ping()?
    if latency > 100 {
        return Err(format!("slow: {latency} ms"));
    }
    Ok(())
}

fn main() {}
