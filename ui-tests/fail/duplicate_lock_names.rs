eslock::lock_names! {
    pub MIGRATIONS = "migrations";
    pub SCHEMA = "migrations";
    pub MIGRATIONS = "migrations-v2";
}

fn main() {}
