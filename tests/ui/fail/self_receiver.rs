struct Service;

impl Service {
    #[dockerflow::check]
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

fn main() {}
