# Sourced by ./qcow2j and ./run-tests: finds a JDK >= 22 and exports JAVA_HOME, or says in one line what to
# install. Order: JAVA_HOME if new enough, then the usual JDK folders (newest first), then `java` on PATH.
# shellcheck shell=bash

qcow2j_min_jdk=22

# Prints the feature version (e.g. 25) of the JDK at $1, or nothing if it is not a JDK.
qcow2j_jdk_feature() {
  local home=$1 v=""
  [ -x "$home/bin/java" ] && [ -x "$home/bin/javac" ] || return 0
  if [ -r "$home/release" ]; then
    v=$(sed -n 's/^JAVA_VERSION="\([0-9][0-9]*\).*/\1/p' "$home/release")
  fi
  if [ -z "$v" ]; then
    v=$("$home/bin/java" -XshowSettings:properties -version 2>&1 |
        sed -n 's/^ *java\.specification\.version = \([0-9][0-9]*\).*/\1/p')
  fi
  [ "$v" = "1" ] && v=8
  printf '%s' "$v"
}

qcow2j_find_jdk() {
  local best="" best_v=0 d v
  if [ -n "${JAVA_HOME:-}" ]; then
    v=$(qcow2j_jdk_feature "$JAVA_HOME")
    if [ -n "$v" ] && [ "$v" -ge "$qcow2j_min_jdk" ]; then
      printf '%s' "$JAVA_HOME"; return 0
    fi
  fi
  for d in /usr/lib/jvm/* /usr/java/* /opt/java/* /opt/jdk* /opt/*jdk* "$HOME"/.sdkman/candidates/java/* \
           "$HOME"/.jdks/* /usr/local/lib/jvm/* /usr/local/*jdk*; do
    [ -d "$d" ] || continue
    v=$(qcow2j_jdk_feature "$d")
    if [ -n "$v" ] && [ "$v" -ge "$qcow2j_min_jdk" ] && [ "$v" -gt "$best_v" ]; then
      best=$d; best_v=$v
    fi
  done
  if [ -z "$best" ] && command -v javac >/dev/null 2>&1; then
    d=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
    v=$(qcow2j_jdk_feature "$d")
    if [ -n "$v" ] && [ "$v" -ge "$qcow2j_min_jdk" ]; then best=$d; fi
  fi
  [ -n "$best" ] || return 1
  printf '%s' "$best"
}

qcow2j_use_jdk() {
  local home
  if ! home=$(qcow2j_find_jdk); then
    echo "qcow2j: needs a JDK ${qcow2j_min_jdk} or newer (JAVA_HOME, /usr/lib/jvm and PATH have none); install one, e.g. 'apt-get install openjdk-25-jdk' or Temurin 25, or set JAVA_HOME to it" >&2
    return 1
  fi
  export JAVA_HOME=$home
  export PATH="$JAVA_HOME/bin:$PATH"
  # Maven 3.8's own guice touches sun.misc.Unsafe; silence that JDK 24+ warning (it is Maven's, not ours).
  case " ${MAVEN_OPTS:-} " in
    *sun-misc-unsafe-memory-access*) ;;
    *) export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow" ;;
  esac
}
