//! Shared measuring helpers: latency samples and percentiles, a monotonic
//! clock comparable across processes, and the process's CPU time and memory.

use std::time::Duration;

/// Nanoseconds on CLOCK_MONOTONIC: the same clock in every process of the
/// machine, so events recorded by a child compare with the parent's.
pub(crate) fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// User + system CPU time this process has used so far.
pub(crate) fn cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is valid, and getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// User + system CPU time process `pid` has used so far (from
/// `/proc/PID/stat`, in clock ticks); `None` when it cannot be read.
pub(crate) fn process_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its ')'.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|&t| t > 0)?;
    Some(Duration::from_nanos((utime + stime) * 1_000_000_000 / ticks))
}

/// The process of this machine that listens on TCP `port` (the engine
/// node, when it runs here): the owner of the listening socket's inode.
pub(crate) fn listening_pid(port: u16) -> Option<u32> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|table| {
        let table = std::fs::read_to_string(table).ok()?;
        table.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(fields.get(1)?.rsplit_once(':')?.1, 16).ok()?;
            // State 0A is LISTEN.
            (local_port == port && *fields.get(3)? == "0A").then(|| fields.get(9).map(|inode| inode.to_string()))?
        })
    })?;
    let socket = format!("socket:[{inode}]");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|process| {
        let pid: u32 = process.file_name().to_str()?.parse().ok()?;
        let mut fds = std::fs::read_dir(process.path().join("fd")).ok()?;
        fds.any(|fd| fd.ok().and_then(|fd| std::fs::read_link(fd.path()).ok()).is_some_and(|target| target.as_os_str() == socket.as_str()))
            .then_some(pid)
    })
}

/// A field of /proc/self/status in KiB (`VmRSS`: resident now, `VmHWM`: peak).
pub(crate) fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let rest = line.strip_prefix(field)?.strip_prefix(':')?;
                rest.split_whitespace().next()?.parse().ok()
            })
        })
        .unwrap_or(0)
}

/// Latencies of one measurement.
#[derive(Debug, Default, Clone)]
pub(crate) struct Samples {
    nanos: Vec<u64>,
}

impl Samples {
    pub(crate) fn push(&mut self, latency: Duration) {
        self.nanos.push(latency.as_nanos() as u64);
    }

    pub(crate) fn push_nanos(&mut self, nanos: u64) {
        self.nanos.push(nanos);
    }

    pub(crate) fn extend(&mut self, other: Samples) {
        self.nanos.extend(other.nanos);
    }

    pub(crate) fn len(&self) -> usize {
        self.nanos.len()
    }

    /// The `p`-th percentile (nearest rank), `p` in 0..=100; zero when empty.
    pub(crate) fn percentile(&self, p: f64) -> Duration {
        if self.nanos.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.nanos.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        Duration::from_nanos(sorted[rank.clamp(1, sorted.len()) - 1])
    }

    pub(crate) fn p50(&self) -> Duration {
        self.percentile(50.0)
    }

    pub(crate) fn p99(&self) -> Duration {
        self.percentile(99.0)
    }
}

/// The median of a few figures (round-to-round results).
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Milliseconds with a precision that suits the magnitude.
pub(crate) fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}
