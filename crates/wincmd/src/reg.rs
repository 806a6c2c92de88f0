//! reg.exe's argument grammar: `QUERY | ADD | DELETE | EXPORT | IMPORT | LOAD | UNLOAD` and
//! their switches (case-insensitive, `/x` or `-x`), parsed into a [`RegOp`].

use regf::{Data, ValueType};
use serde::Serialize;

use crate::data::parse_data;
use crate::error::{Error, Result};

fn syntax(what: impl Into<String>) -> Error {
    Error::RegSyntax(what.into())
}

/// A parsed reg.exe command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RegOp {
    Query {
        key: String,
        value: Option<String>,
        recurse: bool,
    },
    Add {
        key: String,
        value: Option<String>,
        /// The data and, with it, its type (`/t`, REG_SZ when not given).
        data: Data,
    },
    Delete {
        key: String,
        value: Option<ValueSel>,
    },
    Export {
        key: String,
        file: String,
        overwrite: bool,
    },
    Import {
        file: String,
    },
    Load {
        key: String,
        file: String,
    },
    Unload {
        key: String,
    },
    /// `/?`: the usage of an operation (`None`: of reg itself).
    Help {
        verb: Option<String>,
    },
}

/// What `reg delete` removes inside a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueSel {
    One(String),
    All,
}

fn usage(verb: &str) -> String {
    format!("Type \"REG {} /?\" for usage.", verb.to_uppercase())
}

/// Parses reg.exe's arguments (switches are case-insensitive, `/x` or `-x`).
pub fn parse(args: &[String]) -> Result<RegOp> {
    let (verb, rest) = args
        .split_first()
        .ok_or_else(|| syntax("Type \"REG /?\" for usage."))?;
    let v = verb.to_ascii_lowercase();
    if v == "/?" || v == "-?" {
        return Ok(RegOp::Help { verb: None });
    }
    if rest.iter().any(|a| a == "/?" || a == "-?") {
        return Ok(RegOp::Help {
            verb: Some(v.clone()),
        });
    }
    if ![
        "query", "add", "delete", "export", "import", "load", "unload",
    ]
    .contains(&v.as_str())
    {
        return Err(syntax(format!("{verb:?} is not an operation winrescue runs offline (QUERY, ADD, DELETE, EXPORT, IMPORT; LOAD and UNLOAD in a script). Type \"REG /?\" for usage.")));
    }
    let (key, rest) = rest.split_first().ok_or_else(|| syntax(usage(verb)))?;
    if is_switch(key, "") {
        return Err(syntax(format!("{key} is not a key name. {}", usage(verb))));
    }
    // The operations whose second operand is a file name.
    let mut positional: Vec<&String> = Vec::new();
    let mut value: Option<String> = None;
    let mut all = false;
    let mut recurse = false;
    let mut overwrite = false;
    let mut kind: Option<String> = None;
    let mut data: Option<String> = None;
    let mut sep = "\\0".to_string();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut take = |what: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| syntax(format!("{what} needs an argument. {}", usage(verb))))
        };
        let adds = v == "add";
        if (adds || v == "query" || v == "delete") && is_switch(a, "v") {
            value = Some(take("/v")?);
        } else if (adds || v == "query" || v == "delete") && is_switch(a, "ve") {
            value = Some(String::new());
        } else if v == "delete" && is_switch(a, "va") {
            all = true;
        } else if adds && is_switch(a, "t") {
            kind = Some(take("/t")?);
        } else if adds && is_switch(a, "d") {
            data = Some(take("/d")?);
        } else if adds && is_switch(a, "s") {
            sep = take("/s")?;
        } else if v == "query" && is_switch(a, "s") {
            recurse = true;
        } else if (adds || v == "delete") && is_switch(a, "f") {
            // Offline there is no prompt to suppress; accepted as reg.exe accepts it.
        } else if v == "export" && is_switch(a, "y") {
            overwrite = true;
        } else if is_switch(a, "reg:64") || is_switch(a, "reg:32") {
        } else if !is_switch(a, "") && (v == "export" || v == "load") && positional.is_empty() {
            positional.push(a);
        } else {
            return Err(syntax(format!(
                "unexpected argument {a:?}. {}",
                usage(verb)
            )));
        }
    }
    let key = key.clone();
    let file = || {
        positional
            .first()
            .map(|s| s.to_string())
            .ok_or_else(|| syntax(format!("a file name is needed. {}", usage(verb))))
    };
    match v.as_str() {
        "query" => Ok(RegOp::Query {
            key,
            value,
            recurse,
        }),
        "add" => {
            let kind = match &kind {
                Some(k) => ValueType::parse(k).ok_or_else(|| {
                    syntax(format!("{k} is not a registry type. {}", usage(verb)))
                })?,
                None => ValueType::SZ,
            };
            let data = parse_data(kind, data.as_deref().unwrap_or(""), &sep)
                .map_err(|e| syntax(e.to_string()))?;
            Ok(RegOp::Add { key, value, data })
        }
        "delete" => Ok(RegOp::Delete {
            key,
            value: if all {
                Some(ValueSel::All)
            } else {
                value.map(ValueSel::One)
            },
        }),
        "export" => Ok(RegOp::Export {
            file: file()?,
            key,
            overwrite,
        }),
        "load" => Ok(RegOp::Load { file: file()?, key }),
        "unload" => Ok(RegOp::Unload { key }),
        // IMPORT takes the file where the others take the key.
        _ => Ok(RegOp::Import { file: key }),
    }
}

/// Whether `a` is the switch `/name` or `-name` (case-insensitive); with an empty `name`, whether
/// it is any short switch.
pub fn is_switch(a: &str, name: &str) -> bool {
    let body = a.strip_prefix('/').or_else(|| a.strip_prefix('-'));
    match body {
        Some(b) if name.is_empty() => !b.is_empty() && b.len() <= 6,
        Some(b) => b.eq_ignore_ascii_case(name),
        None => false,
    }
}

/// Whether, in operation `verb`, the switch `a` takes the next argument as its operand (`/v`,
/// `/d`, `/t`, and `/s` of ADD, the separator; QUERY's `/s` takes none): that argument is data,
/// whatever it looks like.
pub fn takes_operand(verb: &str, a: &str) -> bool {
    ["v", "d", "t"].iter().any(|s| is_switch(a, s))
        || (is_switch(a, "s") && verb.eq_ignore_ascii_case("add"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn utf16z(s: &str) -> Vec<u8> {
        s.encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    #[test]
    fn parses_the_articles_lines() {
        let op = parse(&args(&[
            "add",
            r"HKLM\BROKENSYSTEM\ControlSet001\services\DHCP",
            "/v",
            "start",
            "/t",
            "REG_DWORD",
            "/d",
            "2",
            "/f",
        ]))
        .unwrap();
        assert_eq!(
            op,
            RegOp::Add {
                key: r"HKLM\BROKENSYSTEM\ControlSet001\services\DHCP".into(),
                value: Some("start".into()),
                data: Data::Dword(2),
            }
        );
        let RegOp::Add { data, .. } = parse(&args(&[
            "add",
            "K",
            "/v",
            "ObjectName",
            "/t",
            "REG_SZ",
            "/d",
            r"NT Authority\LocalService",
            "/f",
        ]))
        .unwrap() else {
            panic!("not an ADD")
        };
        assert_eq!(data.to_bytes(), utf16z(r"NT Authority\LocalService"));
        let op = parse(&args(&[
            "ADD",
            "K",
            "/V",
            "type",
            "/T",
            "reg_dword",
            "/D",
            "0x10",
        ]))
        .unwrap();
        assert!(matches!(
            op,
            RegOp::Add {
                data: Data::Dword(16),
                ..
            }
        ));
        assert_eq!(
            parse(&args(&[
                "load",
                r"HKLM\BROKENSYSTEM",
                r"F:\windows\system32\config\SYSTEM"
            ]))
            .unwrap(),
            RegOp::Load {
                key: r"HKLM\BROKENSYSTEM".into(),
                file: r"F:\windows\system32\config\SYSTEM".into()
            }
        );
        assert_eq!(
            parse(&args(&["export", r"HKLM\SYSTEM\Select", "x.reg", "/y"])).unwrap(),
            RegOp::Export {
                key: r"HKLM\SYSTEM\Select".into(),
                file: "x.reg".into(),
                overwrite: true
            }
        );
        assert_eq!(
            parse(&args(&["import", "x.reg"])).unwrap(),
            RegOp::Import {
                file: "x.reg".into()
            }
        );
    }

    #[test]
    fn ve_names_the_default_value() {
        // `/ve` is the unnamed value: an empty name, for ADD, QUERY and DELETE alike.
        let op = parse(&args(&["add", "K", "/ve", "/d", "x"])).unwrap();
        assert!(
            matches!(op, RegOp::Add { value: Some(v), data: Data::Sz(d), .. } if v.is_empty() && d == "x")
        );
        let op = parse(&args(&["query", "K", "-VE"])).unwrap();
        assert!(matches!(op, RegOp::Query { value: Some(v), .. } if v.is_empty()));
        let op = parse(&args(&["delete", "K", "/ve", "/f"])).unwrap();
        assert_eq!(
            op,
            RegOp::Delete {
                key: "K".into(),
                value: Some(ValueSel::One(String::new()))
            }
        );
        let op = parse(&args(&["delete", "K", "/va"])).unwrap();
        assert_eq!(
            op,
            RegOp::Delete {
                key: "K".into(),
                value: Some(ValueSel::All)
            }
        );
        // Without /v, ADD creates the key only; without /t the type is REG_SZ, as reg.exe.
        let op = parse(&args(&["add", "K"])).unwrap();
        assert!(matches!(op, RegOp::Add { value: None, data: Data::Sz(d), .. } if d.is_empty()));
    }

    #[test]
    fn s_is_the_separator_for_add_and_recursion_for_query() {
        let op = parse(&args(&[
            "add",
            "K",
            "/v",
            "DependOnService",
            "/t",
            "REG_MULTI_SZ",
            "/s",
            ",",
            "/d",
            "NSI,Afd",
        ]))
        .unwrap();
        assert!(matches!(op, RegOp::Add { data: Data::MultiSz(v), .. } if v == ["NSI", "Afd"]));
        // The default separator is the two characters \0, as reg.exe's.
        let op = parse(&args(&[
            "add",
            "K",
            "/v",
            "D",
            "/t",
            "REG_MULTI_SZ",
            "/d",
            r"a\0b",
        ]))
        .unwrap();
        assert!(matches!(op, RegOp::Add { data: Data::MultiSz(v), .. } if v == ["a", "b"]));
        let op = parse(&args(&["query", "K", "/s"])).unwrap();
        assert!(matches!(
            op,
            RegOp::Query {
                recurse: true,
                value: None,
                ..
            }
        ));
        // A switch as the operand of /d is data.
        let op = parse(&args(&["add", "K", "/v", "x", "/d", "/f"])).unwrap();
        assert!(matches!(op, RegOp::Add { data: Data::Sz(d), .. } if d == "/f"));
        assert!(takes_operand("ADD", "/S") && takes_operand("query", "-d"));
        assert!(!takes_operand("add", "/f") && !takes_operand("query", "/s"));
    }

    #[test]
    fn help_and_views_are_accepted() {
        assert_eq!(parse(&args(&["/?"])).unwrap(), RegOp::Help { verb: None });
        assert_eq!(
            parse(&args(&["ADD", "/?"])).unwrap(),
            RegOp::Help {
                verb: Some("add".into())
            }
        );
        assert!(parse(&args(&["query", "K", "/reg:64"])).is_ok());
    }

    #[test]
    fn bad_syntax_reads_like_reg_exe() {
        for bad in [
            &[][..],
            &["add"][..],
            &["add", "K", "/t", "REG_DWORD", "/d", "x"],
            &["add", "K", "/t", "REG_NOPE"],
            &["frobnicate", "K"],
            &["add", "K", "/v"],
            &["export", "K"],
            &["query", "K", "/t", "REG_SZ"],
            &["query", "/v"],
            &["add", "K", "/t", "REG_BINARY", "/d", "abc"],
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert!(matches!(e, Error::RegSyntax(_)), "{bad:?}: {e:?}");
            assert!(e.to_string().starts_with("ERROR: Invalid syntax."), "{e}");
            assert!(e.is_syntax() && e.is_exe_worded());
        }
    }
}
