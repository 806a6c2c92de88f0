#!/usr/bin/env bash
# Builds the small test SOFTWARE hives win7-SOFTWARE.xz and win10-SOFTWARE.xz with hivex only.
#
#   make-software-hives.sh [OUT-DIR]     (default: this script's directory)
#
# No real SOFTWARE hive is small enough to ship, so each one is an emptied copy of a real hive
# with only the keys winrescue's RDP rules read merged in from NAME-SOFTWARE.reg (next to this
# script). The real hive is ../BCD (a regf hive from regipy, see testdata/SOURCES.md): hivex never
# shrinks a hive or wipes the cells it frees, so an emptied copy of a 12 MB SYSTEM hive stays 12 MB
# (880 KB compressed) with all its old data in free cells, while the 32 KB BCD gives a 36 KB hive.
# Only the regf structure comes from the real hive: its header still names \EFI\Microsoft\Boot\BCD
# as the file and its root key keeps its name, which hivex cannot change.
#
# Each hive is checked before it is written: `hivexregedit --export` shows exactly the keys of the
# .reg and nothing else, and reglookup (an independent reader) reads it without complaint.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
for tool in hivexregedit hivexsh reglookup xz; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 127; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every [key] line of a .reg file, one per line (the root included, as export prints it).
keys_of() { { echo '[\]'; grep '^\[' "$1"; } | sort -u; }

for name in win7 win10; do
    reg=$here/$name-SOFTWARE.reg
    hive=$tmp/$name-SOFTWARE
    xz -dc "$here/../BCD.xz" >"$hive"

    # Empty it: one [-\Key] line per top-level key (hivexsh lists them).
    {
        printf 'Windows Registry Editor Version 5.00\n\n'
        hivexsh "$hive" <<<ls | while IFS= read -r k; do printf '[-\\%s]\n\n' "$k"; done
    } >"$tmp/empty.reg"
    hivexregedit --merge "$hive" "$tmp/empty.reg"
    [ -z "$(hivexsh "$hive" <<<ls)" ] || { echo "$name: top-level keys left after emptying" >&2; exit 1; }

    hivexregedit --merge "$hive" "$reg"

    hivexregedit --export "$hive" '\' >"$tmp/export.reg"
    if ! diff <(keys_of "$reg") <(keys_of "$tmp/export.reg") >&2; then
        echo "$name: the hive's keys differ from $reg" >&2
        exit 1
    fi
    if ! reglookup "$hive" >"$tmp/reglookup.out" 2>"$tmp/reglookup.err" || [ -s "$tmp/reglookup.err" ]; then
        cat "$tmp/reglookup.err" >&2
        echo "$name: reglookup does not read the hive cleanly" >&2
        exit 1
    fi

    xz -9e -T1 -c "$hive" >"$out/$name-SOFTWARE.xz"
    echo "$out/$name-SOFTWARE.xz: $(stat -c %s "$hive") bytes, $(stat -c %s "$out/$name-SOFTWARE.xz") compressed, sha256 $(sha256sum <"$hive" | cut -d' ' -f1)"
done
