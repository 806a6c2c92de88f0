#!/bin/sh
# Seeds the regf fuzz targets' corpora (fuzz/corpus/, not committed) with small slices of the
# real hives and logs in testdata/: the first bins of the Windows 7 and Windows 10 SYSTEM hives,
# the whole 32 KiB BCD hive, and the first 64 KiB of each Windows 10 log. Each seed starts with
# the targets' flags / mode byte (see the targets' headers).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
td=$here/../testdata/hives
c=$here/corpus
mkdir -p "$c/hive_read" "$c/hive_check" "$c/hive_edit" "$c/hive_edit_grow" "$c/log_replay"
slice() { # slice FIXTURE BYTES
    xz -dc "$td/$1.xz" | head -c "$2"
}
seed() { # seed TARGET NAME FLAGBYTE FIXTURE BYTES
    { printf "\\$(printf %o "$3")"; slice "$4" "$5"; } > "$c/$1/$2"
}
for t in hive_read hive_check hive_edit; do
    seed $t win7-16k 1 win7-SYSTEM 16384
    seed $t win7-64k 1 win7-SYSTEM 65536
    seed $t win7-64k-raw 0 win7-SYSTEM 65536
    seed $t win10-32k 1 win10-dirty-SYSTEM 32768
    seed $t bcd 0 BCD 32768
    seed $t bcd-big 255 BCD 32768
    seed $t corrupted-64k 1 corrupted-SYSTEM 65536
done
# hive_edit_grow takes a growth byte after the flags byte.
seed2() { # seed2 NAME FLAGBYTE GROWTHBYTE FIXTURE BYTES
    { printf "\\$(printf %o "$2")\\$(printf %o "$3")"; slice "$4" "$5"; } > "$c/hive_edit_grow/$1"
}
seed2 win7-64k 1 0 win7-SYSTEM 65536
seed2 win7-64k-grow 129 40 win7-SYSTEM 65536
seed2 win7-64k-many 3 255 win7-SYSTEM 65536
seed2 bcd-grow 255 64 BCD 32768
seed2 bcd-slack 101 0 BCD 32768
seed log_replay log1-64k 0 win10-dirty-SYSTEM.LOG1 65536
seed log_replay log1-64k-seal 2 win10-dirty-SYSTEM.LOG1 65536
seed log_replay log2-64k-seal 2 win10-dirty-SYSTEM.LOG2 65536
seed log_replay primary-64k 1 win10-dirty-SYSTEM 65536
seed log_replay primary-64k-seal 3 win10-dirty-SYSTEM 65536
du -sh "$c/hive_read" "$c/hive_check" "$c/hive_edit" "$c/hive_edit_grow" "$c/log_replay"
