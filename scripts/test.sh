#!/usr/bin/env bash
# ALYX's test command: installs what the build and the tests need when it is missing, builds
# the whole workspace, runs every test, and prints how long each phase took.
#
#   CARGO_TARGET_DIR  build cache (default ~/.cache/alyx/target, kept across clones)
#   ALYX_TEST_DATA    the real HEP files (default ../shared/data beside the checkout)
#   CI=true           a missing test file or service fails its test instead of skipping it
#   DATABASE_URL      PostgreSQL for #[sqlx::test] (default postgres://alyx@127.0.0.1:5432/alyx;
#                     each test creates and drops its own database). The tests, their migrations
#                     and the alyxd they start connect as `alyx`, an owner that is not a
#                     superuser (it may create databases and roles)
#   ALYX_PG_DATA      where a PostgreSQL the test command starts itself keeps its cluster, when
#                     none listens on 127.0.0.1:5432 (default /var/tmp/alyx-pg)
#   ALYX_PG_ADMIN_URL a superuser connection that creates the roles `alyx` and `alyx_query` and
#                     the database `alyx` when missing (default postgres://postgres@127.0.0.1:5432/postgres)
#
# It starts, when missing, PostgreSQL (ALYX_PG_DATA) and Redis (127.0.0.1:6379, ALYX_REDIS_URL),
# a Kafka-protocol broker (tansu, in memory, on 127.0.0.1:19092) for the ingest tests,
# a Spark Connect server (pyspark 4.3.0 from PyPI, local[2], on 127.0.0.1:15002) for the Spark
# engine and executor, and a single-node Slurm cluster (Debian's slurm-wlm and munge,
# scripts/slurm.sh, configuration, munge key and state in /tmp/alyx-slurm, never /etc) for the
# Slurm executor; exports ALYX_KAFKA_BROKERS, ALYX_SPARK_URL, ALYX_SLURM_BASE and SLURM_CONF,
# and stops all three on exit. The
# peers the tests compare against (uproot, awkward) live in a virtualenv, ALYX_VENV (default
# ~/.cache/alyx/venv).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/alyx/target}"
export ALYX_TEST_DATA="${ALYX_TEST_DATA:-$(cd .. && pwd)/shared/data}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export DATABASE_URL="${DATABASE_URL:-postgres://alyx@127.0.0.1:5432/alyx}"
PG_ADMIN_URL="${ALYX_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
TOOLS="${ALYX_TOOLS_DIR:-$HOME/.cache/alyx/tools}"
KAFKA_PORT="${ALYX_KAFKA_PORT:-19092}"
SPARK_PORT="${ALYX_SPARK_PORT:-15002}"
SPARK_BASE="$TOOLS/spark"
SLURM_BASE="${ALYX_SLURM_STATE:-/tmp/alyx-slurm}"
PG_DATA="${ALYX_PG_DATA:-/var/tmp/alyx-pg}"
export ALYX_VENV="${ALYX_VENV:-$HOME/.cache/alyx/venv}"
started_pids=()
cleanup_dirs=()
slurm_started=0
pg_started=0
stop_services() {
  local pid
  for pid in "${started_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ ${#cleanup_dirs[@]} -gt 0 ]; then rm -rf "${cleanup_dirs[@]}"; fi
  if [ "$slurm_started" = 1 ]; then BASE="$SLURM_BASE" scripts/slurm.sh stop || true; fi
  if [ "$pg_started" = 1 ]; then
    runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$PG_DATA" -m fast stop >/dev/null || true
  fi
}
trap stop_services EXIT

timings=()
phase() {
  local name=$1; shift
  local start=$SECONDS
  echo "==> $name"
  "$@"
  timings+=("$(printf '%-10s %5ds' "$name" $((SECONDS - start)))")
}

install_prerequisites() {
  # A C compiler builds the bundled C code of some crates (lz4, zstd).
  local missing=()
  command -v cc >/dev/null || missing+=(gcc)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  # librdkafka (built from source by rdkafka-sys): make, a C++ compiler, zlib; xz unpacks tansu.
  command -v make >/dev/null || missing+=(make)
  command -v c++ >/dev/null || missing+=(g++)
  command -v xz >/dev/null || missing+=(xz-utils)
  # openssl makes the throwaway CA of the TLS tests.
  command -v openssl >/dev/null || missing+=(openssl)
  # The desktop (Bevy): X11/Wayland/udev/ALSA headers to build, Mesa's software Vulkan
  # (lavapipe) and Xvfb to render screenshots without a GPU or a display.
  local pkg
  # Spark Connect runs on Java 17.
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  for pkg in zlib1g-dev libxkbcommon-dev libasound2-dev libudev-dev libwayland-dev libvulkan1 mesa-vulkan-drivers xvfb; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
  command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
  if [ ! -d "$ALYX_TEST_DATA" ]; then
    echo "warning: test data not found at $ALYX_TEST_DATA (set ALYX_TEST_DATA)" >&2
  fi
}

# The Kafka-protocol broker: tansu 0.6.0 (dynostore build), unpacked from the prebuilt copy in
# ../shared/tools when there is one, else built with cargo install (15-30 min, once).
install_broker() {
  mkdir -p "$TOOLS"
  [ -x "$TOOLS/tansu" ] && return
  local prebuilt
  for prebuilt in "$(dirname "$ALYX_TEST_DATA")/tools" ../shared/tools /work/shared/tools; do
    prebuilt="$prebuilt/tansu-0.6.0-dynostore-x86_64-linux-gnu.xz"
    if [ -f "$prebuilt" ]; then
      xz -dc "$prebuilt" > "$TOOLS/tansu.tmp" && chmod +x "$TOOLS/tansu.tmp" && mv "$TOOLS/tansu.tmp" "$TOOLS/tansu"
      return
    fi
  done
  cargo install tansu@0.6.0 --locked --features dynostore --root "$TOOLS/tansu-build"
  cp "$TOOLS/tansu-build/bin/tansu" "$TOOLS/tansu"
}

start_broker() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; then
    echo "a broker already listens on 127.0.0.1:$KAFKA_PORT; using it"
  else
    "$TOOLS/tansu" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine memory://tansu/ > "$TOOLS/tansu.log" 2>&1 &
    started_pids+=($!)
    local i
    for i in $(seq 1 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null && break
      sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null \
      || { echo "tansu did not start; see $TOOLS/tansu.log" >&2; exit 1; }
  fi
  export ALYX_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
}

# Spark Connect from pyspark's wheel (with its connect extras), in a virtualenv of its own.
install_spark() {
  local venv="$SPARK_BASE/venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -c 'import pyspark' 2>/dev/null \
    || "$venv/bin/pip" install -q 'pyspark[connect]==4.3.0' 'pandas<3'
}

# Started before the build (the JVM warms up meanwhile); waited for before the tests.
start_spark() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$SPARK_PORT") 2>/dev/null; then
    echo "a server already listens on 127.0.0.1:$SPARK_PORT; using it as Spark Connect"
    return
  fi
  local spark_home
  spark_home=$("$SPARK_BASE/venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
  mkdir -p "$SPARK_BASE"/{logs,local,warehouse,work}
  (
    cd "$SPARK_BASE/work"
    export SPARK_HOME="$spark_home" SPARK_LOCAL_IP=127.0.0.1 SPARK_NO_DAEMONIZE=1
    export JAVA_HOME="${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}"
    exec "$spark_home/bin/spark-submit" \
      --class org.apache.spark.sql.connect.service.SparkConnectServer --name alyx-test-spark \
      --master 'local[2]' --driver-memory 2g \
      --conf spark.connect.grpc.binding.address=127.0.0.1 --conf "spark.connect.grpc.binding.port=$SPARK_PORT" \
      --conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1 \
      --conf spark.ui.enabled=false --conf "spark.local.dir=$SPARK_BASE/local" \
      --conf "spark.sql.warehouse.dir=$SPARK_BASE/warehouse" --conf spark.sql.shuffle.partitions=4 \
      spark-internal
  ) > "$SPARK_BASE/logs/connect.log" 2>&1 &
  started_pids+=($!)
  spark_pid=$!
}

wait_spark() {
  local i
  for i in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SPARK_PORT") 2>/dev/null && break
    if [ -n "${spark_pid:-}" ] && ! kill -0 "$spark_pid" 2>/dev/null; then
      tail -30 "$SPARK_BASE/logs/connect.log" >&2; echo "Spark Connect died" >&2; exit 1
    fi
    sleep 0.5
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$SPARK_PORT") 2>/dev/null \
    || { tail -30 "$SPARK_BASE/logs/connect.log" >&2; echo "Spark Connect did not start" >&2; exit 1; }
  export ALYX_SPARK_URL="sc://127.0.0.1:$SPARK_PORT"
}

# uproot and awkward: the peers of the differential import tests.
install_peers() {
  [ -x "$ALYX_VENV/bin/python" ] || python3 -m venv "$ALYX_VENV"
  "$ALYX_VENV/bin/python" -c 'import uproot, awkward, numpy' 2>/dev/null \
    || "$ALYX_VENV/bin/pip" install -q 'uproot==5.7.7' 'awkward==2.14.0' 'numpy==2.4.6'
}

# A throwaway certificate authority and a server certificate for localhost, for the tests of
# alyxd over TLS; made fresh each run, removed at exit.
make_test_ca() {
  local dir
  dir=$(mktemp -d /tmp/alyx-tls.XXXXXX)
  cleanup_dirs+=("$dir")
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ALYX test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > "$dir/ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/ext" -out "$dir/server.pem" 2>/dev/null
  export ALYX_TEST_TLS_DIR="$dir"
}

# alyxd's roles, as an operator would make them: `alyx` owns the schema (migrations run as it)
# and is not a superuser; `alyx_query` is the role users' catalogue queries run as
# (migrations/README.md). Both belong to the cluster, so they are made once.
database_roles() {
  command -v psql >/dev/null || { echo "psql not found: PostgreSQL's client is needed" >&2; exit 1; }
  psql -v ON_ERROR_STOP=1 -q "$PG_ADMIN_URL" <<'SQL'
SELECT 'CREATE ROLE alyx LOGIN CREATEDB CREATEROLE NOSUPERUSER'
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'alyx') \gexec
SELECT 'CREATE ROLE alyx_query NOLOGIN'
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'alyx_query') \gexec
SELECT 'CREATE DATABASE alyx OWNER alyx'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'alyx') \gexec
ALTER ROLE alyx NOSUPERUSER;
GRANT alyx_query TO alyx WITH ADMIN OPTION;
SQL
  [ "$(psql -tAq "$DATABASE_URL" -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user')" = f ] || {
    echo "DATABASE_URL connects as a superuser; the tests run as alyxd's owner role, which is not one" >&2
    exit 1
  }
}

# PostgreSQL 15 on 127.0.0.1:5432: the running one when there is one, else Debian's (installed
# when missing) with a cluster of the test command's own in PG_DATA (trust on localhost only),
# stopped at exit.
start_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return; fi
  local bin=/usr/lib/postgresql/15/bin
  if [ ! -x "$bin/postgres" ] || ! command -v psql >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 postgresql-client-15
  fi
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    mkdir -p "$PG_DATA" && chown postgres: "$PG_DATA" && chmod 700 "$PG_DATA"
    runuser -u postgres -- "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p 5432 -k /tmp -c max_connections=300" start >/dev/null
  pg_started=1
}

# Redis on 127.0.0.1:6379 (the data layer's shared cache): the running one, else Debian's
# redis-server (installed when missing) in the foreground of a background job, without
# persistence, stopped at exit.
start_redis() {
  export ALYX_REDIS_URL="redis://127.0.0.1:6379"
  if (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then return; fi
  command -v redis-server >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }
  # As alyxd's shared cache wants it: bounded, evicting only entries with a TTL.
  redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize no \
    --maxmemory 256mb --maxmemory-policy volatile-lru > "$TOOLS/redis.log" 2>&1 &
  started_pids+=($!)
  local i
  for i in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break
    sleep 0.1
  done
  (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null \
    || { echo "redis-server did not start; see $TOOLS/redis.log" >&2; exit 1; }
}

# The systemd units in deploy/ as systemd reads them, with the alyxd just built: any warning
# (an unknown or misspelt directive, a missing binary) fails.
verify_units() {
  command -v systemd-analyze >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; }
  local dir unit out
  dir=$(mktemp -d /tmp/alyx-units.XXXXXX)
  cleanup_dirs+=("$dir")
  for unit in deploy/systemd/*.service; do
    sed "s|/usr/local/bin/alyxd|$CARGO_TARGET_DIR/debug/alyxd|g" "$unit" > "$dir/$(basename "$unit")"
  done
  cp "$dir/alyxd@.service" "$dir/alyxd@1.service"
  out=$(systemd-analyze verify "$dir/alyxd.service" "$dir/alyxd@1.service" 2>&1) || true
  if [ -n "$out" ]; then echo "$out" >&2; echo "deploy/systemd: systemd-analyze verify complained" >&2; exit 1; fi
}

# The Prometheus configuration and alert rules in deploy/prometheus, checked and unit-tested
# with promtool (Debian's prometheus package, installed when missing; its server is not run).
check_alerts() {
  if ! command -v promtool >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
    # Only promtool is wanted: where systemd started the package's server, stop it again.
    if [ -d /run/systemd/system ]; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
  fi
  (cd deploy/prometheus && promtool check config prometheus.yml && promtool test rules alerts_test.yml)
}

start_slurm() {
  export SLURM_CONF="$SLURM_BASE/etc/slurm.conf"
  if [ -f "$SLURM_CONF" ] && sinfo -h >/dev/null 2>&1; then
    echo "a Slurm cluster already answers; using it (state assumed in $SLURM_BASE)"
  else
    slurm_started=1
    BASE="$SLURM_BASE" scripts/slurm.sh start
  fi
  export ALYX_SLURM_BASE="$SLURM_BASE"
}

phase setup install_prerequisites
phase broker install_broker
phase spark install_spark
phase peers install_peers
start_spark
phase slurm start_slurm
phase tls make_test_ca
phase postgres start_postgres
phase redis start_redis
phase database database_roles
phase cycles python3 scripts/module_cycles.py
phase build cargo build --workspace --all-targets --locked
phase units verify_units
phase alerts check_alerts
start_broker
phase sparkwait wait_spark
phase test cargo test --workspace --locked --no-fail-fast

echo "==> phase timings"
printf '  %s\n' "${timings[@]}"
