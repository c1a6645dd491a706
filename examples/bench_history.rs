//! Benchmark harness for `bench/history.sh`: the cost of keeping history.
//! Each subcommand prints `key=value` lines the script reads.
//!
//! ```text
//! bench_history fleet DIR --services N --flip-percent P --every S   # N endpoints, P % change state every S seconds
//! bench_history prefill --state DIR --services N --days D            # D days of hourly flaps per service
//! bench_history cpu --pid-on A --pid-off B --seconds S               # CPU of two exporters over one window
//! bench_history latency --url U --requests N [--prefix KEY]          # p50/p99 of GET U
//! ```
//!
//! A bench harness: it panics on setup errors, with a message saying which.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use fleetpulse::history::{store, Event, Kind};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serves N TLS /healthz endpoints, a share of which change state (green
    /// and red) every period, and writes on.yaml and off.yaml into DIR
    /// (one environment per endpoint; history recorded or not); runs until killed.
    Fleet {
        dir: PathBuf,
        #[arg(long, default_value_t = 1000)]
        services: usize,
        #[arg(long, default_value_t = 10)]
        flip_percent: usize,
        #[arg(long, default_value_t = 5)]
        every: u64,
    },
    /// Fills the store in DIR with D days of hourly health flaps for each of
    /// N services (`env-I`/`nginx`, as `fleet` names them).
    Prefill {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, default_value_t = 1000)]
        services: usize,
        #[arg(long, default_value_t = 90)]
        days: u64,
    },
    /// utime+stime of three processes (history on, off, and off again as
    /// the noise floor) over the same windows; the median ratio of each.
    Cpu {
        #[arg(long)]
        pid_on: u32,
        #[arg(long)]
        pid_off: u32,
        #[arg(long)]
        pid_off2: u32,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long, default_value_t = 3)]
        windows: usize,
    },
    /// Times N sequential GETs of a URL.
    Latency {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 200)]
        requests: usize,
        #[arg(long, default_value = "latency")]
        prefix: String,
    },
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match cli.command {
        Cmd::Fleet {
            dir,
            services,
            flip_percent,
            every,
        } => rt.block_on(fleet(&dir, services, flip_percent, every)),
        Cmd::Prefill {
            state,
            services,
            days,
        } => prefill(&state, services, days),
        Cmd::Cpu {
            pid_on,
            pid_off,
            pid_off2,
            seconds,
            windows,
        } => cpu([pid_on, pid_off, pid_off2], seconds, windows),
        Cmd::Latency {
            url,
            requests,
            prefix,
        } => rt.block_on(latency(&url, requests, &prefix)),
    }
}

async fn fleet(dir: &Path, services: usize, flip_percent: usize, every: u64) {
    use fleetpulse::simfleet::{Authority, Behaviour, SimService};
    std::fs::create_dir_all(dir).expect("create fleet dir");
    let ca = Authority::new(365).expect("CA");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.root_pem()).expect("write ca.pem");
    let healthy = || Behaviour::Healthy {
        commit: "4f2c9e1".into(),
    };
    let mut running = Vec::with_capacity(services);
    for _ in 0..services {
        let id = ca.issue(&["127.0.0.1"], 90).expect("leaf");
        running.push(SimService::start(id, healthy()).await.expect("service"));
    }
    for (name, enabled) in [("on.yaml", true), ("off.yaml", false)] {
        let mut y = String::new();
        let _ = writeln!(
            y,
            "sources:\n  healthz:\n    interval: {every}s\n    timeout: 5s\n    concurrency: 64\n  tls:\n    ca_file: {}\nhistory:\n  enabled: {enabled}\nenvironments:",
            ca_file.display()
        );
        for (i, s) in running.iter().enumerate() {
            let _ = writeln!(
                y,
                "  - name: env-{i}\n    services:\n      - name: nginx\n        healthz: https://127.0.0.1:{}/healthz",
                s.port()
            );
        }
        std::fs::write(dir.join(name), y).expect("write config");
    }
    println!("ready services={services}");
    // Every period the next share of the fleet changes state.
    let chunk = (services * flip_percent / 100).max(1);
    let mut red = vec![false; services];
    let mut next = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(every)).await;
        for _ in 0..chunk {
            red[next] = !red[next];
            running[next].set(if red[next] {
                Behaviour::Status(503)
            } else {
                healthy()
            });
            next = (next + 1) % services;
        }
    }
}

fn prefill(state: &Path, services: usize, days: u64) {
    // The store's own schema, created by the store.
    drop(
        fleetpulse::store::Store::open(state, 0, &|_, _| true, Box::new(|_| {}))
            .expect("open the store"),
    );
    let path = state.join(fleetpulse::store::DB_FILE);
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let before = size(&path);
    let mut conn = rusqlite::Connection::open(&path).expect("open the database");
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        .expect("pragmas");
    let now = fleetpulse::snapshot::now_unix();
    let start = now - days as f64 * 86400.0;
    let hours = days * 24;
    let mut total = 0u64;
    let t = Instant::now();
    for i in 0..services {
        let tx = conn.transaction().expect("transaction");
        let mut events: Vec<Event> = (0..hours)
            .map(|h| {
                let red = h % 2 == 1;
                let (from, to) = match (h, red) {
                    (0, _) => (None, "green"),
                    (_, true) => (Some("green"), "red"),
                    (_, false) => (Some("red"), "green"),
                };
                Event {
                    id: 0,
                    at: start + h as f64 * 3600.0 + (i % 3600) as f64,
                    stack: format!("env-{i}"),
                    kind: Kind::Health,
                    subject: "nginx".into(),
                    from: from.map(Into::into),
                    to: Some(to.into()),
                    detail: red.then(|| "HTTP 503".to_string()),
                    changes: h,
                }
            })
            .collect();
        // The commit each service has reported all along: a store of a
        // fleet watched for 90 days holds it, so a start records no first
        // sighting of it.
        events.insert(
            0,
            Event {
                id: 0,
                at: start,
                stack: format!("env-{i}"),
                kind: Kind::Deploy,
                subject: "nginx".into(),
                from: None,
                to: Some("4f2c9e1".into()),
                detail: None,
                changes: 0,
            },
        );
        store::insert(&tx, &mut events).expect("insert");
        tx.commit().expect("commit");
        total += events.len() as u64;
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    drop(conn);
    let after = size(&path);
    println!("prefill_events={total}");
    println!("prefill_seconds={:.1}", t.elapsed().as_secs_f64());
    println!("store_bytes={after}");
    println!(
        "bytes_per_event={:.1}",
        (after - before) as f64 / total as f64
    );
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let rest = &stat[stat.rfind(')').expect("stat line") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

fn cpu(pids: [u32; 3], seconds: u64, windows: usize) {
    let mut ratios = Vec::new();
    let mut floors = Vec::new();
    let mut total = [0.0; 3];
    for w in 0..windows {
        let before = pids.map(cpu_seconds);
        std::thread::sleep(Duration::from_secs(seconds));
        let used: Vec<f64> = pids
            .iter()
            .zip(before)
            .map(|(p, b)| cpu_seconds(*p) - b)
            .collect();
        for (t, u) in total.iter_mut().zip(&used) {
            *t += u;
        }
        println!(
            "cpu_window_{w}=on {:.2} off {:.2} off2 {:.2}",
            used[0], used[1], used[2]
        );
        ratios.push(used[0] / used[1]);
        floors.push(used[2] / used[1]);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("cpu_window_s={seconds}");
    println!("cpu_windows={windows}");
    println!("cpu_on_s={:.2}", total[0]);
    println!("cpu_off_s={:.2}", total[1]);
    println!("cpu_off2_s={:.2}", total[2]);
    println!("cpu_ratio={:.3}", median(&mut ratios));
    println!(
        "cpu_ratio_all={:?}",
        ratios.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>()
    );
    println!("cpu_floor={:.3}", median(&mut floors));
}

async fn latency(url: &str, requests: usize, prefix: &str) {
    let client = reqwest::Client::new();
    let mut times = Vec::with_capacity(requests);
    let mut bytes = 0;
    // Two untimed, to warm the connection.
    for _ in 0..2 {
        let _ = client.get(url).send().await.expect("GET").bytes().await;
    }
    for _ in 0..requests {
        let t = Instant::now();
        let r = client.get(url).send().await.expect("GET");
        assert!(r.status().is_success(), "{url}: {}", r.status());
        bytes = r.bytes().await.expect("body").len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!("{prefix}_p50_ms={:.2}", pct(0.5));
    println!("{prefix}_p99_ms={:.2}", pct(0.99));
    println!("{prefix}_bytes={bytes}");
}
