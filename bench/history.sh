#!/usr/bin/env bash
# The cost of history: fleetpulse with history recorded and without, side by
# side in one run, probing the same 1,000 services of which 10% change state
# every sweep; the recording one on a store pre-filled with 90 days of hourly
# flaps per service. Prints key=value lines and a table (see bench/README.md).
#
# Usage: bench/history.sh      Env: BENCH_HISTORY_SECONDS (60) CPU window,
#                                   BENCH_HISTORY_WINDOWS (3) how many,
#                                   BENCH_HISTORY_DAYS (90), BENCH_REQUESTS (200)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
window="${BENCH_HISTORY_SECONDS:-60}"
windows="${BENCH_HISTORY_WINDOWS:-3}"
days="${BENCH_HISTORY_DAYS:-90}"
requests="${BENCH_REQUESTS:-200}"

say() { echo "bench-history: $*" >&2; }
die() { say "$*"; exit 1; }
command -v curl >/dev/null || die "curl is missing (scripts/install-test-deps installs it)"

say "building (cargo build --release)"
cargo build --release --quiet --bin fleetpulse --example bench_history
bin="$CARGO_TARGET_DIR/release/fleetpulse"
harness="$CARGO_TARGET_DIR/release/examples/bench_history"

work="$(mktemp -d -t fleetpulse-bench-history.XXXXXX)"
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
out="$work/results"
ms_now() { date +%s%3N; }

say "starting 1,000 TLS /healthz endpoints, 10% changing state every 5 s"
"$harness" fleet "$work/fleet" --services 1000 --flip-percent 10 --every 5 >"$work/fleet.out" 2>&1 &
pids+=($!)
for _ in $(seq 300); do grep -q '^ready' "$work/fleet.out" && break; sleep 0.2; done
grep -q '^ready' "$work/fleet.out" || die "fleet did not start: $(cat "$work/fleet.out")"

say "pre-filling a store with $days days of hourly flaps for 1,000 services"
"$harness" prefill --state "$work/on" --services 1000 --days "$days" >>"$out"

on_port="$(free_port)"; off_port="$(free_port)"
t0="$(ms_now)"
"$bin" --log.level warn serve --config "$work/fleet/on.yaml" --state-dir "$work/on" \
    --web.listen-address "127.0.0.1:$on_port" 2>"$work/on.log" &
on_pid=$!; pids+=($on_pid)
until curl -fsS -o /dev/null "http://127.0.0.1:$on_port/healthz" 2>/dev/null; do
    kill -0 "$on_pid" 2>/dev/null || die "fleetpulse (history) exited: $(tail -5 "$work/on.log")"
    sleep 0.01
done
echo "startup_on_ms=$(( $(ms_now) - t0 ))" >>"$out"
t0="$(ms_now)"
"$bin" --log.level warn serve --config "$work/fleet/off.yaml" --state-dir "$work/off" \
    --web.listen-address "127.0.0.1:$off_port" 2>"$work/off.log" &
off_pid=$!; pids+=($off_pid)
until curl -fsS -o /dev/null "http://127.0.0.1:$off_port/healthz" 2>/dev/null; do
    kill -0 "$off_pid" 2>/dev/null || die "fleetpulse (no history) exited: $(tail -5 "$work/off.log")"
    sleep 0.01
done
echo "startup_off_ms=$(( $(ms_now) - t0 ))" >>"$out"
# A second exporter without history: the difference between the two is the
# noise floor of the CPU comparison.
off2_port="$(free_port)"
"$bin" --log.level warn serve --config "$work/fleet/off.yaml" --state-dir "$work/off2" \
    --web.listen-address "127.0.0.1:$off2_port" 2>"$work/off2.log" &
off2_pid=$!; pids+=($off2_pid)
until curl -fsS -o /dev/null "http://127.0.0.1:$off2_port/healthz" 2>/dev/null; do sleep 0.01; done

# Past the history exporter's start-up work (reading the history, the
# first prune of a 90-day store) before anything is measured.
say "warming up: six sweeps"
sleep 30
changes() { # the sum of every service's health changes
    curl -fsS "http://127.0.0.1:$on_port/metrics" | awk '/^fleet_service_health_changes_total\{/ {n += $2} END {print n + 0}'
}
before="$(changes)"
say "measuring CPU: $windows windows of $window s, the three exporters at once"
"$harness" cpu --pid-on "$on_pid" --pid-off "$off_pid" --pid-off2 "$off2_pid" --seconds "$window" --windows "$windows" >>"$out"
echo "health_changes_in_window=$(( $(changes) - before ))" >>"$out"
for pid in "$on_pid" "$off_pid"; do
    name=on; [ "$pid" = "$off_pid" ] && name=off
    echo "rss_${name}_kib=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)" >>"$out"
done

say "timing /api/v1/events and the page ($requests requests each)"
"$harness" latency --url "http://127.0.0.1:$on_port/api/v1/events?limit=100" --requests "$requests" --prefix events_newest >>"$out"
"$harness" latency --url "http://127.0.0.1:$on_port/api/v1/events?stack=env-42&kind=health&since=24h&limit=100" --requests "$requests" --prefix events_subject >>"$out"
"$harness" latency --url "http://127.0.0.1:$on_port/api/v1/events?stack=env-42&kind=health&limit=100" --requests 20 --prefix events_subject_all >>"$out"
"$harness" latency --url "http://127.0.0.1:$on_port/api/v1/events?kind=health&since=30d&until=29d&limit=1000" --requests "$requests" --prefix events_window >>"$out"
"$harness" latency --url "http://127.0.0.1:$on_port/" --requests "$requests" --prefix page_on >>"$out"
"$harness" latency --url "http://127.0.0.1:$off_port/" --requests "$requests" --prefix page_off >>"$out"

declare -A r
while IFS='=' read -r k v; do [ -n "$k" ] && r[$k]="$v"; done <"$out"
for k in "${!r[@]}"; do echo "$k=${r[$k]}"; done | sort
f() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
met() { if awk "BEGIN { exit !($1) }"; then echo met; else echo "NOT met"; fi; }
echo
echo "history bench — $(nproc) cores, 1,000 services, 10% changing state every 5 s sweep, ${days}-day store"
printf '%-44s %14s %14s %9s  %s\n' measure "history" "no history" ratio target
row() { printf '%-44s %14s %14s %9s  %s\n' "$@"; }
row "CPU s over ${windows} x ${window} s (median ratio)" "${r[cpu_on_s]}" "${r[cpu_off_s]}" "${r[cpu_ratio]}" "<= 1.10 $(met "${r[cpu_ratio]} <= 1.10")"
row "  per window (history / no history)" "${r[cpu_ratio_all]}" "-" "-" "-"
row "  noise floor (no history / no history)" "${r[cpu_off2_s]}" "${r[cpu_off_s]}" "${r[cpu_floor]}" "-"
row "health changes recorded in the windows" "${r[health_changes_in_window]}" "-" "-" "~$(( windows * window / 5 * 100 ))"
row "RSS MiB" "$(f "${r[rss_on_kib]}/1024" 1)" "$(f "${r[rss_off_kib]}/1024" 1)" "$(f "${r[rss_on_kib]}/${r[rss_off_kib]}")" "-"
row "startup ms to serving" "${r[startup_on_ms]}" "${r[startup_off_ms]}" "-" "-"
row "store: events / bytes / bytes per event" "${r[prefill_events]}" "${r[store_bytes]}" "${r[bytes_per_event]}" "-"
row "/api/v1/events newest 100, p50 / p99 ms" "${r[events_newest_p50_ms]} / ${r[events_newest_p99_ms]}" "-" "-" "-"
row "/api/v1/events one subject, 24 h, p50 / p99" "${r[events_subject_p50_ms]} / ${r[events_subject_p99_ms]}" "-" "-" "-"
row "/api/v1/events one subject, all, p50 / p99" "${r[events_subject_all_p50_ms]} / ${r[events_subject_all_p99_ms]}" "-" "-" "-"
row "/api/v1/events a day 30 d ago (1,000), p50 / p99" "${r[events_window_p50_ms]} / ${r[events_window_p99_ms]}" "-" "-" "-"
row "page / p50 / p99 ms" "${r[page_on_p50_ms]} / ${r[page_on_p99_ms]}" "${r[page_off_p50_ms]} / ${r[page_off_p99_ms]}" "$(f "${r[page_on_p50_ms]}/${r[page_off_p50_ms]}")" "-"
row "page bytes" "${r[page_on_bytes]}" "${r[page_off_bytes]}" "-" "-"
