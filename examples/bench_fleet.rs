//! Benchmark harness for `bench/run`: the simulated fleet and the drivers
//! that time fleetpulse and its peers (blackbox_exporter, pushgateway) on
//! loopback. Each subcommand prints `key=value` lines that `bench/run` reads.
//!
//! ```text
//! bench_fleet fleet DIR --services N --concurrency C   # serve N TLS /healthz endpoints, write configs
//! bench_fleet fleetpulse-sweep --bin B --config C --listen A --sweeps K
//! bench_fleet blackbox-sweep --addr A --targets F --pid P --concurrency C --rounds K
//! bench_fleet scale --bin B --config C --listen A [--pushgateway A] --scrapes M
//! bench_fleet render-alloc --config C
//! ```
//!
//! A bench harness: it panics on setup errors, with a message saying which.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures::stream::{self, StreamExt};

/// Counts bytes allocated, so a render can be held against its output size.
struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serves N TLS /healthz endpoints and writes probe.yaml, scale.yaml,
    /// targets.txt and ca.pem into DIR; runs until killed.
    Fleet {
        dir: PathBuf,
        #[arg(long, default_value_t = 1000)]
        services: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Environments of scale.yaml (each with 10 services).
        #[arg(long, default_value_t = 1000)]
        environments: usize,
    },
    /// Runs fleetpulse on a config and measures K steady-state sweeps.
    FleetpulseSweep {
        #[arg(long)]
        bin: PathBuf,
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        listen: String,
        #[arg(long, default_value_t = 2)]
        sweeps: usize,
    },
    /// Drives blackbox_exporter's /probe over every target, C at a time.
    BlackboxSweep {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        targets: PathBuf,
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 2)]
        rounds: usize,
    },
    /// Startup time, scrape timings and memory of fleetpulse at fleet scale,
    /// and the same scrapes from pushgateway holding the same series.
    Scale {
        #[arg(long)]
        bin: PathBuf,
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        listen: String,
        #[arg(long)]
        pushgateway: Option<String>,
        #[arg(long, default_value_t = 200)]
        scrapes: usize,
    },
    /// Bytes allocated by one render of a 10-services-per-environment
    /// snapshot, against the bytes it writes.
    RenderAlloc {
        #[arg(long)]
        config: PathBuf,
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
            concurrency,
            environments,
        } => rt.block_on(fleet(&dir, services, concurrency, environments)),
        Cmd::FleetpulseSweep {
            bin,
            config,
            listen,
            sweeps,
        } => fleetpulse_sweep(&bin, &config, &listen, sweeps),
        Cmd::BlackboxSweep {
            addr,
            targets,
            pid,
            concurrency,
            rounds,
        } => rt.block_on(blackbox_sweep(&addr, &targets, pid, concurrency, rounds)),
        Cmd::Scale {
            bin,
            config,
            listen,
            pushgateway,
            scrapes,
        } => rt.block_on(scale(
            &bin,
            &config,
            &listen,
            pushgateway.as_deref(),
            scrapes,
        )),
        Cmd::RenderAlloc { config } => render_alloc(&config),
    }
}

// ---------------------------------------------------------------- the fleet

async fn fleet(dir: &Path, services: usize, concurrency: usize, environments: usize) {
    use fleetpulse::simfleet::{Authority, Behaviour, SimService};
    std::fs::create_dir_all(dir).expect("create fleet dir");
    let ca = Authority::new(365).expect("CA");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.root_pem()).expect("write ca.pem");
    let mut running = Vec::with_capacity(services);
    for i in 0..services {
        // Expiry varies from 5 days to a year across the fleet.
        let days = 5 + (i as i64 * 7) % 360;
        let id = ca.issue(&["127.0.0.1"], days).expect("leaf");
        let behaviour = Behaviour::Healthy {
            commit: format!("{:07x}", 0x4f2c9e1 + i % 3),
        };
        running.push(SimService::start(id, behaviour).await.expect("service"));
    }
    let ports: Vec<u16> = running.iter().map(|s| s.port()).collect();

    let header = |interval: &str| {
        let mut y = String::new();
        let _ = writeln!(y, "sources:");
        let _ = writeln!(
            y,
            "  healthz:\n    interval: {interval}\n    timeout: 5s\n    concurrency: {concurrency}"
        );
        let _ = writeln!(
            y,
            "  tls:\n    interval: {interval}\n    timeout: 5s\n    concurrency: {concurrency}\n    ca_file: {}",
            ca_file.display()
        );
        let _ = writeln!(y, "environments:");
        y
    };
    // probe.yaml: one environment per endpoint, one service each.
    let mut probe = header("10s");
    let mut targets = String::new();
    for (i, port) in ports.iter().enumerate() {
        let _ = writeln!(probe, "  - name: env-{i}\n    services:\n      - name: nginx\n        healthz: https://127.0.0.1:{port}/healthz\n        tls: 127.0.0.1:{port}");
        let _ = writeln!(targets, "https://127.0.0.1:{port}/healthz");
    }
    std::fs::write(dir.join("probe.yaml"), probe).expect("write probe.yaml");
    std::fs::write(dir.join("targets.txt"), targets).expect("write targets.txt");
    // scale.yaml: `environments` × 10 services, spread over the endpoints.
    let mut scale = header("60s");
    for e in 0..environments {
        let _ = writeln!(
            scale,
            "  - name: stack-{e:04}\n    boxes: [box-{e:04}]\n    hosts: [host-{e:04}]\n    services:"
        );
        for s in 0..10 {
            let port = ports[(e * 10 + s) % ports.len()];
            let _ = writeln!(scale, "      - name: svc-{s}\n        healthz: https://127.0.0.1:{port}/healthz?svc={s}\n        tls: 127.0.0.1:{port}");
        }
    }
    std::fs::write(dir.join("scale.yaml"), scale).expect("write scale.yaml");
    println!("ready services={services}");
    std::future::pending::<()>().await;
}

// ------------------------------------------------------- /proc measurements

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')').expect("stat line") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    // _SC_CLK_TCK is 100 on every Linux this runs on; read it via getconf
    // once to stay honest without a libc dependency.
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A `Vm*` line of /proc/PID/status, in KiB.
fn vm_kib(pid: u32, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim_start_matches(':').split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

// ------------------------------------------------------- fleetpulse, probing

/// A fleetpulse process whose completed source runs are counted from its log.
struct Exporter {
    child: Child,
    runs: Arc<Mutex<Vec<(String, f64)>>>,
}

impl Exporter {
    fn start(bin: &Path, config: &Path, listen: &str) -> (Exporter, Instant) {
        let state = std::env::temp_dir().join(format!("fleetpulse-bench-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&state);
        let started = Instant::now();
        let mut child = Command::new(bin)
            .args(["--log-level", "warn,fleetpulse::scheduler=debug", "serve"])
            .arg("--config")
            .arg(config)
            .args(["--listen", listen])
            .arg("--state-dir")
            .arg(&state)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start fleetpulse");
        let stderr = child.stderr.take().expect("piped stderr");
        let runs = Arc::new(Mutex::new(Vec::new()));
        let r = runs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !line.contains("source run") {
                    continue;
                }
                let source = ["healthz", "tls"].into_iter().find(|s| {
                    line.contains(&format!("source=\"{s}\""))
                        || line.contains(&format!("source={s} "))
                });
                let seconds = line
                    .split("seconds=")
                    .nth(1)
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                if let Some(s) = source {
                    if line.contains("failed") {
                        eprintln!("fleetpulse: {line}");
                    }
                    r.lock().expect("runs lock").push((s.to_string(), seconds));
                }
            }
        });
        (Exporter { child, runs }, started)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until both healthz and tls have finished `n` runs; returns
    /// the durations of their n-th runs.
    fn wait_sweeps(&self, n: usize, limit: Duration) -> (f64, f64) {
        let start = Instant::now();
        loop {
            {
                let runs = self.runs.lock().expect("runs lock");
                let nth = |s: &str| runs.iter().filter(|(x, _)| x == s).nth(n - 1).map(|r| r.1);
                if let (Some(h), Some(t)) = (nth("healthz"), nth("tls")) {
                    return (h, t);
                }
            }
            assert!(
                start.elapsed() < limit,
                "fleetpulse: sweep {n} did not finish within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fleetpulse_sweep(bin: &Path, config: &Path, listen: &str, sweeps: usize) {
    let (fp, _) = Exporter::start(bin, config, listen);
    fp.wait_sweeps(1, Duration::from_secs(120));
    let cpu0 = cpu_seconds(fp.pid());
    let mut walls = Vec::new();
    for k in 2..=sweeps + 1 {
        let (h, t) = fp.wait_sweeps(k, Duration::from_secs(120));
        walls.push(h.max(t));
        println!("fp_sweep{k}_healthz_s={h:.3}\nfp_sweep{k}_tls_s={t:.3}");
    }
    let cpu = (cpu_seconds(fp.pid()) - cpu0) / sweeps as f64;
    let body = plain::get_metrics(listen);
    let green = ones(&body, "fleet_service_health{", "state=\"green\"");
    let tls_up = ones(&body, "fleet_tls_up{", "");
    let valid = ones(&body, "fleet_tls_chain_valid{", "");
    println!("fp_cpu_per_sweep_s={cpu:.3}");
    println!(
        "fp_wall_per_sweep_s={:.3}",
        walls.iter().sum::<f64>() / walls.len() as f64
    );
    println!("fp_vmhwm_kib={}", vm_kib(fp.pid(), "VmHWM"));
    println!("fp_green={green}\nfp_tls_up={tls_up}\nfp_chain_valid={valid}");
}

/// How many samples starting with `prefix` and containing `having` are 1.
fn ones(body: &str, prefix: &str, having: &str) -> usize {
    body.lines()
        .filter(|l| l.starts_with(prefix) && l.contains(having))
        .filter(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) == Some(1.0))
        .count()
}

/// A tiny blocking GET of `/metrics` for checks outside the timed part.
mod plain {
    pub fn get_metrics(listen: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(listen).expect("connect to exporter");
        let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: {listen}\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

// ----------------------------------------------------- blackbox_exporter

async fn blackbox_sweep(addr: &str, targets: &Path, pid: u32, concurrency: usize, rounds: usize) {
    let targets: Vec<String> = std::fs::read_to_string(targets)
        .expect("read targets")
        .lines()
        .map(str::to_string)
        .collect();
    let client = ::reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let round = || async {
        stream::iter(targets.iter())
            .map(|t| {
                let url = format!("http://{addr}/probe?module=http_2xx&target={t}");
                let client = &client;
                async move {
                    let Ok(r) = client.get(url).send().await else {
                        return false;
                    };
                    r.text()
                        .await
                        .is_ok_and(|b| b.contains("\nprobe_success 1"))
                }
            })
            .buffer_unordered(concurrency)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await
    };
    // One warm-up round, as fleetpulse's first sweep is not counted either.
    round().await;
    let cpu0 = cpu_seconds(pid);
    let start = Instant::now();
    let mut ok = 0;
    for _ in 0..rounds {
        ok = round().await;
    }
    let wall = start.elapsed().as_secs_f64() / rounds as f64;
    let cpu = (cpu_seconds(pid) - cpu0) / rounds as f64;
    println!("bb_cpu_per_sweep_s={cpu:.3}");
    println!("bb_wall_per_sweep_s={wall:.3}");
    println!("bb_vmhwm_kib={}", vm_kib(pid, "VmHWM"));
    println!("bb_success={ok}");
}

// ------------------------------------------------ scale: startup, scrapes, RSS

struct Timings {
    median_ms: f64,
    p99_ms: f64,
    bytes: usize,
    series: usize,
}

async fn scrape_timings(client: &::reqwest::Client, url: &str, n: usize) -> (Timings, String) {
    let mut times = Vec::with_capacity(n);
    let mut body = String::new();
    // Two untimed scrapes warm connections and caches on both sides.
    for i in 0..n + 2 {
        let start = Instant::now();
        let r = client.get(url).send().await.expect("scrape");
        assert!(r.status().is_success(), "{url}: {}", r.status());
        body = r.text().await.expect("scrape body");
        if i >= 2 {
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let series = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    let t = Timings {
        median_ms: times[times.len() / 2],
        p99_ms: times[(times.len() * 99 / 100).min(times.len() - 1)],
        bytes: body.len(),
        series,
    };
    (t, body)
}

async fn scale(bin: &Path, config: &Path, listen: &str, pushgateway: Option<&str>, scrapes: usize) {
    let (fp, started) = Exporter::start(bin, config, listen);
    // Startup: exec to the first 200 from /metrics.
    let client = ::reqwest::Client::builder()
        .no_gzip()
        .pool_max_idle_per_host(1)
        .build()
        .expect("client");
    let url = format!("http://{listen}/metrics");
    loop {
        if let Ok(r) = client.get(&url).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "fleetpulse did not serve /metrics within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!(
        "fp_startup_ms={:.1}",
        started.elapsed().as_secs_f64() * 1000.0
    );
    println!("fp_rss_at_start_kib={}", vm_kib(fp.pid(), "VmRSS"));
    let (h, t) = tokio::task::block_in_place(|| fp.wait_sweeps(1, Duration::from_secs(300)));
    println!("fp_scale_sweep_healthz_s={h:.3}\nfp_scale_sweep_tls_s={t:.3}");
    let (fpt, body) = scrape_timings(&client, &url, scrapes).await;
    println!(
        "fp_scrape_median_ms={:.2}\nfp_scrape_p99_ms={:.2}\nfp_scrape_bytes={}\nfp_scrape_series={}",
        fpt.median_ms, fpt.p99_ms, fpt.bytes, fpt.series
    );
    println!("fp_rss_kib={}", vm_kib(fp.pid(), "VmRSS"));
    println!("fp_scale_vmhwm_kib={}", vm_kib(fp.pid(), "VmHWM"));
    drop(fp);

    if let Some(pg) = pushgateway {
        // The same exposition, pushed once; the push is not timed.
        let push = format!("http://{pg}/metrics/job/fleetpulse_bench");
        let r = client
            .put(&push)
            .header("content-type", "text/plain; version=0.0.4")
            .body(body)
            .send()
            .await
            .expect("push to pushgateway");
        let status = r.status();
        if !status.is_success() {
            panic!("push: {status} {}", r.text().await.unwrap_or_default());
        }
        // pushgateway applies a push asynchronously after answering it:
        // time nothing until it serves every pushed series.
        let pg_url = format!("http://{pg}/metrics");
        let pushed = fpt.series;
        let waited = Instant::now();
        loop {
            let b = client
                .get(&pg_url)
                .send()
                .await
                .expect("scrape")
                .text()
                .await;
            let have = b.map_or(0, |b| b.lines().filter(|l| l.starts_with("fleet_")).count());
            if have >= pushed {
                break;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(60),
                "pushgateway holds {have} of {pushed} pushed series after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (pgt, _) = scrape_timings(&client, &pg_url, scrapes).await;
        println!(
            "pg_scrape_median_ms={:.2}\npg_scrape_p99_ms={:.2}\npg_scrape_bytes={}\npg_scrape_series={}",
            pgt.median_ms, pgt.p99_ms, pgt.bytes, pgt.series
        );
    }
}

// ------------------------------------------------------ render allocations

fn render_alloc(config: &Path) {
    use fleetpulse::snapshot::{Facts, Health, ServiceProbe, Snapshot, TlsProbe};
    let config = Arc::new(fleetpulse::config::Config::load(config).expect("load config"));
    let mut healthz = Vec::new();
    let mut tls = Vec::new();
    for e in &config.environments {
        for s in &e.services {
            healthz.push(ServiceProbe {
                stack: e.name.as_str().to_string(),
                service: s.name.as_str().to_string(),
                health: Health::Green,
                status_code: Some(200),
                duration_seconds: 0.0123,
                commit: Some("4f2c9e1".into()),
                reason: None,
            });
            tls.push(TlsProbe {
                stack: e.name.as_str().to_string(),
                service: s.name.as_str().to_string(),
                host: s.tls.as_ref().map(|h| h.to_string()).unwrap_or_default(),
                up: true,
                leaf_not_after: Some(1_900_000_000),
                chain_earliest_not_after: Some(1_800_000_000),
                chain_valid: true,
                error: None,
            });
        }
    }
    let facts = Facts::default().with("healthz", healthz).with("tls", tls);
    let snapshot = Snapshot {
        read_at: 0.0,
        config,
        sources: Vec::new(),
        facts,
        pulse: Arc::default(),
        drift: Vec::new(),
        handler_panics: 0,
        reload: (true, 0.0),
        discovery_refused: 0,
        history: Default::default(),
    };
    let _ = fleetpulse::metrics::render_text(snapshot.clone());
    let before = ALLOCATED.load(Ordering::Relaxed);
    let start = Instant::now();
    let out = fleetpulse::metrics::render_text(snapshot.clone());
    let elapsed = start.elapsed();
    let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
    println!("render_ms={:.2}", elapsed.as_secs_f64() * 1000.0);
    println!("render_output_bytes={}", out.len());
    println!("render_allocated_bytes={allocated}");
    println!(
        "render_alloc_ratio={:.2}",
        allocated as f64 / out.len() as f64
    );
}
