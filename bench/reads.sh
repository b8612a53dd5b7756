#!/usr/bin/env bash
# bench/reads.sh: 4 KiB reads of a fully allocated image through qcow2j's asynchronous fast path, side by side
# with the same bench on a raw file holding the same bytes (qcow2j's raw pread with platform threads, and its
# asynchronous raw disk), qemu-img bench, and (O_DIRECT on the disk) fio with ioengine=io_uring. Tools
# alternate, their order rotating with each repetition; the report is the median IOPS per row and the ratios
# the issue's goals name, plus the cost per request at depth 1 (async against blocking).
#
#   bench/reads.sh [--reps N] [--count N] [--dirs "DIR ..."]   (defaults: 3 reps, 400000 requests;
#                                                               O_DIRECT rows a quarter of that)
#   bench/reads.sh --rows "direct-d16"                          (only these rows, where they apply)
#   CI=true bench/reads.sh                                      (bounded: 1 rep, 2000 requests, 64 MiB)
#
# Rows: covered-d16 and covered-d1 (buffered, the L2 cache covering the image: l2-cache-size=1M,
# l2-cache-entry-size=64k, as bench/compare.sh), and on a non-tmpfs folder direct-d16 (-t none). Offsets
# step by 40009 blocks (a prime: every block once per pass, in an order no readahead follows). The image is
# made by qemu-img convert from a raw file of random bytes, so every cluster is allocated (COPIED) and the
# raw file holds the same bytes. Output: TSV (fs row tool rep iops), then medians and ratios.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
reps=3 count=400000 size_mib=1024 only="" dirs="/dev/shm/qcow2j-reads $root/bench/results/reads-disk"
[ "${CI:-}" = true ] && reps=1 count=2000 size_mib=64
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift ;;
    --count) count=$2; shift ;;
    --dirs) dirs=$2; shift ;;
    --rows) only=$2; shift ;;
    *) echo "reads.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
q=$root/qcow2j
step=163876864
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# one run: prints IOPS
run() { # tool dir row
  local tool=$1 d=$2 row=$3 depth=16 cache=writeback log secs
  case $row in covered-d1) depth=1 ;; direct-d16) cache=none ;; esac
  local opts="driver=qcow2,file.filename=$d/r.qcow2,l2-cache-size=1M,l2-cache-entry-size=64k"
  local n=$count
  [ "$cache" = none ] && n=$((count / 4)) # the device's IOPS, not memory's
  local common=(-c "$n" -d "$depth" -s 4096 -S "$step" -t "$cache")
  case $tool in
    qcow2-async) log=$("$q" bench "${common[@]}" --engine async --image-opts "$opts") ;;
    qcow2-blocking) log=$("$q" bench "${common[@]}" --engine blocking --image-opts "$opts") ;;
    raw-pread) log=$("$q" bench -f raw "${common[@]}" --engine blocking "$d/r.raw") ;;
    raw-async) log=$("$q" bench -f raw "${common[@]}" --engine async "$d/r.raw") ;;
    qemu) local aio=(); [ "$cache" = none ] && aio=(-i io_uring)
          log=$(qemu-img bench "${common[@]}" "${aio[@]}" --image-opts "$opts") ;;
    fio) # the same number of 4 KiB random reads of the raw file, O_DIRECT, io_uring, depth 16
         fio --name=r --filename="$d/r.raw" --rw=randread --bs=4k --direct=1 --ioengine=io_uring \
             --iodepth=16 --size="${size_mib}M" --io_size=$((n * 4096)) --norandommap --randrepeat=0 \
             --output-format=json | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["read"]["iops"])'
         return ;;
  esac
  secs=$(sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p' <<<"$log")
  python3 -c "print($n / $secs)"
}

for d in $dirs; do
  mkdir -p "$d"
  fs=$(stat -f -c %T "$d")
  [ "$fs" = ext2/ext3 ] && fs=ext4
  if [ ! -f "$d/r.qcow2" ] || [ "$(stat -c %s "$d/r.raw" 2>/dev/null || echo 0)" != $((size_mib << 20)) ]; then
    rm -f "$d/r.raw" "$d/r.qcow2"
    dd if=/dev/urandom of="$d/r.raw" bs=1M count="$size_mib" status=none
    qemu-img convert -f raw -O qcow2 "$d/r.raw" "$d/r.qcow2"
  fi
  rows=(covered-d16 covered-d1)
  [ "$fs" != tmpfs ] && rows+=(direct-d16)
  if [ -n "$only" ]; then
    keep=(); for r in "${rows[@]}"; do [[ " $only " == *" $r "* ]] && keep+=("$r"); done; rows=("${keep[@]}")
  fi
  [ ${#rows[@]} -eq 0 ] && continue
  for rep in $(seq 1 "$reps"); do
    for row in "${rows[@]}"; do
      case $row in
        covered-d16) tools=(qcow2-async qcow2-blocking raw-pread raw-async qemu) ;;
        covered-d1) tools=(qcow2-async qcow2-blocking raw-pread raw-async) ;;
        direct-d16) tools=(qcow2-async qcow2-blocking raw-async fio qemu) ;;
      esac
      n=${#tools[@]}
      for k in $(seq 0 $((n - 1))); do
        tool=${tools[$(( (k + rep) % n ))]}
        iops=$(run "$tool" "$d" "$row")
        printf '%s\t%s\t%s\t%s\t%.0f\n' "$fs" "$row" "$tool" "$rep" "$iops" | tee -a "$out"
      done
    done
  done
done
echo "# medians (IOPS) and ratios; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" <<'PY'
import statistics, sys
med = {}
for line in open(sys.argv[1]):
    fs, row, tool, rep, iops = line.split("\t")
    med.setdefault((fs, row, tool), []).append(float(iops))
med = {k: statistics.median(v) for k, v in med.items()}
for k in sorted(med):
    print(*k, round(med[k]), sep="\t")
def ratio(fs, row, a, b, goal=""):
    if (fs, row, a) in med and (fs, row, b) in med:
        print(f"{fs}\t{row}\t{a} / {b}\t{med[(fs, row, a)] / med[(fs, row, b)]:.2f}x\t{goal}")
for fs in sorted({k[0] for k in med}):
    ratio(fs, "covered-d16", "qcow2-async", "raw-pread", "goal >= 1.0 (tmpfs)")
    ratio(fs, "covered-d16", "qcow2-async", "raw-async")
    ratio(fs, "covered-d16", "qcow2-async", "qemu")
    ratio(fs, "covered-d16", "qcow2-async", "qcow2-blocking")
    ratio(fs, "direct-d16", "qcow2-async", "fio", "goal >= 0.95")
    ratio(fs, "direct-d16", "qcow2-async", "qemu")
    ratio(fs, "direct-d16", "raw-async", "fio")
    for tool in ("qcow2-async", "qcow2-blocking", "raw-pread", "raw-async"):
        if (fs, "covered-d1", tool) in med:
            print(f"{fs}\tcovered-d1\t{tool}\t{1e6 / med[(fs, 'covered-d1', tool)]:.1f} us per request")
PY
