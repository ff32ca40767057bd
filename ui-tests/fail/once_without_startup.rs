#[eslock::exclusive("bootstrap/templates", once)]
async fn install_templates() -> Result<(), eslock::Error> {
    Ok(())
}

fn main() {}
