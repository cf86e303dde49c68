#!/usr/bin/env bash
# Regenerates the seed corpora of the fuzz targets from the conformance cases
# (docs/fuzzing.md). Writes fuzz/corpus/<target>/seed-*; run from anywhere.
#
#   apply_json     each case's `messages` array as JSON
#   apply_msgpack  the same array as MessagePack (`vuer-rtc convert`)
#   snapshot       mode byte 0x00 + `vuer-rtc snapshot create` of the case
#   journal        mode byte 0x00 + the segment `vuer-rtc journal append` writes, and
#                  mode byte 0x03 + the same segment without its header (the target
#                  then adds the header and fixes the frame checksums)
#   structured     no seeds (its input is `arbitrary` bytes, not a wire format)
#
# Each case gives several message sets: the whole `messages` array when it takes at most
# MAX_SEED_BYTES (default 16384) of JSON, and its first CHUNKS (default 4) runs of
# CHUNK (default 6) messages. Small seeds keep executions fast (big ones make every
# mutation slow). Needs jq and the `vuer-rtc` binary (built here with
# `cargo build --bin vuer-rtc`, or set VUER_RTC).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cases=${CASES:-$root/tests/conformance}
max=${MAX_SEED_BYTES:-16384}
chunk=${CHUNK:-6}
chunks=${CHUNKS:-4}
if [[ -z "${VUER_RTC:-}" ]]; then
    (cd "$root" && cargo build --quiet --bin vuer-rtc)
    VUER_RTC=$root/target/debug/vuer-rtc
fi
corpus=$here/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for t in apply_json apply_msgpack snapshot journal structured; do
    mkdir -p "$corpus/$t"
    rm -f "$corpus/$t"/seed-*
done

# seed NAME FILE: the seeds of every target for one messages file.
seed() {
    local name=$1 msgs=$2
    cp "$msgs" "$corpus/apply_json/seed-$name"
    "$VUER_RTC" convert "$msgs" --to msgpack > "$corpus/apply_msgpack/seed-$name"

    "$VUER_RTC" snapshot create "$msgs" -o "$tmp/$name.snap" > /dev/null
    { printf '\x00'; cat "$tmp/$name.snap"; } > "$corpus/snapshot/seed-$name"

    "$VUER_RTC" journal append "$tmp/$name.jnl" "$msgs" --fsync never > /dev/null
    local seg
    seg=$(ls "$tmp/$name.jnl"/*.seg | head -n 1)
    { printf '\x00'; cat "$seg"; } > "$corpus/journal/seed-$name"
    { printf '\x03'; tail -c +17 "$seg"; } > "$corpus/journal/seed-$name-noheader"
    n=$((n + 1))
}

n=0
for case in "$cases"/*.json; do
    name=$(basename "$case" .json)
    msgs=$tmp/$name.json
    jq -c '.messages' "$case" > "$msgs"
    if (( $(stat -c %s "$msgs") <= max )); then
        seed "$name" "$msgs"
    fi
    len=$(jq 'length' "$msgs")
    for ((k = 0; k < chunks && k * chunk < len; k++)); do
        jq -c ".[$((k * chunk)):$(((k + 1) * chunk))]" "$msgs" > "$tmp/$name-c$k.json"
        seed "$name-c$k" "$tmp/$name-c$k.json"
    done
done
echo "seeded $n message sets into $corpus:"
for t in apply_json apply_msgpack snapshot journal structured; do
    printf '  %-14s %4d files %8d bytes\n' "$t" "$(ls "$corpus/$t" | wc -l)" \
        "$(cat "$corpus/$t"/* 2>/dev/null | wc -c)"
done
