#!/bin/sh
# Seeds the firewall_rule fuzz target's corpus (fuzz/corpus/, not committed) with every firewall
# rule string of the real SYSTEM hives in testdata/ (all of FirewallPolicy: FirewallRules and the
# service-hardening rules), read by hivex, one file per rule: "<id>\n<rule text>".
set -eu
here=$(cd "$(dirname "$0")" && pwd)
td=$here/../testdata/hives
c=$here/corpus/firewall_rule
mkdir -p "$c"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for h in win7-SYSTEM win10-dirty-SYSTEM win81-dirty-nologs-SYSTEM; do
    xz -dc "$td/$h.xz" > "$tmp/hive"
    for cs in ControlSet001 ControlSet002; do
        hivexregedit --export "$tmp/hive" "\\$cs\\Services\\SharedAccess\\Parameters\\FirewallPolicy" \
            2>/dev/null || true
    done | python3 -c '
import hashlib, re, sys
out = sys.argv[1]
for line in sys.stdin:
    m = re.match(r"\"(.*)\"=hex\(1\):(.*)", line.strip())
    if not m:
        continue
    raw = bytes(int(b, 16) for b in m.group(2).split(",") if b)
    text = raw.decode("utf-16-le", "replace").split("\0")[0]
    seed = (m.group(1) + "\n" + text).encode()
    open(out + "/" + hashlib.sha1(seed).hexdigest(), "wb").write(seed)
' "$c"
done
ls "$c" | wc -l
