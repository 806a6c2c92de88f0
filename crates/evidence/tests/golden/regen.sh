#!/bin/sh
# Regenerates the golden Service Control Manager counts from libevtx's evtxexport (an
# independent reader: Debian package libevtx-utils), one file per log:
#   <event id> <count>   (sorted by id; the Source name must be "Service Control Manager")
# Run from anywhere: crates/evidence/tests/golden/regen.sh
# tests/golden.rs compares the crate's counts with these files, and with evtxexport live when
# it is on PATH (the same parsing of its output, in Rust).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
testdata="$here/../../../../testdata/evtx"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for name in srv2008r2-System srv2012r2-System plaso-System2 win10-rathbun-System \
    win10-belkasoft-System win10-aptsim-System win10-vss7-System \
    sample-with-zero-data-size-event sample_with_a_bad_chunk_magic Application_no_crc32; do
    xz -dc "$testdata/$name.evtx.xz" > "$tmp/$name.evtx"
    # evtxexport prints one block per record; "Source name" comes before "Event identifier",
    # whose decimal value is in parentheses. Errors on damaged logs go to stderr.
    evtxexport "$tmp/$name.evtx" 2>/dev/null | awk '
        /^Event number/ { scm = 0 }
        /^Source name/ { sub(/^Source name[ \t]*: /, ""); scm = ($0 == "Service Control Manager") }
        /^Event identifier/ && scm { match($0, /\(([0-9]+)\)/); id = substr($0, RSTART + 1, RLENGTH - 2); n[id % 65536]++ }
        END { for (id in n) print id, n[id] }
    ' | sort -n > "$here/$name.scm-counts"
done
