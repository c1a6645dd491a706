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
}
