# Sourced by ./qcow2j: the start-up cache. A JVM spends a good part of a one-shot command's time loading,
# verifying and linking classes; a cache of them, made once by a training run, takes that away. On JDK 25+
# it is an AOT cache (JEP 483/514: -XX:AOTCacheOutput once, -XX:AOTCache after), on JDK 22-24 a dynamic
# CDS archive (-XX:ArchiveClassesAtExit / -XX:SharedArchiveFile).
#
# Rules: the cache is an optimization, never a dependency. Any problem (no cache folder, a training that
# fails, a stale or corrupt file, no flock) means running without it; nothing is printed on stdout, and on
# stderr only with QCOW2J_AOT=verbose (one line). QCOW2J_AOT=off disables it.
# - Where: ${XDG_CACHE_HOME:-~/.cache}/qcow2j/startup-R-jdkF-K.{aot,jsa}: R keys the checkout (several
#   checkouts share the folder and must not evict each other), F is the JDK's feature version and K hashes
#   everything the cache depends on (the jars' names, sizes and mtimes, the JDK's libjvm and modules image,
#   the JVM options). A new build or JDK gives a new K; the checkout's older files are removed then.
# - Atomic: the training writes into a temporary folder inside the cache folder and renames its result.
#   FILE.ok records the file's size, inode, mtime and ctime as it was put in place. Any later write to it
#   moves its ctime, which no one can set back (touch can restore an mtime, not a ctime): a file that no
#   longer matches its .ok is never used, it is made again. That matters: the JVM trusts a cache whose header
#   is right and crashes on a damaged body. -XX:+VerifySharedSpaces would checksum the whole file on every
#   start instead, costing ~30 ms of a ~300 ms command here, i.e. most of what the cache saves; the JDK's own
#   CDS archive gets the same trust (mapped unverified). A file the JVM refuses (wrong JDK, jars changed) is
#   skipped silently: -Xlog:aot*=off,cds*=off, as those warnings would go to stdout.
# - The training run (io.qcow2j.cli.StartupTraining) works on images it creates in its temporary folder,
#   never on the user's files; it runs once per key, under flock (a concurrent launcher runs without the
#   cache meanwhile); if it fails, FILE.failed stops further attempts for that key.
# shellcheck shell=bash

# Sets the array qcow2j_cache_opts to the JVM options that use the cache (empty: run without one).
# $1: the JDK's feature version; $2: the module path; the rest: the JVM options of the command.
qcow2j_startup_cache() {
  qcow2j_cache_opts=()
  local feature=$1 mp=$2; shift 2
  local mode=${QCOW2J_AOT:-on}
  case $mode in off|0|no|false) return 0 ;; esac
  [ "$feature" -ge 22 ] 2>/dev/null || return 0
  local verbose=; [ "$mode" = verbose ] && verbose=1
  local dir=${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/qcow2j
  local rk k ext name file stamp want
  rk=$(printf '%s' "$root" | cksum) || return 0
  # shellcheck disable=SC2086 # the module path is split on ':' into the jars and folders it names
  k=$( { IFS=:; stat -L -c '%n %s %Y' $mp "$root"/cli/target/lib/*.jar "$JAVA_HOME/lib/modules" \
           "$JAVA_HOME/lib/server/libjvm.so"; printf '%s\n' "$*"; } 2>/dev/null | cksum) || return 0
  ext=jsa; [ "$feature" -ge 25 ] && ext=aot
  name=startup-${rk%% *}-jdk$feature-${k%% *}
  file=$dir/$name.$ext
  want=()
  if [ "$feature" -ge 25 ]; then want=(-XX:AOTCache="$file"); else want=(-XX:SharedArchiveFile="$file"); fi
  want+=(-Xlog:aot*=off,cds*=off)
  if [ -f "$file" ] && [ -r "$file.ok" ] && read -r stamp <"$file.ok" &&
     [ "$stamp" = "$(stat -c '%s %i %y %z' "$file" 2>/dev/null)" ]; then
    qcow2j_cache_opts=("${want[@]}")
    qcow2j_cache_say "using $file"
    return 0
  fi
  [ -e "$dir/$name.failed" ] && return 0
  qcow2j_train_cache "$@" && qcow2j_cache_opts=("${want[@]}")
  return 0
}

# The training run; returns 0 once $file and $file.ok are in place. Uses dir, name, file, ext, rk, feature,
# mp and verbose of the caller.
qcow2j_train_cache() {
  { mkdir -p "$dir" && [ -w "$dir" ]; } 2>/dev/null || { qcow2j_cache_say "cannot write $dir; running without it"; return 1; }
  command -v flock >/dev/null 2>&1 || { qcow2j_cache_say "no flock; running without it"; return 1; }
  local tmp out ok=0 old
  { (
    flock -n 7 || exit 3
    tmp=$(mktemp -d "$dir/train.XXXXXX" 2>/dev/null) || exit 1
    trap 'rm -rf "$tmp"' EXIT
    out=$tmp/cache.$ext
    local dump=(-XX:ArchiveClassesAtExit="$out")
    [ "$feature" -ge 25 ] && dump=(-XX:AOTCacheOutput="$out")
    env -u JAVA_TOOL_OPTIONS -u JDK_JAVA_OPTIONS -u _JAVA_OPTIONS \
      "$JAVA_HOME/bin/java" "$@" "${dump[@]}" -Xlog:disable \
      -p "$mp" -m io.qcow2j.cli/io.qcow2j.cli.StartupTraining "$tmp/images" </dev/null >/dev/null 2>&1 || exit 1
    [ -s "$out" ] || exit 1
    # the file first, then its stamp (a rename moves the ctime, so the stamp is taken after it); a reader in
    # between finds no stamp and runs without the cache (the lock keeps it from training again)
    rm -f "$file.ok" && mv -f "$out" "$file" && stat -c '%s %i %y %z' "$file" >"$tmp/ok" &&
      mv -f "$tmp/ok" "$file.ok" || exit 1
    for old in "$dir"/startup-"${rk%% *}"-*; do
      case $old in "$dir/$name".*) ;; *) rm -f "$old" ;; esac
    done
  ) 7>"$dir/$name.lock"; } 2>/dev/null || ok=$?
  case $ok in
    0) qcow2j_cache_say "created $file"; return 0 ;;
    3) qcow2j_cache_say "another run is creating it; running without it"; return 1 ;;
    *) { : >"$dir/$name.failed"; } 2>/dev/null
       qcow2j_cache_say "the training run failed; running without it (remove $dir/$name.failed to retry)"
       return 1 ;;
  esac
}

qcow2j_cache_say() {
  [ -n "$verbose" ] && echo "qcow2j: start-up cache: $*" >&2
  return 0
}
