struct Indexer;

impl Indexer {
    #[eslock::exclusive("bootstrap/indexer", startup)]
    async fn bootstrap(&self) -> Result<(), eslock::Error> {
        Ok(())
    }
}

fn main() {}
