# Sets the data, initialized and allocated sizes in the MFT record of the SYSTEM hive of a raw
# NTFS image to SIZE bytes, as a damaged or hostile record would claim (fixups kept valid).
# Usage: patch-mft-size.py IMAGE SIZE
import struct, sys
path, size = sys.argv[1], int(sys.argv[2])
b = bytearray(open(path, 'rb').read())
name = 'SYSTEM'.encode('utf-16-le')
hits = 0
i = b.find(b'FILE')
while i >= 0:
    if i % 512 == 0 and i + 1024 <= len(b):
        rec = b[i:i+1024]
        usa_off, usa_n = struct.unpack_from('<HH', rec, 4)
        log = bytearray(rec)
        ok = 8 <= usa_off and usa_off + 2 * usa_n <= 1024 and usa_n == 3
        if ok:
            for k in range(1, usa_n):
                log[k*512-2:k*512] = rec[usa_off+2*k:usa_off+2*k+2]
            off = struct.unpack_from('<H', log, 0x14)[0]
            is_system, data_at = False, None
            while 0 < off < 1024 - 16:
                t, ln = struct.unpack_from('<II', log, off)
                if t == 0xFFFFFFFF or ln == 0:
                    break
                if t == 0x30:  # $FILE_NAME: name length at +0x40, name at +0x42 of its value
                    v = off + struct.unpack_from('<H', log, off + 0x14)[0]
                    n = log[v + 0x40]
                    if bytes(log[v+0x42:v+0x42+2*n]) == name:
                        is_system = True
                if t == 0x80 and log[off + 8] == 1 and log[off + 9] == 0:
                    data_at = off
                off += ln
            if is_system and data_at is not None:
                real = struct.unpack_from('<Q', log, data_at + 0x30)[0]
                if real > 1 << 20:
                    for f in (0x28, 0x30, 0x38):
                        struct.pack_into('<Q', log, data_at + f, size)
                    usn = rec[usa_off:usa_off+2]
                    for k in range(1, usa_n):
                        rec[usa_off+2*k:usa_off+2*k+2] = log[k*512-2:k*512]
                        log[k*512-2:k*512] = usn
                    b[i:i+1024] = log
                    hits += 1
    i = b.find(b'FILE', i + 1)
assert hits == 1, hits
open(path, 'wb').write(b)
print('patched', hits)
