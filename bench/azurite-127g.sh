#!/usr/bin/env bash
# `winrescue diagnose --stats URL` on the 127 GiB Azure-like fixed VHD (see diagnose-127g.sh) put
# into Azurite, the Azure Storage emulator, as a page blob (in memory, as the tests run it: only
# the image's data is uploaded, with Put Page; a new page blob reads as zeros), reached with a
# read-only service SAS, directly and through the tests' fault proxy with 20 ms added to every
# request. Prints requests, bytes and wall time, and fails when a diagnosis reads more than
# 24 MB or sends more than 64 requests, or (20 ms per request) takes more than 1 s.
#
#   bench/azurite-127g.sh [IMAGE [RUNS]]
#
# IMAGE defaults to target/fixture-images/bench-127g-gen2-software80m.fixed.vhd, built when
# missing by `testdata/images/make-windows-fixtures.sh bench`. RUNS (default 5) diagnoses per
# setting; the table gives the median wall time. Needs Azurite (`npm ci --prefix tools/azurite`).
# Builds winrescue and crates/cli/examples/azurite_bench.rs (dev profile, which is optimised).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
IMAGE=${1:-$TARGET/fixture-images/bench-127g-gen2-software80m.fixed.vhd}
RUNS=${2:-5}
[[ -f $IMAGE ]] || "$REPO/testdata/images/make-windows-fixtures.sh" bench "$(dirname "$IMAGE")"
cargo build -q -p winrescue --bin winrescue --example azurite_bench
BIN=$TARGET/debug

STATE=$(mktemp -d)
server=""
cleanup() {
    exec 7>&- 2>/dev/null || true
    [[ -n $server ]] && wait "$server" 2>/dev/null
    rm -rf "$STATE"
}
trap cleanup EXIT
mkfifo "$STATE/in"
"$BIN/examples/azurite_bench" "$IMAGE" 1 20 <"$STATE/in" >"$STATE/urls" 2>"$STATE/upload" &
server=$!
exec 7>"$STATE/in"
for _ in $(seq 1200); do [[ -s $STATE/urls ]] && break; sleep 0.1; done
[[ -s $STATE/urls ]] || { echo "the emulator did not start: $(cat "$STATE/upload")" >&2; exit 1; }
IFS=$'\t' read -r direct proxied <"$STATE/urls"
sig=$(sed -n 's/.*[?&]sig=\([^&]*\).*/\1/p' <<<"$direct")
echo "$(cat "$STATE/upload")"
status=0
for delay in 0 20; do
    url=$direct
    ((delay == 0)) || url=$proxied
    times=()
    for run in $(seq "$RUNS"); do
        start=$(date +%s%N)
        code=0
        "$BIN/winrescue" diagnose --json --stats "$url" >"$STATE/report.json" 2>"$STATE/stats" || code=$?
        times+=($((($(date +%s%N) - start) / 1000000)))
        read -r requests bytes < <(sed -n 's/^transfer: \([0-9]*\) requests, \([0-9]*\) bytes.*/\1 \2/p' "$STATE/stats")
        if grep -qF "$sig" "$STATE/report.json" "$STATE/stats"; then
            echo "the SAS signature was shown" >&2; status=1
        fi
        ((code == 1)) || { echo "expected exit code 1 (DHCP Client disabled), got $code: $(cat "$STATE/stats")" >&2; status=1; }
        ((bytes <= 24000000 && requests <= 64)) || { echo "over the 24 MB / 64 requests budget" >&2; status=1; }
    done
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p")
    echo "$delay ms per request: exit code $code, $requests requests, $bytes bytes, median $median ms of $RUNS (${times[*]} ms)"
    ((delay == 0 || median <= 1000)) || { echo "over 1 s with $delay ms per request" >&2; status=1; }
done
exit $status
