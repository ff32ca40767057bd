#[eslock::exclusive("bootstrap/templates", startup)]
async fn install_templates(version: u32) -> Result<(), eslock::Error> {
    let _ = version;
    Ok(())
}

fn main() {}
