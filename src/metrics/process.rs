//! The standard `process_*` families, named and computed as client_golang's
//! process collector does, read from /proc with the procfs crate at scrape
//! time (a few small local reads). Elsewhere than Linux, none are written.

use std::fmt;

use crate::catalogue as cat;
use crate::exposition::{family, DescriptorEncoder};

/// One reading of this process.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub virtual_bytes: f64,
    pub open_fds: f64,
    pub max_fds: Option<f64>,
    pub start_time_seconds: f64,
}

/// This process, now; `None` where /proc cannot be read.
#[cfg(target_os = "linux")]
pub fn read() -> Option<Reading> {
    use procfs::process::{LimitValue, Process};
    let me = Process::myself().ok()?;
    let stat = me.stat().ok()?;
    let limits = me.limits().ok()?;
    let ticks = procfs::ticks_per_second() as f64;
    let limit = |v: LimitValue| match v {
        LimitValue::Value(n) => Some(n as f64),
        LimitValue::Unlimited => None,
    };
    Some(Reading {
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
        resident_bytes: (stat.rss * procfs::page_size()) as f64,
        virtual_bytes: stat.vsize as f64,
        open_fds: me.fd_count().ok()? as f64,
        max_fds: limit(limits.max_open_files.soft_limit),
        start_time_seconds: procfs::boot_time_secs().ok()? as f64 + stat.starttime as f64 / ticks,
    })
}

/// This process, now; `None` where /proc cannot be read.
#[cfg(not(target_os = "linux"))]
pub fn read() -> Option<Reading> {
    None
}

/// The process families, from a fresh reading.
pub fn encode(enc: &mut DescriptorEncoder) -> fmt::Result {
    let Some(r) = read() else {
        return Ok(());
    };
    family(enc, &cat::PROCESS_CPU, [([], r.cpu_seconds)])?;
    family(enc, &cat::PROCESS_RESIDENT, [([], r.resident_bytes)])?;
    family(enc, &cat::PROCESS_VIRTUAL, [([], r.virtual_bytes)])?;
    family(enc, &cat::PROCESS_OPEN_FDS, [([], r.open_fds)])?;
    family(enc, &cat::PROCESS_MAX_FDS, r.max_fds.map(|v| ([], v)))?;
    family(enc, &cat::PROCESS_START, [([], r.start_time_seconds)])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn the_reading_agrees_with_what_the_kernel_says_of_this_process() {
        let r = read().expect("/proc is readable");
        // At least stdin, stdout and stderr; no more than the limit.
        assert!(r.open_fds >= 3.0, "{r:?}");
        assert!(r.max_fds.is_none_or(|m| r.open_fds <= m), "{r:?}");
        assert!(r.resident_bytes > 1_000_000.0, "{r:?}");
        assert!(r.virtual_bytes >= r.resident_bytes, "{r:?}");
        let now = crate::clock::now_unix();
        assert!(
            r.start_time_seconds <= now && now - r.start_time_seconds < 3600.0,
            "started {} s ago",
            now - r.start_time_seconds
        );
        // The soft limit of open files, as `ulimit -n` reads it.
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap();
        let soft = line.split_whitespace().nth(3).unwrap();
        assert_eq!(r.max_fds, soft.parse::<f64>().ok(), "{line}");
    }

    /// utime + stime of this process from /proc/self/stat, in ticks.
    #[cfg(target_os = "linux")]
    fn cpu_ticks() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        // The fields after the command name, which is in parentheses.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15; `after` starts at field 3.
        f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn cpu_time_is_user_and_system_time_in_seconds() {
        // Spend some of each, so that neither is zero.
        let mut x = 0u64;
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(60) {
            x = x
                .wrapping_mul(31)
                .wrapping_add(std::fs::metadata("/proc/self/stat").map_or(1, |m| m.len()));
        }
        assert_ne!(x, 1);
        let ticks = procfs::ticks_per_second() as f64;
        let before = cpu_ticks() / ticks;
        let r = read().unwrap();
        let after = cpu_ticks() / ticks;
        assert!(
            before <= r.cpu_seconds && r.cpu_seconds <= after,
            "{before} {r:?} {after}"
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn every_process_family_is_written() {
        let written = crate::metrics::samples_of(crate::sources::Facts::default(), "process_");
        let names: Vec<&str> = written
            .iter()
            .map(|l| l.split([' ', '{']).next().unwrap())
            .collect();
        let mut want = vec![
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ];
        if read().unwrap().max_fds.is_none() {
            want.retain(|n| *n != "process_max_fds");
        }
        assert_eq!(names, want);
    }
}
