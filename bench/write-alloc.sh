#!/usr/bin/env bash
# bench/write-alloc.sh: what an allocating write allocates on the Java heap, per request, measured with JFR
# (jdk.ObjectAllocationSample, the "profile" settings) around `qcow2j bench -w` on tmpfs. Prints the sampled
# bytes per request whose stack passes through the engine (start-up excluded by attributing each sample to the
# first qcow2j frame: the CLI's parsing and the image's open show up as such), by class and site.
#
#   bench/write-alloc.sh [--count N] [--engine blocking|async] [--qcow2j PATH]   (defaults: 20000, blocking)
#
# The blocking engine on one platform thread shows the write path alone; the async engine adds what every
# request's virtual thread and future cost (StackChunk, VirtualThread, CompletableFuture).
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
count=20000 engine=blocking q="$root/qcow2j"
while [ $# -gt 0 ]; do
  case $1 in
    --count) count=$2; shift ;;
    --engine) engine=$2; shift ;;
    --qcow2j) q=$2; shift ;;
    *) echo "write-alloc.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
. "$root/scripts/jdk.sh"
qcow2j_use_jdk
d=$(mktemp -d /dev/shm/qcow2j-alloc.XXXXXX)
trap 'rm -rf "$d"' EXIT
for sc in seq64k newcl4k; do
  case $sc in seq64k) args=(-s 64k) ;; newcl4k) args=(-s 4k -S 64k) ;; esac
  qemu-img create -q -f qcow2 "$d/i.qcow2" 16G
  JAVA_TOOL_OPTIONS="-XX:StartFlightRecording=filename=$d/r.jfr,settings=profile" \
    "$q" bench -w -c "$count" -d 1 --engine "$engine" "${args[@]}" "$d/i.qcow2" >/dev/null 2>&1
  echo "== $sc, --engine $engine, depth 1, $count requests"
  "$JAVA_HOME/bin/jfr" print --events jdk.ObjectAllocationSample --stack-depth 16 "$d/r.jfr" |
    python3 -c '
import collections, re, sys
count = int(sys.argv[1]); by = collections.Counter(); cur = None; events = []
units = {"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
for line in sys.stdin:
    if line.startswith("jdk.ObjectAllocationSample"):
        cur = {"cls": None, "w": 0.0, "st": []}; events.append(cur)
    elif cur is not None:
        m = re.search(r"objectClass = (\S+)", line)
        if m: cur["cls"] = m.group(1)
        m = re.search(r"weight = ([\d.]+) (\w+)", line)
        if m: cur["w"] = float(m.group(1)) * units.get(m.group(2), 1)
        if "line:" in line: cur["st"].append(line.strip().split("(")[0])
hot = ("ClusterWriter", "Refcounts", "ImageState", "InFlightClusters", "FileGrowth", "Qcow2Image.write",
       "AsyncFile", "IoUring", "WrittenExtent", "AsyncRequests", "MetadataCache")
for e in events:
    frames = [f for f in e["st"] if "io.qcow2j" in f]
    if frames and any(h in f for f in frames for h in hot) and not any("<init>" in f or "<clinit>" in f or "open" in f for f in frames):
        by[(e["cls"], frames[0])] += e["w"]
total = sum(by.values())
print(f"write path: {total / count:.0f} bytes per request (sampled), {total / 1e6:.2f} MB in all")
for (cls, site), w in by.most_common(10):
    print(f"  {w / count:8.1f} B/request  {cls:50s} {site}")
' "$count"
  rm -f "$d/i.qcow2" "$d/r.jfr"
done
