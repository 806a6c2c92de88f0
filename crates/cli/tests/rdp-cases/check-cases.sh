#!/usr/bin/env bash
# Checks the RDP cases in cases.toml with hivex alone (no winrescue):
#   - every .reg merges cleanly with `hivexregedit --merge` into a temporary copy of its base hive;
#   - every .reg in this directory is used, every file named exists, names are unique;
#   - each case's `after` expectations all hold on the healthy reference (the base with its
#     prelude-<base>.reg; keys the case creates are not there and are left out), so they describe
#     a healthy system, and at least one of them fails on the broken hives, so the repair test can
#     fail;
#   - the value a case's `where` names differs between healthy reference and broken hive;
#   - each [[healthy]] entry merges cleanly.
#
#   check-cases.sh            (run from anywhere; needs hivexregedit, hivexget, xz, python3 >= 3.11)
set -euo pipefail
for tool in hivexregedit hivexget xz python3; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 127; }
done
here=$(cd "$(dirname "$0")" && pwd)
exec python3 - "$here" <<'EOF'
import os, re, shutil, subprocess, sys, tempfile, tomllib

here = sys.argv[1]
repo = os.path.abspath(os.path.join(here, "../../../.."))
spec = tomllib.load(open(os.path.join(here, "cases.toml"), "rb"))
tmp = tempfile.mkdtemp(prefix="rdp-cases.")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL", msg, file=sys.stderr)


def run(*args):
    return subprocess.run(args, capture_output=True, text=True)


bases = {}
for name, b in spec["base"].items():
    d = os.path.join(tmp, "base-" + name)
    os.mkdir(d)
    for hive in ("system", "software"):
        if hive not in b:  # a base without SOFTWARE (Windows 8.1)
            continue
        with open(os.path.join(d, hive.upper()), "wb") as f:
            subprocess.run(["xz", "-dc", os.path.join(repo, b[hive])], stdout=f, check=True)
    bases[name] = d


def merge(hive, reg):
    r = run("hivexregedit", "--merge", hive, os.path.join(here, reg))
    if r.returncode != 0 or r.stderr:
        raise RuntimeError(f"hivexregedit --merge {reg} into {hive}: {r.stderr.strip()}")


def build(dest, base, prelude, hive=None, reg=None):
    """Copies the base's hives to dest, merges prelude into SYSTEM and reg into hive."""
    os.mkdir(dest)
    for h in ("SYSTEM", "SOFTWARE"):
        if os.path.exists(os.path.join(bases[base], h)):
            shutil.copyfile(os.path.join(bases[base], h), os.path.join(dest, h))
    if prelude != "none":
        merge(os.path.join(dest, "SYSTEM"), prelude)
    if reg:
        merge(os.path.join(dest, hive), reg)
    return dest


def values_of(hive, key):
    """{lower-case name: data} of key as hivexget prints them, or None when the key does not exist."""
    r = run("hivexget", hive, key)
    if r.returncode == 0:
        out = {}
        for line in r.stdout.splitlines():
            m = re.match(r'^(?:"((?:[^"\\]|\\.)*)"|@)=(.*)$', line)
            if m:
                name = re.sub(r"\\(.)", r"\1", m.group(1)) if m.group(1) is not None else ""
                out[name.lower()] = m.group(2)
        return out
    # hivexget failed: prove that the key is absent from the nearest ancestor that exists, rather
    # than trusting the reason hivexget gives.
    parts = key.strip("\\").split("\\")
    for n in range(len(parts) - 1, -1, -1):
        anc = "\\" + "\\".join(parts[:n])
        e = run("hivexregedit", "--export", hive, anc)
        if e.returncode == 0:
            sections = {l[1:-1].lower() for l in e.stdout.splitlines() if l.startswith("[")}
            if key.lower() in sections:
                raise RuntimeError(f"hivexget cannot read {key} in {hive}, which exists: {r.stderr.strip()}")
            return None
    raise RuntimeError(f"hivexregedit cannot read {hive} at all")


def data_of(hive, key, value):
    vals = values_of(hive, key)
    if vals is None:
        return "absent"
    return vals.get(value.lower(), "absent")


def holds(d, a):
    return data_of(os.path.join(d, a.get("hive", "SYSTEM")), a["key"], a["value"]) in a["data"]


used = {"cases.toml", "check-cases.sh"}
names = set()
healthy_ref = {}
for base in bases:
    p = f"prelude-{base}.reg"
    used.add(p)
    healthy_ref[base] = build(os.path.join(tmp, "healthy-" + base), base, p)

for h in spec.get("healthy", []):
    if h["name"] in names:
        fail(f"{h['name']}: duplicate name")
    names.add(h["name"])
    for f in (h["prelude"], h.get("reg")):
        if f and f != "none":
            used.add(f)
    try:
        build(os.path.join(tmp, "h-" + h["name"]), h["base"], h["prelude"], h.get("hive"), h.get("reg"))
        print("ok  ", h["name"], "(healthy)")
    except RuntimeError as e:
        fail(f"{h['name']}: {e}")

for c in spec["case"]:
    name = c["name"]
    if name in names:
        fail(f"{name}: duplicate name")
    names.add(name)
    for f in (c["prelude"], c["reg"]):
        if f != "none":
            used.add(f)
    if c["hive"] not in ("SYSTEM", "SOFTWARE") or c["base"] not in bases:
        fail(f"{name}: bad hive or base")
        continue
    try:
        d = build(os.path.join(tmp, "c-" + name), c["base"], c["prelude"], c["hive"], c["reg"])
        ref = healthy_ref[c["base"]]
        # A key the case itself creates (a new adapter) is not in the reference: nothing to compare.
        bad = [a for a in c["after"]
               if values_of(os.path.join(ref, a.get("hive", "SYSTEM")), a["key"]) is not None
               and not holds(ref, a)]
        for a in bad:
            fail(f"{name}: the healthy reference shows {data_of(os.path.join(ref, a.get('hive', 'SYSTEM')), a['key'], a['value'])} "
                 f"for {a['key']} {a['value']}, not one of {a['data']}")
        if not c["after"] and not c.get("manual"):
            fail(f"{name}: nothing to check after repair")
        if c["after"] and all(holds(d, a) for a in c["after"]):
            fail(f"{name}: the broken hives already meet every `after` expectation")
        w = c["where"]
        if "value" in w:
            hv = os.path.join(d, c["hive"])
            if data_of(hv, w["key"], w["value"]) == data_of(os.path.join(ref, c["hive"]), w["key"], w["value"]):
                fail(f"{name}: {w['key']} {w['value']} is the same as in the healthy reference")
        if not bad:
            print("ok  ", name)
    except RuntimeError as e:
        fail(f"{name}: {e}")

for f in sorted(os.listdir(here)):
    if f not in used:
        fail(f"{f} is not used by cases.toml")
shutil.rmtree(tmp)
if failures:
    print(f"{len(failures)} problem(s)", file=sys.stderr)
    sys.exit(1)
print(f"all {len(spec['case'])} cases and {len(spec.get('healthy', []))} healthy entries check out")
EOF
