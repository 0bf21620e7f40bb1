#!/usr/bin/env bash
# Start (or stop) the real services seamfill's tests and demo use: Redis and QuestDB on loopback.
# Idempotent: a service already answering on its address is left alone.
#   SEAMFILL_REDIS_PORT (6379)  SEAMFILL_QUESTDB_HTTP_PORT (9000)  SEAMFILL_QUESTDB_PG_PORT (8812)
#   SEAMFILL_QUESTDB_ILP_PORT (9009)  SEAMFILL_CACHE (~/.cache/seamfill): jar and data, outside the repo
# A second QuestDB with the server's stock connection limits (2 concurrent /exp exports on a
# 2-core host) is started too, for the tests that show reads hold up against a server nobody tuned:
#   SEAMFILL_STOCK_QUESTDB_HTTP_PORT (9200)  _PG_PORT (9012)  _ILP_PORT (9209)  _MIN_PORT (9203)
#   SEAMFILL_STOCK_QUESTDB=0 skips it.
set -euo pipefail

QUESTDB_VERSION=9.3.4
REDIS_PORT=${SEAMFILL_REDIS_PORT:-6379}
QDB_HTTP=${SEAMFILL_QUESTDB_HTTP_PORT:-9000}
QDB_PG=${SEAMFILL_QUESTDB_PG_PORT:-8812}
QDB_ILP=${SEAMFILL_QUESTDB_ILP_PORT:-9009}
QDB_MIN=${SEAMFILL_QUESTDB_MIN_PORT:-9003}
CACHE=${SEAMFILL_CACHE:-$HOME/.cache/seamfill}
JAR="$CACHE/questdb-$QUESTDB_VERSION.jar"
QDB_ROOT="$CACHE/questdb-data"
STOCK_HTTP=${SEAMFILL_STOCK_QUESTDB_HTTP_PORT:-9200}
STOCK_PG=${SEAMFILL_STOCK_QUESTDB_PG_PORT:-9012}
STOCK_ILP=${SEAMFILL_STOCK_QUESTDB_ILP_PORT:-9209}
STOCK_MIN=${SEAMFILL_STOCK_QUESTDB_MIN_PORT:-9203}
STOCK_ROOT="$CACHE/questdb-stock-data"
REDIS_DIR="$CACHE/redis-data"

say() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: %s\n' "$*" >&2; exit 1; }

redis_up() { (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" && printf 'PING\r\n' >&3 && head -c5 <&3 | grep -q PONG) 2>/dev/null; }
questdb_up() { curl -fsS -o /dev/null "http://127.0.0.1:${1:-$QDB_HTTP}/exec?query=select%201" 2>/dev/null; }

start_redis() {
  if redis_up; then say "redis already running on 127.0.0.1:$REDIS_PORT"; return; fi
  if ! command -v redis-server >/dev/null; then
    command -v apt-get >/dev/null || die "redis-server missing and no apt-get: install Redis 7+ and rerun"
    say "installing redis-server from the OS packages"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null \
      || die "apt-get install redis-server failed: install Redis 7+ by hand and rerun"
  fi
  mkdir -p "$REDIS_DIR"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --dir "$REDIS_DIR" \
    --appendonly yes --save "" --logfile "$REDIS_DIR/redis.log" --pidfile "$REDIS_DIR/redis.pid" >/dev/null
  for _ in $(seq 1 100); do redis_up && break; sleep 0.1; done
  redis_up || die "redis did not start: see $REDIS_DIR/redis.log"
  say "redis started on 127.0.0.1:$REDIS_PORT"
}

fetch_questdb() {
  [ -s "$JAR" ] && return
  command -v mvn >/dev/null || die "QuestDB jar missing and no Maven: put questdb-$QUESTDB_VERSION.jar at $JAR"
  mkdir -p "$CACHE"
  say "fetching org.questdb:questdb:$QUESTDB_VERSION from Maven Central"
  mvn -q dependency:copy -Dartifact="org.questdb:questdb:$QUESTDB_VERSION" -DoutputDirectory="$CACHE" \
    -Dmdep.overWriteIfNewer=true >/dev/null || die "mvn could not fetch org.questdb:questdb:$QUESTDB_VERSION"
}

# run_questdb ROOT HTTP PG ILP MIN [extra server.conf lines]
run_questdb() {
  local root=$1 http=$2 pg=$3 ilp=$4 min=$5 extra=${6:-}
  if questdb_up "$http"; then say "questdb already running on 127.0.0.1:$http"; return; fi
  command -v java >/dev/null || die "java missing: install a JDK 17+ (apt-get install openjdk-17-jre-headless)"
  fetch_questdb
  mkdir -p "$root/conf"
  cat > "$root/conf/server.conf" <<CONF
http.bind.to=127.0.0.1:$http
http.min.net.bind.to=127.0.0.1:$min
pg.net.bind.to=127.0.0.1:$pg
line.tcp.net.bind.to=127.0.0.1:$ilp
line.udp.enabled=false
telemetry.enabled=false
cairo.wal.apply.look.ahead.txn.count=200
$extra
CONF
  say "starting questdb $QUESTDB_VERSION on 127.0.0.1:$http (data in $root)"
  nohup java -Xms256m -Xmx2g -p "$JAR" -m io.questdb/io.questdb.ServerMain -d "$root" \
    >"$root/stdout.log" 2>&1 &
  echo $! > "$root/questdb.pid"
  for _ in $(seq 1 600); do questdb_up "$http" && break; sleep 0.1; done
  questdb_up "$http" || die "questdb did not start in 60 s: see $root/stdout.log"
  say "questdb started on 127.0.0.1:$http"
}

# QuestDB caps concurrent /exp exports at min(CPUs, 25% of HTTP connections): 2 on a 2-core host,
# so a team's third simultaneous reader is answered 429. 16 lets a team of eight backtests (two
# reads each in flight) export at once; /exp streams from disk and holds little memory per export,
# and the cap stays well under the 256 HTTP connections. PGWire (the SDK's path when exports are
# saturated, and the coordinator's) keeps QuestDB's own 64 connections plus room for the team.
TEAM_LIMITS="http.export.connection.limit=16
pg.net.connection.limit=96"

start_questdb() {
  run_questdb "$QDB_ROOT" "$QDB_HTTP" "$QDB_PG" "$QDB_ILP" "$QDB_MIN" "$TEAM_LIMITS"
  [ "${SEAMFILL_STOCK_QUESTDB:-1}" = 0 ] && return
  run_questdb "$STOCK_ROOT" "$STOCK_HTTP" "$STOCK_PG" "$STOCK_ILP" "$STOCK_MIN"
}

stop_all() {
  for root in "$QDB_ROOT" "$STOCK_ROOT"; do
    if [ -f "$root/questdb.pid" ]; then kill "$(cat "$root/questdb.pid")" 2>/dev/null || true; rm -f "$root/questdb.pid"; fi
  done
  if [ -f "$REDIS_DIR/redis.pid" ]; then kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true; fi
  say "stopped what this script started"
}

case "${1:-start}" in
  start)
    start_redis
    start_questdb
    echo "SEAMFILL_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
    echo "SEAMFILL_QUESTDB_URL=http://127.0.0.1:$QDB_HTTP"
    echo "SEAMFILL_QUESTDB_DSN=postgresql://admin:quest@127.0.0.1:$QDB_PG/qdb"
    echo "SEAMFILL_STOCK_QUESTDB_URL=http://127.0.0.1:$STOCK_HTTP"
    ;;
  stop) stop_all ;;
  *) die "usage: services.sh start|stop" ;;
esac
