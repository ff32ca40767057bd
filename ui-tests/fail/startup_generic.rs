#[eslock::exclusive("bootstrap/defaults", startup)]
async fn install_defaults<T: Default>() -> Result<(), eslock::Error> {
    let _ = T::default();
    Ok(())
}

fn main() {}
