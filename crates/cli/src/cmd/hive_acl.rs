//! `winrescue hive acl HIVE KEY`: a key's security descriptor (owner, group, SDDL, each ACE with
//! its account and rights) and, with `--service`, what that service's token may do on the key.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use regf::security::{
    sddl_ace_flags, Ace, AclField, Decider, SecurityDescriptor, Sid, Token, MAXIMUM_ALLOWED,
};
use serde_json::{json, Value};
use winsvc::SystemModel;

use super::hive::{find, load, ReadOpts};

#[derive(Args)]
pub struct AclArgs {
    /// The hive file (e.g. a copy of Windows\System32\config\SYSTEM).
    pub hive: PathBuf,
    #[command(flatten)]
    pub read: ReadOpts,
    /// Key path below the root, e.g. `ControlSet001\Services\Dhcp` (case-insensitive).
    #[arg(default_value = "")]
    pub key: String,
    /// Also evaluate the DACL for this service's token (account from its `ObjectName`, service
    /// SID from its `ServiceSidType`, both read from the current control set of this hive, which
    /// must then be a SYSTEM hive).
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A SID with the account name Windows shows for it, when it is a well-known one.
fn sid_json(sid: &Sid) -> Value {
    json!({"sid": sid.to_string(), "name": sid.account_name()})
}

fn sid_text(sid: &Sid) -> String {
    match sid.account_name() {
        Some(n) => format!("{n} ({sid})"),
        None => sid.to_string(),
    }
}

fn flag_list(flags: u8) -> Vec<String> {
    let s = sddl_ace_flags(flags);
    // SDDL flags are two letters each; a hex remainder stays one item.
    let mut out = Vec::new();
    let mut rest = s.as_str();
    while !rest.is_empty() {
        if rest.starts_with("0x") {
            out.push(rest.to_string());
            break;
        }
        let (a, b) = rest.split_at(2.min(rest.len()));
        out.push(a.to_string());
        rest = b;
    }
    out
}

fn ace_json(i: usize, ace: &Ace) -> Value {
    json!({
        "index": i,
        "type": ace.ace_type.name(),
        "flags": flag_list(ace.flags),
        "sid": ace.sid.as_ref().map(|s| s.to_string()),
        "name": ace.sid.as_ref().and_then(Sid::account_name),
        "mask": format!("0x{:08x}", ace.mask),
        "rights": ace.rights(),
        "object_type": ace.object_type.map(|g| g.to_string()),
        "inherited_object_type": ace.inherited_object_type.map(|g| g.to_string()),
        "sddl": ace.sddl(),
    })
}

fn acl_json(acl: &AclField) -> Value {
    match acl {
        AclField::NotPresent => Value::Null,
        AclField::Null => json!("NULL"),
        AclField::Acl(a) => a
            .aces
            .iter()
            .enumerate()
            .map(|(i, ace)| ace_json(i, ace))
            .collect(),
    }
}

fn write_acl(out: &mut dyn Write, name: &str, acl: &AclField) -> Result<()> {
    match acl {
        AclField::NotPresent => writeln!(out, "{name}: not present")?,
        AclField::Null => writeln!(
            out,
            "{name}: NULL (no restriction: everyone has full access)"
        )?,
        AclField::Acl(a) => {
            writeln!(out, "{name}: {} entries", a.aces.len())?;
            for (i, ace) in a.aces.iter().enumerate() {
                let flags = sddl_ace_flags(ace.flags);
                let who = ace.sid.as_ref().map(sid_text).unwrap_or_default();
                writeln!(
                    out,
                    "  [{i}] {}{}  {who}",
                    ace.ace_type.name(),
                    if flags.is_empty() {
                        String::new()
                    } else {
                        format!(" {flags}")
                    }
                )?;
                writeln!(out, "      0x{:08x}: {}", ace.mask, ace.rights().join(", "))?;
                if let Some(g) = ace.object_type {
                    writeln!(out, "      object type {g}")?;
                }
                if let Some(g) = ace.inherited_object_type {
                    writeln!(out, "      inherited object type {g}")?;
                }
            }
        }
    }
    Ok(())
}

/// The token of `name` as the hive describes the service.
fn service_token(hive: &regf::Hive<Vec<u8>>, name: &str) -> Result<(Token, String, u32)> {
    let model = SystemModel::read(hive, None)
        .context("--service needs a SYSTEM hive (to read the service's account)")?;
    let cs = model.boot_set()?;
    let Some(svc) = cs.service(name) else {
        bail!("no service {name:?} in {}", cs.name);
    };
    let object_name = svc.object_name.ok().map(String::as_str);
    // The same token the access rules evaluate.
    let (token, _) = rules::access::service_token(svc).map_err(anyhow::Error::msg)?;
    let sid_type = svc.service_sid_type.ok().copied().unwrap_or(0);
    let shown = object_name.unwrap_or("LocalSystem").to_string();
    Ok((token, shown, sid_type))
}

pub fn acl(a: &AclArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let hive = load(&a.hive, &a.read)?;
    let key = find(&hive, &a.hive, &a.key)?;
    let sk = key
        .security()
        .with_context(|| format!("{}: key {:?}", a.hive.display(), a.key))?;
    let sd = SecurityDescriptor::parse(sk.descriptor).with_context(|| {
        format!(
            "{}: key {:?}: security cell 0x{:x}",
            a.hive.display(),
            a.key,
            sk.cell
        )
    })?;
    let access = match &a.service {
        Some(name) => {
            let (token, account, sid_type) = service_token(&hive, name)?;
            Some((name, account, sid_type, sd.access(&token, MAXIMUM_ALLOWED)))
        }
        None => None,
    };
    if a.json {
        let mut j = json!({
            "key": a.key,
            "security_cell": format!("0x{:x}", sk.cell),
            "references": sk.reference_count,
            "owner": sd.owner.as_ref().map(sid_json),
            "group": sd.group.as_ref().map(sid_json),
            "control": sd.control_names(),
            "sddl": sd.sddl(),
            "dacl": acl_json(&sd.dacl),
            "sacl": acl_json(&sd.sacl),
        });
        if let Some((name, account, sid_type, acc)) = &access {
            j["access"] = json!({
                "service": name,
                "account": account,
                "service_sid_type": sid_type,
                "granted": format!("0x{:08x}", acc.granted),
                "granted_rights": regf::security::key_rights(acc.granted),
                "denied": acc.denials.iter().map(|d| json!({
                    "right": regf::security::key_rights(d.bit).join(""),
                    "by_ace": match d.by { Decider::Ace(i) => Some(i), _ => None },
                    "reason": reason(d.by),
                    "restricted_check": d.restricted,
                })).collect::<Vec<_>>(),
            });
        }
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let none = || "(none)".to_string();
    writeln!(out, "Key:      {}", a.key)?;
    writeln!(
        out,
        "Owner:    {}",
        sd.owner.as_ref().map_or_else(none, sid_text)
    )?;
    writeln!(
        out,
        "Group:    {}",
        sd.group.as_ref().map_or_else(none, sid_text)
    )?;
    writeln!(out, "Control:  {}", sd.control_names().join(", "))?;
    writeln!(out, "SDDL:     {}", sd.sddl())?;
    writeln!(
        out,
        "Security cell 0x{:x}, shared by {} keys",
        sk.cell, sk.reference_count
    )?;
    write_acl(out, "DACL", &sd.dacl)?;
    write_acl(out, "SACL", &sd.sacl)?;
    if let Some((name, account, sid_type, acc)) = &access {
        writeln!(
            out,
            "Access of service {name} ({account}, ServiceSidType {sid_type}): 0x{:08x}: {}",
            acc.granted,
            regf::security::key_rights(acc.granted).join(", ")
        )?;
        for d in &acc.denials {
            writeln!(
                out,
                "  not granted: {} ({}{})",
                regf::security::key_rights(d.bit).join(""),
                reason(d.by),
                if d.restricted {
                    ", in the restricted token's second check"
                } else {
                    ""
                }
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn reason(by: Decider) -> String {
    match by {
        Decider::Ace(i) => format!("denied by ACE [{i}]"),
        Decider::NoAceGrants => "no ACE grants it".into(),
        Decider::Privilege => "needs SeSecurityPrivilege".into(),
    }
}
