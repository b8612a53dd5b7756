#!/usr/bin/env bash
# bench/convert.sh: `qcow2j convert -O qcow2` against `qemu-img convert -O qcow2` with the same flags, on the
# same source: a qcow2 image of mixed content (per 64 MiB: 16 MiB random data, 16 MiB text, 16 MiB written
# zeros, 16 MiB hole), plus a 1 TiB sparse image. The two tools run alternately (the order rotates with the
# repetition); the report prints medians and the ratio qemu-img time / qcow2j time (above 1: qcow2j faster).
# Times are wall-clock of the whole command, the JVM's start included. Every output is checked: qemu-img
# compare with the source, and qemu-img check on qcow2j's. Each run's time goes to stderr as it ends; the
# load average at the start and the end is printed with the table (say so when quoting numbers from a busy
# machine).
#
#   bench/convert.sh             4 GiB source, 3 repetitions (a few minutes on 2 idle cores)
#   bench/convert.sh --smoke     256 MiB source, 1 repetition (CI: about a minute)
#
# Options: --dir DIR (default /dev/shm/qcow2j-convert-bench), --reps N, --size-mib N,
#   --only KEYS   run a subset of the flag sets, comma-separated keys: plain, mW (-m 8 -W), c (-c),
#                 cmW (-c -m 8 -W), sparse (1 TiB sparse); e.g. --only plain,mW,sparse
#   --keep        keep DIR and its sources, and reuse them when they are there: split a long run into
#                 several shorter ones (e.g. under a time-limited lock) without making the source again.
# QCOW2J_B=PATH   also run a second qcow2j launcher (e.g. another checkout's ./qcow2j) in the same rotation:
#                 the report adds its medians and the ratio of its time to this checkout's (A/B of two builds).
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$root"
size_mib=4096 reps=3 dir=/dev/shm/qcow2j-convert-bench only=plain,mW,c,cmW,sparse keep=
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) size_mib=256; reps=1 ;;
    --dir) dir=$2; shift ;;
    --reps) reps=$2; shift ;;
    --size-mib) size_mib=$2; shift ;;
    --only) only=$2; shift ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "convert.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
  shift
done
command -v qemu-img >/dev/null || { echo "convert.sh: qemu-img is needed (apt-get install qemu-utils)" >&2; exit 2; }
./qcow2j --version >/dev/null # builds the CLI on first use
qcow2j_b=${QCOW2J_B:-}
[ -z "$qcow2j_b" ] || "$qcow2j_b" --version >/dev/null
mkdir -p "$dir"
if [ -n "$keep" ]; then trap 'rm -f "$dir/out.qcow2"' EXIT; else trap 'rm -rf "$dir"' EXIT; fi
src=$dir/src.qcow2
raw=$dir/src.raw
sparse=$dir/sparse.qcow2
if [ -n "$keep" ] && [ "$(cat "$dir/src.mib" 2>/dev/null)" = "$size_mib" ] && [ -f "$src" ] && [ -f "$sparse" ]; then
  echo "convert.sh: reusing the sources in $dir" >&2
else
rm -f "$dir/src.mib"

# the source: written as raw, converted by qemu-img, then the zero quarter written as allocated zeros
python3 - "$raw" "$size_mib" <<'PY'
import os, sys
path, mib = sys.argv[1], int(sys.argv[2])
text = open('/etc/services', 'rb').read() if os.path.exists('/etc/services') else b'qcow2j convert benchmark text\n'
text = (text * (16 * 2**20 // len(text) + 1))[:16 * 2**20]
rnd = os.urandom(16 * 2**20)
with open(path, 'wb') as f:
    f.truncate(mib * 2**20)
    for seg in range(0, mib, 64):
        f.seek(seg * 2**20)
        f.write(rnd[seg % 7:] + rnd[:seg % 7])
        f.write(text)
PY
qemu-img convert -f raw -O qcow2 "$raw" "$src"
rm -f "$raw"
zeros=()
for ((seg = 0; seg < size_mib; seg += 64)); do zeros+=(-c "write -q -P 0 $((seg + 32))M 16M"); done
qemu-io -f qcow2 "${zeros[@]}" "$src"
qemu-img create -q -f qcow2 "$sparse" 1T
qemu-io -f qcow2 -c 'write -q -P 1 0 1M' -c 'write -q -P 2 512G 1M' -c 'write -q -P 3 1023G 1M' "$sparse"
echo "$size_mib" >"$dir/src.mib"
fi

now() { date +%s%N; }
declare -A times
run() { # tool label src args...
  local tool=$1 label=$2 from=$3; shift 3
  local out=$dir/out.qcow2
  rm -f "$out"
  sync
  local t0; t0=$(now)
  case $tool in
    qemu) qemu-img convert -O qcow2 "$@" "$from" "$out" ;;
    qcow2j) ./qcow2j convert -O qcow2 "$@" "$from" "$out" ;;
    B) "$qcow2j_b" convert -O qcow2 "$@" "$from" "$out" ;;
  esac
  local t1; t1=$(now)
  qemu-img compare -q "$from" "$out" || { echo "convert.sh: $tool $label: output differs from the source" >&2; exit 1; }
  if [ "$tool" != qemu ]; then
    qemu-img check -q "$out" || { echo "convert.sh: $tool $label: qemu-img check is not clean" >&2; exit 1; }
  fi
  echo "convert.sh: rep $r $tool $label: $(( (t1 - t0) / 1000000 )) ms, $(stat -c %s "$out") bytes" >&2
  times[$tool,$label]+="$(( (t1 - t0) / 1000000 )) "
  sizes[$tool,$label]=$(stat -c %s "$out")
}
declare -A sizes
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
labels=()
for key in ${only//,/ }; do
  case $key in
    plain) labels+=("plain") ;;
    mW) labels+=("-m 8 -W") ;;
    c) labels+=("-c") ;;
    cmW) labels+=("-c -m 8 -W") ;;
    sparse) labels+=("1 TiB sparse") ;;
    *) echo "convert.sh: unknown --only key $key (plain, mW, c, cmW, sparse)" >&2; exit 2 ;;
  esac
done
for ((r = 0; r < reps; r++)); do
  for label in "${labels[@]}"; do
    from=$src; args=()
    case $label in
      "plain") ;;
      "-m 8 -W") args=(-m 8 -W) ;;
      "-c") args=(-c) ;;
      "-c -m 8 -W") args=(-c -m 8 -W) ;;
      "1 TiB sparse") from=$sparse ;;
    esac
    tools=(qemu qcow2j); [ -z "$qcow2j_b" ] || tools+=(B)
    n=${#tools[@]}
    for ((k = 0; k < n; k++)); do run "${tools[(k + r) % n]}" "$label" "$from" "${args[@]}"; done
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
echo "source: ${size_mib} MiB mixed (random, text, zeros, holes); $reps repetition(s); $(nproc) cores; dir $dir"
echo "load average (1/5/15 min) at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| %-14s | %12s | %12s | %8s | %14s | %14s |' flags "qemu-img ms" "qcow2j ms" speedup "qemu-img bytes" "qcow2j bytes"
[ -z "$qcow2j_b" ] || printf ' %8s | %8s | %8s |' "B ms" "qemu/B" "B/qcow2j"
printf '\n|%s|' "----------------|--------------|--------------|----------|----------------|----------------"
[ -z "$qcow2j_b" ] || printf '%s|' "----------|----------|----------"
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
for label in "${labels[@]}"; do
  q=$(echo "${times[qemu,$label]:-}" | median); o=$(echo "${times[qcow2j,$label]:-}" | median)
  printf '| %-14s | %12s | %12s | %7sx | %14s | %14s |' "$label" "$q" "$o" "$(ratio "$q" "$o")" \
    "${sizes[qemu,$label]:-}" "${sizes[qcow2j,$label]:-}"
  if [ -n "$qcow2j_b" ]; then
    b=$(echo "${times[B,$label]:-}" | median)
    printf ' %8s | %7sx | %7sx |' "$b" "$(ratio "$q" "$b")" "$(ratio "$b" "$o")"
  fi
  echo
done
[ -z "$qcow2j_b" ] || echo "B: $qcow2j_b; B/qcow2j above 1: this checkout is faster than B"
