#!/usr/bin/env bash
# Side-by-side run: ecny's registration center (durable group commit, operator batches) against the
# PostgreSQL double-entry ledger baseline in ../shared/peers/pg-ledger, on this machine, in one
# run. Prints each run's figure, the medians and the ratio. Needs a local PostgreSQL and pgbench;
# run as root. RUNS (default 3) sets the repetitions; T (default 20) the seconds per pgbench run.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
peer=../shared/peers/pg-ledger
[ -x "$peer/run.sh" ] || [ -f "$peer/run.sh" ] || { echo "peer baseline not found at $peer" >&2; exit 1; }
cargo build --release --quiet
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

ecny_rates=(); pg_rates=()
for run in $(seq "$runs"); do
  rate=$(CI=true ./target/release/ecny bench ledger --wallets 100000 --transfers "${TRANSFERS:-4000000}" --signed 0 \
    | awk '/^durable transfers\/s/ {print $NF}')
  ecny_rates+=("$rate")
  best=$(bash "$peer/run.sh" | awk '{print $NF}' | sort -n | tail -n1)
  pg_rates+=("$best")
  echo "run $run: ecny ${rate} transfers/s; postgres best variant ${best} transfers/s"
done
ecny_median=$(printf '%s\n' "${ecny_rates[@]}" | median)
pg_median=$(printf '%s\n' "${pg_rates[@]}" | median)
echo "median ecny: ${ecny_median} transfers/s"
echo "median postgres (best of plain, procedure, procedure with 32 clients): ${pg_median} transfers/s"
awk -v a="$ecny_median" -v b="$pg_median" 'BEGIN {printf "ratio ecny / postgres: %.0f×\n", a / b}'
