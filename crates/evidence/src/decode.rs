//! From one record's JSON rendering to an [`Event`].
//!
//! We let the evtx crate render the (few) records that passed the raw pre-filter to JSON and
//! read back only the fields we need through typed serde structs: that skips the rest of the
//! document without building a `serde_json::Value` for it, which is several times faster.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::model::{
    ErrorCode, Event, EventKind, ServiceState, StartType, StartTypeChange, SCM_GUID, SCM_PROVIDER,
};

#[derive(Deserialize)]
struct Doc {
    #[serde(rename = "Event")]
    event: Option<Body>,
}

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "System")]
    system: Option<System>,
    #[serde(rename = "EventData")]
    event_data: Option<Value>,
}

#[derive(Deserialize)]
struct System {
    #[serde(rename = "Provider")]
    provider: Option<ProviderElem>,
    #[serde(rename = "EventID")]
    event_id: Option<Value>,
}

#[derive(Deserialize)]
struct ProviderElem {
    #[serde(rename = "#attributes")]
    attributes: Option<ProviderAttrs>,
}

#[derive(Deserialize)]
struct ProviderAttrs {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Guid")]
    guid: Option<String>,
}

/// The provider-independent facts of a record, before we know whether it is wanted.
pub(crate) struct Generic {
    pub provider: String,
    pub guid: Option<String>,
    pub event_id: Option<u16>,
    pub data: Vec<(String, String)>,
}

impl Generic {
    pub fn is_scm(&self) -> bool {
        self.provider.eq_ignore_ascii_case(SCM_PROVIDER)
            || self
                .guid
                .as_deref()
                .is_some_and(|g| g.eq_ignore_ascii_case(SCM_GUID))
    }
}

/// Reads the parts of the JSON document we use. `Err` holds serde's message.
pub(crate) fn parse_generic(json: &[u8]) -> Result<Generic, String> {
    let doc: Doc = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let body = doc.event.ok_or("no Event element")?;
    let system = body.system.ok_or("no System element")?;
    let attrs = system.provider.and_then(|p| p.attributes);
    let (provider, guid) = match attrs {
        Some(a) => (a.name.unwrap_or_default(), a.guid),
        None => (String::new(), None),
    };
    let event_id = system.event_id.as_ref().and_then(event_id_of);
    let data = body.event_data.map(event_data_fields).unwrap_or_default();
    Ok(Generic {
        provider,
        guid,
        event_id,
        data,
    })
}

/// `EventID` is a bare number, or `{"#attributes": {"Qualifiers": ..}, "#text": 7036}` when it
/// has qualifiers. Ids above 0xffff are not event ids.
fn event_id_of(value: &Value) -> Option<u16> {
    let n = match value {
        Value::Object(map) => map.get("#text")?.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        other => other.as_u64(),
    }?;
    u16::try_from(n).ok()
}

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(","),
        Value::Object(map) => map.get("#text").map(text_of).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// Flattens `EventData` into (name, value) pairs. Named `<Data Name="param1">` elements render
/// as object keys; unnamed ones as `"Data": {"#text": [..]}` or `"Data": "x"`, which we number
/// `param1`.. the way the message templates count them.
fn event_data_fields(value: Value) -> Vec<(String, String)> {
    let Value::Object(map) = value else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, v) in map {
        if name == "Data" {
            let items: Vec<&Value> = match &v {
                Value::Object(m) => match m.get("#text") {
                    Some(Value::Array(a)) => a.iter().collect(),
                    Some(other) => vec![other],
                    None => Vec::new(),
                },
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for item in items {
                let n = out
                    .iter()
                    .filter(|(k, _): &&(String, String)| k.starts_with("param"))
                    .count();
                out.push((format!("param{}", n + 1), text_of(item)));
            }
        } else if name != "#attributes" {
            out.push((name, text_of(&v)));
        }
    }
    out
}

/// The key name and the number after the slash of a `Binary` field holding UTF-16LE text such
/// as `Dhcp/4` (7036) or `iphlpsvc` (7023), written as hex.
fn binary_key(hex: &str) -> Option<(String, Option<u32>)> {
    let hex = hex.trim();
    if hex.is_empty() || hex.len() & 3 != 0 || hex.len() > 4096 {
        return None;
    }
    let units: Option<Vec<u16>> = hex
        .as_bytes()
        .chunks(4)
        .map(|c| {
            let s = std::str::from_utf8(c).ok()?;
            let v = u16::from_str_radix(s, 16).ok()?;
            // The hex is little-endian byte order: "4400" is 'D'.
            Some(v.swap_bytes())
        })
        .collect();
    let units = units?;
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    let text = String::from_utf16(&units[..end]).ok()?;
    // Key names are printable and have no backslash; anything else is not a key name.
    if text.is_empty() || text.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    match text.rsplit_once('/') {
        Some((key, n)) if !key.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            Some((key.to_string(), n.parse().ok()))
        }
        _ => Some((text, None)),
    }
}

/// Builds the typed event. `generic.is_scm()` decides whether SCM meanings are decoded.
pub(crate) fn build_event(generic: Generic, time: Timestamp, record_id: u64) -> Event {
    let scm = generic.is_scm();
    let event_id = generic.event_id.unwrap_or(0);
    let mut event = Event {
        time,
        record_id,
        event_id,
        provider: generic.provider,
        kind: EventKind::Other,
        service: None,
        service_key: None,
        related: None,
        state: None,
        start_type: None,
        error: None,
        data: generic.data,
        xml: None,
    };
    if !scm {
        return event;
    }
    event.kind = EventKind::from_scm_id(event_id);
    let get = |name: &str| {
        event
            .data
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let binary = get("Binary").and_then(|b| binary_key(&b));
    // Which parameter names the service: the message templates of the SCM's message table.
    let (service, related) = match event_id {
        7001..=7003 => (get("param1"), get("param2")),
        7009 | 7011 => (get("param2"), None),
        7026 => (None, None),
        7032 => (get("param3"), None),
        7045 => (get("ServiceName"), None),
        _ => (get("param1"), None),
    };
    let mut service_key = binary.as_ref().map(|(k, _)| k.clone());
    if event_id == 7040 {
        service_key = get("param4").or(service_key);
        event.start_type = match (get("param2"), get("param3")) {
            (Some(old), Some(new)) => Some(StartTypeChange {
                old: StartType::from_english(&old),
                new: StartType::from_english(&new),
            }),
            _ => None,
        };
    }
    if event_id == 7036 {
        event.state = binary
            .as_ref()
            .and_then(|(_, n)| n.map(ServiceState::from_number))
            .or_else(|| get("param2").and_then(|t| ServiceState::from_english(&t)));
    }
    event.error = event
        .data
        .iter()
        .find_map(|(_, v)| ErrorCode::parse_insert(v))
        .map(|mut e| {
            e.service_specific = event_id == 7024;
            e
        });
    event.service = service;
    event.service_key = service_key;
    event.related = related;
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_key_names() {
        assert_eq!(
            binary_key("44006800630070002F0034000000"),
            Some(("Dhcp".into(), Some(4)))
        );
        assert_eq!(
            binary_key("6900700068006C0070007300760063000000"),
            Some(("iphlpsvc".into(), None))
        );
        assert_eq!(binary_key("zz"), None);
        assert_eq!(binary_key(""), None);
        assert_eq!(binary_key("0A00"), None);
    }

    #[test]
    fn unnamed_data_is_numbered() {
        let v: Value =
            serde_json::from_str(r##"{"Data": {"#text": ["a", 1]}, "Binary": "00"}"##).unwrap();
        assert_eq!(
            event_data_fields(v),
            vec![
                ("param1".to_string(), "a".to_string()),
                ("param2".to_string(), "1".to_string()),
                ("Binary".to_string(), "00".to_string())
            ]
        );
    }

    #[test]
    fn error_insert() {
        let e = ErrorCode::parse_insert("%%1058").unwrap();
        assert_eq!(e.code, 1058);
        assert!(e.message.is_some());
        assert_eq!(ErrorCode::parse_insert("%%"), None);
        assert_eq!(ErrorCode::parse_insert("1058"), None);
        assert_eq!(ErrorCode::parse_insert("%%99999999999"), None);
    }
}
