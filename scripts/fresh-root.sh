#!/usr/bin/env bash
# Runs the README's commands on a clean Debian 12 machine made here: a debootstrap root in a
# network namespace of its own (its own 127.0.0.1, so none of this host's PostgreSQL, Redis or
# broker is seen; the registries reached through NAT), holding only what a fresh machine of
# this kind has — Debian's base system, git, Python 3 and the Rust toolchain (copied from this
# host: rustup cannot be fetched here). It clones this checkout's HEAD into it and runs
#
#   scripts/alyx --screenshot event.png     (the README's first command, with no display)
#   CI=true scripts/test.sh                 (the test command)
#   cargo run -p alyx-backend --bin alyxctl -- demo
#
# printing how long each took. As root, on a Debian/Ubuntu host:
#
#   scripts/fresh-root.sh [ROOT]            # ROOT default /var/tmp/alyx-fresh-root
#
#   FRESH_TARGET_DIR  a build directory to reuse (bind-mounted as the root's
#                     ~/.cache/alyx/target); default none: a cold build, about an hour on two cores
#   FRESH_KEEP=1      keep the root afterwards (default: removed; the debootstrap is redone)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "fresh-root.sh: run as root (debootstrap, chroot, network namespaces)" >&2; exit 1; }
ROOT="${1:-/var/tmp/alyx-fresh-root}"
SHARED="$(cd .. && pwd)/shared"
NS=alyx-fresh
MIRROR="${FRESH_MIRROR:-http://deb.debian.org/debian}"
log() { printf '%s fresh-root: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

mounted=()
teardown() {
  local m
  for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  ip link del veth-alyx 2>/dev/null || true
  iptables -t nat -D POSTROUTING -s 10.231.0.0/24 -j MASQUERADE 2>/dev/null || true
  iptables -D FORWARD -s 10.231.0.0/24 -j ACCEPT 2>/dev/null || true
  iptables -D FORWARD -d 10.231.0.0/24 -j ACCEPT 2>/dev/null || true
  if [ "${FRESH_KEEP:-0}" != 1 ]; then rm -rf --one-file-system "$ROOT"; fi
}
trap teardown EXIT

missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v iptables >/dev/null || missing+=(iptables)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

start=$SECONDS
if [ ! -x "$ROOT/usr/bin/git" ]; then
  log "debootstrap bookworm into $ROOT"
  debootstrap --include=ca-certificates,git,sudo,python3,python3-venv,python3-pip,procps,curl \
    bookworm "$ROOT" "$MIRROR" > /tmp/alyx-fresh-debootstrap.log
fi
# What a fresh machine of this kind also has: this network's certificate authorities and apt
# settings, and the one Rust toolchain.
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/" 2>/dev/null || true
cp /etc/apt/apt.conf.d/99artifact-registry "$ROOT/etc/apt/apt.conf.d/" 2>/dev/null || true
cp /etc/pip.conf "$ROOT/etc/pip.conf" 2>/dev/null || true
chroot "$ROOT" update-ca-certificates > /dev/null
if [ ! -x "$ROOT/root/.cargo/bin/cargo" ]; then
  mkdir -p "$ROOT/root/.cargo"
  cp -a "${RUSTUP_HOME:-$HOME/.rustup}" "$ROOT/root/.rustup"
  cp -a "${CARGO_HOME:-$HOME/.cargo}/bin" "$ROOT/root/.cargo/bin"
fi
log "root ready in $((SECONDS - start)) s"

# Its own network: a veth pair to this host, NAT to the registries, its own loopback.
ip netns add "$NS"
ip link add veth-alyx type veth peer name veth-alyx-in
ip link set veth-alyx-in netns "$NS"
ip addr add 10.231.0.1/24 dev veth-alyx && ip link set veth-alyx up
ip netns exec "$NS" ip addr add 10.231.0.2/24 dev veth-alyx-in
ip netns exec "$NS" ip link set veth-alyx-in up
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip route add default via 10.231.0.1
echo 1 > /proc/sys/net/ipv4/ip_forward
iptables -t nat -A POSTROUTING -s 10.231.0.0/24 -j MASQUERADE
iptables -A FORWARD -s 10.231.0.0/24 -j ACCEPT
iptables -A FORWARD -d 10.231.0.0/24 -j ACCEPT

bind() {
  mkdir -p "$ROOT$2"
  mount "${@:3}" --bind "$1" "$ROOT$2"
  mounted+=("$ROOT$2")
}
mount -t proc proc "$ROOT/proc" && mounted+=("$ROOT/proc")
mount -t sysfs sys "$ROOT/sys" && mounted+=("$ROOT/sys")
bind /dev /dev
mount -t devpts devpts "$ROOT/dev/pts" -o newinstance,ptmxmode=0666 2>/dev/null && mounted+=("$ROOT/dev/pts") || true
mount -t tmpfs tmpfs "$ROOT/dev/shm" && mounted+=("$ROOT/dev/shm")
bind "$SHARED" /work/shared -o ro
if [ -n "${FRESH_TARGET_DIR:-}" ]; then
  mkdir -p "$FRESH_TARGET_DIR"
  bind "$FRESH_TARGET_DIR" /root/.cache/alyx/target
fi

rm -rf "$ROOT/work/alyx"
git clone -q "$(pwd)" "$ROOT/work/alyx"
git -C "$ROOT/work/alyx" log --oneline -1

inside() {
  ip netns exec "$NS" chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd /work/alyx && $1"
}
phase_start=$SECONDS
log "scripts/alyx with no display (one line, then the --screenshot it suggests)"
inside 'scripts/alyx; echo "exit code $?"' || true
inside 'scripts/alyx --screenshot /tmp/event.png && ls -l /tmp/event.png'
cp "$ROOT/tmp/event.png" /tmp/alyx-fresh-event.png 2>/dev/null || true
alyx_seconds=$((SECONDS - phase_start))
log "scripts/alyx took $alyx_seconds s"

phase_start=$SECONDS
status=0
inside 'CI=true scripts/test.sh' || status=$?
test_seconds=$((SECONDS - phase_start))
log "scripts/test.sh exited $status after $test_seconds s"

phase_start=$SECONDS
inside 'cargo run -q -p alyx-backend --bin alyxctl -- demo' || status=$?
log "alyxctl demo took $((SECONDS - phase_start)) s"
log "scripts/alyx $alyx_seconds s, scripts/test.sh $test_seconds s; exit $status"
exit "$status"
