#!/usr/bin/env bash
# Where qcow2j serve's time goes on allocating writes: 64 KiB sequential writes at depth 16 (fio's nbd engine,
# Unix socket) into a fresh 5 GiB qcow2 image on tmpfs, every request allocating a new cluster. One server:
# the first GiB warms it up (the JIT), the second is measured (IOPS, server CPU per request from
# /proc/PID/stat, per-thread CPU), the third runs under a JFR execution-sample profile, the fourth under
# `strace -c -f` (syscalls per request; strace slows the server, so its IOPS mean nothing).
#   bench/nbd-alloc-profile.sh [LAUNCHER]     (default ./qcow2j; output: bench/results/DATE-nbd-alloc-profile/)
set -euo pipefail
root=$(dirname "$(readlink -f "$0")")/..
launcher=$(readlink -f "${1:-$root/qcow2j}")
jdk=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
out="$root/bench/results/$(date -u +%Y%m%dT%H%M%S)-nbd-alloc-profile"
w=/dev/shm/qcow2j-nbd-alloc-profile
mkdir -p "$out" "$w"
sock=$w/sock uri="nbd+unix:///?socket=$w/sock"
qemu-img create -q -f qcow2 "$w/img.qcow2" 5G
"$launcher" serve -k "$sock" -t -e 4 -f qcow2 "$w/img.qcow2" >/dev/null 2>"$out/serve.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$w"' EXIT
for _ in $(seq 200); do nbdinfo --size "$uri" >/dev/null 2>&1 && break; sleep 0.1; done
gib() { # OFFSET NAME: writes one GiB from OFFSET, prints NAME, IOPS, requests
  fio --name=w --ioengine=nbd --uri="$uri" --rw=write --bs=64k --iodepth=16 --offset="$1" --size=1G \
      --output-format=json --output="$out/$2.json" >/dev/null
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]["write"]; print(sys.argv[2], round(j["iops"]), "IOPS", j["total_ios"], "requests")' "$out/$2.json" "$2"
}
ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
{
  gib 0 warm-up
  t0=$(ticks); gib 1G measured; t1=$(ticks)
  echo "server CPU per request (measured GiB): $(python3 -c "print(round(($t1-$t0)/$(getconf CLK_TCK)*1e6/16384,1))") us"
  echo "threads (utime+stime ticks since start):"
  for t in /proc/$pid/task/*; do printf '  %s\t%s\n' "$(cat $t/comm)" "$(awk '{print $14+$15}' $t/stat)"; done 2>/dev/null \
    | sort -t$'\t' -k2 -rn | head -8
  "$jdk/bin/jcmd" $pid JFR.start name=p settings=profile filename="$out/alloc.jfr" >/dev/null
  gib 2G jfr
  "$jdk/bin/jcmd" $pid JFR.stop name=p >/dev/null
  timeout 120 strace -c -f -q -p $pid -o "$out/strace.txt" & sp=$!
  sleep 1
  gib 3G strace
  kill -INT $sp 2>/dev/null || true; wait $sp 2>/dev/null || true
  head -12 "$out/strace.txt"
  echo "top frames (JFR execution samples):"
  "$jdk/bin/jfr" print --events jdk.ExecutionSample "$out/alloc.jfr" \
    | awk '/stackTrace = \[/{getline; sub(/^[ \t]+/,""); sub(/line:.*/,""); print}' | sort | uniq -c | sort -rn | head -15
} | tee "$out/summary.txt"
echo "results: $out" >&2
