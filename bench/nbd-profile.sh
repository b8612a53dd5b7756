#!/usr/bin/env bash
# Where the server's time goes per NBD request: 4 KiB random reads (or --rw/--bs) at depth 1 and 16 (or
# --depths) over the Unix socket against qcow2j serve, qemu-nbd and nbdkit (file plugin on the qcow2 file; on
# a raw file of the same size for writes, which would break the qcow2 file), each after a warm-up run.
# Per server and depth: server CPU (utime+stime of /proc/PID/stat, all threads) per request over one fio run;
# for qcow2j also a JFR execution-sample profile (top frames) and `strace -c -f` syscalls per request (in a
# separate run, strace slows the server). Output: bench/results/DATE-nbd-profile/.
# --qcow2j LAUNCHER profiles another build of qcow2j (e.g. an older commit's ./qcow2j); --tcp: over
# 127.0.0.1 instead of the Unix socket.
#   bench/nbd-profile.sh [--runtime S] [--size SIZE] [--rw randread|randwrite|write] [--bs BS]
#                        [--depths "1 16"] [--servers "qcow2j qemu-nbd nbdkit"] [--qcow2j LAUNCHER] [--tcp]
set -euo pipefail
root=$(dirname "$(readlink -f "$0")")/..
tcp= runtime=4 size=256M rw=randread bs=4k depths="1 16" servers="qcow2j qemu-nbd nbdkit" qcow2j=$root/qcow2j
while [ $# -gt 0 ]; do
  case "$1" in --runtime) runtime=$2; shift ;; --size) size=$2; shift ;; --rw) rw=$2; shift ;;
    --bs) bs=$2; shift ;; --depths) depths=$2; shift ;; --servers) servers=$2; shift ;;
    --qcow2j) qcow2j=$(readlink -f "$2"); shift ;; --tcp) tcp=1 ;;
    *) echo "usage: $0 [--runtime S] [--size SIZE] [--rw RW] [--bs BS] [--depths D] [--servers S]" \
            "[--qcow2j LAUNCHER] [--tcp]" >&2; exit 2 ;; esac; shift
done
case "$rw" in *read) dir=read ;; *) dir=write ;; esac
jdk=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
work=/dev/shm/qcow2j-nbd-profile
out="$root/bench/results/$(date -u +%Y%m%dT%H%M%S)-nbd-profile"
mkdir -p "$work" "$out"
sock=$work/sock uri="nbd+unix:///?socket=$work/sock"
listen=(-k "$sock") nbdkit_listen=(-U "$sock")
if [ -n "$tcp" ]; then
  uri="nbd://127.0.0.1:10898/" listen=(-b 127.0.0.1 -p 10898) nbdkit_listen=(-i 127.0.0.1 -p 10898)
fi
pid=
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; pid=; }
trap 'stop; rm -rf "$work"' EXIT
qemu-img create -q -f qcow2 "$work/img.qcow2" "$size"
qemu-io -f qcow2 -c "write -P 0x5a 0 $size" "$work/img.qcow2" >/dev/null
qemu-img create -q -f raw "$work/img.raw" "$size"
qemu-io -f raw -c "write -P 0x5a 0 $size" "$work/img.raw" >/dev/null
nbdkit_file=$work/img.qcow2
[ "$dir" = write ] && nbdkit_file=$work/img.raw
start() {
  rm -f "$sock"
  case "$1" in
    qcow2j) "$qcow2j" serve "${listen[@]}" -t -e 4 -f qcow2 "$work/img.qcow2" >/dev/null 2>"$out/serve.err" & ;;
    qemu-nbd) qemu-nbd "${listen[@]}" -t -e 4 -f qcow2 --cache=writeback --aio=threads "$work/img.qcow2" 2>/dev/null & ;;
    nbdkit) nbdkit -f "${nbdkit_listen[@]}" file "file=$nbdkit_file" 2>/dev/null & ;;
  esac
  pid=$!
  for _ in $(seq 200); do nbdinfo --size "$uri" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$1 did not start" >&2; exit 1
}
fio_run() { # DEPTH SECONDS JSON: prints total requests
  fio --name=r --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" --iodepth="$1" --size="$size" \
      --runtime="$2" --time_based --output-format=json --output="$3" >/dev/null
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]["total_ios"])' "$3" "$dir"
}
ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
printf 'server\tdepth\trequests\tIOPS\tcpu_us_per_request\n' > "$out/cpu.tsv"
echo "$rw $bs, depths $depths, qcow2j: $qcow2j" > "$out/what.txt"
for server in $servers; do
  for depth in $depths; do
    start "$server"
    fio_run "$depth" 3 "$out/warm.json" >/dev/null
    t0=$(ticks)
    [ "$server" = qcow2j ] && "$jdk/bin/jcmd" "$pid" JFR.start name=p settings=profile \
        filename="$out/qcow2j-qd$depth.jfr" >/dev/null
    # per-thread CPU at the end of the measured run (the connection's thread ends with it): name, utime+stime
    # ticks since the server started (the warm-up run included)
    ( sleep "$runtime"; for t in /proc/$pid/task/*; do
        printf '%s\t%s\n' "$(cat $t/comm)" "$(awk '{print $14+$15}' $t/stat)"; done 2>/dev/null \
        | sort -t$'\t' -k2 -rn | head -12 > "$out/threads-$server-qd$depth.txt" ) &
    tp=$!
    n=$(fio_run "$depth" "$runtime" "$out/$server-qd$depth.json")
    wait "$tp"
    t1=$(ticks)
    [ "$server" = qcow2j ] && "$jdk/bin/jcmd" "$pid" JFR.stop name=p >/dev/null
    printf '%s\t%s\t%s\t%s\t%s\n' "$server" "$depth" "$n" $((n / runtime)) \
        "$(python3 -c "print(round(($t1-$t0)/$hz*1e6/$n,1))")" >> "$out/cpu.tsv"
    if [ "$server" = qcow2j ]; then
      timeout $((runtime + 5)) strace -c -f -q -p "$pid" -o "$out/strace-qd$depth.txt" &
      spid=$!; sleep 1
      n=$(fio_run "$depth" "$runtime" "$out/strace-qd$depth.json")
      kill -INT "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
      echo "requests $n" >> "$out/strace-qd$depth.txt"
      "$jdk/bin/jfr" print --events jdk.ExecutionSample "$out/qcow2j-qd$depth.jfr" \
        | awk '/stackTrace = \[/{getline; sub(/^[ \t]+/,""); sub(/line:.*/,""); print}' \
        | sort | uniq -c | sort -rn | head -15 > "$out/jfr-top-qd$depth.txt"
    fi
    stop
  done
done
column -t "$out/cpu.tsv"
echo "results: $out" >&2
