#!/usr/bin/env bash
# Builds the Windows-like disk fixtures of testdata/images/ with Debian's tools only:
# mkntfs + ntfs-3g (FUSE) for NTFS, sgdisk / sfdisk for the partition tables, mkfs.vfat + mtools for
# the EFI system partition, qemu-img for the VHD / VHDX variants.
#
#   make-windows-fixtures.sh raw [gen2|gen1|edge]...
#                                             the committed fixtures: *.raw.xz next to this script
#   make-windows-fixtures.sh broken [CASE]... gen2-gpt-win7-CASE.raw.xz next to this script: the
#                                             Gen2 disk with a broken Windows 7 SYSTEM hive (default:
#                                             the committed cases, see BROKEN_COMMITTED below)
#   make-windows-fixtures.sh broken-raw DIR [CASE]...
#                                             the same, uncompressed, into DIR (for tests that build
#                                             the cases that are not committed)
#   make-windows-fixtures.sh safeboot         gen2-gpt-win7-safeboot.raw.xz and gen1-mbr-win10-safeboot.raw.xz
#                                             next to this script: the Gen2 and Gen1 disks whose BCD
#                                             (hives/BCD with hivex's `hivexregedit --merge`) boots the
#                                             default entry into safe mode (safeboot minimal)
#   make-windows-fixtures.sh variants [DIR]   fixed VHD, dynamic VHD and VHDX of each committed raw
#                                             disk (default DIR: <repo>/target/fixture-images)
#   make-windows-fixtures.sh bench [DIR]      a 127 GiB sparse fixed VHD with the Gen2 GPT layout, the
#                                             dhcp-disabled SYSTEM and a SOFTWARE of about 80 MB (the
#                                             rules' keys plus bulk merged by hivexregedit), for
#                                             bench/diagnose-127g.sh; never committed
#
# What each fixture holds, and the sha256 of the committed raw images: README.md beside this script.
# mkntfs draws random serial numbers and GUIDs and ntfs-3g stamps the current time, so a rebuild
# holds the same files in the same layout but is not byte-identical: update README.md after one.
#
# A CASE is one of crates/winsvc/tests/make-broken-hives.sh: the hive is
# testdata/hives/broken/win7-CASE.xz when committed, else that script makes it from
# testdata/hives/win7-SYSTEM with hivex (hivexregedit --merge). Every broken disk is checked after it
# is built: the SYSTEM read back from the image with ntfscat must be the broken hive byte for byte.
#
# Needs root (FUSE mounts). Partitions are built as separate files and copied into the disk image
# at their offsets, so no loop device is needed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MIB=$((1024 * 1024))

need() {
    # tool -> Debian package
    local missing=()
    local pair
    for pair in mkntfs:ntfs-3g ntfs-3g:ntfs-3g ntfsfix:ntfs-3g sgdisk:gdisk sfdisk:fdisk \
        mkfs.vfat:dosfstools mcopy:mtools qemu-img:qemu-utils setfattr:attr xz:xz-utils \
        fusermount:fuse3 ntfscat:ntfs-3g; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    if ((${#missing[@]})); then
        echo "installing: ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

WORK=$(mktemp -d)
MOUNTED=""
cleanup() {
    if [[ -n "$MOUNTED" ]]; then fusermount -u "$MOUNTED" 2>/dev/null || umount "$MOUNTED" || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# mkntfs_file FILE SIZE_MIB START_SECTOR LABEL: an NTFS volume like the ones Windows formats
# (4 KiB clusters, 1 KiB MFT records), with the hidden-sectors field set as for a real partition.
mkntfs_file() {
    local file=$1 size_mib=$2 start=$3 label=$4
    rm -f "$file" # mkntfs -Q does not zero: a reused file would keep the last build's bytes
    truncate -s $((size_mib * MIB)) "$file"
    mkntfs -F -Q -q -s 512 -c 4096 -p "$start" -H 255 -S 63 -L "$label" "$file" 2>/dev/null
}

# with_mounted FILE FUNCTION: mounts the NTFS volume in FILE with ntfs-3g, runs FUNCTION MOUNTPOINT,
# unmounts and waits until ntfs-3g has written everything and exited.
with_mounted() {
    local file=$1 fn=$2 mnt="$WORK/mnt"
    mkdir -p "$mnt"
    ntfs-3g -o no_detach,windows_names "$file" "$mnt" &
    local pid=$!
    local i
    for i in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
    mountpoint -q "$mnt" || { echo "ntfs-3g did not mount $file" >&2; exit 1; }
    MOUNTED=$mnt
    "$fn" "$mnt"
    sync
    fusermount -u "$mnt"
    MOUNTED=""
    wait "$pid"
    # The volume must be clean for every consumer (winrescue refuses to write to a dirty one).
    ntfsfix -n "$file" >/dev/null || { echo "ntfsfix -n: $file is not clean" >&2; exit 1; }
}

# Through cat: xz (like cp) turns zero blocks into holes when its output is a regular file, and
# ntfs-3g would then store the file as sparse, which a real hive never is.
unxz_to() { xz -dc "$REPO/testdata/$1.xz" | cat >"$2"; }

# ---- Gen2 (GPT): EFI system partition (FAT32) + MSR + Windows (NTFS), like an Azure Gen2 disk ----
GEN2_DISK_MIB=96
GEN2_EFI_START=2048           # 1 MiB
GEN2_EFI_MIB=33               # the smallest FAT32 with 512-byte clusters
GEN2_MSR_MIB=16               # what Windows setup creates
GEN2_WIN_MIB=45
gen2_offsets() {
    GEN2_MSR_START=$((GEN2_EFI_START + GEN2_EFI_MIB * 2048))
    GEN2_WIN_START=$((GEN2_MSR_START + GEN2_MSR_MIB * 2048))
}
gen2_offsets

# The BCD store of both disks: a path under testdata/ without .xz, or an absolute path to an
# uncompressed store (the safe-boot copy made by safeboot_bcd).
BOOT_BCD=hives/BCD

# put_bcd DEST: the BCD store ($BOOT_BCD) written to DEST.
put_bcd() {
    if [[ $BOOT_BCD == /* ]]; then
        cat "$BOOT_BCD" >"$1"
    else
        unxz_to "$BOOT_BCD" "$1"
    fi
}

# The SYSTEM hive of the Gen2 disk: a path under testdata/ without .xz, or an absolute path to an
# uncompressed hive (a broken copy made by make-broken-hives.sh).
GEN2_HIVE=hives/win7-SYSTEM

populate_gen2_windows() {
    local m=$1
    mkdir -p "$m/Windows/System32/config" "$m/Windows/System32/winevt/Logs"
    if [[ $GEN2_HIVE == /* ]]; then
        cat "$GEN2_HIVE" >"$m/Windows/System32/config/SYSTEM"
    else
        unxz_to "$GEN2_HIVE" "$m/Windows/System32/config/SYSTEM"
    fi
    unxz_to evtx/srv2008r2-System.evtx "$m/Windows/System32/winevt/Logs/System.evtx"
}

# gpt_table DISK: the Gen2 partition table (fixed GUIDs so a rebuild keeps them).
gpt_table() {
    local disk=$1
    sgdisk -Z "$disk" >/dev/null 2>&1 || true
    sgdisk -U 5F1E0F1D-5A0B-4E9B-9B6A-0D2C2B1A0001 \
        -n 1:${GEN2_EFI_START}:+${GEN2_EFI_MIB}M -t 1:EF00 -c 1:"EFI system partition" \
        -u 1:5F1E0F1D-5A0B-4E9B-9B6A-0D2C2B1A0011 \
        -n 2:${GEN2_MSR_START}:+${GEN2_MSR_MIB}M -t 2:0C01 -c 2:"Microsoft reserved partition" \
        -u 2:5F1E0F1D-5A0B-4E9B-9B6A-0D2C2B1A0012 \
        -n 3:${GEN2_WIN_START}:+${GEN2_WIN_MIB}M -t 3:0700 -c 3:"Basic data partition" \
        -u 3:5F1E0F1D-5A0B-4E9B-9B6A-0D2C2B1A0013 \
        "$disk" >/dev/null
}

# build_gen2 [NAME]: $WORK/NAME.raw (default gen2-gpt-win7-system) with $GEN2_HIVE as SYSTEM.
build_gen2() {
    local disk="$WORK/${1:-gen2-gpt-win7-system}.raw"
    rm -f "$disk"
    truncate -s $((GEN2_DISK_MIB * MIB)) "$disk"
    gpt_table "$disk"

    local efi="$WORK/efi.img"
    rm -f "$efi"
    truncate -s $((GEN2_EFI_MIB * MIB)) "$efi"
    mkfs.vfat -F 32 -s 1 -S 512 -h "$GEN2_EFI_START" -n SYSTEM -i 5EC0ADE5 --invariant "$efi" >/dev/null
    put_bcd "$WORK/BCD"
    MTOOLS_SKIP_CHECK=1 mmd -i "$efi" ::/EFI ::/EFI/Microsoft ::/EFI/Microsoft/Boot
    MTOOLS_SKIP_CHECK=1 mcopy -i "$efi" "$WORK/BCD" ::/EFI/Microsoft/Boot/BCD

    local win="$WORK/gen2-win.img"
    mkntfs_file "$win" "$GEN2_WIN_MIB" "$GEN2_WIN_START" Windows
    with_mounted "$win" populate_gen2_windows

    dd if="$efi" of="$disk" bs=512 seek="$GEN2_EFI_START" conv=notrunc,sparse status=none
    dd if="$win" of="$disk" bs=512 seek="$GEN2_WIN_START" conv=notrunc,sparse status=none
}

# ---- Gen1 (MBR): "System Reserved" NTFS (active) + Windows NTFS, like an Azure Gen1 disk ----
GEN1_DISK_MIB=96
GEN1_SR_START=2048
GEN1_SR_MIB=50
GEN1_WIN_START=$((GEN1_SR_START + GEN1_SR_MIB * 2048))
GEN1_WIN_MIB=45

populate_gen1_reserved() {
    local m=$1
    mkdir -p "$m/Boot"
    put_bcd "$m/Boot/BCD"
}

populate_gen1_windows() {
    local m=$1
    mkdir -p "$m/Windows/System32/config" "$m/Windows/System32/winevt/Logs"
    unxz_to hives/win10-dirty-SYSTEM "$m/Windows/System32/config/SYSTEM"
    unxz_to hives/win10-dirty-SYSTEM.LOG1 "$m/Windows/System32/config/SYSTEM.LOG1"
    unxz_to hives/win10-dirty-SYSTEM.LOG2 "$m/Windows/System32/config/SYSTEM.LOG2"
    unxz_to evtx/win10-vss7-System.evtx "$m/Windows/System32/winevt/Logs/System.evtx"
    # Hibernation enabled but not in use: Windows 8+ zeroes the header after a normal boot.
    head -c $((64 * 1024)) /dev/zero >"$m/hiberfil.sys"
}

build_gen1() {
    local disk="$WORK/${1:-gen1-mbr-win10-dirty-system}.raw"
    rm -f "$disk"
    truncate -s $((GEN1_DISK_MIB * MIB)) "$disk"
    sfdisk -q --no-reread --no-tell-kernel "$disk" <<EOF
label: dos
label-id: 0x5ec0ade5
start=${GEN1_SR_START}, size=$((GEN1_SR_MIB * 2048)), type=7, bootable
start=${GEN1_WIN_START}, size=$((GEN1_WIN_MIB * 2048)), type=7
EOF
    local sr="$WORK/gen1-sr.img" win="$WORK/gen1-win.img"
    mkntfs_file "$sr" "$GEN1_SR_MIB" "$GEN1_SR_START" "System Reserved"
    with_mounted "$sr" populate_gen1_reserved
    mkntfs_file "$win" "$GEN1_WIN_MIB" "$GEN1_WIN_START" Windows
    with_mounted "$win" populate_gen1_windows

    dd if="$sr" of="$disk" bs=512 seek="$GEN1_SR_START" conv=notrunc,sparse status=none
    dd if="$win" of="$disk" bs=512 seek="$GEN1_WIN_START" conv=notrunc,sparse status=none
}

# ---- A bare NTFS volume with the cases the write path must refuse or handle ----
populate_edge() {
    local m=$1
    # Resident: 100 bytes live inside the MFT record.
    head -c 100 /dev/zero | tr '\0' 'r' >"$m/resident.txt"
    # Plain non-resident, contiguous.
    seq 1 20000 >"$m/plain.txt"
    # Compressed: ntfs-3g compresses new files created in a directory marked compressed (0x800).
    mkdir "$m/compressed"
    setfattr -n system.ntfs_attrib_be -v 0x00000810 "$m/compressed"
    seq 1 20000 >"$m/compressed/compressed.txt"
    # Sparse: 1 MiB with data only at 512 KiB.
    truncate -s $MIB "$m/sparse.bin"
    printf 'data in the middle' | dd of="$m/sparse.bin" bs=1 seek=$((512 * 1024)) conv=notrunc status=none
    # A $DATA attribute split over several MFT records (an $ATTRIBUTE_LIST with pieces whose lowest
    # VCN is not 0): only the even 4 KiB pages are written, so every page is its own run between
    # two sparse runs and the mapping pairs no longer fit in one record. Each written page starts
    # with its page number, so a test can check the order of the pieces.
    local j
    for ((j = 0; j < 1400; j += 2)); do
        printf 'page %08d\n' "$j" | dd bs=4096 conv=sync,notrunc seek="$j" status=none of="$m/attrlist-sparse.bin"
    done
    mkdir -p "$m/Mixed Case Dir"
    printf 'found me\n' >"$m/Mixed Case Dir/File Name.TXT"
}

build_edge() {
    local vol="$WORK/ntfs-edge-cases.raw"
    mkntfs_file "$vol" 16 0 edge
    with_mounted "$vol" populate_edge
}

compress_into() {
    local src=$1 dst_dir=$2
    local name
    name=$(basename "$src")
    xz -T1 -9 -c "$src" >"$dst_dir/$name.xz"
    printf '%s  %s  (%s bytes raw, %s bytes xz)\n' "$(sha256sum "$src" | cut -d' ' -f1)" "$name" \
        "$(stat -c %s "$src")" "$(stat -c %s "$dst_dir/$name.xz")"
}

cmd_raw() {
    need
    local which=("$@")
    ((${#which[@]})) || which=(gen2 gen1 edge)
    local w
    for w in "${which[@]}"; do
        case "$w" in
        gen2) build_gen2; compress_into "$WORK/gen2-gpt-win7-system.raw" "$HERE" ;;
        gen1) build_gen1; compress_into "$WORK/gen1-mbr-win10-dirty-system.raw" "$HERE" ;;
        edge) build_edge; compress_into "$WORK/ntfs-edge-cases.raw" "$HERE" ;;
        *) echo "unknown fixture $w (gen2, gen1, edge)" >&2; exit 2 ;;
        esac
    done
}

# ---- Gen2 disks whose SYSTEM hive is broken one way (hivex-made copies of win7-SYSTEM) ----
# Committed as gen2-gpt-win7-CASE.raw.xz (about 1.15 MB each).
BROKEN_COMMITTED="dhcp-disabled afd-disabled cycle-nsi-dhcp group-member-account current-broken"
MAKE_BROKEN="$REPO/crates/winsvc/tests/make-broken-hives.sh"

# broken_hive CASE: prints the path of the uncompressed broken hive for CASE (in $WORK).
broken_hive() {
    local c=$1 out="$WORK/hives"
    mkdir -p "$out"
    if [[ -f "$REPO/testdata/hives/broken/win7-$c.xz" ]]; then
        xz -dc "$REPO/testdata/hives/broken/win7-$c.xz" | cat >"$out/win7-$c"
    else
        command -v hivexregedit >/dev/null || {
            echo "win7-$c is not committed and hivexregedit (Debian: libwin-hivex-perl) is missing" >&2
            exit 127
        }
        unxz_to hives/win7-SYSTEM "$WORK/win7-SYSTEM"
        "$MAKE_BROKEN" "$WORK/win7-SYSTEM" "$out" win7 "$c" >&2
    fi
    printf '%s\n' "$out/win7-$c"
}

# check_gen2_hive DISK HIVE: the SYSTEM file in the Windows partition of DISK is HIVE, byte for byte.
check_gen2_hive() {
    local disk=$1 hive=$2 part="$WORK/check-win.img"
    dd if="$disk" of="$part" bs=512 skip="$GEN2_WIN_START" count=$((GEN2_WIN_MIB * 2048)) conv=sparse status=none
    ntfscat "$part" Windows/System32/config/SYSTEM | cmp - "$hive" ||
        { echo "$disk: its SYSTEM is not $hive" >&2; exit 1; }
    rm -f "$part"
}

# build_broken CASE: $WORK/gen2-gpt-win7-CASE.raw, checked.
build_broken() {
    local c=$1 hive
    hive=$(broken_hive "$c")
    GEN2_HIVE=$hive build_gen2 "gen2-gpt-win7-$c"
    check_gen2_hive "$WORK/gen2-gpt-win7-$c.raw" "$hive"
}

cmd_broken() {
    need
    local cases=("$@")
    ((${#cases[@]})) || read -r -a cases <<<"$BROKEN_COMMITTED"
    local c
    for c in "${cases[@]}"; do
        build_broken "$c"
        compress_into "$WORK/gen2-gpt-win7-$c.raw" "$HERE"
        rm -f "$WORK/gen2-gpt-win7-$c.raw"
    done
}

cmd_broken_raw() {
    need
    local out=${1:?usage: broken-raw DIR [CASE]...}
    shift
    local cases=("$@")
    ((${#cases[@]})) || read -r -a cases <<<"$BROKEN_COMMITTED"
    mkdir -p "$out"
    local c
    for c in "${cases[@]}"; do
        build_broken "$c"
        # Atomic for tests running in parallel: the finished image appears at once.
        cp --sparse=always "$WORK/gen2-gpt-win7-$c.raw" "$out/.gen2-gpt-win7-$c.raw.$$"
        mv "$out/.gen2-gpt-win7-$c.raw.$$" "$out/gen2-gpt-win7-$c.raw"
        rm -f "$WORK/gen2-gpt-win7-$c.raw"
        printf '%s  %s\n' "$(sha256sum "$out/gen2-gpt-win7-$c.raw" | cut -d' ' -f1)" "$out/gen2-gpt-win7-$c.raw"
    done
}

# ---- Both disks with a BCD whose default entry boots into safe mode ----
# The default entry of hives/BCD (its boot manager's element 23000003).
BCD_DEFAULT="{733b62e5-f608-11eb-825c-c112f60133ab}"

# safeboot_bcd: prints the path of hives/BCD with BcdOSLoaderInteger_SafeBoot (element 25000080)
# = 0 (SafemodeMinimal) on the default entry, as `bcdedit /set {default} safeboot minimal`
# stores it: an 8-byte little-endian REG_BINARY "Element". Made by hivex, not by winrescue.
safeboot_bcd() {
    command -v hivexregedit >/dev/null || {
        echo "hivexregedit (Debian: libwin-hivex-perl) is missing" >&2
        exit 127
    }
    local out="$WORK/BCD-safeboot"
    unxz_to hives/BCD "$out"
    printf 'Windows Registry Editor Version 5.00\n\n[\\Objects\\%s\\Elements\\25000080]\n"Element"=hex(3):00,00,00,00,00,00,00,00\n' \
        "$BCD_DEFAULT" >"$WORK/safeboot.reg"
    hivexregedit --merge "$out" "$WORK/safeboot.reg"
    [[ $(hivexget "$out" "\\Objects\\$BCD_DEFAULT\\Elements\\25000080" Element | od -An -tx1 | tr -d ' \n') == 0000000000000000 ]] ||
        { echo "hivexregedit did not set safeboot" >&2; exit 1; }
    printf '%s\n' "$out"
}

cmd_safeboot() {
    need
    local bcd
    bcd=$(safeboot_bcd)
    BOOT_BCD=$bcd build_gen2 gen2-gpt-win7-safeboot
    # The BCD read back from the ESP with mtools is the hivex-made store, byte for byte.
    dd if="$WORK/gen2-gpt-win7-safeboot.raw" of="$WORK/check-efi.img" bs=512 skip="$GEN2_EFI_START" \
        count=$((GEN2_EFI_MIB * 2048)) status=none
    MTOOLS_SKIP_CHECK=1 mtype -i "$WORK/check-efi.img" ::/EFI/Microsoft/Boot/BCD | cmp - "$bcd"
    fsck.vfat -n "$WORK/check-efi.img" >/dev/null
    compress_into "$WORK/gen2-gpt-win7-safeboot.raw" "$HERE"
    BOOT_BCD=$bcd build_gen1 gen1-mbr-win10-safeboot
    dd if="$WORK/gen1-mbr-win10-safeboot.raw" of="$WORK/check-sr.img" bs=512 skip="$GEN1_SR_START" \
        count=$((GEN1_SR_MIB * 2048)) status=none
    ntfscat "$WORK/check-sr.img" Boot/BCD | cmp - "$bcd"
    compress_into "$WORK/gen1-mbr-win10-safeboot.raw" "$HERE"
    printf '%s  %s\n' "$(sha256sum "$bcd" | cut -d' ' -f1)" "BCD (safeboot minimal)"
}

cmd_variants() {
    need
    local out=${1:-$REPO/target/fixture-images}
    mkdir -p "$out"
    local name
    for name in gen2-gpt-win7-system gen1-mbr-win10-dirty-system; do
        xz -dc "$HERE/$name.raw.xz" >"$WORK/$name.raw"
        qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on "$WORK/$name.raw" "$out/$name.fixed.vhd"
        qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$WORK/$name.raw" "$out/$name.dynamic.vhd"
        qemu-img convert -f raw -O vhdx -o subformat=dynamic "$WORK/$name.raw" "$out/$name.vhdx"
        ls -ls "$out/$name".*
    done
}

# ---- The benchmark disk: 127 GiB, Gen2, a SOFTWARE hive of about 80 MB ----
# Like an Azure Gen2 Windows OS disk: a 127 GiB GPT disk whose Windows partition fills it after
# the EFI system partition and the MSR. Never committed (1.1 GB of data once built, sparse on the
# host).
BENCH_DISK_GIB=127
# The bulk merged into the SOFTWARE hive: BENCH_GROUPS keys of BENCH_PER subkeys, each with a
# default string, an InprocServer32-like path and BENCH_DATA bytes of binary data. 195 x 100 x
# 2500 gives a hive of about 80 MB (hivex's own layout: it never reuses the space of a grown
# subkey list, so a flat key of 20000 subkeys would make a 400 MB hive and take minutes).
BENCH_GROUPS=${BENCH_GROUPS:-195}
BENCH_PER=${BENCH_PER:-100}
BENCH_DATA=${BENCH_DATA:-2500}

# bench_bulk_reg GROUPS PER DATA: the bulk .reg on stdout. Half the groups sit under \Microsoft
# (siblings of the keys the rules read, so a lookup crosses a long subkey list, as in a real
# SOFTWARE), half under \Classes\CLSID. The data bytes come from a fixed linear congruential
# sequence: the same hive on every build, and nothing xz or the page cache can fold.
bench_bulk_reg() {
    awk -v groups="$1" -v per="$2" -v len="$3" 'BEGIN {
        print "Windows Registry Editor Version 5.00"; print ""
        print "[\\Classes]"; print ""; print "[\\Classes\\CLSID]"; print ""
        seed = 12345
        for (g = 0; g < groups; g++) {
            parent = (g % 2) ? sprintf("\\Classes\\CLSID\\Group%03d", g) : sprintf("\\Microsoft\\Component%03d", g)
            printf "[%s]\n\n", parent
            for (i = 0; i < per; i++) {
                n = g * per + i
                printf "[%s\\{%08x-0000-4000-8000-%012x}]\n", parent, (n * 2654435761) % 4294967296, n
                printf "@=\"Bulk component %d\"\n", n
                printf "\"InprocServer32\"=\"%%SystemRoot%%\\\\System32\\\\bulk%05d.dll\"\n", n
                printf "\"Data\"=hex:"
                for (j = 0; j < len; j++) {
                    seed = (seed * 1103515245 + 12345) % 2147483648
                    printf "%s%02x", (j ? "," : ""), int(seed / 65536) % 256
                }
                printf "\n\n"
            }
        }
    }'
}

# bench_software OUT: hives/software/win7-SOFTWARE (the keys the rules read) with the bulk
# merged in by hivexregedit; checked: the rules' keys still read the same with hivexget.
bench_software() {
    local out=$1
    command -v hivexregedit >/dev/null || {
        echo "hivexregedit (Debian: libwin-hivex-perl) is missing" >&2
        exit 127
    }
    unxz_to hives/software/win7-SOFTWARE "$out"
    bench_bulk_reg "$BENCH_GROUPS" "$BENCH_PER" "$BENCH_DATA" >"$WORK/bulk.reg"
    hivexregedit --merge "$out" "$WORK/bulk.reg"
    rm -f "$WORK/bulk.reg"
    [[ $(hivexget "$out" '\Microsoft\Windows NT\CurrentVersion' CurrentBuild) == 7601 ]] ||
        { echo "bench SOFTWARE: CurrentBuild is not 7601 after the merge" >&2; exit 1; }
    [[ $(hivexget "$out" "\\Classes\\CLSID\\Group001\\{$(printf '%08x' $(((100 * 2654435761) % 4294967296)))-0000-4000-8000-000000000064}" InprocServer32) == '%SystemRoot%\System32\bulk00100.dll' ]] ||
        { echo "bench SOFTWARE: a bulk key did not read back" >&2; exit 1; }
}

populate_bench_windows() {
    local m=$1
    populate_gen2_windows "$m"
    cat "$WORK/bench-SOFTWARE" >"$m/Windows/System32/config/SOFTWARE"
}

# build_bench OUT.vhd: the 127 GiB fixed VHD. The partitions are built as files and put into the
# disk with qemu-img (which copies only their data, not the holes of a 127 GiB volume).
build_bench() {
    local vhd=$1
    local raw="$WORK/bench.raw" disk_bytes=$((BENCH_DISK_GIB * 1024 * MIB))
    rm -f "$raw"
    truncate -s "$disk_bytes" "$raw"
    sgdisk -Z "$raw" >/dev/null 2>&1 || true
    sgdisk -U 5F1E0F1D-5A0B-4E9B-9B6A-0D2C2B1A0001 \
        -n 1:${GEN2_EFI_START}:+${GEN2_EFI_MIB}M -t 1:EF00 -c 1:"EFI system partition" \
        -u 1:5F1E0F1D-5A0B-4E9B-9B6A-0D2C2B1A0011 \
        -n 2:${GEN2_MSR_START}:+${GEN2_MSR_MIB}M -t 2:0C01 -c 2:"Microsoft reserved partition" \
        -u 2:5F1E0F1D-5A0B-4E9B-9B6A-0D2C2B1A0012 \
        -n 3:${GEN2_WIN_START}:0 -t 3:0700 -c 3:"Basic data partition" \
        -u 3:5F1E0F1D-5A0B-4E9B-9B6A-0D2C2B1A0013 \
        "$raw" >/dev/null
    # The Windows partition runs to the GPT's last usable sector.
    local win_sectors
    win_sectors=$(sgdisk -i 3 "$raw" | awk '/^Partition size:/ { print $3 }')
    [[ $win_sectors =~ ^[0-9]+$ ]] || { echo "bench: no size for partition 3" >&2; exit 1; }

    local efi="$WORK/efi.img"
    rm -f "$efi"
    truncate -s $((GEN2_EFI_MIB * MIB)) "$efi"
    mkfs.vfat -F 32 -s 1 -S 512 -h "$GEN2_EFI_START" -n SYSTEM -i 5EC0ADE5 --invariant "$efi" >/dev/null
    put_bcd "$WORK/BCD"
    MTOOLS_SKIP_CHECK=1 mmd -i "$efi" ::/EFI ::/EFI/Microsoft ::/EFI/Microsoft/Boot
    MTOOLS_SKIP_CHECK=1 mcopy -i "$efi" "$WORK/BCD" ::/EFI/Microsoft/Boot/BCD

    local win="$WORK/bench-win.img"
    rm -f "$win"
    truncate -s $((win_sectors * 512)) "$win"
    mkntfs -F -Q -q -s 512 -c 4096 -p "$GEN2_WIN_START" -H 255 -S 63 -L Windows "$win" 2>/dev/null
    with_mounted "$win" populate_bench_windows
    ntfscat "$win" Windows/System32/config/SOFTWARE | cmp - "$WORK/bench-SOFTWARE"
    ntfscat "$win" Windows/System32/config/SYSTEM | cmp - "$GEN2_HIVE"

    local part start size
    for part in "efi.img:$GEN2_EFI_START" "bench-win.img:$GEN2_WIN_START"; do
        start=${part#*:}
        size=$(stat -c %s "$WORK/${part%%:*}")
        qemu-img convert -n -f raw "$WORK/${part%%:*}" --target-image-opts \
            "driver=raw,offset=$((start * 512)),size=$size,file.driver=file,file.filename=$raw"
    done
    rm -f "$efi" "$win"
    # Read back from the disk: the hives are the ones put in, byte for byte.
    dd if="$raw" of="$WORK/check-efi.img" bs=512 skip="$GEN2_EFI_START" count=$((GEN2_EFI_MIB * 2048)) status=none
    MTOOLS_SKIP_CHECK=1 mtype -i "$WORK/check-efi.img" ::/EFI/Microsoft/Boot/BCD | cmp - "$WORK/BCD"
    fsck.vfat -n "$WORK/check-efi.img" >/dev/null
    rm -f "$WORK/check-efi.img"
    qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on "$raw" "$vhd.tmp"
    mv "$vhd.tmp" "$vhd"
    rm -f "$raw"
    ls -ls "$vhd"
}

# bench [DIR]: DIR/bench-127g-gen2-software80m.fixed.vhd, the disk bench/diagnose-127g.sh times:
# the SYSTEM of gen2-gpt-win7-dhcp-disabled (the DHCP Client disabled), the bulk SOFTWARE, the
# real BCD on the EFI system partition and the real System.evtx.
cmd_bench() {
    need
    local out=${1:-$REPO/target/fixture-images}
    mkdir -p "$out"
    bench_software "$WORK/bench-SOFTWARE"
    GEN2_HIVE=$(broken_hive dhcp-disabled)
    printf '%s  SOFTWARE (%s bytes)\n' "$(sha256sum "$WORK/bench-SOFTWARE" | cut -d' ' -f1)" \
        "$(stat -c %s "$WORK/bench-SOFTWARE")"
    build_bench "$out/bench-127g-gen2-software80m.fixed.vhd"
}

case "${1:-raw}" in
raw) shift; cmd_raw "$@" ;;
variants) shift; cmd_variants "$@" ;;
broken) shift; cmd_broken "$@" ;;
broken-raw) shift; cmd_broken_raw "$@" ;;
safeboot) shift; cmd_safeboot "$@" ;;
bench) shift; cmd_bench "$@" ;;
*) echo "usage: $0 [raw [gen2|gen1|edge]... | broken [CASE]... | safeboot | broken-raw DIR [CASE]... | variants [DIR] | bench [DIR]]" >&2; exit 2 ;;
esac
