#!/usr/bin/env bash
# bench/depth.sh: allocating writes at depth 1 and 16, qemu-img bench against qcow2j's async engine
# (io_uring) and blocking engine (platform threads), alternating, on tmpfs and on the repo's disk.
# Every run starts on a fresh 16 GiB image; the report is the median seconds per (fs, scenario, depth, tool),
# then the ratios the issue's goals name (speed-up over qemu-img bench, depth 16 over depth 1, p99).
#
#   bench/depth.sh [--reps N] [--count N] [--dirs "DIR ..."] [--tools "qemu async blocking"]
#                  [--scenarios "seq64k newcl4k"] [--depths "1 16"]
#   (defaults: 3 reps, 100000 requests, the three tools, both scenarios, depths 1 and 16)
#   CI=true bench/depth.sh                                      (bounded: 1 rep, 500 requests)
#
# Scenarios: seq64k = 64 KiB sequential writes (-s 64k); newcl4k = 4 KiB writes each in a new cluster
# (-s 4k -S 64k). Tools: qemu = qemu-img bench -w; async / blocking = ./qcow2j bench -w --engine async /
# blocking; base = the async engine of another checkout ($QCOW2J_BASE, a path to its ./qcow2j: A/B runs).
# Output: TSV lines on stdout (fs scenario depth tool rep seconds p99us), then medians and ratios.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
reps=3 count=100000 dirs="/dev/shm/qcow2j-depth $root/bench/results/depth-disk"
tools="qemu async blocking" scenarios="seq64k newcl4k" depths="1 16"
[ "${CI:-}" = true ] && reps=1 count=500
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift ;;
    --count) count=$2; shift ;;
    --dirs) dirs=$2; shift ;;
    --tools) tools=$2; shift ;;
    --scenarios) scenarios=$2; shift ;;
    --depths) depths=$2; shift ;;
    *) echo "depth.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
read -r -a tools <<<"$tools"
out=$(mktemp)
"$root/qcow2j" --version >/dev/null # build before the first timed run
for d in $dirs; do
  mkdir -p "$d"
  fs=$(stat -f -c %T "$d")
  [ "$fs" = ext2/ext3 ] && fs=ext4
  for rep in $(seq 1 "$reps"); do
    for sc in $scenarios; do
      case $sc in seq64k) args=(-s 64k) ;; newcl4k) args=(-s 4k -S 64k) ;; *) echo "depth.sh: scenario $sc?" >&2; exit 2 ;; esac
      for depth in $depths; do
        n=${#tools[@]}
        for k in $(seq 0 $((n - 1))); do
          tool=${tools[$(( (k + rep) % n ))]} # the order rotates with the repetition
          img="$d/depth.qcow2"
          rm -f "$img"
          qemu-img create -q -f qcow2 "$img" 16G
          case $tool in
            qemu) log=$(qemu-img bench -w -c "$count" -d "$depth" "${args[@]}" "$img") ;;
            base) log=$("${QCOW2J_BASE:?set QCOW2J_BASE to another checkout\'s qcow2j}" bench -w -c "$count" -d "$depth" "${args[@]}" "$img") ;;
            *) log=$("$root/qcow2j" bench -w -c "$count" -d "$depth" "${args[@]}" --engine "$tool" "$img") ;;
          esac
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
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" "$count" <<'PY'
import statistics, sys
groups = {}
for line in open(sys.argv[1]):
    fs, sc, depth, tool, rep, secs, p99 = line.rstrip("\n").split("\t")
    g = groups.setdefault((fs, sc, int(depth), tool), ([], []))
    g[0].append(float(secs))
    if p99 != "-":
        g[1].append(float(p99))
med = {k: (statistics.median(v[0]), statistics.median(v[1]) if v[1] else None) for k, v in groups.items()}
print("# medians: fs scenario depth tool seconds p99us (n runs)")
for key in sorted(med):
    secs, p99 = med[key]
    print("\t".join(map(str, key)), f"{secs:.3f}", f"{p99:.0f}" if p99 is not None else "-",
          f"n={len(groups[key][0])}", sep="\t")
print("# ratios (medians): qemu/tool = speed-up over qemu-img bench (goal >= 2 at depth 16);")
print("#   d16/d1 = throughput at depth 16 over depth 1 (goal >= 1.5 on ext4, >= 1 on tmpfs); p99 goal < 2000 us on tmpfs")
print("| fs | scenario | depth | tool | seconds | vs qemu-img bench | d16/d1 | p99 µs |")
print("|---|---|---|---|---|---|---|---|")
for (fs, sc, depth, tool) in sorted(med):
    if tool == "qemu":
        continue
    secs, p99 = med[(fs, sc, depth, tool)]
    q = med.get((fs, sc, depth, "qemu"))
    d1 = med.get((fs, sc, 1, tool))
    vs = f"{q[0] / secs:.2f}×" if q else "-"
    dd = f"{d1[0] / secs:.2f}×" if d1 and depth != 1 else "-"
    print(f"| {fs} | {sc} | {depth} | {tool} | {secs:.2f} | {vs} | {dd} | {p99:.0f} |" if p99 is not None
          else f"| {fs} | {sc} | {depth} | {tool} | {secs:.2f} | {vs} | {dd} | - |")
for (fs, sc, depth, tool) in sorted(med):
    if tool == "qemu" and depth != 1 and (fs, sc, 1, "qemu") in med:
        print(f"| {fs} | {sc} | {depth} | qemu-img bench | {med[(fs, sc, depth, tool)][0]:.2f} | 1.00× | "
              f"{med[(fs, sc, 1, 'qemu')][0] / med[(fs, sc, depth, tool)][0]:.2f}× | - |")
PY
rm -f "$out"
