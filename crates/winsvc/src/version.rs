//! Which Windows a SYSTEM hive belongs to. The SOFTWARE hive says it plainly
//! (`Microsoft\Windows NT\CurrentVersion`); with SYSTEM alone we infer what we can and say how.

use regf::{Data, Hive, Key};
use serde::{Deserialize, Serialize};

use crate::model::ControlSet;

/// Windows families whose healthy service configuration differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    /// Windows 7 / Server 2008 R2 (6.1, builds 7600-7601).
    Windows7,
    /// Windows 8 / 8.1 / Server 2012 / 2012 R2 (6.2-6.3, builds 9200-9600).
    Windows8,
    /// Windows 10 / 11 / Server 2016 and later (builds 10240+).
    Windows10,
    Unknown,
}

impl Family {
    pub fn from_build(build: u32) -> Family {
        match build {
            7600..=7601 => Family::Windows7,
            9200..=9600 => Family::Windows8,
            10240.. => Family::Windows10,
            _ => Family::Unknown,
        }
    }
}

/// Where the version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VersionSource {
    /// Given by the caller (normally read from the SOFTWARE hive).
    Caller,
    /// Inferred from the SYSTEM hive; see `evidence`.
    SystemHive,
}

/// The Windows version, as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowsVersion {
    pub family: Family,
    /// The build number (7601, 9600, 16299...), when known.
    pub build: Option<u32>,
    /// `ProductName` from SOFTWARE, when the caller had it.
    pub product_name: Option<String>,
    /// `Control\ProductOptions\ProductType`: WinNT (client), ServerNT, LanmanNT (domain
    /// controller).
    pub product_type: Option<String>,
    pub source: VersionSource,
    /// What the inference rests on, one line each.
    pub evidence: Vec<String>,
}

impl WindowsVersion {
    /// A version the caller knows (from SOFTWARE or elsewhere).
    pub fn known(build: u32, product_name: Option<String>) -> WindowsVersion {
        WindowsVersion {
            family: Family::from_build(build),
            build: Some(build),
            product_name,
            product_type: None,
            source: VersionSource::Caller,
            evidence: vec![format!("given by the caller: build {build}")],
        }
    }

    /// Reads `Microsoft\Windows NT\CurrentVersion` (CurrentBuildNumber / CurrentBuild,
    /// ProductName) from a SOFTWARE hive. `Ok(None)` when the key or the build is absent.
    pub fn from_software_hive<B: regf::Source>(
        hive: &Hive<B>,
    ) -> crate::Result<Option<WindowsVersion>> {
        let Some(k) = hive.key(r"Microsoft\Windows NT\CurrentVersion")? else {
            return Ok(None);
        };
        let text = |name: &str| -> Option<String> {
            k.value(name)
                .ok()
                .flatten()
                .and_then(|v| v.data().ok())
                .and_then(|d| d.as_str().map(str::to_string))
        };
        let build = text("CurrentBuildNumber")
            .or_else(|| text("CurrentBuild"))
            .and_then(|b| leading_number(&b));
        Ok(build.map(|b| {
            let mut v = WindowsVersion::known(b, text("ProductName"));
            v.evidence = vec![format!(
                "SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion: build {b}"
            )];
            v
        }))
    }

    /// Nothing known.
    pub fn unknown() -> WindowsVersion {
        WindowsVersion {
            family: Family::Unknown,
            build: None,
            product_name: None,
            product_type: None,
            source: VersionSource::SystemHive,
            evidence: Vec::new(),
        }
    }

    /// Infers the version from SYSTEM: a build string when Windows left one (Windows 10 keeps
    /// `Software\Microsoft\BuildLab` in SYSTEM and `Control\Windows\
    /// ShutdownStopTimePerfCounterBuildLab`), else services introduced in known releases.
    pub(crate) fn infer(root: &Key<'_>, cs_key: Option<&Key<'_>>, cs: &ControlSet) -> Self {
        let mut v = WindowsVersion::unknown();
        let string_at = |k: Option<Key<'_>>, name: &str| -> Option<String> {
            k?.value(name)
                .ok()
                .flatten()
                .and_then(|v| v.data().ok())
                .and_then(|d| match d {
                    Data::Sz(s) | Data::ExpandSz(s) => Some(s),
                    _ => None,
                })
        };
        if let Some(cs_key) = cs_key {
            v.product_type = string_at(
                cs_key.descend(r"Control\ProductOptions").ok().flatten(),
                "ProductType",
            );
            if let Some(t) = &v.product_type {
                v.evidence.push(format!(
                    "{}\\Control\\ProductOptions\\ProductType = {t}",
                    cs.name
                ));
            }
        }
        let build_labs = [
            (
                root.descend(r"Software\Microsoft").ok().flatten(),
                "BuildLab",
                r"Software\Microsoft\BuildLab".to_string(),
            ),
            (
                cs_key.and_then(|k| k.descend(r"Control\Windows").ok().flatten()),
                "ShutdownStopTimePerfCounterBuildLab",
                format!(
                    r"{}\Control\Windows\ShutdownStopTimePerfCounterBuildLab",
                    cs.name
                ),
            ),
        ];
        for (key, value, path) in build_labs {
            if let Some(lab) = string_at(key, value) {
                if let Some(b) = leading_number(&lab) {
                    v.build = Some(b);
                    v.family = Family::from_build(b);
                    v.evidence.push(format!("{path} = {lab}"));
                    return v;
                }
            }
        }
        // Services that appeared in a given release. The Windows 10 markers are absent from
        // the Windows 8.1 test hive and present in the Windows 10 one; BrokerInfrastructure
        // appeared with Windows 8 (absent from the Windows 7 test hive).
        let has = |n: &str| cs.service(n).is_some();
        if has("OneSyncSvc") || has("CDPSvc") {
            v.family = Family::Windows10;
            v.evidence
                .push("service OneSyncSvc or CDPSvc present: Windows 10 or later".into());
            if has("WaaSMedicSvc") {
                v.evidence
                    .push("service WaaSMedicSvc present: Windows 10 1803 or later".into());
            }
        } else if has("BrokerInfrastructure") {
            v.family = Family::Windows8;
            v.evidence.push(
                "service BrokerInfrastructure present, no Windows 10 marker: Windows 8 / 8.1"
                    .into(),
            );
        } else if has("Tdx") {
            v.family = Family::Windows7;
            v.evidence.push(
                "service Tdx present, no Windows 8 marker (BrokerInfrastructure): Windows 7 / Server 2008 R2 (or Vista)".into(),
            );
        }
        v
    }

    /// One line for people: "Windows 10 (build 16299, inferred from SYSTEM)".
    pub fn describe(&self) -> String {
        let fam = match self.family {
            Family::Windows7 => "Windows 7",
            Family::Windows8 => "Windows 8/8.1",
            Family::Windows10 => "Windows 10 or later",
            Family::Unknown => "unknown Windows",
        };
        let name = self.product_name.as_deref().unwrap_or(fam);
        let build = self
            .build
            .map(|b| format!("build {b}"))
            .unwrap_or_else(|| "build unknown".into());
        let src = match self.source {
            VersionSource::Caller => "given",
            VersionSource::SystemHive => "inferred from SYSTEM",
        };
        format!("{name} ({build}, {src})")
    }
}

fn leading_number(s: &str) -> Option<u32> {
    let digits: String = s
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}
