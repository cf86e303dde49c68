//! A process's resident memory and CPU time, read from `/proc` (Linux; `None`
//! elsewhere or when the process is gone).

use std::time::Duration;

/// Resident and peak resident memory of `pid` (`None`: this process), in bytes.
pub(crate) fn rss(pid: Option<u32>) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(path(pid, "status")).ok()?;
    let kb = |field: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(field))?;
        line[field.len()..]
            .split_whitespace()
            .next()?
            .parse::<u64>()
            .ok()
    };
    Some((kb("VmRSS:")? * 1024, kb("VmHWM:")? * 1024))
}

/// User + system CPU time of `pid` (`None`: this process). Assumes the kernel's
/// `USER_HZ` of 100, as every mainstream Linux build has.
pub(crate) fn cpu(pid: Option<u32>) -> Option<Duration> {
    let stat = std::fs::read_to_string(path(pid, "stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After `)`: state is field 3; utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn path(pid: Option<u32>, file: &str) -> String {
    match pid {
        Some(p) => format!("/proc/{p}/{file}"),
        None => format!("/proc/self/{file}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        if !std::path::Path::new("/proc/self/status").exists() {
            return;
        }
        let (now, peak) = rss(None).unwrap();
        assert!(now > 0 && peak >= now);
        // Burn a little CPU so that the counter has moved from zero.
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(std::hint::black_box(x) != 1);
        assert!(cpu(None).unwrap() > Duration::ZERO);
        assert_eq!(rss(Some(u32::MAX)), None);
    }
}
