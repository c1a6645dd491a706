#!/usr/bin/env bash
# Ingest benchmark: 10,000 distinct boxes each pushing heartbeats, driven by
# Debian's wrk (bench/ingest.lua) with bounded concurrency on loopback,
# against fleetpulse (every push committed to SQLite before its 200) and
# against prometheus-pushgateway in its fastest mode (in memory,
# --push.disable-consistency-check). Then the time to serve /metrics with
# 10,000 boxes, for both. Bounded: about a minute of load in all.
#
# Usage: bench/ingest.sh        (from anywhere; see bench/README.md "Ingest")
# Env:   BENCH_BOXES (10000)  BENCH_CONNECTIONS (64)  BENCH_SECONDS (10)
#        BENCH_WRK_THREADS (1)  FLEETPULSE_BIN (default: a --release build)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
boxes="${BENCH_BOXES:-10000}"
conns="${BENCH_CONNECTIONS:-64}"
seconds="${BENCH_SECONDS:-10}"
wrk_threads="${BENCH_WRK_THREADS:-1}"

say() { echo "bench/ingest: $*" >&2; }
die() { say "$*"; exit 1; }

for tool in wrk prometheus-pushgateway curl python3 sqlite3; do
    command -v "$tool" >/dev/null || {
        say "installing peers (scripts/install-test-deps)"
        bash scripts/install-test-deps >&2
        break
    }
done
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
command -v prometheus-pushgateway >/dev/null || die "prometheus-pushgateway is missing"

bin="${FLEETPULSE_BIN:-}"
if [ -z "$bin" ]; then
    say "building (cargo build --release --bin fleetpulse)"
    cargo build --release --quiet --bin fleetpulse
    bin="$CARGO_TARGET_DIR/release/fleetpulse"
fi

work="$(mktemp -d -t fleetpulse-ingest-bench.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # url seconds
    local deadline=$((SECONDS + $2))
    until curl -fsS -o /dev/null "$1" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || die "$1 did not answer within $2 s"
        sleep 0.1
    done
}
# wrk_field FILE: requests/s, requests, non-2xx, p50, p99 (ms) from wrk --latency output.
wrk_summary() {
    python3 - "$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(s):
    v, u = re.match(r"([\d.]+)(us|ms|s)", s).groups()
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
n = int(re.search(r"(\d+) requests in", t).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
errs = re.search(r"Socket errors: (.*)", t)
p = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", t, re.M))
print(f"{rps:.0f} {n} {int(bad.group(1)) if bad else 0} {ms(p['50']):.2f} {ms(p['99']):.2f} {'yes' if errs else 'no'}")
PY
}

# --- fleetpulse ---------------------------------------------------------
token="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
hash="$(printf '%s' "$token" | "$bin" hash-token)"
printf -- '- sha256: %s\n  names: ["*"]\n  id: bench\n' "$hash" >"$work/tokens.yaml"
fp_port="$(free_port)"
python3 - "$work" "$boxes" "$fp_port" <<'PY'
import sys
work, boxes, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
per = 1000
with open(f"{work}/fleet.yaml", "w") as f:
    f.write(f"listen: 127.0.0.1:{port}\nstate_dir: {work}/state\n")
    f.write(f"ingest:\n  tokens_file: {work}/tokens.yaml\nenvironments:\n")
    for e in range((boxes + per - 1) // per):
        names = ", ".join(f"box-{i:05d}" for i in range(e * per, min(boxes, (e + 1) * per)))
        f.write(f"  - name: stack-{e}\n    boxes: [{names}]\n")
PY
"$bin" check-config "$work/fleet.yaml" >/dev/null
"$bin" --log-level warn serve --config "$work/fleet.yaml" >"$work/fleetpulse.log" 2>&1 &
fp_pid=$!
pids+=($fp_pid)
wait_http "http://127.0.0.1:$fp_port/healthz" 30

say "fleetpulse: $boxes boxes, $conns connections, ${seconds}s of heartbeats"
wrk -t"$wrk_threads" -c"$conns" -d"${seconds}s" --latency -s bench/ingest.lua \
    "http://127.0.0.1:$fp_port" -- "$boxes" fleetpulse "$token" >"$work/fp.wrk"
read -r fp_rps fp_n fp_bad fp_p50 fp_p99 fp_errs < <(wrk_summary "$work/fp.wrk")
curl -fsS "http://127.0.0.1:$fp_port/metrics" >"$work/fp.metrics"
fp_series="$(grep -c '^fleet_heartbeat_timestamp_seconds{' "$work/fp.metrics" || true)"
fp_counted="$(awk '/^fleet_heartbeats_total\{/ { s += $2 } END { printf "%d", s }' "$work/fp.metrics")"
fp_on_disk="$(sqlite3 -readonly "$work/state/fleetpulse.db" 'SELECT sum(count) FROM heartbeats')"
wrk -t1 -c1 -d5s --latency "http://127.0.0.1:$fp_port/metrics" >"$work/fp-metrics.wrk"
read -r _ fp_m_n _ fp_m_p50 fp_m_p99 _ < <(wrk_summary "$work/fp-metrics.wrk")
fp_m_bytes="$(wc -c <"$work/fp.metrics")"
fp_rss="$(awk '/VmHWM/ { print $2 }' "/proc/$fp_pid/status")"
kill "$fp_pid"

# --- pushgateway --------------------------------------------------------
# pushgateway NAME [FLAG...]: starts one in memory on a free port (sets
# pg_port, pg_pid) and drives it with the same load into $work/NAME.wrk.
pushgateway() {
    local name="$1"
    shift
    pg_port="$(free_port)"
    prometheus-pushgateway --web.listen-address="127.0.0.1:$pg_port" --persistence.file= \
        --log.level=warn "$@" >"$work/$name.log" 2>&1 &
    pg_pid=$!
    pids+=($pg_pid)
    wait_http "http://127.0.0.1:$pg_port/metrics" 30
    wrk -t"$wrk_threads" -c"$conns" -d"${seconds}s" --latency -s bench/ingest.lua \
        "http://127.0.0.1:$pg_port" -- "$boxes" pushgateway >"$work/$name.wrk"
}

say "pushgateway (in memory, consistency check off): same load"
pushgateway pg --push.disable-consistency-check
read -r pg_rps pg_n pg_bad pg_p50 pg_p99 pg_errs < <(wrk_summary "$work/pg.wrk")
curl -fsS "http://127.0.0.1:$pg_port/metrics" >"$work/pg.metrics"
pg_series="$(grep -c '^box_heartbeat_timestamp_seconds{' "$work/pg.metrics" || true)"
wrk -t1 -c1 -d5s --latency "http://127.0.0.1:$pg_port/metrics" >"$work/pg-metrics.wrk"
read -r _ pg_m_n _ pg_m_p50 pg_m_p99 _ < <(wrk_summary "$work/pg-metrics.wrk")
pg_m_bytes="$(wc -c <"$work/pg.metrics")"
pg_rss="$(awk '/VmHWM/ { print $2 }' "/proc/$pg_pid/status")"

kill "$pg_pid"

# pushgateway in its default mode (consistency check on), for reference.
say "pushgateway (in memory, default consistency check): same load"
pushgateway pgd
read -r pgd_rps pgd_n pgd_bad pgd_p50 pgd_p99 pgd_errs < <(wrk_summary "$work/pgd.wrk")
kill "$pg_pid"

[ "$fp_series" -eq "$boxes" ] || die "fleetpulse exposes $fp_series boxes, not $boxes"
[ "$pg_series" -eq "$boxes" ] || die "pushgateway exposes $pg_series boxes, not $boxes"
[ "$fp_bad" -eq 0 ] || die "fleetpulse answered $fp_bad pushes with an error"
[ "$fp_on_disk" -ge "$fp_n" ] || die "only $fp_on_disk of $fp_n acknowledged pushes are on disk"

for k in fp_rps fp_n fp_bad fp_p50 fp_p99 fp_counted fp_on_disk fp_series fp_m_n fp_m_p50 fp_m_p99 \
         fp_m_bytes fp_rss pg_rps pg_n pg_bad pg_p50 pg_p99 pg_series pg_m_n pg_m_p50 pg_m_p99 \
         pg_m_bytes pg_rss pgd_rps pgd_n pgd_bad pgd_p50 pgd_p99; do
    echo "ingest_$k=${!k}" >&2
done
ratio() { awk "BEGIN { printf \"%.2f\", $1 }"; }
met() { if awk "BEGIN { exit !($1) }"; then echo met; else echo "NOT met"; fi; }
echo "ingest bench — $boxes boxes, $conns connections, ${seconds}s, wrk threads $wrk_threads, $(nproc) cores"
printf '%-30s %14s %14s %8s  %s\n' "measure" "fleetpulse" "pushgateway" "ratio" "target"
row() { printf '%-30s %14s %14s %8s  %s\n' "$@"; }
row "heartbeat pushes/s" "$fp_rps" "$pg_rps" "$(ratio "$fp_rps/$pg_rps")" ">= 1 $(met "$fp_rps >= $pg_rps")"
row "  pushgateway default mode" "$fp_rps" "$pgd_rps" "$(ratio "$fp_rps/$pgd_rps")" "-"
row "push latency p50 / p99 ms" "$fp_p50 / $fp_p99" "$pg_p50 / $pg_p99" "-" "-"
row "pushes acked / errors" "$fp_n / $fp_bad" "$pg_n / $pg_bad" "-" "-"
row "acked pushes on disk" "$fp_on_disk" "0 (memory)" "-" ">= acked"
row "/metrics p50 / p99 ms" "$fp_m_p50 / $fp_m_p99" "$pg_m_p50 / $pg_m_p99" \
    "$(ratio "$pg_m_p50/$fp_m_p50")x" ">= 1x $(met "$pg_m_p50 >= $fp_m_p50")"
row "/metrics bytes ($boxes boxes)" "$fp_m_bytes" "$pg_m_bytes" "-" "-"
row "peak RSS MiB" "$(ratio "$fp_rss/1024")" "$(ratio "$pg_rss/1024")" "-" "-"
