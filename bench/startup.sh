#!/usr/bin/env bash
# bench/startup.sh: the fixed cost of a qcow2j command, with and without the launcher's start-up cache
# (scripts/startup-cache.sh), side by side with qemu-img: `--version`, `info` of a 1 MiB image and a convert
# -O qcow2 of a 1 MiB image holding 1 MiB of data. The variants run alternately (the order rotates with the
# repetition); the report prints the median wall-clock time of each in ms.
#
#   bench/startup.sh [--reps N]      (default 11)
#
# The cache is made (a training run) before the first repetition, in a cache folder of its own.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$root"
reps=11
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "startup.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
  shift
done
dir=$(mktemp -d /dev/shm/qcow2j-startup.XXXXXX)
trap 'rm -rf "$dir"' EXIT
export XDG_CACHE_HOME=$dir/cache
./qcow2j --version >/dev/null # builds the CLI and makes the cache
img=$dir/src.qcow2
qemu-img create -q -f qcow2 "$img" 1M
qemu-io -f qcow2 -c 'write -q -P 7 0 1M' "$img"
now() { date +%s%N; }
declare -A times
run() { # variant label command...
  local variant=$1 label=$2; shift 2
  rm -f "$dir/out.qcow2"
  local t0; t0=$(now)
  case $variant in
    qemu-img) [ "$1" = --version ] && qemu-img --version >/dev/null || qemu-img "$@" >/dev/null ;;
    cache) QCOW2J_AOT=on ./qcow2j "$@" >/dev/null ;;
    off) QCOW2J_AOT=off ./qcow2j "$@" >/dev/null ;;
  esac
  times[$variant,$label]+="$(( ($(now) - t0) / 1000000 )) "
}
variants=(off cache qemu-img)
for ((r = 0; r < reps; r++)); do
  for ((v = 0; v < ${#variants[@]}; v++)); do
    variant=${variants[$(( (v + r) % ${#variants[@]} ))]}
    run "$variant" version --version
    run "$variant" info info "$img"
    run "$variant" convert convert -O qcow2 "$img" "$dir/out.qcow2"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
echo "start-up, median of $reps alternating runs (ms); $(nproc) cores; load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| %-22s | %10s | %10s | %10s |\n' command "no cache" "cache" "qemu-img"
printf '|%s|\n' "------------------------|------------|------------|------------"
for label in version info convert; do
  printf '| %-22s | %10s | %10s | %10s |\n' "$label" "$(echo "${times[off,$label]}" | median)" \
    "$(echo "${times[cache,$label]}" | median)" "$(echo "${times[qemu-img,$label]}" | median)"
done
