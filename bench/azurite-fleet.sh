#!/usr/bin/env bash
# 100 targets behind blob URLs in Azurite: `winrescue diagnose --json` of all of them one by one
# (`--jobs 1`) against 8 at a time (`--jobs 8`), timed with hyperfine (medians), directly and
# through the tests' fault proxy with 20 ms added to every request (a network farther away).
#
# The targets: the 96 MiB Windows 7 fixture with the DHCP Client disabled
# (testdata/images/gen2-gpt-win7-dhcp-disabled.raw.xz) as BLOBS page blobs (default 10), each
# reached by 100/BLOBS URLs with their own read-only SAS: Azurite keeps blobs in memory (40 MB
# of data each here, under its 1 GiB extent limit only for some twenty), and each URL is
# diagnosed on its own (its own connection, cache and report), so 100 URLs to 10 blobs cost
# the service what 100 blobs would, bar its memory.
#
#   bench/azurite-fleet.sh [RUNS [BLOBS]]
#
# Needs Azurite (`npm ci --prefix tools/azurite`) and hyperfine. Results (hyperfine's markdown
# and JSON) go to target/bench-results/.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
RUNS=${1:-3}
BLOBS=${2:-10}
TARGETS=100
cargo build -q -p winrescue --bin winrescue --example azurite_bench
BIN=$TARGET/debug
XZ=$REPO/testdata/images/gen2-gpt-win7-dhcp-disabled.raw.xz
OUT=$TARGET/bench-results
mkdir -p "$OUT"

STATE=$(mktemp -d)
server=""
cleanup() {
    exec 7>&- 2>/dev/null || true
    [[ -n $server ]] && wait "$server" 2>/dev/null
    rm -rf "$STATE"
}
trap cleanup EXIT
xz -dc "$XZ" >"$STATE/disk.raw"
mkfifo "$STATE/in"
"$BIN/examples/azurite_bench" "$STATE/disk.raw" "$BLOBS" 20 $((TARGETS / BLOBS)) \
    <"$STATE/in" >"$STATE/urls" 2>"$STATE/upload" &
server=$!
exec 7>"$STATE/in"
for _ in $(seq 1200); do
    (($(wc -l <"$STATE/urls") >= TARGETS)) && break
    sleep 0.1
done
(($(wc -l <"$STATE/urls") >= TARGETS)) || { echo "the emulator did not start: $(cat "$STATE/upload")" >&2; exit 1; }
cat "$STATE/upload"
cut -f1 "$STATE/urls" >"$STATE/direct.txt"
cut -f2 "$STATE/urls" >"$STATE/proxied.txt"
sig=$(head -1 "$STATE/direct.txt" | sed -n 's/.*[?&]sig=\([^&]*\).*/\1/p')

# One check run each: 100 reports, all with the DHCP Client's finding, no SAS shown.
for list in direct proxied; do
    code=0
    "$BIN/winrescue" diagnose --json --jobs 8 --targets-from "$STATE/$list.txt" >"$STATE/$list.jsonl" 2>"$STATE/$list.err" || code=$?
    n=$(grep -c '"service:Dhcp"' "$STATE/$list.jsonl" || true)
    echo "$list: exit code $code, $(wc -l <"$STATE/$list.jsonl") reports, $n with the DHCP Client's finding"
    ((code == 1 && n == TARGETS)) || { echo "expected exit code 1 and $TARGETS findings: $(head -c 600 "$STATE/$list.err")" >&2; exit 1; }
    if grep -qF "$sig" "$STATE/$list.jsonl" "$STATE/$list.err"; then echo "the SAS signature was shown" >&2; exit 1; fi
done

for list in direct proxied; do
    hyperfine -N -i --runs "$RUNS" \
        --export-markdown "$OUT/azurite-fleet-$list.md" --export-json "$OUT/azurite-fleet-$list.json" \
        -n "one by one (--jobs 1), $list" "$BIN/winrescue diagnose --json --jobs 1 --targets-from $STATE/$list.txt" \
        -n "8 at a time (--jobs 8), $list" "$BIN/winrescue diagnose --json --jobs 8 --targets-from $STATE/$list.txt"
done
