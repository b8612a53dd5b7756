#!/usr/bin/env bash
# qcow2j serve against qemu-nbd, and the nbdkit ceiling, through the same client: fio's nbd engine (libnbd),
# the same qcow2 image on tmpfs, the servers alternating, medians of the repetitions and the ratios
# qcow2j / qemu-nbd and qcow2j / nbdkit.
#
#   bench/nbd.sh [--smoke] [--reps N] [--runtime SECONDS] [--size SIZE] [--transports "unix tcp"]
#               [--servers "qemu-nbd qcow2j nbdkit"] [--scenarios "..."]
#
# A/B: the server qcow2j-b (add it to --servers) is the launcher $QCOW2J_B (default ./qcow2j) run with the
# environment assignments $QCOW2J_B_ENV (e.g. "QCOW2J_NBD_SPIN_NS=0"): another build, or the same one
# configured otherwise, alternating with qcow2j in the same run; the table adds qcow2j / qcow2j-b.
#
# Scenarios: 4 KiB random reads at depth 1 and 16, 4 KiB random writes at depth 16 (on a fully allocated
# image), and 64 KiB sequential writes on a fresh image (timed: allocating until fio wraps around, then
# overwrites); allocwrite64k (not in the default list) writes a fresh image once, every request allocating;
# allocwrite64k-warm (not in the default list either) does the same on a fresh image of twice the size with
# a server that has just written its first half (untimed), so that it measures a warm server's allocating
# writes (for qcow2j: after the JIT's warm-up; allocwrite64k includes it). nbdkit is the ceiling of this client and
# transport: its file plugin serves bytes with no format in between, the qcow2 file itself for the reads (a
# fully allocated image is its data plus a little metadata), and for the writes a raw file of the same
# virtual size (fully written, or new and sparse for the allocating writes), since writing the raw bytes of
# a qcow2 file would break it. nbdkit-null (add it to --servers) is nbdkit's null plugin: no storage at all,
# writes dropped and reads answered with zeros, so it measures what the client and the transport alone allow
# (the most any server could reach). nbdkit-t1 (add it to --servers) is the file plugin with one thread per
# connection (nbdkit -t 1): each request read, written and answered in turn on that thread, with no format in
# between and no hand-off, the least work per request of any server that stores the bytes (qcow2j serves
# inline the same way). --smoke: 1 repetition of 3 s on a 256 MiB image, Unix socket only (about a
# minute). Prints a Markdown table; raw fio JSON goes to bench/results/.
set -euo pipefail
root=$(dirname "$(readlink -f "$0")")/..
reps=3 runtime=10 size=1G transports="unix tcp" mode=full servers_all="qemu-nbd qcow2j nbdkit"
scenarios="randread4k-qd1 randread4k-qd16 randwrite4k-qd16 seqwrite64k"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) reps=1 runtime=3 size=256M transports=unix mode=smoke ;;
    --reps) reps=$2; shift ;;
    --runtime) runtime=$2; shift ;;
    --transports) transports=$2; shift ;;
    --size) size=$2; shift ;;
    --servers) servers_all=$2; shift ;;
    --scenarios) scenarios=$2; shift ;;
    *) echo "usage: $0 [--smoke] [--reps N] [--runtime S] [--size SIZE] [--transports \"unix tcp\"]" \
            "[--servers \"qemu-nbd qcow2j nbdkit\"] [--scenarios \"...\"]" >&2; exit 2 ;;
  esac
  shift
done
for t in fio qemu-nbd qemu-img qemu-io python3 nbdinfo $(case "$servers_all" in *nbdkit*) echo nbdkit;; esac); do
  command -v $t >/dev/null || { echo "bench/nbd.sh: needs $t" >&2; exit 1; }
done
fio --enghelp 2>/dev/null | grep -qw nbd || { echo "bench/nbd.sh: this fio has no nbd engine" >&2; exit 1; }
"$root/qcow2j" --version >/dev/null # builds the CLI if needed
work=/dev/shm/qcow2j-nbd-bench
results="$root/bench/results/$(date -u +%Y%m%dT%H%M%S)-nbd-$mode"
mkdir -p "$work" "$results"
tsv="$results/runs.tsv"
printf 'scenario\ttransport\tserver\trep\tiops\n' > "$tsv"
server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=
}
trap 'stop_server; rm -rf "$work"' EXIT

# start_server SERVER TRANSPORT IMAGE: sets uri
start_server() {
  local server=$1 transport=$2 img=$3 addr
  if [ "$transport" = unix ]; then addr=(-k "$work/sock"); uri="nbd+unix:///?socket=$work/sock"
  else addr=(-b 127.0.0.1 -p 10899); uri="nbd://127.0.0.1:10899/"; fi
  rm -f "$work/sock"
  if [ "$server" = qcow2j-b ]; then
    env ${QCOW2J_B_ENV:-} "${QCOW2J_B:-$root/qcow2j}" serve "${addr[@]}" -t -e 4 -f qcow2 "$img" > "$work/ready" 2> "$results/serve-b.err" &
  elif [ "$server" = qcow2j ]; then
    "$root/qcow2j" serve "${addr[@]}" -t -e 4 -f qcow2 "$img" > "$work/ready" 2> "$results/serve.err" &
  elif [ "$server" = nbdkit ]; then
    if [ "$transport" = unix ]; then addr=(-U "$work/sock"); else addr=(-i 127.0.0.1 -p 10899); fi
    nbdkit -f "${addr[@]}" file "file=$img" 2> "$results/nbdkit.err" &
  elif [ "$server" = nbdkit-t1 ]; then
    # the same plugin with one thread per connection: each request read, written and answered in turn on
    # that thread, the way qcow2j serves inline (no hand-off between threads)
    if [ "$transport" = unix ]; then addr=(-U "$work/sock"); else addr=(-i 127.0.0.1 -p 10899); fi
    nbdkit -f -t 1 "${addr[@]}" file "file=$img" 2> "$results/nbdkit-t1.err" &
  elif [ "$server" = nbdkit-null ]; then
    # no storage at all (writes dropped, reads are zeros): what the client and the transport alone allow
    if [ "$transport" = unix ]; then addr=(-U "$work/sock"); else addr=(-i 127.0.0.1 -p 10899); fi
    nbdkit -f "${addr[@]}" null "size=$(image_size "$scenario")" 2> "$results/nbdkit-null.err" &
  else
    qemu-nbd "${addr[@]}" -t -e 4 -f qcow2 --cache=writeback --aio=threads "$img" 2> "$results/qemu-nbd.err" &
  fi
  server_pid=$!
  for _ in $(seq 200); do
    nbdinfo --size "$uri" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "bench/nbd.sh: $server did not start" >&2; exit 1
}

# image_size SCENARIO: the virtual size of its image (twice --size for allocwrite64k-warm)
image_size() {
  if [ "$1" = allocwrite64k-warm ]; then echo $((2 * $(numfmt --from=iec "$size"))); else echo "$size"; fi
}

# prepare SCENARIO IMAGE SERVER: a fully written image for the random scenarios, a fresh one for allocating
# writes; nbdkit writes to a raw file of the same size instead (it would break the qcow2 file). Sets img.
prepare() {
  img=$2
  if [ "${3%-t1}" = nbdkit ] && [ "$1" != "${1#*write}" ]; then img=$work/img.raw; fi
  rm -f "$img"
  local isize; isize=$(image_size "$1")
  if [ "$img" = "$2" ]; then qemu-img create -q -f qcow2 "$img" "$isize"; else truncate -s "$isize" "$img"; fi
  if [ "$1" != seqwrite64k ] && [ "$1" != allocwrite64k ] && [ "$1" != allocwrite64k-warm ]; then qemu-io -f "$(case $img in *.raw) echo raw;; *) echo qcow2;; esac)" \
      -c "write -P 0x5a 0 $size" "$img" >/dev/null; fi
}

run_fio() { # SCENARIO URI OUT
  local args
  case "$1" in
    randread4k-qd1) args=(--rw=randread --bs=4k --iodepth=1) ;;
    randread4k-qd16) args=(--rw=randread --bs=4k --iodepth=16) ;;
    randwrite4k-qd16) args=(--rw=randwrite --bs=4k --iodepth=16) ;;
    seqwrite64k) args=(--rw=write --bs=64k --iodepth=16) ;;
    allocwrite64k) args=(--rw=write --bs=64k --iodepth=16) ;;
    allocwrite64k-warm) args=(--rw=write --bs=64k --iodepth=16 --offset="$size")
      fio --name=warm-up --ioengine=nbd --uri="$2" --rw=write --bs=64k --iodepth=16 --size="$size" >/dev/null ;;
  esac
  # allocwrite64k writes the fresh image once, every request allocating, however long that takes (a timed
  # run wraps around and overwrites: at 2 GB/s even 1 GiB is written in half a second)
  [ "${1%-warm}" = allocwrite64k ] || args+=(--runtime="$runtime" --time_based --ramp_time=1)
  fio --name="$1" --ioengine=nbd --uri="$2" "${args[@]}" --size="$size" \
      --output-format=json --output="$3" > /dev/null
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]; print(round(j["read"]["iops"]+j["write"]["iops"]))' "$3"
}

rotate() { # N WORD...: the words rotated left by N
  local n=$1 i; shift; local a=("$@")
  for ((i = 0; i < ${#a[@]}; i++)); do printf '%s ' "${a[(i + n) % ${#a[@]}]}"; done
}

for rep in $(seq "$reps"); do
  for transport in $transports; do
    for scenario in $scenarios; do
      # rotate which server goes first from one repetition to the next
      servers=$(rotate $((rep - 1)) $servers_all)
      for server in $servers; do
        prepare "$scenario" "$work/img.qcow2" "$server"
        start_server "$server" "$transport" "$img"
        iops=$(run_fio "$scenario" "$uri" "$results/$scenario-$transport-$server-$rep.json")
        stop_server
        if [ "$img" = "$work/img.qcow2" ] && [ "${server%-t1}" != nbdkit ]; then
          qemu-img check -q "$img" || echo "bench/nbd.sh: image not clean after $server" >&2
        fi
        printf '%s\t%s\t%s\t%s\t%s\n' "$scenario" "$transport" "$server" "$rep" "$iops" >> "$tsv"
        echo "$scenario $transport $server rep $rep: $iops IOPS" >&2
      done
    done
  done
done
{ uname -a; nproc; uptime; fio --version; qemu-nbd --version | head -1; nbdkit --version 2>/dev/null
  git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout"; } > "$results/env.txt"
python3 - "$tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
servers = [s for s in ("qemu-nbd", "qcow2j", "nbdkit", "nbdkit-t1", "nbdkit-null", "qcow2j-b") if any(r["server"] == s for r in rows)]
keys = sorted({(r["scenario"], r["transport"]) for r in rows}, key=lambda k: (k[1], k[0]))
ratios = [o for o in ("qemu-nbd", "nbdkit", "nbdkit-t1", "qcow2j-b") if o in servers and "qcow2j" in servers]
print("| scenario | transport | " + " | ".join(s + " IOPS" for s in servers)
      + "".join(f" | qcow2j / {o}" for o in ratios) + " |")
print("|---|---|" + "---:|" * (len(servers) + len(ratios)))
for s, t in keys:
    med = {}
    for srv in servers:
        v = [int(r["iops"]) for r in rows if (r["scenario"], r["transport"], r["server"]) == (s, t, srv)]
        med[srv] = statistics.median(v) if v else float("nan")
    cells = [f"{med[srv]:.0f}" for srv in servers] + [f"{med['qcow2j'] / med[o]:.2f}" for o in ratios]
    print(f"| {s} | {t} | " + " | ".join(cells) + " |")
PY
echo "raw data: $results" >&2
