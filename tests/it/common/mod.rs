//! Shared test helpers: finding real peers and waiting for conditions.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The path of a peer binary, or a loud failure saying how to install it.
/// A test that needs a peer never passes without it.
pub fn require_peer(env_var: &str, fallbacks: &[&str], install_hint: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env_var) {
        let p = PathBuf::from(p);
        if p.exists() {
            return p;
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for f in fallbacks {
        let p = if f.starts_with('/') {
            PathBuf::from(f)
        } else {
            root.join(f)
        };
        if p.exists() {
            return p;
        }
    }
    panic!(
        "required peer not found (set {env_var} or install it: {install_hint}); \
         `bash scripts/install-test-deps` installs every peer"
    );
}

/// libfaketime from Debian's libfaketime package (LD_PRELOADed to run a
/// process on a wall clock of the test's choosing).
pub fn libfaketime() -> PathBuf {
    require_peer(
        "FLEETPULSE_LIBFAKETIME",
        &["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"],
        "apt-get install libfaketime",
    )
}

/// promtool from Debian's prometheus package.
pub fn promtool() -> PathBuf {
    require_peer(
        "FLEETPULSE_PROMTOOL",
        &["/usr/bin/promtool"],
        "apt-get install prometheus",
    )
}

/// Runs `promtool check metrics` on `body`: whether it succeeded, and what
/// it said on stdout and stderr.
pub fn promtool_says(body: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// Fails unless `promtool check metrics` finds nothing to say about `body`.
pub fn promtool_check_metrics(body: &str) {
    let (ok, said) = promtool_says(body);
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );
}

/// Polls `f` every 100 ms until it returns Some, or panics after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET a URL and return status and body.
pub async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// The value of the first sample of `series` (exact name and labels as written).
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Starts an exporter in this process on a free loopback port.
pub async fn try_start_exporter(
    config: std::sync::Arc<fleetpulse::config::Config>,
) -> Result<fleetpulse::app::Running, fleetpulse::app::StartError> {
    let listener = fleetpulse::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind an ephemeral loopback port");
    fleetpulse::app::start(config, listener).await
}

/// As `try_start_exporter`, which must succeed.
pub async fn start_exporter(
    config: std::sync::Arc<fleetpulse::config::Config>,
) -> fleetpulse::app::Running {
    try_start_exporter(config)
        .await
        .expect("the exporter starts")
}

/// A free loopback port, for a process that cannot report the one it bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral loopback port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A child process (a peer, or fleetpulse itself); killed when dropped.
pub struct Process {
    child: Child,
    pub port: u16,
    log: Arc<Mutex<String>>,
}

impl Process {
    /// Takes charge of a child started elsewhere (its output not kept).
    pub fn adopt(child: Child, port: u16) -> Process {
        Process {
            child,
            port,
            log: Arc::default(),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sends the process a signal by name (`STOP`, `CONT`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{name} {}", self.child.id());
    }

    /// Waits up to `limit` for the process to exit by itself (after a
    /// `TERM`, say); returns whether it did.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Kills the process and waits for it to be gone, keeping the handle.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process and waits for it to be gone (its port closed).
    pub fn kill(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` and waits until a line of its output contains `marker`
/// followed by the port it listens on. Its output is kept (`Process::log`).
pub fn spawn_listening(mut cmd: Command, marker: &'static str, what: &str) -> Process {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let (tx, rx) = mpsc::channel::<u16>();
    let log = Arc::new(Mutex::new(String::new()));
    let out = child.stdout.take().expect("piped stdout");
    let err = child.stderr.take().expect("piped stderr");
    for stream in [
        Box::new(out) as Box<dyn std::io::Read + Send>,
        Box::new(err) as Box<dyn std::io::Read + Send>,
    ] {
        let tx = tx.clone();
        let log = log.clone();
        std::thread::spawn(move || {
            // Keeps draining so the process never blocks on a full pipe.
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                // Into the log first: a caller told the port reads the
                // line that named it.
                log.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&format!("{line}\n"));
                if let Some(rest) = line.split(marker).nth(1) {
                    let port: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                    if let Ok(p) = port.parse() {
                        let _ = tx.send(p);
                    }
                }
            }
        });
    }
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(port) => Process { child, port, log },
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let said = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
            panic!("{what} did not report a listening port within 60 s; it said:\n{said}");
        }
    }
}

/// Starts `fleetpulse demo` in this process, its state in `dir`, with the
/// static AWS credentials its simulated cloud accepts.
pub async fn start_demo(dir: &std::path::Path) -> fleetpulse::demo::Demo {
    // Every test sets the same values, so concurrent setting is benign.
    fleetpulse::demo::use_demo_aws_credentials();
    fleetpulse::demo::start("127.0.0.1:0".parse().unwrap(), dir)
        .await
        .expect("demo starts")
}

/// Open file descriptors and resident memory (VmRSS, KiB) of a process.
pub fn resources(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    (fds, rss)
}

/// Held by the tests that load the whole machine (10,000 connections, push
/// and scrape load, a killed and restarted server, a browser), and by the
/// tests whose deadlines such load would break (a demo whose sources must
/// all stay up to the second): they never run at the same time.
pub async fn machine_alone() -> tokio::sync::MutexGuard<'static, ()> {
    static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ALONE.lock().await
}

include!("recorded.rs");
