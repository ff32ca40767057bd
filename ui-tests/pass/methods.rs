use eslock::{Error, LockManager, exclusive};

struct Indexer {
    locks: LockManager,
    done: u32,
}

impl Indexer {
    #[exclusive("indexer/shared", manager = &self.locks)]
    async fn shared(&self) -> Result<u32, Error> {
        Ok(self.done)
    }

    #[exclusive("indexer/exclusive", manager = &self.locks)]
    async fn exclusive(&mut self) -> Result<u32, Error> {
        self.done += 1;
        Ok(self.done)
    }
}

trait Job {
    async fn run(&self) -> Result<&'static str, Error>;
}

struct Compaction {
    locks: LockManager,
}

impl Job for Compaction {
    #[exclusive("jobs/compaction", manager = &self.locks)]
    async fn run(&self) -> Result<&'static str, Error> {
        Ok("compacted")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut indexer = Indexer { locks: LockManager::in_memory(), done: 0 };
    assert_eq!(indexer.exclusive().await.unwrap(), 1);
    assert_eq!(indexer.shared().await.unwrap(), 1);
    let job = Compaction { locks: LockManager::in_memory() };
    assert_eq!(job.run().await.unwrap(), "compacted");
}
