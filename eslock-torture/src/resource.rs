//! The protected resource: one counter file per lock id, shared by every
//! worker process. Holders add one to it under the lock; a lost update
//! shows as a final value below the number of writes.
//!
//! The file itself checks fencing tokens, as a real resource should: a
//! holder first *claims* it with its token (refused if a newer token has
//! claimed it), and its write is accepted only while its claim stands. Each
//! step runs under an exclusive `flock`, which stands in for the resource's
//! own atomicity, never for the lock under test.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The counter of one lock id.
pub struct Counter {
    path: PathBuf,
}

/// Value and the fencing token of the last claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct State {
    value: u64,
    fence: u64,
}

impl Counter {
    /// The counter of `lock_id`, a file in `dir` (created on first use).
    pub fn new(dir: &Path, lock_id: &str) -> Counter {
        let name: String = lock_id.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        Counter { path: dir.join(format!("counter-{name}")) }
    }

    /// The value now.
    pub fn value(&self) -> u64 {
        self.locked(|state| (None, state.value))
    }

    /// Claims the counter for `fence`: the value, or `None` when a newer
    /// token has claimed it (this holder is stale).
    pub fn claim(&self, fence: u64) -> Option<u64> {
        self.locked(|state| {
            if fence < state.fence {
                (None, None)
            } else {
                (Some(State { value: state.value, fence }), Some(state.value))
            }
        })
    }

    /// Writes `read + 1` if the claim of `fence` still stands.
    pub fn commit(&self, fence: u64, read: u64) -> bool {
        self.locked(|state| {
            if state.fence != fence {
                (None, false)
            } else {
                (Some(State { value: read + 1, fence }), true)
            }
        })
    }

    /// Writes `read + 1` without any fencing: only the lock protects it.
    pub fn write_unfenced(&self, read: u64) {
        self.locked(|state| (Some(State { value: read + 1, fence: state.fence }), ()))
    }

    /// Runs `step` on the state under an exclusive lock of the file and
    /// stores the state it returns, if any.
    fn locked<T>(&self, step: impl FnOnce(State) -> (Option<State>, T)) -> T {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&self.path).expect("counter file");
        let _lock = FileLock::exclusive(&file);
        // `&File` reads and writes, so the lock's borrow can stay.
        let mut handle = &file;
        let mut text = String::new();
        handle.read_to_string(&mut text).expect("counter file is readable");
        let mut fields = text.split_whitespace().map(|field| field.parse::<u64>().unwrap_or(0));
        let state = State { value: fields.next().unwrap_or(0), fence: fields.next().unwrap_or(0) };
        let (next, result) = step(state);
        if let Some(next) = next {
            handle.seek(SeekFrom::Start(0)).expect("seek");
            file.set_len(0).expect("truncate");
            write!(handle, "{} {}", next.value, next.fence).expect("counter file is writable");
            file.sync_data().ok();
        }
        result
    }
}

/// An exclusive `flock` held until dropped.
struct FileLock<'a>(&'a File);

impl<'a> FileLock<'a> {
    fn exclusive(file: &'a File) -> Self {
        // SAFETY: flock on a file descriptor we own for the guard's lifetime.
        let done = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(done, 0, "flock");
        FileLock(file)
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        // SAFETY: as above; unlocking a descriptor we locked.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_claim_is_refused_and_a_superseded_write_too() {
        let dir = std::env::temp_dir().join(format!("eslock-counter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let counter = Counter::new(&dir, "a/b");
        let old = counter.claim(5).unwrap();
        let new = counter.claim(6).unwrap();
        assert_eq!(counter.claim(5), None, "older token");
        assert!(counter.commit(6, new));
        assert!(!counter.commit(5, old), "the older holder's write is refused");
        assert_eq!(counter.value(), 1);
        counter.write_unfenced(counter.value());
        assert_eq!(counter.value(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
