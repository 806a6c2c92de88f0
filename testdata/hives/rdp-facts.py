#!/usr/bin/env python3
"""Prints the RDP-related values of real SYSTEM hives as markdown tables (RDP-FACTS.md).

    rdp-facts.py NAME=HIVE-FILE [NAME=HIVE-FILE...] > RDP-FACTS-tables.md

Every value comes from hivex's `hivexregedit --export` of the whole hive (an independent reader,
not winrescue); this script only parses that text and lays it out. Key and value names are
compared case-insensitively, as Windows does (the Windows 7 hive stores `services` in lower case).
"""

import re
import subprocess
import sys

CLASS_NET = "{4d36e972-e325-11ce-bfc1-08002be10318}"
SERVICES = ["TermService", "UmRdpService", "SessionEnv", "MpsSvc", "BFE", "netvsc", "NSI",
            "Netlogon", "Dhcp", "Dnscache", "RpcSs", "WindowsAzureGuestAgent", "RdAgent"]
SERVICE_VALUES = ["Start", "Type", "ObjectName", "DependOnService"]
TS_VALUES = ["fDenyTSConnections", "TSEnabled", "TSServerDrainMode", "TSUserEnabled"]
RDP_VALUES = ["fEnableWinStation", "fLogonDisabled", "PortNumber", "MaxInstanceCount", "LanAdapter",
              "SecurityLayer", "UserAuthentication", "MinEncryptionLevel", "SSLCertificateSHA1Hash",
              "fAllowSecProtocolNegotiation"]
PROFILE_VALUES = ["EnableFirewall", "DoNotAllowExceptions", "DisableNotifications"]


def export(path):
    """Keys of the hive: lower-case path -> (path as stored, {lower-case value name: (name, data)})."""
    text = subprocess.run(["hivexregedit", "--export", path, "\\"], check=True,
                          capture_output=True, text=True).stdout
    keys, cur = {}, None
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1]
            cur = {}
            keys[name.lower()] = (name, cur)
        elif cur is not None and line and line[0] in '"@':
            if line.startswith("@="):
                name, rest = "(default)", line[2:]
            else:
                m = re.match(r'"((?:[^"\\]|\\.)*)"=(.*)$', line)
                name, rest = unescape(m.group(1)), m.group(2)
            cur[name.lower()] = (name, decode(rest))
    return keys


def unescape(s):
    return re.sub(r"\\(.)", r"\1", s)


def utf16(hexbytes):
    return bytes(hexbytes).decode("utf-16-le", errors="replace")


def decode(rest):
    """The .reg data as shown in the tables: numbers in decimal and hex, strings quoted."""
    if rest.startswith("dword:"):
        v = int(rest[6:], 16)
        return f"REG_DWORD {v} (0x{v:x})"
    if rest.startswith('"'):
        return f'REG_SZ "{unescape(rest[1:-1])}"'
    m = re.match(r"hex(?:\((\w+)\))?:(.*)$", rest)
    if not m:
        return rest
    kind = int(m.group(1) or "3", 16)
    data = [int(b, 16) for b in m.group(2).split(",") if b]
    if kind in (1, 2):
        s = utf16(data).split("\0")[0]
        return f'{"REG_SZ" if kind == 1 else "REG_EXPAND_SZ"} "{s}"'
    if kind == 7:
        parts = [p for p in utf16(data).split("\0") if p]
        return "REG_MULTI_SZ [" + ", ".join(parts) + "]"
    if kind == 4 and len(data) == 4:
        v = int.from_bytes(bytes(data), "little")
        return f"REG_DWORD {v} (0x{v:x})"
    if kind == 3:
        return "REG_BINARY " + "".join(f"{b:02x}" for b in data) if data else "REG_BINARY (empty)"
    return f"type {kind} " + "".join(f"{b:02x}" for b in data)


def value(keys, path, name):
    k = keys.get(path.lower())
    if k is None:
        return "absent (no key)"
    v = k[1].get(name.lower())
    return "absent" if v is None else v[1]


def subkeys(keys, path):
    """Immediate subkeys of path, as stored."""
    pre = path.lower() + "\\"
    out = []
    for low, (name, _) in keys.items():
        if low.startswith(pre) and "\\" not in low[len(pre):]:
            out.append(name)
    return sorted(out, key=str.lower)


def cell(s):
    return s.replace("|", "\\|")


def main():
    hives = []
    for arg in sys.argv[1:]:
        name, path = arg.split("=", 1)
        hives.append((name, export(path)))

    # Columns: every control set of every hive.
    cols = []
    for name, keys in hives:
        sets = sorted(n for n, _ in (keys[k] for k in keys)
                      if re.fullmatch(r"\\controlset\d{3}", n.lower()))
        for cs in sets:
            cols.append((f"{name} {cs[1:].replace('ControlSet', 'CS')}", keys, cs))

    print("### Select\n")
    print("| hive | Current | Default | Failed | LastKnownGood |\n|---|---|---|---|---|")
    for name, keys in hives:
        row = [value(keys, "\\Select", v) for v in ("Current", "Default", "Failed", "LastKnownGood")]
        print(f"| {name} | " + " | ".join(cell(r) for r in row) + " |")
    print()

    def table(title, rows):
        print(f"### {title}\n")
        print("| key \\ value | " + " | ".join(c[0] for c in cols) + " |")
        print("|---|" + "---|" * len(cols))
        for label, rel, val in rows:
            print(f"| {cell(label)} | " + " | ".join(cell(value(k, cs + rel, val)) for _, k, cs in cols) + " |")
        print()

    table("Product", [("ProductOptions ProductType", "\\Control\\ProductOptions", "ProductType"),
                      ("Windows CSDVersion", "\\Control\\Windows", "CSDVersion"),
                      ("Windows CSDBuildNumber", "\\Control\\Windows", "CSDBuildNumber")])
    ts = "\\Control\\Terminal Server"
    table("Terminal Server (TS)", [(f"TS {v}", ts, v) for v in TS_VALUES])
    table("RDP-Tcp listener (TS\\WinStations\\RDP-Tcp)",
          [(f"RDP-Tcp {v}", ts + "\\WinStations\\RDP-Tcp", v) for v in RDP_VALUES])

    sch = "\\Control\\SecurityProviders\\SCHANNEL\\Protocols"
    rows = []
    protos = sorted({p.split("\\")[-1] for _, k, cs in cols for p in subkeys(k, cs + sch)},
                    key=str.lower)
    for base in protos:
        for side in ("Server", "Client"):
            for v in ("Enabled", "DisabledByDefault"):
                rows.append((f"{base}\\{side} {v}", f"{sch}\\{base}\\{side}", v))
    rows.append(("Lsa\\FIPSAlgorithmPolicy Enabled", "\\Control\\Lsa\\FIPSAlgorithmPolicy", "Enabled"))
    rows.append(("Lsa disabledomaincreds", "\\Control\\Lsa", "disabledomaincreds"))
    print(f"SCHANNEL protocol keys present: "
          + "; ".join(f"{c[0]}: " + (", ".join(s.split("\\")[-1] for s in subkeys(c[1], c[2] + sch)) or "none")
                      for c in cols) + "\n")
    table("Security negotiation (SCHANNEL Protocols, Lsa)", rows)

    rows = []
    for s in SERVICES:
        for v in SERVICE_VALUES:
            rows.append((f"{s} {v}", f"\\Services\\{s}", v))
    table("Services", rows)

    fw = "\\Services\\SharedAccess\\Parameters\\FirewallPolicy"
    rows = []
    for prof in ("DomainProfile", "StandardProfile", "PublicProfile"):
        for v in PROFILE_VALUES:
            rows.append((f"{prof} {v}", f"{fw}\\{prof}", v))
    table("Firewall profiles (Services\\SharedAccess\\Parameters\\FirewallPolicy)", rows)

    print("### Network interfaces (Services\\Tcpip\\Parameters\\Interfaces\\*)\n")
    print("| control set | interface | EnableDHCP | IPAddress | DhcpIPAddress |\n|---|---|---|---|---|")
    for label, k, cs in cols:
        ifs = subkeys(k, cs + "\\Services\\Tcpip\\Parameters\\Interfaces")
        if not ifs:
            print(f"| {label} | none | | | |")
        for i in ifs:
            print(f"| {label} | {i.split(chr(92))[-1]} | " + " | ".join(
                cell(value(k, i, v)) for v in ("EnableDHCP", "IPAddress", "DhcpIPAddress")) + " |")
    print()

    print(f"### Network adapters (Control\\Class\\{CLASS_NET}\\*)\n")
    print("| control set | subkey | DriverDesc | DriverVersion |\n|---|---|---|---|")
    for label, k, cs in cols:
        for sub in subkeys(k, cs + "\\Control\\Class\\" + CLASS_NET):
            if re.fullmatch(r"\d{4}", sub.split("\\")[-1]):
                print(f"| {label} | {sub.split(chr(92))[-1]} | " + " | ".join(
                    cell(value(k, sub, v)) for v in ("DriverDesc", "DriverVersion")) + " |")
    print()

    print("### Firewall rules named RemoteDesktop-* (FirewallPolicy\\FirewallRules)\n")
    print("| control set | rule id | rule |\n|---|---|---|")
    for label, k, cs in cols:
        rules = k.get((cs + fw + "\\FirewallRules").lower())
        if rules is None:
            print(f"| {label} | (no FirewallRules key) | |")
            continue
        found = sorted((n, d) for n, d in rules[1].values() if n.lower().startswith("remotedesktop-"))
        if not found:
            print(f"| {label} | none | |")
        for n, d in found:
            print(f"| {label} | {cell(n)} | `{cell(d)}` |")
    print()


if __name__ == "__main__":
    main()
