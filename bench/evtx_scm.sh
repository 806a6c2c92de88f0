#!/bin/sh
# SCM extraction on the 16.8 MB Server 2012 R2 System log (60189 records, 1242 SCM events),
# against the evtx crate's own CLI and libevtx, same file, same run (hyperfine).
#
#   bench/evtx_scm.sh            # needs hyperfine, xz, evtxexport (libevtx-utils), and
#                                # evtx_dump: cargo install evtx --root /tmp/evtxbin
# EVTX_DUMP overrides the evtx_dump path. Results go to bench/results/evtx_scm.{md,json}.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
evtx_dump=${EVTX_DUMP:-/tmp/evtxbin/bin/evtx_dump}
log=$(mktemp -d)/srv2012r2-System.evtx
xz -dc "$root/testdata/evtx/srv2012r2-System.evtx.xz" > "$log"
cd "$root"
cargo build --release -p evidence --example scm_dump
cargo build --release -p winrescue
mkdir -p bench/results
hyperfine -N --warmup 3 --runs 30 --output=null \
    --export-markdown bench/results/evtx_scm.md --export-json bench/results/evtx_scm.json \
    -n "evidence scm_dump (library)" "target/release/examples/scm_dump $log counts" \
    -n "winrescue events --json" "target/release/winrescue events $log --json" \
    -n "evtx_dump -o json -t 1" "$evtx_dump -o json -t 1 $log" \
    -n "evtxexport" "evtxexport $log"
# Medians and ratios against evtx_dump.
python3 - bench/results/evtx_scm.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
base = next(x for x in r if x["command"].startswith("evtx_dump"))["median"]
for x in r:
    print(f'{x["command"]:32} median {x["median"]*1000:8.1f} ms   ratio to evtx_dump {x["median"]/base:6.2f}')
PY
