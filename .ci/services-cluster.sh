#!/usr/bin/env bash
# Start (or stop) the highly available Redis set-ups the cluster tests use, on loopback:
#   a Redis Cluster of 3 masters + 3 replicas (ports BASE..BASE+5, joined with redis-cli), and
#   a Sentinel group: a master with 2 replicas (SENTINEL_DATA..+2) watched by 3 Sentinels.
# Idempotent: a set-up already answering is left alone (a cluster missing a node has it
# restarted; the node rejoins by its nodes.conf).
#   SEAMFILL_CLUSTER_PORT (7100)  SEAMFILL_SENTINEL_PORT (26379)  SEAMFILL_SENTINEL_DATA_PORT (6400)
#   SEAMFILL_CLUSTER_DIR (/tmp/cluster-seamfill): data, configs and logs
set -euo pipefail

BASE=${SEAMFILL_CLUSTER_PORT:-7100}
SBASE=${SEAMFILL_SENTINEL_PORT:-26379}
DBASE=${SEAMFILL_SENTINEL_DATA_PORT:-6400}
DIR=${SEAMFILL_CLUSTER_DIR:-/tmp/cluster-seamfill}
MASTER_NAME=${SEAMFILL_SENTINEL_MASTER:-seamfill}
# Failure detection: a master unreachable this long is failed over (kept short on loopback).
NODE_TIMEOUT_MS=${SEAMFILL_CLUSTER_NODE_TIMEOUT_MS:-1500}

say() { printf 'services-cluster: %s\n' "$*" >&2; }
die() { printf 'services-cluster: %s\n' "$*" >&2; exit 1; }

up() { redis-cli -p "$1" ping 2>/dev/null | grep -q PONG; }

wait_up() {
  for _ in $(seq 1 100); do up "$1" && return; sleep 0.1; done
  die "redis on 127.0.0.1:$1 did not start: see $DIR/$1/redis.log"
}

start_node() {  # port, extra args...
  local port=$1; shift
  up "$port" && return
  mkdir -p "$DIR/$port"
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --dir "$DIR/$port" \
    --save "" --appendonly no --repl-diskless-sync-delay 0 --logfile "$DIR/$port/redis.log" --pidfile "$DIR/$port/redis.pid" \
    "$@" >/dev/null
  wait_up "$port"
}

cluster_ok() { redis-cli -p "$BASE" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; }

start_cluster() {
  command -v redis-server >/dev/null || die "redis-server missing: run \`make services\` first"
  local ports=()
  for i in 0 1 2 3 4 5; do
    local port=$((BASE + i))
    ports+=("127.0.0.1:$port")
    start_node "$port" --cluster-enabled yes --cluster-config-file "$DIR/$port/nodes.conf" \
      --cluster-node-timeout "$NODE_TIMEOUT_MS" \
      --cluster-require-full-coverage no --cluster-allow-reads-when-down no
  done
  local known
  known=$(redis-cli -p "$BASE" cluster info | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p')
  if [ "${known:-1}" -le 1 ]; then
    say "joining ${ports[*]} (3 masters + 3 replicas)"
    redis-cli --cluster create "${ports[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
  fi
  for _ in $(seq 1 100); do cluster_ok && break; sleep 0.1; done
  cluster_ok || die "the cluster on 127.0.0.1:$BASE did not reach cluster_state:ok"
  say "cluster up on 127.0.0.1:$BASE-$((BASE + 5))"
}

sentinel_up() { redis-cli -p "$1" sentinel get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | grep -q .; }

sentinel_master() {  # "HOST PORT" of the master the Sentinels know, or nothing
  for s in 0 1 2; do
    if sentinel_up $((SBASE + s)); then
      redis-cli -p $((SBASE + s)) sentinel get-master-addr-by-name "$MASTER_NAME" | tr '\n' ' '
      return
    fi
  done
}

start_sentinel() {
  local master
  master=$(sentinel_master)
  for i in 0 1 2; do
    local port=$((DBASE + i))
    up "$port" && continue
    # A restarted data node follows whoever the Sentinels say is the master now.
    if [ -n "$master" ] && [ "$master" != "127.0.0.1 $port " ]; then
      start_node "$port" --replicaof $master
    elif [ "$i" = 0 ]; then
      start_node "$port"
    else
      start_node "$port" --replicaof 127.0.0.1 "$DBASE"
    fi
  done
  for s in 0 1 2; do
    local port=$((SBASE + s))
    sentinel_up "$port" && continue
    mkdir -p "$DIR/$port"
    [ -f "$DIR/$port/sentinel.conf" ] || cat > "$DIR/$port/sentinel.conf" <<CONF
bind 127.0.0.1
port $port
dir $DIR/$port
sentinel resolve-hostnames no
sentinel monitor $MASTER_NAME 127.0.0.1 $DBASE 2
sentinel down-after-milliseconds $MASTER_NAME 1000
sentinel failover-timeout $MASTER_NAME 5000
sentinel parallel-syncs $MASTER_NAME 2
CONF
    redis-server "$DIR/$port/sentinel.conf" --sentinel --daemonize yes \
      --logfile "$DIR/$port/sentinel.log" --pidfile "$DIR/$port/sentinel.pid" >/dev/null
    for _ in $(seq 1 100); do sentinel_up "$port" && break; sleep 0.1; done
    sentinel_up "$port" || die "sentinel on 127.0.0.1:$port did not start: see $DIR/$port/sentinel.log"
  done
  say "sentinel up on 127.0.0.1:$SBASE-$((SBASE + 2)) watching $MASTER_NAME"
}

stop_all() {
  for f in "$DIR"/*/redis.pid "$DIR"/*/sentinel.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  say "stopped what this script started (data in $DIR kept; rm -rf it for a fresh cluster)"
}

case "${1:-start}" in
  start)
    start_cluster
    start_sentinel
    echo "SEAMFILL_CLUSTER_URL=redis+cluster://127.0.0.1:$BASE,127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2))"
    echo "SEAMFILL_SENTINEL_URL=redis+sentinel://127.0.0.1:$SBASE,127.0.0.1:$((SBASE + 1)),127.0.0.1:$((SBASE + 2))/$MASTER_NAME"
    ;;
  stop) stop_all ;;
  *) die "usage: services-cluster.sh start|stop" ;;
esac
