#!/usr/bin/env bash
# ALYX's test command: installs what the build and the tests need when it is missing, builds
# the whole workspace, runs every test, and prints how long each phase took.
#
#   CARGO_TARGET_DIR  build cache (default ~/.cache/alyx/target, kept across clones)
#   ALYX_TEST_DATA    the real HEP files (default ../shared/data beside the checkout)
#   CI=true           a missing test file or service fails its test instead of skipping it
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/alyx/target}"
export ALYX_TEST_DATA="${ALYX_TEST_DATA:-$(cd .. && pwd)/shared/data}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

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
  # The desktop (Bevy): X11/Wayland/udev/ALSA headers to build, Mesa's software Vulkan
  # (lavapipe) and Xvfb to render screenshots without a GPU or a display.
  local pkg
  for pkg in libxkbcommon-dev libasound2-dev libudev-dev libwayland-dev libvulkan1 mesa-vulkan-drivers xvfb; do
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

phase setup install_prerequisites
phase build cargo build --workspace --all-targets --locked
phase test cargo test --workspace --locked

echo "==> phase timings"
printf '  %s\n' "${timings[@]}"
