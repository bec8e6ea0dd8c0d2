#!/usr/bin/env bash
# Starts a single-node Kafka (KRaft: one process is broker and controller) from
# the Maven Central jars of ./pom.xml, for tests and CI — no Docker needed.
#
#   infra/kafka/start.sh            # prints the bootstrap address, e.g. 127.0.0.1:19092
#   infra/kafka/stop.sh             # stops it and removes its temporary data
#
# Environment (all optional):
#   KAFKA_PORT             PLAINTEXT listener on 127.0.0.1           (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener on 127.0.0.1    (default KAFKA_PORT + 1)
#   KAFKA_DATA_DIR         data, config and logs; kept by stop.sh    (default: a new temp dir, removed by stop.sh)
#   KAFKA_HEAP_OPTS        JVM heap                                  (default -Xms256m -Xmx512m)
#   KAFKA_START_TIMEOUT    seconds to wait until the broker answers  (default 90)
#
# Idempotent: when the broker of this port is already running and answers, it
# only prints the bootstrap address. Run state (pid, data dir) lives in
# infra/kafka/.run/<port>/, so brokers on different ports can coexist.
# Everything but the bootstrap address goes to stderr, so callers can capture it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${KAFKA_PORT:-19092}"
controller_port="${KAFKA_CONTROLLER_PORT:-$((port + 1))}"
timeout_s="${KAFKA_START_TIMEOUT:-90}"
heap="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
run_dir="$here/.run/$port"
lib_dir="$here/target/lib"
bootstrap="127.0.0.1:$port"
java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"

log() { echo "kafka: $*" >&2; }
die() { echo "kafka: error: $*" >&2; exit 1; }

command -v "$java_bin" >/dev/null 2>&1 || die "java not found (Java 17+ is needed to run the test broker)"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Metadata round trip: the broker accepts connections and serves requests.
# kcat when installed, else the repository's kafkajs, else a TCP connect.
broker_answers() {
  port_open "$port" || return 1
  if command -v kcat >/dev/null 2>&1; then
    kcat -L -b "$bootstrap" -m 5 >/dev/null 2>&1
  elif (cd "$here/../.." && node -e 'require.resolve("kafkajs")' >/dev/null 2>&1); then
    (cd "$here/../.." && BOOTSTRAP="$bootstrap" node -e '
      const { Kafka, logLevel } = require("kafkajs");
      const admin = new Kafka({ brokers: [process.env.BOOTSTRAP], logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 3000 }).admin();
      admin.connect().then(() => admin.describeCluster()).then(() => admin.disconnect()).then(() => process.exit(0), () => process.exit(1));
    ' >/dev/null 2>&1)
  else
    true
  fi
}

# ------------------------------------------------------------ already running?
if [ -f "$run_dir/kafka.pid" ]; then
  pid="$(cat "$run_dir/kafka.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    if broker_answers; then
      log "already running (pid $pid)"
      echo "$bootstrap"
      exit 0
    fi
    die "a broker process (pid $pid) from $run_dir is running but does not answer on $bootstrap; run infra/kafka/stop.sh (KAFKA_PORT=$port) first"
  fi
  log "removing stale run state of pid $pid"
  rm -rf "$run_dir"
fi
port_open "$port" && die "port $port is already in use by another process; set KAFKA_PORT"
port_open "$controller_port" && die "controller port $controller_port is already in use; set KAFKA_CONTROLLER_PORT"

# ------------------------------------------------------------ jars (once)
# The download happens only when target/lib is missing or was made from another
# pom.xml; afterwards the broker starts offline. A lock keeps parallel starts
# from downloading twice, and the rename keeps an interrupted download from
# looking complete.
pom_sum="$(sha256sum "$here/pom.xml" | cut -d' ' -f1)"
if [ "$(cat "$lib_dir/.pom.sha256" 2>/dev/null || true)" != "$pom_sum" ]; then
  command -v mvn >/dev/null 2>&1 || die "mvn not found: Maven is needed once to download the Kafka jars"
  mkdir -p "$here/target"
  exec 9>"$here/target/.download.lock"
  flock 9
  if [ "$(cat "$lib_dir/.pom.sha256" 2>/dev/null || true)" != "$pom_sum" ]; then
    log "downloading the Kafka jars with Maven (first run only)"
    rm -rf "$lib_dir" "$lib_dir.tmp"
    mvn_args=(-q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$lib_dir.tmp")
    if ! mvn "${mvn_args[@]}" >&2; then
      log "online resolution failed; retrying from the local Maven repository (-o)"
      mvn -o "${mvn_args[@]}" >&2 || die "could not download the Kafka jars (see Maven output above)"
    fi
    echo "$pom_sum" >"$lib_dir.tmp/.pom.sha256"
    mv "$lib_dir.tmp" "$lib_dir"
  fi
  flock -u 9
fi

# ------------------------------------------------------------ configuration
mkdir -p "$run_dir"
if [ -n "${KAFKA_DATA_DIR:-}" ]; then
  data_dir="$KAFKA_DATA_DIR"
  mkdir -p "$data_dir"
  echo 0 >"$run_dir/data-dir-is-temp"
else
  data_dir="$(mktemp -d "${TMPDIR:-/tmp}/agentwatch-kafka-$port.XXXXXX")"
  echo 1 >"$run_dir/data-dir-is-temp"
fi
echo "$data_dir" >"$run_dir/data-dir"
# After a failed start its logs are printed; a temp data dir goes too.
discard_run_state() {
  if [ "$(cat "$run_dir/data-dir-is-temp" 2>/dev/null || echo 0)" = 1 ]; then rm -rf "$data_dir"; fi
  rm -rf "$run_dir"
}

mkdir -p "$data_dir/logs"
broker_log="$data_dir/logs/server.log"

cat >"$data_dir/server.properties" <<EOF
# Written by infra/kafka/start.sh: one KRaft node, broker and controller, for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data_dir/kraft-logs
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true
# One node: every internal topic has one replica. Fewer offsets partitions
# than the default 50 make the first group join faster.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests join groups all the time: no waiting for more members.
group.initial.rebalance.delay.ms=0
log.retention.hours=24
num.network.threads=2
num.io.threads=4
EOF

cat >"$data_dir/log4j2.properties" <<EOF
# Written by infra/kafka/start.sh: the broker logs to a file only.
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $broker_log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
EOF

# The format tool logs warnings to its console (logs/format.out) only, so
# server.log holds the broker's own log.
cat >"$data_dir/log4j2-tools.properties" <<EOF
status = warn
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.console.ref = STDERR
EOF

# Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
# A KRaft cluster id is 16 random bytes in URL-safe base64. One starting with
# "-" would be read by the format tool as an option, so draw again.
cluster_id="-"
until [[ $cluster_id != -* ]]; do
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
done
jvm_common=(-cp "$lib_dir/*" -Djava.awt.headless=true)
if [ ! -f "$data_dir/kraft-logs/meta.properties" ]; then
  "$java_bin" -Xmx256m "${jvm_common[@]}" -Dlog4j2.configurationFile="$data_dir/log4j2-tools.properties" kafka.tools.StorageTool format \
    -t "$cluster_id" -c "$data_dir/server.properties" >"$data_dir/logs/format.out" 2>&1 \
    || { cat "$data_dir/logs/format.out" >&2; discard_run_state; die "formatting the storage failed"; }
fi

# ------------------------------------------------------------ start and wait
# shellcheck disable=SC2086 # heap holds several JVM flags
nohup "$java_bin" $heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "${jvm_common[@]}" -Dlog4j2.configurationFile="$data_dir/log4j2.properties" \
  kafka.Kafka "$data_dir/server.properties" >"$data_dir/logs/kafka.out" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$run_dir/kafka.pid"
log "started pid $pid, data in $data_dir, waiting for $bootstrap"

deadline=$((SECONDS + timeout_s))
until broker_answers; do
  if ! kill -0 "$pid" 2>/dev/null; then
    {
      echo "kafka: error: the broker (pid $pid) exited during start-up. Tail of its logs:"
      tail -n 40 "$data_dir/logs/kafka.out" 2>/dev/null || true
      tail -n 60 "$broker_log" 2>/dev/null || true
    } >&2
    discard_run_state
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    {
      echo "kafka: error: the broker (pid $pid) did not answer on $bootstrap within ${timeout_s}s. Tail of its logs:"
      tail -n 40 "$data_dir/logs/kafka.out" 2>/dev/null || true
      tail -n 60 "$broker_log" 2>/dev/null || true
    } >&2
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    discard_run_state
    exit 1
  fi
  sleep 0.3
done
log "ready on $bootstrap (pid $pid)"
echo "$bootstrap"
