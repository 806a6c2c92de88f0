#!/usr/bin/env bash
# `winrescue diagnose URL` on the 127 GiB Azure-like fixed VHD (see diagnose-127g.sh), served over
# HTTP with byte ranges from 127.0.0.1 by the tests' server (crates/fixtures/examples/serve.rs),
# with 0 and 20 ms added to every request. Prints requests, bytes and wall time, and fails when
# a diagnosis reads more than 24 MB or sends more than 64 requests, or (20 ms per request) takes
# more than 1 s: the budget of a diagnosis from Cloud Shell.
#
#   bench/remote-127g.sh [IMAGE]
#
# IMAGE defaults to target/fixture-images/bench-127g-gen2-software80m.fixed.vhd, built when
# missing by `testdata/images/make-windows-fixtures.sh bench` (sparse: some 15 MB on the host).
# Builds winrescue and the server (cargo build, dev profile, which is optimised).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${1:-$REPO/target/fixture-images/bench-127g-gen2-software80m.fixed.vhd}
[[ -f $IMAGE ]] || "$REPO/testdata/images/make-windows-fixtures.sh" bench "$(dirname "$IMAGE")"
cargo build -q -p winrescue -p fixtures --example serve
BIN=${CARGO_TARGET_DIR:-$REPO/target}/debug
# A query shaped like a SAS: it must never be shown.
SAS='sv=2021-08-06&sr=b&sp=r&sig=c2VjcmV0c2lnbmF0dXJl'

STATE=$(mktemp -d)
trap 'rm -rf "$STATE"' EXIT
status=0
for delay in 0 20; do
    mkfifo "$STATE/in"
    "$BIN/examples/serve" "$IMAGE" "$delay" <"$STATE/in" >"$STATE/url" 2>"$STATE/served" &
    server=$!
    exec 7>"$STATE/in"
    for _ in $(seq 50); do [[ -s $STATE/url ]] && break; sleep 0.1; done
    url="$(head -1 "$STATE/url")?$SAS"
    start=$(date +%s%N)
    code=0
    "$BIN/winrescue" diagnose --json --stats "$url" >"$STATE/report.json" 2>"$STATE/stats" || code=$?
    ms=$((($(date +%s%N) - start) / 1000000))
    exec 7>&-
    wait "$server"
    rm -f "$STATE/in"
    read -r requests bytes < <(sed -n 's/^transfer: \([0-9]*\) requests, \([0-9]*\) bytes.*/\1 \2/p' "$STATE/stats")
    echo "$delay ms per request: exit code $code, $requests requests, $bytes bytes, $ms ms ($(cat "$STATE/served"))"
    if grep -q c2VjcmV0c2lnbmF0dXJl "$STATE/report.json" "$STATE/stats"; then
        echo "the SAS signature was shown" >&2; status=1
    fi
    ((code == 1)) || { echo "expected exit code 1 (DHCP Client disabled)" >&2; status=1; }
    ((bytes <= 24000000 && requests <= 64)) || { echo "over the 24 MB / 64 requests budget" >&2; status=1; }
    ((delay == 0 || ms <= 1000)) || { echo "over 1 s with $delay ms per request" >&2; status=1; }
done
exit $status
