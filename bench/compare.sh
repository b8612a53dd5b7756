#!/usr/bin/env bash
# bench/compare.sh: qcow2j against qemu-img bench and against plain pread/pwrite on a raw file, in one
# command, one run, on the same files. For every scenario and repetition the tools run alternately (the
# order rotates with the repetition); the report takes medians.
#
#   bench/compare.sh                 the full run (5 repetitions, full request counts; ~1 h on 2 idle cores)
#   bench/compare.sh --smoke         a short end-to-end check (1 repetition, ~1/10 of the requests)
#
# Options: --reps N, --dirs "DIR ..." (default: /dev/shm and bench/results/disk on the repo's disk),
# --scenarios "covered miss alloc flush memory", --results DIR (default bench/results/DATE),
# --out DIR (default docs/benchmarks), --prefix NAME (default compare, or compare-smoke with --smoke),
# --jfr (also record a JFR profile of qcow2j on the targeted scenarios and print its hot methods).
#
# Tools per scenario: raw = `./qcow2j bench -f raw` on a raw file with the same access pattern (the
# physical limit); qemu = `qemu-img bench --image-opts`; qcow2j-heap / qcow2j-off-heap = `./qcow2j bench
# --image-opts ...,table-store=heap|off-heap`. Every qcow2 run gets the same option string. Cache mode:
# writeback (both tools' default), so reads on the disk folder are served by the page cache after the
# first touch, as on tmpfs; the disk differs for writes and above all for fdatasync.
#
# Output: RESULTS/runs.tsv (fs, scenario, tool, rep, metric, value), RESULTS/env.txt, every tool's output
# in RESULTS/logs/, then OUT/PREFIX.md and OUT/PREFIX-*.png (io.qcow2j.bench.CompareReport).
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$root"
. scripts/jdk.sh
qcow2j_use_jdk

mode=full reps="" dirs="" scenarios="covered miss alloc flush memory" results="" out="docs/benchmarks" prefix="" jfr=0
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) mode=smoke ;;
    --reps) reps=$2; shift ;;
    --dirs) dirs=$2; shift ;;
    --scenarios) scenarios=$2; shift ;;
    --results) results=$2; shift ;;
    --out) out=$2; shift ;;
    --prefix) prefix=$2; shift ;;
    --jfr) jfr=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$reps" ] || { [ $mode = full ] && reps=5 || reps=1; }
[ -n "$prefix" ] || { [ $mode = full ] && prefix=compare || prefix=compare-smoke; }
[ -n "$dirs" ] || dirs="/dev/shm/qcow2j-compare $root/bench/results/disk"
[ -n "$results" ] || results="$root/bench/results/$(date +%Y%m%d-%H%M%S)-$mode"
mkdir -p "$results/logs"
tsv="$results/runs.tsv"
printf 'fs\tscenario\ttool\trep\tmetric\tvalue\n' > "$tsv"

# Request counts: full / smoke.
if [ $mode = full ]; then
  COVERED_SIZE=1G C_D1=1000000 C_D16=2000000 C_MISS=200000 C_SEQ=32768 C_NEWCL=50000 C_FLUSH=2000 MEM_REPS=3
else
  COVERED_SIZE=512M C_D1=50000 C_D16=100000 C_MISS=20000 C_SEQ=4096 C_NEWCL=5000 C_FLUSH=200 MEM_REPS=1
fi
CLEAN_INTERVAL=3

# ---------------------------------------------------------------- tools
# qemu-img (bench, create), strace (QEMU's fdatasync calls), qemu-system-x86_64 (QEMU's memory: see memory()).
need() { # COMMAND DEBIAN_PACKAGE WHY
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "compare.sh: installing $2 ($3)" >&2
    { [ -n "${apt_updated:-}" ] || apt-get update -qq; } >/dev/null && apt_updated=1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  fi
  command -v "$1" >/dev/null || { echo "compare.sh: needs $1 ($3): apt-get install $2" >&2; exit 1; }
}
need qemu-img qemu-utils "the QEMU side"
need strace strace "to count fdatasync calls"
[[ " $scenarios " != *" memory "* ]] || need qemu-system-x86_64 qemu-system-x86 "QEMU's cache cleaner only runs in a VM"
echo "compare.sh: building the CLI and the benchmarks jar if stale..." >&2
./qcow2j --version >/dev/null
jar="$root/bench/target/benchmarks.jar"
if [ ! -f "$jar" ] || [ -n "$(find "$root"/{ffm-bindings,engine,bench}/src/main "$root"/pom.xml "$root"/*/pom.xml \
      -newer "$jar" -print -quit 2>/dev/null)" ]; then
  mvn -B -q -ntp -pl bench -am package -DskipTests >&2
fi
java_bench() { "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "$jar" "$@"; }

# ---------------------------------------------------------------- environment
disk_of() { # filesystem type and device model of a folder
  local src fstype dev model
  src=$(df --output=source "$1" | tail -1); fstype=$(df --output=fstype "$1" | tail -1)
  dev=$(basename "$src"); model=$(cat "/sys/block/${dev%%[0-9]*}/device/model" 2>/dev/null || true)
  rot=$(cat "/sys/block/${dev%%[0-9]*}/queue/rotational" 2>/dev/null || echo "?")
  echo "$fstype on $src${model:+ ($model)}, rotational=$rot"
}
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "run: $mode, $reps repetition(s), tools alternating; command: bench/compare.sh $([ $mode = smoke ] && echo --smoke)"
  echo "commit: $(git rev-parse --short HEAD) ($(git rev-parse --abbrev-ref HEAD))"
  echo "cpu: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "memory: $(free -g | awk '/^Mem:/{print $2}') GiB"
  echo "kernel: $(uname -sr)"
  for d in $dirs; do mkdir -p "$d"; echo "folder $d: $(disk_of "$d")"; done
  echo "jdk: $("$JAVA_HOME/bin/java" -version 2>&1 | head -1)"
  echo "qemu: $(qemu-img --version | head -1)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$results/env.txt"
cat "$results/env.txt" >&2

# ---------------------------------------------------------------- running one tool
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >> "$tsv"; }

# run FSLABEL SCENARIO TOOL REP COUNT QCOW2 RAW OPTS -- BENCH_ARGS...
# Runs one bench and records iops (and, for qcow2j, L2 hits/misses and syncs).
run() {
  local fs=$1 sc=$2 tool=$3 rep=$4 count=$5 qcow=$6 raw=$7 opts=$8; shift 9
  local log="$results/logs/$fs-$sc-$tool-$rep.log" secs
  case $tool in
    raw) ./qcow2j bench -f raw -c "$count" "$@" "$raw" ;;
    qemu) qemu-img bench -c "$count" "$@" --image-opts "driver=qcow2,file.filename=$qcow${opts:+,$opts}" ;;
    qcow2j-heap) ./qcow2j bench -c "$count" "$@" --image-opts "driver=qcow2,file.filename=$qcow${opts:+,$opts},table-store=heap" ;;
    qcow2j-off-heap) ./qcow2j bench -c "$count" "$@" --image-opts "driver=qcow2,file.filename=$qcow${opts:+,$opts},table-store=off-heap" ;;
  esac > "$log" 2>&1 || { echo "compare.sh: $tool failed, see $log:" >&2; tail -5 "$log" >&2; return 1; }
  secs=$(sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p' "$log")
  record "$fs" "$sc" "$tool" "$rep" iops "$(awk -v c="$count" -v s="$secs" 'BEGIN{printf "%.1f", c/s}')"
  if [[ $tool == qcow2j-* ]]; then
    sed -n 's/^L2 cache: hits \([0-9]*\), misses \([0-9]*\).*/\1 \2/p' "$log" | {
      read -r h m && { record "$fs" "$sc" "$tool" "$rep" l2-hits "$h"; record "$fs" "$sc" "$tool" "$rep" l2-misses "$m"; }
    } || true
  fi
  printf '  %-10s %-26s %-16s rep %d: %s s\n' "$fs" "$sc" "$tool" "$rep" "$secs" >&2
}

# The tools in the order of repetition REP (rotated, so that no tool always runs first or last).
order() {
  local -a t=("$@"); local n=${#t[@]} r=$(( (rep - 1) % ${#t[@]} )) i
  for ((i = 0; i < n; i++)); do printf '%s ' "${t[$(( (i + r) % n ))]}"; done
}

# ---------------------------------------------------------------- scenarios
ALL="raw qemu qcow2j-heap qcow2j-off-heap"
QCOW="qemu qcow2j-heap qcow2j-off-heap"

covered() { # $1 dir, $2 fs label
  local d=$1 fs=$2
  echo "[$fs] covered reads: preparing $COVERED_SIZE images (preallocation=full)" >&2
  qemu-img create -q -f qcow2 -o preallocation=full "$d/covered.qcow2" "$COVERED_SIZE"
  qemu-img create -q -f raw -o preallocation=full "$d/covered.raw" "$COVERED_SIZE"
  # 4 KiB requests with a stride of 40009 blocks (prime, so coprime with the image's 2^k blocks): every
  # block once per pass, in an order no readahead follows. The L2 cache (1 MiB) covers the whole image.
  local opts="l2-cache-size=1M,l2-cache-entry-size=64k" step=$((40009 * 4096))
  for ((rep = 1; rep <= reps; rep++)); do
    for t in $(order $ALL); do
      run "$fs" covered-d1 "$t" $rep $C_D1 "$d/covered.qcow2" "$d/covered.raw" "$opts" -- -d 1 -s 4096 -S $step
    done
    for t in $(order $ALL); do
      run "$fs" covered-d16 "$t" $rep $C_D16 "$d/covered.qcow2" "$d/covered.raw" "$opts" -- -d 16 -s 4096 -S $step
    done
  done
  rm -f "$d/covered.qcow2" "$d/covered.raw"
}

miss() {
  local d=$1 fs=$2 t0 size=64G
  echo "[$fs] miss-heavy: creating a $size image with preallocation=metadata" >&2
  t0=$(date +%s.%N)
  qemu-img create -q -f qcow2 -o preallocation=metadata,cluster_size=64k "$d/miss.qcow2" $size
  echo "  took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s; file $(du -h --apparent-size "$d/miss.qcow2" | cut -f1) apparent, $(du -h "$d/miss.qcow2" | cut -f1) allocated" >&2
  rm -f "$d/miss.raw"; truncate -s $size "$d/miss.raw"
  # tables: 512 MiB + 64 KiB, one L2 table (512 MiB of guest) further each request: cycles all 128 tables.
  # slices: 32 MiB + 64 KiB, one 4 KiB slice (32 MiB of guest) further each request: cycles 2048 slices.
  local stride
  for pattern in tables slices; do
    [ $pattern = tables ] && stride=536936448 || stride=33619968
    for ((rep = 1; rep <= reps; rep++)); do
      for es in 64k 4k; do
        for t in $(order $ALL); do
          run "$fs" "miss-$pattern-$es" "$t" $rep $C_MISS "$d/miss.qcow2" "$d/miss.raw" \
              "l2-cache-size=1M,l2-cache-entry-size=$es" -- -d 16 -s 4096 -S $stride
        done
      done
    done
  done
  rm -f "$d/miss.qcow2" "$d/miss.raw"
}

fresh() { # fresh 16 GiB images: qcow2 (extra -o in $3) and raw
  rm -f "$1/alloc.qcow2" "$1/alloc.raw"
  qemu-img create -q -f qcow2 ${3:+-o $3} "$1/alloc.qcow2" 16G
  truncate -s 16G "$1/alloc.raw"
}

alloc() {
  local d=$1 fs=$2
  echo "[$fs] allocating writes on fresh 16 GiB images" >&2
  for ((rep = 1; rep <= reps; rep++)); do
    for t in $(order $ALL); do
      fresh "$d"
      run "$fs" alloc-seq64k-d16 "$t" $rep $C_SEQ "$d/alloc.qcow2" "$d/alloc.raw" "" -- -w -d 16 -s 65536
    done
    for t in $(order $ALL); do
      fresh "$d"
      run "$fs" alloc-4k-new-cluster-d16 "$t" $rep $C_NEWCL "$d/alloc.qcow2" "$d/alloc.raw" "" -- -w -d 16 -s 4096 -S 69632
    done
  done
  rm -f "$d/alloc.qcow2" "$d/alloc.raw"
}

# fdatasync calls of one run (strace -c), every tool the same way.
count_syncs() { # TOOL QCOW2 RAW N
  local tool=$1 q=$2 r=$3 n=$4 st="$results/logs/strace.tmp" args
  args=(-w -d 1 --flush-interval=1 -s 4096 -S 69632 -c "$n")
  case $tool in
    raw) strace -f -qq -c -e trace=fdatasync -o "$st" ./qcow2j bench -f raw "${args[@]}" "$r" ;;
    qemu) strace -f -qq -c -e trace=fdatasync -o "$st" qemu-img bench "${args[@]}" --image-opts "driver=qcow2,file.filename=$q" ;;
    qcow2j-*) strace -f -qq -c -e trace=fdatasync -o "$st" ./qcow2j bench "${args[@]}" \
        --image-opts "driver=qcow2,file.filename=$q,table-store=${tool#qcow2j-}" ;;
  esac > /dev/null 2>&1
  awk '$NF == "fdatasync" { print $4; found = 1 } END { if (!found) print 0 }' "$st"
}

flush() {
  local d=$1 fs=$2 lazy sc o n1 n2 s1 s2
  echo "[$fs] --flush-interval=1: fdatasync calls per flush (strace) and IOPS" >&2
  for lazy in off on; do
    [ $lazy = on ] && { sc=flush-alloc-lazy; o=lazy_refcounts=on; } || { sc=flush-alloc; o=""; }
    # syncs per flush, once per tool: runs of N and 2N flushes; the difference / N cancels open and close.
    n1=$(( C_FLUSH / 4 )); n2=$(( 2 * n1 ))
    for t in $ALL; do
      fresh "$d" "" "$o"; s1=$(count_syncs "$t" "$d/alloc.qcow2" "$d/alloc.raw" $n1)
      fresh "$d" "" "$o"; s2=$(count_syncs "$t" "$d/alloc.qcow2" "$d/alloc.raw" $n2)
      record "$fs" $sc "$t" 1 syncs-per-flush "$(awk -v a="$s1" -v b="$s2" -v n="$n1" 'BEGIN{printf "%.3f", (b-a)/n}')"
      printf '  %-10s %-26s %-16s fdatasync: %s calls for %d flushes, %s for %d\n' "$fs" $sc "$t" "$s1" $n1 "$s2" $n2 >&2
    done
    for ((rep = 1; rep <= reps; rep++)); do
      for t in $(order $ALL); do
        fresh "$d" "" "$o"
        run "$fs" $sc "$t" $rep $C_FLUSH "$d/alloc.qcow2" "$d/alloc.raw" "" -- -w -d 1 --flush-interval=1 -s 4096 -S 69632
      done
    done
  done
  rm -f "$d/alloc.qcow2" "$d/alloc.raw"
}

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

wait_lines() { # FILE PATTERN COUNT TIMEOUT_S: until FILE has COUNT lines matching PATTERN
  local end=$(( $(date +%s) + $4 ))
  while [ "$(grep -c "$2" "$1" 2>/dev/null || true)" -lt "$3" ]; do
    [ "$(date +%s)" -lt $end ] || { echo "compare.sh: timed out waiting for $1" >&2; return 1; }
    sleep 0.1
  done
}

memory() {
  local d=$1 fs=$2 opts reads=512 stride=$((512 << 20)) rep t log pid line o f c
  echo "[$fs] memory: 256 GiB image, preallocation=metadata (512 L2 tables = 32 MiB)" >&2
  qemu-img create -q -f qcow2 -o preallocation=metadata "$d/mem.qcow2" 256G
  opts="l2-cache-size=32M,l2-cache-entry-size=64k,cache-clean-interval=$CLEAN_INTERVAL"
  for ((rep = 1; rep <= MEM_REPS; rep++)); do
    for t in $(order $QCOW); do
      log="$results/logs/$fs-memory-$t-$rep.log"
      if [ $t = qemu ]; then
        # QEMU's cleaner runs on the virtual clock, which only ticks while a VM runs: in qemu-io and
        # qemu-img it never fires. So QEMU is a VM without CPUs (-machine none) with the image as a
        # -blockdev, filled through the monitor's qemu-io command, its RSS read from /proc.
        coproc QS { exec stdbuf -oL qemu-system-x86_64 -machine none -nodefaults -display none -monitor stdio \
            -blockdev "driver=qcow2,node-name=d0,file.driver=file,file.filename=$d/mem.qcow2,l2-cache-size=$((32 << 20)),l2-cache-entry-size=65536,cache-clean-interval=$CLEAN_INTERVAL" \
            > "$log" 2>&1; }
        pid=$QS_PID
        echo 'qemu-io d0 "read 0 512"' >&"${QS[1]}"
        wait_lines "$log" '^read ' 1 60; sleep 1; o=$(rss_mib $pid)
        for ((i = 1; i < reads; i++)); do echo "qemu-io d0 \"read $((i * stride)) 4k\"" >&"${QS[1]}"; done
        wait_lines "$log" '^read ' $reads 120; sleep 1; f=$(rss_mib $pid)
        sleep $(( 2 * CLEAN_INTERVAL + 2 )); c=$(rss_mib $pid)
        echo quit >&"${QS[1]}"; wait $pid 2>/dev/null || true
      else
        line=$(java_bench io.qcow2j.bench.ImageMemory "$d/mem.qcow2" "$opts,table-store=${t#qcow2j-}" 2>"$log")
        echo "$line" >> "$log"
        read -r o f c _ <<< "$line"
        o=$(awk -v v="$o" 'BEGIN{printf "%.1f", v/1048576}'); f=$(awk -v v="$f" 'BEGIN{printf "%.1f", v/1048576}')
        c=$(awk -v v="$c" 'BEGIN{printf "%.1f", v/1048576}')
      fi
      record "$fs" memory "$t" $rep rss-open-mib "$o"; record "$fs" memory "$t" $rep rss-full-mib "$f"
      record "$fs" memory "$t" $rep rss-clean-mib "$c"
      printf '  %-10s %-26s %-16s rep %d: RSS open %s, full %s, clean %s MiB\n' "$fs" memory "$t" $rep "$o" "$f" "$c" >&2
    done
  done
  rm -f "$d/mem.qcow2"
}

profile() { # JFR of qcow2j (off-heap) on the scenarios with targets; hot methods into RESULTS/profile-*.txt
  local d=$1 fs=$2 jfrfile
  echo "[$fs] JFR profiles of qcow2j" >&2
  qemu-img create -q -f qcow2 -o preallocation=full "$d/covered.qcow2" "$COVERED_SIZE"
  qemu-img create -q -f qcow2 -o preallocation=metadata "$d/miss.qcow2" 64G
  fresh "$d"
  local -a names=(covered-d16 miss-tables-4k alloc-4k-new-cluster-d16)
  local -a cmds=(
    "-c $((C_D16 * 2)) -d 16 -s 4096 -S $((40009 * 4096)) --image-opts driver=qcow2,file.filename=$d/covered.qcow2,l2-cache-size=1M,l2-cache-entry-size=64k"
    "-c $((C_MISS * 2)) -d 16 -s 4096 -S 536936448 --image-opts driver=qcow2,file.filename=$d/miss.qcow2,l2-cache-size=1M,l2-cache-entry-size=4k"
    "-c $C_NEWCL -w -d 16 -s 4096 -S 69632 --image-opts driver=qcow2,file.filename=$d/alloc.qcow2")
  for i in 0 1 2; do
    jfrfile="$results/${names[$i]}.jfr"
    # shellcheck disable=SC2086
    JDK_JAVA_OPTIONS="-XX:StartFlightRecording=filename=$jfrfile,settings=profile" ./qcow2j bench ${cmds[$i]} \
      > "$results/logs/profile-${names[$i]}.log" 2>&1
    { "$JAVA_HOME/bin/jfr" view --width 160 hot-methods "$jfrfile"; "$JAVA_HOME/bin/jfr" view --width 160 allocation-by-site "$jfrfile"; } \
      > "$results/profile-${names[$i]}.txt" 2>&1 || true
    echo "  ${names[$i]}: $results/profile-${names[$i]}.txt" >&2
  done
  rm -f "$d/covered.qcow2" "$d/miss.qcow2" "$d/alloc.qcow2" "$d/alloc.raw"
}

# ---------------------------------------------------------------- main
first=1
for d in $dirs; do
  mkdir -p "$d"
  case $d in /dev/shm*) fs=tmpfs ;; *) fs=$(df --output=fstype "$d" | tail -1 | tr -d ' ') ;; esac
  for s in $scenarios; do
    case $s in
      covered|miss|alloc|flush) $s "$d" "$fs" ;;
      memory) [ $first = 1 ] && memory "$d" "$fs" ;;
      *) echo "compare.sh: unknown scenario $s" >&2; exit 2 ;;
    esac
  done
  [ $jfr = 1 ] && [ $first = 1 ] && profile "$d" "$fs"
  first=0
  case $d in /dev/shm/*) rmdir "$d" 2>/dev/null || true ;; esac
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$results/env.txt"

case $out in /*) ;; *) out="$root/$out" ;; esac
java_bench io.qcow2j.bench.CompareReport "$results" "$out" "$prefix"
echo "compare.sh: results in $results; report $out/$prefix.md" >&2
