#!/bin/sh
# Seeds the security_descriptor fuzz target's corpus (fuzz/corpus/, not committed) with every
# distinct security descriptor of the real hives in testdata/, each after a 4-byte desired
# access mask (KEY_READ). The descriptors are cut out of the hives' `sk` cells: walk the hive
# bins after the 4 KiB base block, cell by cell, and keep the allocated cells starting "sk".
set -eu
here=$(cd "$(dirname "$0")" && pwd)
td=$here/../testdata/hives
c=$here/corpus/security_descriptor
mkdir -p "$c"
for h in win7-SYSTEM win10-dirty-SYSTEM win81-dirty-nologs-SYSTEM BCD; do
    xz -dc "$td/$h.xz" | python3 -c '
import hashlib, struct, sys
data = sys.stdin.buffer.read()
out = sys.argv[1]
off = 4096
while off + 32 <= len(data) and data[off:off + 4] == b"hbin":
    size = struct.unpack_from("<I", data, off + 8)[0]
    if size < 32:
        break
    cell = off + 32
    while cell + 4 <= off + size:
        n = struct.unpack_from("<i", data, cell)[0]
        if n == 0:
            break
        if n < 0 and data[cell + 4:cell + 6] == b"sk":
            sd_len = struct.unpack_from("<I", data, cell + 20)[0]
            sd = data[cell + 24:cell + 24 + sd_len]
            seed = struct.pack("<I", 0x20019) + sd
            name = hashlib.sha1(seed).hexdigest()
            open(out + "/" + name, "wb").write(seed)
        cell += abs(n)
    off += size
' "$c"
done
ls "$c" | wc -l
