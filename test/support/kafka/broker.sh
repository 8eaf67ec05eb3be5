#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft: broker + controller in one JVM) on 127.0.0.1 for tests and benchmarks.
#
#   broker.sh fetch                      resolve kafka_2.13 and its runtime jars into the cache (Maven)
#   broker.sh start  [--state-dir DIR]   start (or restart, same ports and data) a broker; prints
#                                        BOOTSTRAP=127.0.0.1:PORT, PID=..., STATE_DIR=... on stdout
#   broker.sh stop   [--state-dir DIR] [--purge]   stop it by PID (TERM, then KILL after 20 s);
#                                        --purge also removes the state dir (config, logs, data)
#   broker.sh status [--state-dir DIR]   exit 0 and print the state when running
#
# Environment: KAFKA_VERSION (default 3.9.2: the newest 3.9.x; kafkajs cannot speak Kafka 4),
# REVOKESCOPE_CACHE (default <repo>/.cache), KAFKA_HEAP (default 512m), KAFKA_READY_TIMEOUT (s, default 90),
# KAFKA_PARTITIONS (num.partitions default, 4). In CI (CI=true) a missing java or mvn is an error (exit 3);
# elsewhere it is reported with exit 4 so callers can print a skip reason.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
version="${KAFKA_VERSION:-3.9.2}"
cache_root="${REVOKESCOPE_CACHE:-$repo/.cache}"
kafka_cache="$cache_root/kafka/$version"
lib="$kafka_cache/lib"
heap="${KAFKA_HEAP:-512m}"
ready_timeout="${KAFKA_READY_TIMEOUT:-90}"

log() { printf 'broker.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

need_tool() {
  if ! command -v "$1" >/dev/null 2>&1; then
    if [[ "${CI:-}" == "true" ]]; then log "$1 is required (CI=true) but not installed"; exit 3; fi
    log "$1 is not installed: cannot run a Kafka broker"; exit 4
  fi
}

# --- fetch: Maven resolves the broker and its runtime dependencies once; later runs never touch the network.
fetch() {
  if [[ -f "$lib/.complete" ]]; then return 0; fi
  need_tool mvn
  mkdir -p "$kafka_cache"
  local work; work="$(mktemp -d "$kafka_cache/fetch.XXXXXX")"
  cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>revokescope.test</groupId><artifactId>kafka-broker</artifactId><version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <!-- the broker logs through slf4j; without a binding its log is silently discarded -->
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
EOF
  log "resolving org.apache.kafka:kafka_2.13:$version with Maven into $lib"
  if ! mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$work/lib" >"$work/mvn.log" 2>&1; then
    cat "$work/mvn.log" >&2; die "mvn dependency:copy-dependencies failed"
  fi
  [[ -f "$work/lib/kafka_2.13-$version.jar" ]] || die "kafka_2.13-$version.jar missing after mvn"
  rm -rf "$lib"; mv "$work/lib" "$lib"; rm -rf "$work"
  touch "$lib/.complete"
}

free_port() {
  # Bind port 0 and report what the kernel chose (a race with other processes is possible but rare).
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Metadata v0 request over /dev/tcp; ready when the response lists at least one (unfenced) broker.
metadata_ready() {
  local port="$1" reply
  # size=17: api_key=3 api_version=0 correlation_id=7 client_id="probe"(5) topics=[] (int32 0)
  reply="$(timeout 3 bash -c '
    exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
    printf "\x00\x00\x00\x13\x00\x03\x00\x00\x00\x00\x00\x07\x00\x05probe\x00\x00\x00\x00" >&3
    head -c 12 <&3 | od -An -tx1 | tr -d " \n"' 2>/dev/null)" || return 1
  # bytes: size(4) correlation_id(4)=00000007 broker_count(4) != 0
  [[ ${#reply} -eq 24 && "${reply:8:8}" == "00000007" && "${reply:16:8}" != "00000000" ]]
}

parse_state_dir() {
  state_dir="${KAFKA_STATE_DIR:-$cache_root/kafka/run}"
  purge=0
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --state-dir) state_dir="$2"; shift 2 ;;
      --purge) purge=1; shift ;;
      *) die "unknown option $1" ;;
    esac
  done
}

running_pid() {
  [[ -f "$state_dir/broker.pid" ]] || return 1
  local pid; pid="$(cat "$state_dir/broker.pid")"
  if kill -0 "$pid" 2>/dev/null && grep -q 'kafka.Kafka' "/proc/$pid/cmdline" 2>/dev/null; then echo "$pid"; return 0; fi
  return 1
}

write_config() {
  local port="$1" cport="$2"
  mkdir -p "$state_dir/data"
  cat >"$state_dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$state_dir/data
auto.create.topics.enable=false
num.partitions=${KAFKA_PARTITIONS:-4}
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.segment.bytes=67108864
log.retention.hours=24
message.max.bytes=8388608
replica.fetch.max.bytes=8388608
EOF
  cat >"$state_dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$state_dir/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
EOF
  printf 'PORT=%s\nCONTROLLER_PORT=%s\n' "$port" "$cport" >"$state_dir/ports"
}

start() {
  parse_state_dir "$@"
  need_tool java
  fetch
  if pid="$(running_pid)"; then
    # shellcheck disable=SC1091
    . "$state_dir/ports"; print_state "$pid" "$PORT"; return 0
  fi
  mkdir -p "$state_dir"
  local cp="$lib/*" port cport
  local jvm=(-Xms128m "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
             "-Dlog4j.configuration=file:$state_dir/log4j.properties" -Dkafka.logs.dir="$state_dir")
  if [[ -f "$state_dir/ports" && -f "$state_dir/data/meta.properties" ]]; then
    . "$state_dir/ports"; port="$PORT"; cport="$CONTROLLER_PORT"   # restart: same ports, same data
    log "restarting broker on 127.0.0.1:$port (state $state_dir)"
  else
    port="$(free_port)"; cport="$(free_port)"
    while [[ "$cport" == "$port" ]]; do cport="$(free_port)"; done
    write_config "$port" "$cport"
    local cluster_id; cluster_id="$(java -cp "$cp" "${jvm[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    java -cp "$cp" "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$state_dir/server.properties" >"$state_dir/format.log" 2>&1 \
      || { cat "$state_dir/format.log" >&2; die "kafka-storage format failed"; }
  fi
  # setsid: the broker is its own process group, so a test runner's signals do not reach it and `stop` can
  # address it by PID alone.
  setsid java -cp "$cp" "${jvm[@]}" kafka.Kafka "$state_dir/server.properties" \
    >>"$state_dir/stdout.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$state_dir/broker.pid"
  local deadline=$((SECONDS + ready_timeout))
  until metadata_ready "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$state_dir/server.log" "$state_dir/stdout.log" >&2 2>/dev/null || true
      rm -f "$state_dir/broker.pid"; die "broker exited during startup"
    fi
    if (( SECONDS >= deadline )); then
      tail -n 40 "$state_dir/server.log" >&2 2>/dev/null || true
      kill -KILL "$pid" 2>/dev/null || true; rm -f "$state_dir/broker.pid"
      die "broker not ready after ${ready_timeout}s"
    fi
    sleep 0.2
  done
  print_state "$pid" "$port"
}

print_state() {
  printf 'BOOTSTRAP=127.0.0.1:%s\nPID=%s\nSTATE_DIR=%s\n' "$2" "$1" "$state_dir" | tee "$state_dir/state"
}

stop() {
  parse_state_dir "$@"
  local pid
  if pid="$(running_pid)"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "broker $pid ignored TERM; KILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  fi
  rm -f "$state_dir/broker.pid" "$state_dir/state"
  if (( purge )) && [[ -d "$state_dir" ]]; then rm -rf "$state_dir"; fi
}

status() {
  parse_state_dir "$@"
  local pid; pid="$(running_pid)" || { log "not running ($state_dir)"; return 1; }
  . "$state_dir/ports"; print_state "$pid" "$PORT" >/dev/null; cat "$state_dir/state"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  fetch) need_tool java; fetch; echo "LIB=$lib" ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  status) status "$@" ;;
  *) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
