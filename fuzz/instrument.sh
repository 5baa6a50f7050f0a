#!/usr/bin/env bash
# RUSTC_WRAPPER for the fuzz build (scripts/fuzz.sh): libFuzzer's coverage instrumentation (the
# flags cargo-fuzz passes, all stable rustc options) for the crates that read hostile input:
# ALYX's own, the parsers they hand bytes to (oxyroot, automerge, sqlparser, prost, serde_json)
# and the targets. The rest (polars, arrow, tokio, …) is built plainly: instrumenting it would
# double the build on two cores and steer the fuzzer into code that only sees checked data.
# Only code built for the target is instrumented (fuzz.sh passes --target, as cargo-fuzz does):
# build scripts and proc macros, built for the host, link no libFuzzer.
rustc=$1
shift
crate=
prev=
target=
for arg in "$@"; do
  [ "$prev" = --crate-name ] && crate=$arg
  [ "$arg" = --target ] && target=yes
  prev=$arg
done
[ -n "$target" ] || exec "$rustc" "$@"
case "$crate" in
  alyx_* | oxyroot | automerge | sqlparser | prost | serde_json | \
    root_import | phoenix_import | ingest_decode | sql_check | notebook)
    exec "$rustc" "$@" --cfg fuzzing -Cdebug-assertions=on -Coverflow-checks=on \
      -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
      -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
      -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares \
      -Cllvm-args=-sanitizer-coverage-stack-depth ;;
  *) exec "$rustc" "$@" ;;
esac
