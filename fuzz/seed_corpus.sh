#!/usr/bin/env bash
# Writes every fuzz target's seed corpus (fuzz/corpus/TARGET) from the project's own encoders:
# each target, run with ECNY_FUZZ_SEEDS=DIR, writes its seeds there and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
sanitizer=none
cargo fuzz build --sanitizer "$sanitizer"
bin="${CARGO_TARGET_DIR:-fuzz/target}/x86_64-unknown-linux-gnu/release"
for target in $(cargo fuzz list); do
  rm -rf "fuzz/corpus/$target"
  ECNY_FUZZ_SEEDS="fuzz/corpus/$target" "$bin/$target" -runs=0
done
