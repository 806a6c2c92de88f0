#!/usr/bin/env bash
# Builds an MBR disk image whose NTFS partition holds a Windows 7 SYSTEM hive and the DHCP
# Client's files (Windows\System32\svchost.exe, dhcpcore.dll), each with a security descriptor set
# by ntfs-3g through its `system.ntfs_acl` extended attribute (ntfs-3g stores it in $Secure as
# Windows does). Independent of winrescue: mkntfs, ntfs-3g (FUSE), setfattr, sfdisk, python3.
#
#   make-files-image.sh SYSTEM_HIVE OUT.raw healthy|deny-local-service|no-users
#
# healthy: both files get the ACL of a System32 file, owner TrustedInstaller,
#   D:PAI(A;;FA;;;TrustedInstaller)(A;;0x1200a9;;;BA)(A;;0x1200a9;;;SY)(A;;0x1200a9;;;BU).
#   No real Windows volume is in testdata, so it is checked against a published one instead:
#   `icacls C:\WINDOWS\system32\mmc.exe` at https://support.moonpoint.com/os/windows/commands/icacls.php
#   shows, in this order and none inherited, NT SERVICE\TrustedInstaller:(F) (FILE_ALL_ACCESS,
#   0x1f01ff), BUILTIN\Administrators:(RX), NT AUTHORITY\SYSTEM:(RX), BUILTIN\Users:(RX) (RX is
#   0x1200a9), then the two APPLICATION PACKAGE AUTHORITY groups (RX). Those SIDs are newer than
#   Windows 7 (ALL APPLICATION PACKAGES S-1-15-2-1 from Windows 8, ALL RESTRICTED APPLICATION
#   PACKAGES S-1-15-2-2 from Windows 10); the image holds a Windows 7 hive, so they are left out,
#   and they would not change the DHCP Client's access (its token holds neither);
# deny-local-service: dhcpcore.dll gets a deny ACE for LOCAL SERVICE (RX) in front;
# no-users: dhcpcore.dll loses the Users ACE (only TrustedInstaller, BA, SY remain).
# Needs root (FUSE mount).
set -euo pipefail
hive=$1 out=$2 mode=$3
work=$(mktemp -d)
mnt="$work/mnt"
cleanup() { mountpoint -q "$mnt" && fusermount -u "$mnt" || true; rm -rf "$work"; }
trap cleanup EXIT
part="$work/part.raw"
truncate -s 48M "$part"
mkntfs -q -F -Q -L Windows "$part" >/dev/null
mkdir -p "$mnt"
ntfs-3g -o no_detach "$part" "$mnt" &
pid=$!
for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt"
mkdir -p "$mnt/Windows/System32/config"
cp "$hive" "$mnt/Windows/System32/config/SYSTEM"
printf 'MZ svchost' > "$mnt/Windows/System32/svchost.exe"
printf 'MZ dhcpcore' > "$mnt/Windows/System32/dhcpcore.dll"
# The self-relative descriptor in hex: [MS-DTYP] 2.4.6, SIDs 2.4.2, ACEs 2.4.4.
sd() {
    python3 - "$@" <<'PY'
import struct, sys
def sid(t):
    p = t.split("-"); subs = [int(x) for x in p[3:]]
    return bytes([1, len(subs)]) + int(p[2]).to_bytes(6, "big") + b"".join(struct.pack("<I", s) for s in subs)
aces = b""
for a in sys.argv[2:]:
    kind, mask, who = a.split(":")
    body = struct.pack("<I", int(mask, 16)) + sid(who)
    aces += struct.pack("<BBH", {"A": 0, "D": 1}[kind], 0, 4 + len(body)) + body
acl = struct.pack("<BBHHH", 2, 0, 8 + len(aces), len(sys.argv) - 2, 0) + aces
owner = sid(sys.argv[1])
# SE_SELF_RELATIVE | SE_DACL_PROTECTED | SE_DACL_AUTO_INHERITED | SE_DACL_PRESENT
head = struct.pack("<BBHIIII", 1, 0, 0x9404, 20 + len(acl), 20 + len(acl) + len(owner), 0, 20)
print("0x" + (head + acl + owner + owner).hex())
PY
}
TI=S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464
healthy=("A:1f01ff:$TI" "A:1200a9:S-1-5-32-544" "A:1200a9:S-1-5-18" "A:1200a9:S-1-5-32-545")
setfattr -n system.ntfs_acl -v "$(sd $TI "${healthy[@]}")" "$mnt/Windows/System32/svchost.exe"
case "$mode" in
    healthy) dll=("${healthy[@]}") ;;
    deny-local-service) dll=("D:1200a9:S-1-5-19" "${healthy[@]}") ;;
    no-users) dll=("A:1f01ff:$TI" "A:1200a9:S-1-5-32-544" "A:1200a9:S-1-5-18") ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
setfattr -n system.ntfs_acl -v "$(sd $TI "${dll[@]}")" "$mnt/Windows/System32/dhcpcore.dll"
fusermount -u "$mnt"
wait "$pid"
# One NTFS partition at 1 MiB of an MBR disk.
truncate -s 0 "$out"
truncate -s $((1024 * 1024 + $(stat -c %s "$part"))) "$out"
echo 'start=2048, type=7' | sfdisk -q "$out" >/dev/null
dd if="$part" of="$out" bs=1M seek=1 conv=notrunc status=none
