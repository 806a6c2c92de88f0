#!/usr/bin/env bash
# Times `winrescue diagnose` on a 127 GiB fixed VHD (the size of an Azure Windows OS disk; sparse on
# the host, ~15 MB used) whose Windows 7 SYSTEM hive has the DHCP Client disabled, against the
# manual root route measured in the same run:
#
#   losetup -r -o OFFSET --sizelimit LEN IMAGE  +  ntfs-3g -o ro  +
#   hivexget SYSTEM '\ControlSet001\services\Dhcp' Start  +  umount  +  losetup -d
#
# and reports the peak memory (maximum resident set size) of winrescue with /usr/bin/time -v.
#
#   bench/diagnose-127g.sh [IMAGE]
#
# IMAGE defaults to target/fixture-images/bench-127g-gen2-dhcp-disabled.fixed.vhd, built when
# missing by `testdata/images/make-windows-fixtures.sh bench`. Uses target/release/winrescue as it
# is (build it first: cargo build --release -p cli); when that binary has no `diagnose` command
# yet, only the reference route is timed (set REQUIRE_WINRESCUE=1 to fail instead).
# Results (hyperfine's markdown and JSON, the time -v report) go to target/bench-results/.
#
# Needs root (losetup, mount), hyperfine, hivex (hivexget), ntfs-3g, GNU time. Every loop device
# and mount the script makes is released, also when a step fails or the script is interrupted.
set -euo pipefail

# ---- reference mode: one run of the manual route (what hyperfine times) ----
# bench/diagnose-127g.sh --reference IMAGE OFFSET LEN STATE_DIR
if [[ ${1:-} == --reference ]]; then
    image=$2 offset=$3 len=$4 state=$5
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
    hivexget "$mnt/Windows/System32/config/SYSTEM" '\ControlSet001\services\Dhcp' Start
    exit 0
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
SELF="$REPO/bench/$(basename "$0")"
IMAGE=${1:-$REPO/target/fixture-images/bench-127g-gen2-dhcp-disabled.fixed.vhd}
WINRESCUE=${WINRESCUE:-$REPO/target/release/winrescue}
OUT=$REPO/target/bench-results
mkdir -p "$OUT"

(($(id -u) == 0)) || { echo "needs root (losetup, mount)" >&2; exit 1; }
for t in hyperfine hivexget ntfs-3g losetup sfdisk; do
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
echo "image: $IMAGE ($(stat -c %s "$IMAGE") bytes, $(du -h "$IMAGE" | cut -f1) used)"
echo "Windows partition: sector $START, $SECTORS sectors (offset $OFFSET, $LEN bytes)"

REFERENCE="bash '$SELF' --reference '$IMAGE' $OFFSET $LEN '$STATE'"
echo "reference route, one run: Dhcp Start = $(eval "$REFERENCE")"

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
names+=(-n "losetup + ntfs-3g + hivexget (root)")

hyperfine --warmup 3 --runs 20 --export-markdown "$OUT/diagnose-127g.md" \
    --export-json "$OUT/diagnose-127g-hyperfine.json" "${names[@]}" "${commands[@]}"

if ((have_diagnose)); then
    set +e
    /usr/bin/time -v "$WINRESCUE" diagnose "$IMAGE" --json >/dev/null 2>"$OUT/diagnose-127g-time.txt"
    set -e
    echo "winrescue diagnose: peak memory $(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/diagnose-127g-time.txt") KiB (maximum resident set size, /usr/bin/time -v; full report: $OUT/diagnose-127g-time.txt)"
fi
echo "results: $OUT/diagnose-127g.md, $OUT/diagnose-127g-hyperfine.json"
