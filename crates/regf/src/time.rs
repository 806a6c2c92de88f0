//! FILETIME (100-nanosecond intervals since 1601-01-01 UTC) to text, without a date crate.

/// Seconds between 1601-01-01 and 1970-01-01.
const EPOCH_DIFF: i64 = 11_644_473_600;

/// `2019-03-25T11:44:05.1234567Z`; a zero FILETIME gives `""`.
pub fn filetime_to_iso(ft: u64) -> String {
    if ft == 0 {
        return String::new();
    }
    let secs = (ft / 10_000_000) as i64 - EPOCH_DIFF;
    let frac = ft % 10_000_000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:07}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Current time as a FILETIME.
pub fn filetime_now() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_secs() + EPOCH_DIFF as u64) * 10_000_000 + u64::from(now.subsec_nanos() / 100)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_instants() {
        assert_eq!(
            super::filetime_to_iso(116_444_736_000_000_000),
            "1970-01-01T00:00:00.0000000Z"
        );
        // 2009-07-14T04:34:40Z, (1247546080 s after 1970).
        assert_eq!(
            super::filetime_to_iso(128_920_196_800_000_000),
            "2009-07-14T04:34:40.0000000Z"
        );
    }
}
