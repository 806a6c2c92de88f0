//! Healthy configurations as data (`data/dhcp-baseline.json`), read from the real hives in
//! `testdata/hives`, and the value-by-value comparison of a service against them.

use std::sync::OnceLock;

use regf::{Data, ValueType};
use serde::{Deserialize, Serialize};

use crate::model::{normalize_image_path, Field, Service};
use crate::version::{Family, WindowsVersion};

/// Registry data in a baseline: a DWORD, a string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BaselineData {
    Dword(u32),
    Str(String),
    Multi(Vec<String>),
}

impl BaselineData {
    /// As registry data of type `t`.
    pub fn to_data(&self, t: ValueType) -> Data {
        match (self, t) {
            (BaselineData::Dword(v), _) => Data::Dword(*v),
            (BaselineData::Str(s), ValueType::EXPAND_SZ) => Data::ExpandSz(s.clone()),
            (BaselineData::Str(s), _) => Data::Sz(s.clone()),
            (BaselineData::Multi(v), _) => Data::MultiSz(v.clone()),
        }
    }

    fn show(&self) -> String {
        match self {
            BaselineData::Dword(v) => format!("0x{v:x} ({v})"),
            BaselineData::Str(s) => format!("{s:?}"),
            BaselineData::Multi(v) => v.join(","),
        }
    }
}

/// One healthy value. `data: None` means the value is absent on a healthy system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineValue {
    pub name: String,
    /// A subkey of the service key (`Parameters`), if the value lives there.
    #[serde(default)]
    pub subkey: Option<String>,
    #[serde(rename = "type")]
    pub value_type: String,
    pub data: Option<BaselineData>,
    /// Other data that is healthy too (Type 0x10 besides 0x20; the values of other builds when
    /// the build is not known).
    #[serde(default)]
    pub also_healthy: Vec<Option<BaselineData>>,
    #[serde(default)]
    pub note: Option<String>,
}

impl BaselineValue {
    pub fn reg_type(&self) -> ValueType {
        ValueType::parse(&self.value_type).unwrap_or(ValueType::SZ)
    }

    /// Every healthy data, the preferred one first.
    pub fn accepted(&self) -> impl Iterator<Item = &Option<BaselineData>> {
        std::iter::once(&self.data).chain(self.also_healthy.iter())
    }
}

/// The healthy values of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceBaseline {
    pub name: String,
    pub values: Vec<BaselineValue>,
}

impl ServiceBaseline {
    pub fn value(&self, name: &str, subkey: Option<&str>) -> Option<&BaselineValue> {
        self.values.iter().find(|v| {
            v.name.eq_ignore_ascii_case(name)
                && match (v.subkey.as_deref(), subkey) {
                    (None, None) => true,
                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                    _ => false,
                }
        })
    }
}

/// One Windows release's healthy configuration, as stored in the data file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub id: String,
    pub windows: String,
    pub family: Family,
    /// Inclusive build range.
    pub builds: [u32; 2],
    /// Read from a real hive (see `read_from`); `false` for values taken from documentation.
    pub verified: bool,
    pub read_from: String,
    pub services: Vec<ServiceBaseline>,
}

/// All variants of one service's baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineSet {
    pub service: String,
    pub variants: Vec<Variant>,
}

/// The baseline that applies to one machine: one variant when the build is known, otherwise
/// the variants of its family (or all of them) merged, every variant's data being healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Baseline {
    /// The service the baseline is about (`Dhcp`); the others are its dependencies.
    pub service: String,
    pub variants: Vec<String>,
    pub services: Vec<ServiceBaseline>,
}

impl Baseline {
    pub fn service(&self, name: &str) -> Option<&ServiceBaseline> {
        self.services
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
}

const DHCP: &str = include_str!("../data/dhcp-baseline.json");

/// Parses the DHCP Client baseline, reporting a mistake in the data file.
pub fn try_dhcp() -> crate::Result<BaselineSet> {
    serde_json::from_str(DHCP).map_err(|e| crate::Error::BadData {
        file: "data/dhcp-baseline.json",
        what: e.to_string(),
    })
}

/// The DHCP Client baseline (parsed once; the data file is checked by the tests).
pub fn dhcp() -> &'static BaselineSet {
    static SET: OnceLock<BaselineSet> = OnceLock::new();
    SET.get_or_init(|| {
        try_dhcp().unwrap_or_else(|_| BaselineSet {
            service: "Dhcp".into(),
            variants: Vec::new(),
        })
    })
}

impl BaselineSet {
    pub fn variant(&self, id: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.id == id)
    }

    /// The baseline for `version`: the variant whose build range holds the build; else every
    /// variant of the family; else every variant.
    pub fn for_version(&self, version: &WindowsVersion) -> Baseline {
        let by_build: Vec<&Variant> = version
            .build
            .map(|b| {
                self.variants
                    .iter()
                    .filter(|v| v.builds[0] <= b && b <= v.builds[1])
                    .collect()
            })
            .unwrap_or_default();
        let chosen = if !by_build.is_empty() {
            by_build
        } else {
            let fam: Vec<&Variant> = self
                .variants
                .iter()
                .filter(|v| v.family == version.family)
                .collect();
            if fam.is_empty() {
                self.variants.iter().collect()
            } else {
                fam
            }
        };
        merge(&self.service, &chosen)
    }
}

fn merge(service: &str, variants: &[&Variant]) -> Baseline {
    let mut services: Vec<ServiceBaseline> = Vec::new();
    for var in variants {
        for s in &var.services {
            let Some(have) = services
                .iter_mut()
                .find(|h| h.name.eq_ignore_ascii_case(&s.name))
            else {
                services.push(s.clone());
                continue;
            };
            for v in &s.values {
                match have
                    .values
                    .iter_mut()
                    .find(|h| h.name.eq_ignore_ascii_case(&v.name) && h.subkey == v.subkey)
                {
                    None => have.values.push(v.clone()),
                    Some(h) => {
                        for d in v.accepted() {
                            if !h.accepted().any(|x| same(&v.name, x, d)) {
                                h.also_healthy.push(d.clone());
                            }
                        }
                    }
                }
            }
        }
    }
    Baseline {
        service: service.to_string(),
        variants: variants.iter().map(|v| v.id.clone()).collect(),
        services,
    }
}

/// Whether two baseline data are the same for the SCM: case-insensitive, paths normalised,
/// lists compared as sets.
fn same(name: &str, a: &Option<BaselineData>, b: &Option<BaselineData>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => data_eq(name, x, y),
        _ => false,
    }
}

fn is_path(name: &str) -> bool {
    name.eq_ignore_ascii_case("ImagePath") || name.eq_ignore_ascii_case("ServiceDll")
}

fn data_eq(name: &str, a: &BaselineData, b: &BaselineData) -> bool {
    match (a, b) {
        (BaselineData::Dword(x), BaselineData::Dword(y)) => x == y,
        (BaselineData::Str(x), BaselineData::Str(y)) if is_path(name) => {
            normalize_image_path(x) == normalize_image_path(y)
        }
        (BaselineData::Str(x), BaselineData::Str(y)) => x.trim().eq_ignore_ascii_case(y.trim()),
        (BaselineData::Multi(x), BaselineData::Multi(y)) => {
            let norm = |v: &Vec<String>| {
                let mut v: Vec<String> = v.iter().map(|s| s.trim().to_uppercase()).collect();
                v.sort();
                v.dedup();
                v
            };
            norm(x) == norm(y)
        }
        _ => false,
    }
}

/// What is wrong with one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// Absent, healthy systems have it.
    Missing,
    /// Present with another data.
    Different,
    /// Present with another registry type.
    WrongType,
    /// Present, healthy systems do not have it.
    Unexpected,
    /// Could not be read.
    Unreadable,
}

/// One value that differs from the baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub service: String,
    pub key_path: String,
    pub value: String,
    pub subkey: Option<String>,
    pub kind: DiffKind,
    /// The data found, as text.
    pub found: String,
    /// The preferred healthy data, as text (`(absent)` when the value should not exist).
    pub expected: String,
    /// Every healthy data, as text.
    pub accepted: Vec<String>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sub = self
            .subkey
            .as_deref()
            .map(|s| format!("{s}\\"))
            .unwrap_or_default();
        write!(
            f,
            "{}\\{sub}{}: {:?}, found {}, healthy {}",
            self.key_path,
            self.value,
            self.kind,
            self.found,
            self.accepted.join(" or ")
        )
    }
}

/// The model's field for a baseline value name, as baseline data.
pub(crate) fn field_of(
    s: &Service,
    name: &str,
    subkey: Option<&str>,
) -> Option<Field<BaselineData>> {
    let dw = |f: &Field<u32>| map_field(f, |v| BaselineData::Dword(*v));
    let st = |f: &Field<String>| map_field(f, |v| BaselineData::Str(v.clone()));
    let ml = |f: &Field<Vec<String>>| map_field(f, |v| BaselineData::Multi(v.clone()));
    if let Some(sk) = subkey {
        return (sk.eq_ignore_ascii_case("Parameters") && name.eq_ignore_ascii_case("ServiceDll"))
            .then(|| st(&s.parameters_service_dll));
    }
    Some(match name.to_ascii_lowercase().as_str() {
        "start" => dw(&s.start),
        "type" => dw(&s.service_type),
        "errorcontrol" => dw(&s.error_control),
        "delayedautostart" => dw(&s.delayed_autostart),
        "servicesidtype" => dw(&s.service_sid_type),
        "objectname" => st(&s.object_name),
        "imagepath" => st(&s.image_path),
        "servicedll" => st(&s.service_dll),
        "group" => st(&s.group),
        "displayname" => st(&s.display_name),
        "dependonservice" => ml(&s.depend_on_service),
        "dependongroup" => ml(&s.depend_on_group),
        "requiredprivileges" => ml(&s.required_privileges),
        _ => return None,
    })
}

fn map_field<T>(f: &Field<T>, g: impl Fn(&T) -> BaselineData) -> Field<BaselineData> {
    match f {
        Field::Ok(v) => Field::Ok(g(v)),
        Field::Missing => Field::Missing,
        Field::WrongType { found, data } => Field::WrongType {
            found: found.clone(),
            data: data.clone(),
        },
        Field::Unreadable(e) => Field::Unreadable(e.clone()),
    }
}

fn show_opt(d: &Option<BaselineData>) -> String {
    d.as_ref()
        .map(BaselineData::show)
        .unwrap_or_else(|| "(absent)".into())
}

/// Compares one baseline value with the service; `None` when it is healthy.
pub fn compare_value(service: &Service, v: &BaselineValue) -> Option<Difference> {
    let field = field_of(service, &v.name, v.subkey.as_deref())?;
    let accepted: Vec<String> = v.accepted().map(show_opt).collect();
    let (kind, found) = match &field {
        Field::Ok(d) => {
            if v.accepted().any(|a| same(&v.name, a, &Some(d.clone()))) {
                return None;
            }
            let kind = if v.data.is_none() && v.also_healthy.iter().all(Option::is_none) {
                DiffKind::Unexpected
            } else {
                DiffKind::Different
            };
            (kind, d.show())
        }
        Field::Missing => {
            if v.accepted().any(Option::is_none) {
                return None;
            }
            (DiffKind::Missing, "(absent)".to_string())
        }
        Field::WrongType { found, data } => (
            DiffKind::WrongType,
            format!("{found} {}", crate::model::show_data(data)),
        ),
        Field::Unreadable(e) => (DiffKind::Unreadable, format!("(unreadable: {e})")),
    };
    Some(Difference {
        service: service.name.clone(),
        key_path: service.key_path.clone(),
        value: v.name.clone(),
        subkey: v.subkey.clone(),
        kind,
        found,
        expected: show_opt(&v.data),
        accepted,
    })
}

/// Compares a service with its baseline, value by value.
pub fn compare(service: &Service, baseline: &ServiceBaseline) -> Vec<Difference> {
    baseline
        .values
        .iter()
        .filter_map(|v| compare_value(service, v))
        .collect()
}
