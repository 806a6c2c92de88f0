//! What to read: provider, ids, service, time window, count.

use jiff::{SignedDuration, Timestamp};

use crate::error::Error;
use crate::model::{Event, EventKind, SCM_PROVIDER};

/// Which provider's events to return.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Provider {
    /// The Service Control Manager, by name or GUID (the default).
    #[default]
    ServiceControlManager,
    /// Another provider, by name, ASCII case ignored ("Microsoft-Windows-Dhcp-Client").
    Named(String),
    /// Every record. Slow on big logs: every record is rendered.
    Any,
}

impl Provider {
    /// From a command-line word: `*` or `any` for all, the SCM's name (any case) or `scm` for
    /// the default, anything else a provider name.
    pub fn from_arg(text: &str) -> Self {
        let t = text.trim();
        if t == "*" || t.eq_ignore_ascii_case("any") {
            Self::Any
        } else if t.eq_ignore_ascii_case(SCM_PROVIDER) || t.eq_ignore_ascii_case("scm") {
            Self::ServiceControlManager
        } else {
            Self::Named(t.to_string())
        }
    }

    /// The name the raw pre-filter looks for; `None` when every record is wanted.
    pub(crate) fn needle_name(&self) -> Option<&str> {
        match self {
            Self::ServiceControlManager => Some(SCM_PROVIDER),
            Self::Named(name) => Some(name),
            Self::Any => None,
        }
    }
}

/// The filters of one read. `Query::default()` returns every Service Control Manager event.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub provider: Provider,
    /// Event ids to keep; empty keeps all.
    pub event_ids: Vec<u16>,
    /// A service, matched ASCII-case-insensitively against the display name, the key name, the
    /// dependency a 7001/7003 event names (so that `Dhcp`'s failure shows up through the
    /// services that depend on it) and the drivers a 7026 event lists.
    pub service: Option<String>,
    /// Keep events no older than this before the NEWEST record in the log (of any provider):
    /// the VM is off, so the wall clock says nothing about its log.
    pub within: Option<SignedDuration>,
    /// Keep events at or after this time.
    pub since: Option<Timestamp>,
    /// Keep only the last (newest) N events that pass the other filters.
    pub max: Option<usize>,
    /// Also render each returned event's XML into [`Event::xml`].
    pub keep_xml: bool,
    /// Read only the newest this many chunks (64 KiB each), found from the file header's
    /// current chunk and, in a log not closed cleanly, the chunks written after it; `None`
    /// reads every chunk in the file. A diagnosis needs the last boots, and an event log file
    /// is often preallocated far beyond what it holds (the 16.8 MB Server 2012 R2 System log
    /// here uses 10 of its 257 chunks): over a network, what is not read is not fetched.
    pub newest_chunks: Option<u64>,
}

impl Query {
    /// Whether `event` passes the id and service filters (the provider was checked when it
    /// was decoded; time and count need the whole log and are applied after reading).
    pub fn matches(&self, event: &Event) -> bool {
        if !self.event_ids.is_empty() && !self.event_ids.contains(&event.event_id) {
            return false;
        }
        let Some(wanted) = self.service.as_deref().map(str::trim) else {
            return true;
        };
        let same =
            |s: &Option<String>| s.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(wanted));
        if same(&event.service) || same(&event.service_key) || same(&event.related) {
            return true;
        }
        event.kind == EventKind::DriversFailedToLoad
            && event.data.iter().any(|(name, value)| {
                name == "param1"
                    && value
                        .split_whitespace()
                        .any(|d| d.eq_ignore_ascii_case(wanted))
            })
    }
}

/// Reads a duration: `90s`, `15m`, `24h`, `7d`, `2w` and sums of them (`1d12h`), or what jiff
/// reads (`PT24H`, `2 hours`).
pub fn parse_duration(text: &str) -> Result<SignedDuration, Error> {
    let bad = |reason: &str| Error::BadDuration {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad("empty"));
    }
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut simple = true;
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => {
                simple = false;
                break;
            }
        };
        let n: i64 = number
            .parse()
            .map_err(|_| bad("a unit needs a number before it"))?;
        number.clear();
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| bad("too large"))?;
    }
    if simple {
        if !number.is_empty() {
            return Err(bad("a number needs a unit (s, m, h, d or w)"));
        }
        return Ok(SignedDuration::from_secs(total));
    }
    let d: SignedDuration = t.parse().map_err(|e: jiff::Error| bad(&e.to_string()))?;
    if d.is_negative() {
        return Err(bad("negative"));
    }
    Ok(d)
}

/// Reads an RFC 3339 time (`2020-01-01T00:00:00Z`); a bare date means its midnight UTC.
pub fn parse_time(text: &str) -> Result<Timestamp, Error> {
    let t = text.trim();
    let bad = |reason: String| Error::BadTime {
        text: text.to_string(),
        reason,
    };
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    let date: jiff::civil::Date = t.parse().map_err(|e: jiff::Error| bad(e.to_string()))?;
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("24h").unwrap(),
            SignedDuration::from_hours(24)
        );
        assert_eq!(
            parse_duration("1d12h").unwrap(),
            SignedDuration::from_hours(36)
        );
        assert_eq!(
            parse_duration("2w").unwrap(),
            SignedDuration::from_hours(336)
        );
        assert_eq!(
            parse_duration("PT2H").unwrap(),
            SignedDuration::from_hours(2)
        );
        assert!(parse_duration("12").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_time("2020-01-01T00:00:00Z").unwrap(),
            parse_time("2020-01-01").unwrap()
        );
        assert!(parse_time("yesterday").is_err());
    }
}
