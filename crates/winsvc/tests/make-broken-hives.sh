#!/usr/bin/env bash
# Makes broken copies of a real SYSTEM hive, one breakage per copy, with hivex's
# `hivexregedit --merge` (Debian package libwin-hivex-perl / libhivex-bin), so that the damage
# the winsvc tests detect does not come from winrescue's own writer.
#
#   make-broken-hives.sh SOURCE-HIVE OUT-DIR PREFIX [CASE...]
#
# writes OUT-DIR/PREFIX-CASE for each CASE (all cases when none is named). The committed copies
# under testdata/hives/broken/ were made with
#   make-broken-hives.sh win7-SYSTEM OUT win7 <case>; xz -9e -T1 OUT/win7-<case>
# (see testdata/hives/broken/README.md); the others are made at test time.
set -euo pipefail

src=$1 out=$2 prefix=$3
shift 3
command -v hivexregedit >/dev/null || { echo "hivexregedit (hivex) is not installed" >&2; exit 127; }

# REG_MULTI_SZ as .reg hex(7): UTF-16LE strings, each NUL-terminated, then an empty one.
multi() {
    local hex
    hex=$( { for s in "$@"; do printf '%s\0' "$s"; done; printf '\0'; } |
        iconv -f UTF-8 -t UTF-16LE | od -An -tx1 -v | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
    printf 'hex(7):%s' "$hex"
}

S='HKEY_LOCAL_MACHINE\SYSTEM'
D1="$S\\ControlSet001\\Services\\Dhcp"
D2="$S\\ControlSet002\\Services\\Dhcp"

# The .reg body of each case.
case_body() {
    case $1 in
    dhcp-disabled)              printf '[%s]\n"Start"=dword:00000004\n' "$D1" ;;
    dhcp-account-bob)           printf '[%s]\n"ObjectName"=".\\\\bob"\n' "$D1" ;;
    dhcp-account-networkservice) printf '[%s]\n"ObjectName"="NT Authority\\\\NetworkService"\n' "$D1" ;;
    dhcp-own-bad-account)       printf '[%s]\n"Type"=dword:00000010\n"ObjectName"="NT AUTHORITY\\\\Nobody"\n' "$D1" ;;
    dhcp-type-driver)           printf '[%s]\n"Type"=dword:00000001\n' "$D1" ;;
    dhcp-type-sz)               printf '[%s]\n"Type"="32"\n' "$D1" ;;
    afd-disabled)               printf '[%s]\n"Start"=dword:00000004\n' "$S\\ControlSet001\\Services\\AFD" ;;
    nsi-disabled)               printf '[%s]\n"Start"=dword:00000004\n' "$S\\ControlSet001\\Services\\NSI" ;;
    dep-missing)                printf '[%s]\n"DependOnService"=%s\n' "$D1" "$(multi NSI Tdx Afd NoSuchService)" ;;
    dep-list-deleted)           printf '[%s]\n"DependOnService"=-\n' "$D1" ;;
    cycle-nsi-dhcp)             printf '[%s]\n"DependOnService"=%s\n' "$S\\ControlSet001\\Services\\NSI" "$(multi nsiproxy Dhcp)" ;;
    dhcp-deleted)               printf '[-%s]\n' "$D1" ;;
    group-member-account)       printf '[%s]\n"ObjectName"="LocalSystem"\n' "$S\\ControlSet001\\Services\\wscsvc" ;;
    cs2-only-disabled)          printf '[%s]\n"Start"=dword:00000004\n' "$D2" ;;
    # Demand start in both sets: it can start, but nothing starts it at boot (made on request
    # only, not in the default list).
    dhcp-demand)                printf '[%s]\n"Start"=dword:00000003\n\n[%s]\n"Start"=dword:00000003\n' "$D1" "$D2" ;;
    # Windows boots Default next; Current (the last session's set) is the broken one.
    default-healthy-current-broken) printf '[%s]\n"Start"=dword:00000004\n\n[%s]\n"Current"=dword:00000002\n"Default"=dword:00000001\n' "$D2" "$S\\Select" ;;
    current-broken)             printf '[%s]\n"Start"=dword:00000004\n\n[%s]\n"Current"=dword:00000002\n"Default"=dword:00000002\n' "$D2" "$S\\Select" ;;
    *) echo "unknown case $1" >&2; return 1 ;;
    esac
}

all="dhcp-disabled dhcp-account-bob dhcp-account-networkservice dhcp-own-bad-account
dhcp-type-driver dhcp-type-sz afd-disabled nsi-disabled dep-missing dep-list-deleted
cycle-nsi-dhcp dhcp-deleted group-member-account cs2-only-disabled current-broken
default-healthy-current-broken"
[ $# -gt 0 ] || set -- $all

mkdir -p "$out"
for c in "$@"; do
    tmp=$(mktemp "$out/.$prefix-$c.XXXXXX")
    reg=$(mktemp "$out/.$prefix-$c.reg.XXXXXX")
    cp "$src" "$tmp"
    { printf 'Windows Registry Editor Version 5.00\n\n'; case_body "$c"; printf '\n'; } >"$reg"
    hivexregedit --merge --prefix "$S" "$tmp" "$reg"
    rm -f "$reg"
    mv "$tmp" "$out/$prefix-$c"
done
