#!/usr/bin/env bash
# Times `winrescue diagnose --json` (every rule) on a 127 GiB fixed VHD shaped like an Azure Gen2
# Windows OS disk (sparse on the host: ~160 MB used), against the manual root route on the same
# image in the same run, and reports medians, their ratio and the peak memory of both.
#
# The disk (testdata/images/make-windows-fixtures.sh bench): GPT; a FAT32 EFI system partition
# holding the real BCD at \EFI\Microsoft\Boot\BCD; an MSR; an NTFS Windows partition filling the
# rest of the disk, holding the Windows 7 SYSTEM hive with the DHCP Client disabled, a SOFTWARE
# hive of about 80 MB (the keys the rules read plus bulk merged by hivexregedit) and the real
# System.evtx. Every rule runs: the boot store, SYSTEM, SOFTWARE (version, Terminal Services
# policy, certificate stores, firewall Group Policy, CredSSP) and the System log are all read.
#
# The manual route reads the same three stores with the standard tools, a few values each:
#
#   losetup -r -o OFFSET --sizelimit LEN IMAGE  +  ntfs-3g -o ro  +
#   hivexget SYSTEM '\ControlSet001\services\Dhcp' Start  +
#   hivexget SOFTWARE '\Microsoft\Windows NT\CurrentVersion' CurrentBuild  +
#   hivexget SOFTWARE '\Policies\Microsoft\Windows NT\Terminal Services' (all values)  +
#   mtype -i IMAGE@@ESP_OFFSET ::/EFI/Microsoft/Boot/BCD > tmp  +  hivexget tmp (default entry)  +
#   umount  +  losetup -d
#
# Peak memory: the maximum resident set size from GNU time -v; for the manual route it is the
# largest process of the route that the shell waited for (hivexget, mtype, losetup; ntfs-3g runs
# detached and is not counted).
#
#   bench/diagnose-127g.sh [IMAGE]
#
# IMAGE defaults to target/fixture-images/bench-127g-gen2-software80m.fixed.vhd, built when
# missing by `testdata/images/make-windows-fixtures.sh bench` (about 30 s). Uses
# target/release/winrescue (build it first: cargo build --release -p winrescue; WINRESCUE=PATH
# for another binary). Results (hyperfine's markdown and JSON, both time -v reports, a summary)
# go to target/bench-results/.
#
# Needs root (losetup, mount), hyperfine, hivex (hivexget), ntfs-3g, mtools, GNU time. Every loop
# device and mount the script makes is released, also when a step fails or the script is
# interrupted.
#
# Measured 2026-11-30 (2 shared AMD EPYC cores with a load average of 2 from other work, Linux
# 6.18, the image in the page cache; the README's "Benchmarks" has the table): winrescue median
# 86.9 ms and 28.9 MB peak RSS, the manual route 234.4 ms and 80.8 MB (2.7x winrescue's time).
# Before SOFTWARE was read on demand (the file read whole, then copied): 182.0 ms and 170.8 MB.
set -euo pipefail

# ---- reference mode: one run of the manual route (what hyperfine times) ----
# bench/diagnose-127g.sh --reference IMAGE OFFSET LEN ESP_OFFSET STATE_DIR
if [[ ${1:-} == --reference ]]; then
    image=$2 offset=$3 len=$4 esp=$5 state=$6
    loop="" mnt=""
    release() {
        set +e
        if [[ -n $mnt ]]; then
            mountpoint -q "$mnt" && umount "$mnt"
            rmdir "$mnt"
        fi
        if [[ -n $loop ]]; then losetup -d "$loop"; fi
    }
    trap release EXIT
    mnt=$(mktemp -d "$state/mnt.XXXXXX")
    loop=$(losetup -f --show -r -o "$offset" --sizelimit "$len" "$image")
    # Recorded so that the main script releases it if this run is killed before its trap runs.
    echo "$loop" >>"$state/loops"
    ntfs-3g -o ro "$loop" "$mnt"
    config=$mnt/Windows/System32/config
    hivexget "$config/SYSTEM" '\ControlSet001\services\Dhcp' Start
    hivexget "$config/SOFTWARE" '\Microsoft\Windows NT\CurrentVersion' CurrentBuild
    hivexget "$config/SOFTWARE" '\Policies\Microsoft\Windows NT\Terminal Services'
    bcd=$(mktemp "$state/bcd.XXXXXX")
    MTOOLS_SKIP_CHECK=1 mtype -i "$image@@$esp" ::/EFI/Microsoft/Boot/BCD >"$bcd"
    hivexget "$bcd" '\Objects\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\Elements\23000003' Element
    rm -f "$bcd"
    exit 0
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
SELF="$REPO/bench/$(basename "$0")"
IMAGE=${1:-$REPO/target/fixture-images/bench-127g-gen2-software80m.fixed.vhd}
WINRESCUE=${WINRESCUE:-$REPO/target/release/winrescue}
OUT=$REPO/target/bench-results
mkdir -p "$OUT"

(($(id -u) == 0)) || { echo "needs root (losetup, mount)" >&2; exit 1; }
for t in hyperfine hivexget ntfs-3g losetup sfdisk mtype; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done
[[ -x /usr/bin/time ]] || { echo "missing /usr/bin/time (Debian: time)" >&2; exit 1; }

STATE=$(mktemp -d)
cleanup() {
    # Mounts and loop devices left by a reference run that was killed before its own trap ran.
    set +e
    local m l
    for m in "$STATE"/mnt.*; do
        [[ -d $m ]] || continue
        mountpoint -q "$m" && umount "$m"
        rmdir "$m"
    done
    if [[ -f $STATE/loops ]]; then
        while read -r l; do
            # Still attached to the image (not detached, and not reused since for another file).
            if [[ $(losetup -n -O BACK-FILE "$l" 2>/dev/null) == "$(realpath "$IMAGE")"* ]]; then
                losetup -d "$l"
            fi
        done <"$STATE/loops"
    fi
    rm -rf "$STATE"
}
trap cleanup EXIT

if [[ ! -f $IMAGE ]]; then
    [[ $IMAGE == "$REPO/target/fixture-images/"bench-127g-gen2* ]] ||
        { echo "$IMAGE does not exist" >&2; exit 1; }
    "$REPO/testdata/images/make-windows-fixtures.sh" bench "$(dirname "$IMAGE")"
fi

# The Windows partition: the first "Microsoft basic data" partition of the GPT.
read -r START SECTORS < <(sfdisk -d "$IMAGE" 2>/dev/null |
    awk -F'[=,]' '/type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7/ {
        gsub(/[^0-9]/, "", $2); gsub(/[^0-9]/, "", $4); print $2, $4; exit }')
[[ -n ${START:-} ]] || { echo "$IMAGE: no basic data partition in its GPT" >&2; exit 1; }
OFFSET=$((START * 512)) LEN=$((SECTORS * 512))
# The EFI system partition, where the BCD is.
ESP_START=$(sfdisk -d "$IMAGE" 2>/dev/null |
    awk -F'[=,]' '/type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B/ { gsub(/[^0-9]/, "", $2); print $2; exit }')
[[ -n ${ESP_START:-} ]] || { echo "$IMAGE: no EFI system partition in its GPT" >&2; exit 1; }
ESP_OFFSET=$((ESP_START * 512))
echo "image: $IMAGE ($(stat -c %s "$IMAGE") bytes, $(du -h "$IMAGE" | cut -f1) used)"
echo "Windows partition: sector $START, $SECTORS sectors (offset $OFFSET, $LEN bytes)"

REFERENCE="bash '$SELF' --reference '$IMAGE' $OFFSET $LEN $ESP_OFFSET '$STATE'"
echo "reference route, one run:"
eval "$REFERENCE" | sed 's/^/    /' 

# `diagnose` exits 1 when it finds a broken service (it must, here): 0 and 1 both count as runs.
WR="'$WINRESCUE' diagnose '$IMAGE' --json >/dev/null; test \$? -le 1"
have_diagnose=0
if [[ -x $WINRESCUE ]] && "$WINRESCUE" diagnose --help >/dev/null 2>&1; then
    have_diagnose=1
elif [[ ${REQUIRE_WINRESCUE:-0} == 1 ]]; then
    echo "$WINRESCUE has no diagnose command (cargo build --release -p cli)" >&2
    exit 1
else
    echo "warning: $WINRESCUE has no diagnose command yet: timing the reference route only" >&2
fi

commands=()
names=()
if ((have_diagnose)); then
    set +e
    "$WINRESCUE" diagnose "$IMAGE" --json >"$OUT/diagnose-127g.json"
    rc=$?
    set -e
    echo "winrescue diagnose, one run: exit code $rc, $(wc -c <"$OUT/diagnose-127g.json") bytes of JSON in $OUT/diagnose-127g.json"
    ((rc <= 1)) || { echo "winrescue diagnose failed (exit $rc)" >&2; exit 1; }
    commands+=("$WR")
    names+=(-n "winrescue diagnose --json")
fi
commands+=("$REFERENCE")
names+=(-n "losetup + ntfs-3g + hivexget + mtype (root)")

hyperfine --warmup 3 --runs 20 --export-markdown "$OUT/diagnose-127g.md" \
    --export-json "$OUT/diagnose-127g-hyperfine.json" "${names[@]}" "${commands[@]}"

# Peak resident set size (KiB) of one run of a command, from GNU time -v.
peak_kib() {
    local report=$1
    shift
    set +e
    /usr/bin/time -v "$@" >/dev/null 2>"$report"
    set -e
    awk -F': ' '/Maximum resident set size/ {print $2}' "$report"
}
ref_kib=$(peak_kib "$OUT/diagnose-127g-reference-time.txt" bash "$SELF" --reference "$IMAGE" $OFFSET $LEN $ESP_OFFSET "$STATE")
# Medians from hyperfine's JSON, in the order of the commands.
mapfile -t medians < <(awk -F': ' '/"median"/ { gsub(/[ ,]/, "", $2); print $2 }' "$OUT/diagnose-127g-hyperfine.json")
{
    echo "image: $IMAGE"
    if ((have_diagnose)); then
        wr_kib=$(peak_kib "$OUT/diagnose-127g-time.txt" "$WINRESCUE" diagnose "$IMAGE" --json)
        awk -v w="${medians[0]}" -v r="${medians[1]}" -v wk="$wr_kib" -v rk="$ref_kib" 'BEGIN {
            printf "winrescue diagnose --json (every rule): median %.1f ms, peak RSS %.1f MB\n", w * 1000, wk / 1024
            printf "manual route (losetup + ntfs-3g + hivexget + mtype): median %.1f ms, peak RSS %.1f MB (largest waited-for process)\n", r * 1000, rk / 1024
            printf "ratio: the manual route takes %.2fx the time of winrescue\n", r / w
        }'
    else
        awk -v r="${medians[0]}" -v rk="$ref_kib" 'BEGIN {
            printf "manual route: median %.1f ms, peak RSS %.1f MB\n", r * 1000, rk / 1024 }'
    fi
} | tee "$OUT/diagnose-127g-summary.txt"
echo "results: $OUT/diagnose-127g.md, $OUT/diagnose-127g-hyperfine.json, $OUT/diagnose-127g-summary.txt"
