eslock::lock_names! {
    pub REINDEX = "reindex/{source}";
}

fn main() {
    // A template is not a lock id until its placeholders are filled.
    let _ = eslock::LockId::new(REINDEX);
}
