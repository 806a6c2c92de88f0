//! reg.exe's usage texts, with what winrescue does differently offline.

/// reg.exe's usage of an operation (`None`: the list of operations), as `REG op /?` prints it,
/// with what winrescue does differently offline.
pub fn usage_text(verb: Option<&str>) -> String {
    let body = match verb.map(str::to_ascii_lowercase).as_deref() {
        Some("query") => "REG QUERY KeyName [/v ValueName | /ve] [/s]\n\n  KeyName  HKLM\\SYSTEM, HKLM\\SOFTWARE, HKLM\\SAM, HKLM\\SECURITY, HKLM\\DEFAULT, or the name a\n           reg load gave (HKLM\\BROKENSYSTEM = SYSTEM); CurrentControlSet is resolved\n  /v       the value to show\n  /ve      the default (unnamed) value\n  /s       every subkey and value below the key\n\nExample:\n  winrescue reg disk.vhd query 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\Dhcp' /v Start",
        Some("add") => "REG ADD KeyName [/v ValueName | /ve] [/t Type] [/s Separator] [/d Data] [/f]\n\n  /v       the value to set       /ve  the default (unnamed) value\n  /t       REG_SZ (when /t is not given, as reg.exe), REG_MULTI_SZ, REG_EXPAND_SZ,\n           REG_DWORD, REG_QWORD, REG_BINARY, REG_NONE\n  /s       the separator of REG_MULTI_SZ data (\\0 when not given)\n  /d       the data\n  /f       accepted (offline there is no prompt)\n\nThe write is checked first: one that breaks the DHCP Client or the service written, or\nstores a type the Service Control Manager rejects, is refused unless --force.\n\nExample:\n  winrescue reg disk.vhd add 'HKLM\\SYSTEM\\ControlSet001\\Services\\Dhcp' /v Start /t REG_DWORD /d 2 /f",
        Some("delete") => "REG DELETE KeyName [/v ValueName | /ve | /va] [/f]\n\n  /v       the value to delete    /ve  the default value    /va  every value of the key\n  (none)   the key and everything below it\n  /f       accepted (offline there is no prompt)\n\nExample:\n  winrescue reg disk.vhd delete 'HKLM\\SYSTEM\\ControlSet001\\Services\\Dhcp' /v DelayedAutostart /f",
        Some("export") => "REG EXPORT KeyName FileName [/y]\n\n  FileName a .reg file (UTF-16, as reg.exe writes it)\n  /y       overwrite an existing file\n\nExample:\n  winrescue reg disk.vhd export 'HKLM\\SYSTEM\\ControlSet001\\Services\\Dhcp' dhcp.reg",
        Some("import") => "REG IMPORT FileName\n\n  FileName a .reg file (UTF-16 or UTF-8); all its keys are written in one transaction\n\nExample:\n  winrescue reg disk.vhd import dhcp.reg",
        Some("load") => "REG LOAD KeyName FileName\n\n  Offline, winrescue opens the target's hives itself: on its own this line does nothing\n  (HKLM\\<name> then means SYSTEM). In a --script file it names the hive the file names.\n\nExample:\n  winrescue reg disk.vhd load 'HKLM\\BROKENSYSTEM' 'f:\\windows\\system32\\config\\SYSTEM'",
        Some("unload") => "REG UNLOAD KeyName\n\n  Offline this line does nothing on its own; in a --script file it ends a reg load.\n\nExample:\n  winrescue reg disk.vhd unload 'HKLM\\BROKENSYSTEM'",
        _ => "REG Operation [Parameter List]\n\n  Operation  [ QUERY | ADD | DELETE | EXPORT | IMPORT | LOAD | UNLOAD ]\n\nReturn Code: (except for REG COMPARE)\n  0 - Successful   2 - Invalid syntax   3 - not found / unreadable   4 - write refused\n\nFor help on a specific operation type:\n  winrescue reg TARGET Operation /?\n\nExamples:\n  winrescue reg disk.vhd ADD /?\n  winrescue reg disk.vhd QUERY /?",
    };
    body.to_string()
}
