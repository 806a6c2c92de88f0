#!/usr/bin/env python3
"""Breaks a registry key's permissions in a hive file with a same-size byte patch of its `sk`
cell: code independent of winrescue, written from the regf format notes (base block, hbin cells,
nk / lf / lh / li / ri / sk records) and [MS-DTYP] (SECURITY_DESCRIPTOR_RELATIVE, ACL, ACE, SID).

    break-sk.py HIVE KEY MODE SID [NEW_SID]

KEY is below the root (`ControlSet001\\Services\\Dhcp`, case-insensitive). The ACE patched is the
first one of the key's DACL that names SID and is not inherit-only. MODE:
  read    its access mask becomes KEY_READ (0x20019)
  deny    its type becomes ACCESS_DENIED
  sid     its SID becomes NEW_SID (same number of sub-authorities, so the same size)
A SID is `S-1-5-...` or `service:NAME`, the service SID NT SERVICE\\NAME (S-1-5-80 and the SHA-1
of the upper-cased UTF-16LE name as five little-endian numbers). Every key sharing the `sk` cell
changes with it, as Windows shares one cell between keys with the same descriptor.
"""
import hashlib
import struct
import sys

BINS = 0x1000


def sid_bytes(text):
    if text.startswith("service:"):
        digest = hashlib.sha1(text[8:].upper().encode("utf-16-le")).digest()
        subs = [80] + list(struct.unpack("<5I", digest))
        authority = 5
    else:
        parts = text.split("-")
        assert parts[0] == "S" and parts[1] == "1", text
        authority = int(parts[2])
        subs = [int(p) for p in parts[3:]]
    return bytes([1, len(subs)]) + authority.to_bytes(6, "big") + b"".join(
        struct.pack("<I", s) for s in subs
    )


def cell(data, off):
    """The record of the cell at hive-bins offset `off` (after its size field)."""
    at = BINS + off
    size = -struct.unpack_from("<i", data, at)[0]
    assert size > 4, f"cell 0x{off:x} is free or bad"
    return at + 4, size - 4


def subkeys(data, list_off):
    at, _ = cell(data, list_off)
    sig = data[at:at + 2]
    count = struct.unpack_from("<H", data, at + 2)[0]
    if sig in (b"lf", b"lh"):
        return [struct.unpack_from("<I", data, at + 4 + 8 * i)[0] for i in range(count)]
    if sig == b"li":
        return [struct.unpack_from("<I", data, at + 4 + 4 * i)[0] for i in range(count)]
    if sig == b"ri":
        out = []
        for i in range(count):
            out += subkeys(data, struct.unpack_from("<I", data, at + 4 + 4 * i)[0])
        return out
    raise SystemExit(f"unknown subkey list {sig!r}")


def key_name(data, at):
    flags = struct.unpack_from("<H", data, at + 2)[0]
    length = struct.unpack_from("<H", data, at + 72)[0]
    raw = data[at + 76:at + 76 + length]
    return raw.decode("latin-1") if flags & 0x20 else raw.decode("utf-16-le")


def find_key(data, path):
    off = struct.unpack_from("<I", data, 0x24)[0]
    for part in [p for p in path.split("\\") if p]:
        at, _ = cell(data, off)
        count = struct.unpack_from("<I", data, at + 20)[0]
        if count == 0:
            raise SystemExit(f"no key {path}")
        for child in subkeys(data, struct.unpack_from("<I", data, at + 28)[0]):
            cat, _ = cell(data, child)
            if key_name(data, cat).lower() == part.lower():
                off = child
                break
        else:
            raise SystemExit(f"no key {part} in {path}")
    return off


def main():
    hive, key, mode, sid = sys.argv[1:5]
    data = bytearray(open(hive, "rb").read())
    assert data[:4] == b"regf"
    nk, _ = cell(data, find_key(data, key))
    sk, _ = cell(data, struct.unpack_from("<I", data, nk + 44)[0])
    assert data[sk:sk + 2] == b"sk"
    sd = sk + 20
    control = struct.unpack_from("<H", data, sd + 2)[0]
    dacl_off = struct.unpack_from("<I", data, sd + 16)[0]
    assert control & 0x4 and dacl_off, "the key has no DACL"
    acl = sd + dacl_off
    count = struct.unpack_from("<H", data, acl + 4)[0]
    want = sid_bytes(sid)
    ace = acl + 8
    for _ in range(count):
        ace_type, flags, size = struct.unpack_from("<BBH", data, ace)
        if ace_type in (0, 1) and not flags & 0x08 and data[ace + 8:ace + 8 + len(want)] == want:
            break
        ace += size
    else:
        raise SystemExit(f"no ACE for {sid} on {key}")
    if mode == "read":
        struct.pack_into("<I", data, ace + 4, 0x20019)
    elif mode == "deny":
        data[ace] = 1
    elif mode == "sid":
        new = sid_bytes(sys.argv[5])
        assert len(new) == len(want), "the new SID must have as many sub-authorities"
        data[ace + 8:ace + 8 + len(new)] = new
    else:
        raise SystemExit(f"unknown mode {mode}")
    open(hive, "r+b").write(data)
    print(f"{key}: ACE at descriptor byte 0x{ace - sd:x} patched ({mode})")


main()
