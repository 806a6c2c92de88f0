#!/usr/bin/env bash
# Makes the small container fixtures used by crates/vdisk/tests (VHD/VHDX, fixed/dynamic,
# GPT with 512- and 4096-byte sectors, MBR with logical partitions).
#
# Needs: qemu-img, qemu-io, sgdisk, sfdisk, fdisk, xz; and ntfs-rs-testfs1.xz next to this
# script (a real mkntfs volume, see SOURCES.md) for a genuine NTFS boot sector.
# Usage: bash make-container-fixtures.sh   (run from anywhere; writes next to itself)
#
# Every image holds the same raw content per layout, so the raw sha256 values pinned in
# crates/vdisk/tests/containers.rs do not depend on qemu's container choices (UUIDs, timestamps).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

xz -dc "$here/ntfs-rs-testfs1.xz" > testfs1.bin
head -c 65536 testfs1.bin > ntfs-head.bin   # boot sector + $MFT start

# --- GPT, 512-byte sectors, 16 MiB: ESP (1-3 MiB), "Windows" basic data (3-11 MiB), MSR (11-12 MiB)
truncate -s 16M gpt.raw
sgdisk -U 6B5A1D2E-0C4F-4E53-9D1A-3C6F1B7A9E01 \
  -n 1:2048:6143 -t 1:EF00 -c 1:"EFI system partition" -u 1:11111111-2222-4333-8444-555555555501 \
  -n 2:6144:22527 -t 2:0700 -c 2:"Windows" -u 2:11111111-2222-4333-8444-555555555502 \
  -n 3:22528:24575 -t 3:0C01 -c 3:"Microsoft reserved" -u 3:11111111-2222-4333-8444-555555555503 \
  gpt.raw >/dev/null
dd if=ntfs-head.bin of=gpt.raw bs=512 seek=6144 conv=notrunc status=none
# Recognisable data: inside the Windows partition, across a 2 MiB VHD block boundary, near the end.
qemu-io -f raw -c 'write -P 0x5a 4M 64k' -c 'write -P 0xa5 8380416 16k' -c 'write -P 0x33 15M 4k' gpt.raw >/dev/null

# --- MBR, 512-byte sectors, 8 MiB: NTFS primary (active), extended with two logical partitions
truncate -s 8M mbr.raw
printf 'label: dos\nlabel-id: 0x1234abcd\nunit: sectors\n2048,4096,7,*\n6144,10240,5\n8192,2048,7\n12288,2048,b\n' \
  | sfdisk --no-reread --no-tell-kernel mbr.raw >/dev/null
dd if=ntfs-head.bin of=mbr.raw bs=512 seek=2048 conv=notrunc status=none
qemu-io -f raw -c 'write -P 0x77 7M 8k' mbr.raw >/dev/null

# --- GPT, 4096-byte sectors (4Kn), 8 MiB, one basic data partition
truncate -s 8M gpt4k.raw
# Expert commands i and u fix the disk and partition GUIDs (fdisk would pick random ones).
printf 'g\nn\n1\n256\n1791\nt\n11\nx\ni\n0B719758-622A-EB48-B0A0-934510B4F82B\nu\n11111111-2222-4333-8444-555555555504\nr\nw\n' | fdisk -b 4096 gpt4k.raw >/dev/null 2>&1
dd if=ntfs-head.bin of=gpt4k.raw bs=4096 seek=256 conv=notrunc status=none

for f in gpt mbr gpt4k; do sha256sum "$f.raw"; done > raw.sha256

# Containers: same raw content, different wrappers. The fixed VHDX gets block_state_zero=off
# so that, as in a Hyper-V fixed VHDX, every block is FULLY_PRESENT (qemu would mark zero
# blocks ZERO, which vdisk reads as zeros and refuses to write).
qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on gpt.raw gpt-fixed.vhd
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on gpt.raw gpt-dynamic.vhd
qemu-img convert -f raw -O vhdx -o subformat=fixed,block_size=1M,block_state_zero=off gpt.raw gpt-fixed.vhdx
qemu-img convert -f raw -O vhdx -o subformat=dynamic,block_size=1M gpt.raw gpt-dynamic.vhdx
qemu-img convert -f raw -O vhdx -o subformat=dynamic,block_size=1M mbr.raw mbr-dynamic.vhdx
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on gpt4k.raw gpt4k-dynamic.vhd
cp mbr.raw mbr-logical.raw

for f in gpt-fixed.vhd gpt-dynamic.vhd gpt-fixed.vhdx gpt-dynamic.vhdx mbr-dynamic.vhdx gpt4k-dynamic.vhd mbr-logical.raw; do
  # qemu-img check exits 63 for formats it cannot check (vpc).
  rc=0; qemu-img check "$f" >/dev/null 2>&1 || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 63 ] || [ "${f##*.}" = raw ] || { echo "qemu-img check failed on $f" >&2; exit 1; }
  xz -9e -T1 -c "$f" > "$here/container-$f.xz"
done
sed 's/  /  container-/' raw.sha256
ls -l "$here"/container-*.xz
