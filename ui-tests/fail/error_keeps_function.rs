// On a macro error the function is still emitted as written: the only error
// below is the macro's own, not "cannot find function" at each caller.
#[eslock::exclusive("jobs/nightly", ttl = "5ms")]
async fn nightly() -> Result<u32, eslock::Error> {
    Ok(7)
}

struct Jobs;

impl Jobs {
    #[eslock::exclusive("jobs/{job}", manager = &self.locks)]
    async fn run(&self, name: &str) -> Result<String, eslock::Error> {
        Ok(name.to_string())
    }
}

fn main() {
    let _nightly = nightly();
    let _run = Jobs.run("compaction");
}
