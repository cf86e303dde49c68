#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) one after the other, one process each,
# for a time or an execution budget, then prints one summary line per target.
#
#   fuzz/run-all.sh -t 300                  # 300 s per target
#   fuzz/run-all.sh -r 2000000 journal      # 2·10^6 executions of one target
#
# Extra libFuzzer flags go in LIBFUZZER_FLAGS (e.g. "-max_len=65536"). Logs are kept
# in fuzz/logs/<target>.log, crashes in fuzz/artifacts/<target>/. A crash ends that
# target's run (libFuzzer stops at the first one); the script goes on to the next.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
budget=(-max_total_time=60)
while getopts "t:r:" opt; do
    case $opt in
        t) budget=(-max_total_time="$OPTARG") ;;
        r) budget=(-runs="$OPTARG") ;;
        *) echo "usage: $0 [-t SECONDS | -r RUNS] [TARGET...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
targets=("$@")
if (( ${#targets[@]} == 0 )); then
    targets=(apply_json apply_msgpack snapshot journal structured)
fi

cargo +nightly fuzz build || exit 1
mkdir -p logs
rows=()
total=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    before=$(ls "artifacts/$t" | wc -l)
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    cargo +nightly fuzz run "$t" "corpus/$t" -- "${budget[@]}" -print_final_stats=1 \
        ${LIBFUZZER_FLAGS:-} > "logs/$t.log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    after=$(ls "artifacts/$t" | wc -l)
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "logs/$t.log" | tail -n 1 | awk '{print $2}')
    last=$(grep -E '^#[0-9]+.* cov: ' "logs/$t.log" | tail -n 1)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<< "$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<< "$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9a-zA-Z]+).*/\1/p' <<< "$last")
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.0f", b - a}')
    crashes=$((after - before))
    if (( rc != 0 && crashes == 0 )); then crashes="rc=$rc"; fi
    total=$((total + ${execs:-0}))
    rows+=("$(printf '| %-13s | %12s | %6s | %7s | %11s | %6s | %7s |' \
        "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$secs" "$crashes")")
done
echo
echo "| target        |        execs |    cov |      ft |      corpus |      s | crashes |"
echo "|---------------|-------------:|-------:|--------:|------------:|-------:|--------:|"
printf '%s\n' "${rows[@]}"
echo "total executions: $total"
