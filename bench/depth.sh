#!/usr/bin/env bash
# bench/depth.sh: allocating writes at depth 1 and 16, qemu-img bench against qcow2j's async engine
# (io_uring) and blocking engine (platform threads), alternating, on tmpfs and on the repo's disk.
# Every run starts on a fresh 16 GiB image; the report is the median seconds per (fs, scenario, depth, tool).
#
#   bench/depth.sh [--reps N] [--count N] [--dirs "DIR ..."]   (defaults: 3 reps, 20000 requests)
#   CI=true bench/depth.sh                                      (bounded: 1 rep, 500 requests)
#
# Scenarios: seq64k = 64 KiB sequential writes (-s 64k); newcl4k = 4 KiB writes each in a new cluster
# (-s 4k -S 64k). Output: TSV lines on stdout (fs scenario depth tool rep seconds p99us), then medians.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
reps=3 count=20000 dirs="/dev/shm/qcow2j-depth $root/bench/results/depth-disk"
[ "${CI:-}" = true ] && reps=1 count=500
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift ;;
    --count) count=$2; shift ;;
    --dirs) dirs=$2; shift ;;
    *) echo "depth.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
out=$(mktemp)
tools=(qemu async blocking)
for d in $dirs; do
  mkdir -p "$d"
  fs=$(stat -f -c %T "$d")
  for rep in $(seq 1 "$reps"); do
    for sc in seq64k newcl4k; do
      case $sc in seq64k) args=(-s 64k) ;; newcl4k) args=(-s 4k -S 64k) ;; esac
      for depth in 1 16; do
        n=${#tools[@]}
        for k in $(seq 0 $((n - 1))); do
          tool=${tools[$(( (k + rep) % n ))]} # the order rotates with the repetition
          img="$d/depth.qcow2"
          rm -f "$img"
          qemu-img create -q -f qcow2 "$img" 16G
          if [ "$tool" = qemu ]; then
            log=$(qemu-img bench -w -c "$count" -d "$depth" "${args[@]}" "$img")
          else
            log=$("$root/qcow2j" bench -w -c "$count" -d "$depth" "${args[@]}" --engine "$tool" "$img")
          fi
          secs=$(sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p' <<<"$log")
          p99=$(sed -n 's/.*p99 \([0-9.]*\),.*/\1/p' <<<"$log")
          printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$fs" "$sc" "$depth" "$tool" "$rep" "$secs" "${p99:--}" | tee -a "$out"
          qemu-img check -q "$img" || { echo "depth.sh: qemu-img check failed after $tool" >&2; exit 1; }
          rm -f "$img"
        done
      done
    done
  done
done
echo "# medians: fs scenario depth tool seconds p99us"
python3 - "$out" <<'PY'
import statistics, sys
groups = {}
for line in open(sys.argv[1]):
    fs, sc, depth, tool, rep, secs, p99 = line.rstrip("\n").split("\t")
    g = groups.setdefault((fs, sc, int(depth), tool), ([], []))
    g[0].append(float(secs))
    if p99 != "-":
        g[1].append(float(p99))
for key in sorted(groups):
    secs, p99 = groups[key]
    print("\t".join(map(str, key)), statistics.median(secs), statistics.median(p99) if p99 else "-", sep="\t")
PY
rm -f "$out"
