#!/usr/bin/env bash
# ALYX's test command: installs what the build and the tests need when it is missing, builds
# the whole workspace, runs every test, and prints how long each phase took.
#
#   CARGO_TARGET_DIR  build cache (default ~/.cache/alyx/target, kept across clones)
#   ALYX_TEST_DATA    the real HEP files (default ../shared/data beside the checkout)
#   CI=true           a missing test file or service fails its test instead of skipping it
#   DATABASE_URL      PostgreSQL for #[sqlx::test] (default postgres://postgres@127.0.0.1:5432/postgres;
#                     each test creates and drops its own database)
#
# It starts a Kafka-protocol broker (tansu, in memory, on 127.0.0.1:19092) for the ingest tests,
# exports ALYX_KAFKA_BROKERS, and stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/alyx/target}"
export ALYX_TEST_DATA="${ALYX_TEST_DATA:-$(cd .. && pwd)/shared/data}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
TOOLS="${ALYX_TOOLS_DIR:-$HOME/.cache/alyx/tools}"
KAFKA_PORT="${ALYX_KAFKA_PORT:-19092}"
started_pids=()
stop_services() {
  local pid
  for pid in "${started_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
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
  # The desktop (Bevy): X11/Wayland/udev/ALSA headers to build, Mesa's software Vulkan
  # (lavapipe) and Xvfb to render screenshots without a GPU or a display.
  local pkg
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

phase setup install_prerequisites
phase broker install_broker
phase build cargo build --workspace --all-targets --locked
start_broker
phase test cargo test --workspace --locked

echo "==> phase timings"
printf '  %s\n' "${timings[@]}"
