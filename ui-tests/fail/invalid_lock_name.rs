eslock::lock_names! {
    pub NIGHTLY = "nightly report";
}

fn main() {}
