#!/bin/sh
# Full read of the 12 MB Windows 7 SYSTEM hive (30756 keys, 73456 values) by winrescue and by
# reference tools, same file, same run (hyperfine):
#   - regf walk example: every key and value, names decoded, data read (counts printed)
#   - winrescue hive export: the whole hive as .reg text to /dev/null
#   - hivexml (libhivex-bin): full XML dump
#   - reglookup: full listing
#
#   bench/regf-compare.sh        # needs hyperfine, xz, hivexml, reglookup
# EXTRA_CMD (with EXTRA_NAME) adds one more command, given the hive path as its last argument;
# e.g. a private build of another reader. Results go to bench/results/regf-compare.{md,json}.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
hive=$tmp/SYSTEM
xz -dc "$root/testdata/hives/win7-SYSTEM.xz" > "$hive"
cd "$root"
cargo build --release -p regf --example walk
cargo build --release -p winrescue
echo "regf walk: $(target/release/examples/walk "$hive")"
mkdir -p bench/results
set -- -n "regf walk (example)" "target/release/examples/walk $hive" \
    -n "winrescue hive export" "target/release/winrescue hive export $hive -o /dev/null" \
    -n "hivexml" "hivexml $hive" \
    -n "reglookup" "reglookup $hive"
if [ -n "${EXTRA_CMD:-}" ]; then
    set -- "$@" -n "${EXTRA_NAME:-extra}" "$EXTRA_CMD $hive"
fi
hyperfine -N --warmup 3 --runs "${RUNS:-15}" --output=null \
    --export-markdown bench/results/regf-compare.md --export-json bench/results/regf-compare.json \
    "$@"
# Medians and ratios against hivexml.
python3 - bench/results/regf-compare.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
base = next(x for x in r if x["command"] == "hivexml")["median"]
for x in r:
    print(f'{x["command"]:28} median {x["median"]*1000:8.1f} ms   ratio to hivexml {x["median"]/base:6.3f}')
PY
