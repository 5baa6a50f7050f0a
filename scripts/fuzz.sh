#!/usr/bin/env bash
# Fuzzes the parsers of hostile input with libFuzzer (cargo-fuzz): the ROOT and Phoenix
# importers, the ingest decoder, the SQL parser and checker, and notebook and cell-output
# decoding, each seeded from the real files in ../shared/data. Not part of the test command.
#
#   scripts/fuzz.sh [TARGET...]        every target when none is named
#   FUZZ_SECONDS=600                   how long each target runs (default 600)
#
# A crash, hang (-timeout, 10 s) or abort stops that target and leaves the input in
# fuzz/artifacts/TARGET/; make it a regression test before fixing it. libFuzzer's output is
# kept in fuzz/logs/TARGET.log. Prints each target's
# executions per second and coverage (libFuzzer's `cov:` edges and `ft:` features).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH="${FUZZ_SECONDS:-600}"
DATA="${ALYX_TEST_DATA:-$(cd .. && pwd)/shared/data}"
export CARGO_TARGET_DIR="${ALYX_FUZZ_TARGET_DIR:-$HOME/.cache/alyx/fuzz-target}"
# The targets are cargo-fuzz targets (libfuzzer-sys), built here without cargo-fuzz: cargo-fuzz
# instruments every crate, polars included, and wants a nightly compiler; fuzz/instrument.sh
# instruments only the crates that read hostile input, with stable rustc's own options.
export RUSTC_WRAPPER="$PWD/fuzz/instrument.sh"
# alyxctl (the workspace's own build) writes the ingest target's seeds.
ALYXCTL="${ALYXCTL:-$HOME/.cache/alyx/target/debug/alyxctl}"
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
BIN="$CARGO_TARGET_DIR/$TRIPLE/fuzz"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ingest_decode phoenix_import root_import sql_check notebook)

seed() {
  local target=$1 dir=fuzz/corpus/$1
  mkdir -p "$dir"
  case $target in
    root_import) cp "$DATA"/root/*.root "$dir"/ 2>/dev/null || true ;;
    phoenix_import) cp "$DATA"/phoenix/*.json "$dir"/ 2>/dev/null || true ;;
    ingest_decode)
      # Real events as the producer encodes them.
      if [ -z "$(ls -A "$dir")" ]; then
        # pp only: a central Pb-Pb event (17 MB) is far beyond -max_len.
        "$ALYXCTL" produce --events 8 --system pp --to-dir "$dir" >/dev/null
      fi ;;
    sql_check)
      local i=0 q
      while IFS= read -r q; do
        [ -n "$q" ] && printf '%s' "$q" > "$dir/query-$i.sql" && i=$((i + 1))
      done < fuzz/seeds/queries.sql ;;
    notebook) cp fuzz/seeds/*.json "$dir"/ 2>/dev/null || true ;;
  esac
}

echo "==> building the fuzz targets (instrumented: $CARGO_TARGET_DIR)"
cargo build --manifest-path fuzz/Cargo.toml --profile fuzz --bins --target "$TRIPLE"

summary=()
for target in "${targets[@]}"; do
  seed "$target"
  echo "==> $target: ${SECONDS_EACH}s"
  mkdir -p fuzz/logs
  log=fuzz/logs/$target.log
  set +e
  mkdir -p "fuzz/artifacts/$target"
  "$BIN/$target" "fuzz/corpus/$target" -artifact_prefix="fuzz/artifacts/$target/" \
    -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=4096 -max_len=1048576 \
    -print_final_stats=1 2>&1 | tee "$log" | grep -E '^#[0-9]+[[:space:]]+(pulse|DONE)|ERROR|panicked|SUMMARY' || true
  rc=${PIPESTATUS[0]}
  set -e
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  rate=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || echo "cov: ?")
  summary+=("$(printf '%-16s rc=%-3s runs=%-10s exec/s=%-8s %s' "$target" "$rc" "$runs" "$rate" "$cov")")
done
echo "==> fuzzing summary (${SECONDS_EACH}s each)"
printf '  %s\n' "${summary[@]}"
