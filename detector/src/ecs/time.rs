//! RFC 3339 timestamps for ECS `date` fields, without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats nanoseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (UTC).
///
/// Nanosecond precision because process events on one CPU can be microseconds apart and
/// Elasticsearch's `date_nanos`-aware tooling keeps their order; a plain `date` mapping
/// accepts the form too (it truncates to milliseconds).
pub fn format_rfc3339_nanos(unix_ns: i128) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000) as i64;
    let nanos = unix_ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Formats a `SystemTime` (times before 1970 included) as RFC 3339 UTC with nanoseconds.
pub fn format_system_time(t: SystemTime) -> String {
    let ns = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    format_rfc3339_nanos(ns)
}

/// The current time, for `event.created` and `@timestamp`.
pub fn now_rfc3339() -> String {
    format_system_time(SystemTime::now())
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
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
    use super::*;

    #[test]
    fn known_instants() {
        for (ns, want) in [
            (0i128, "1970-01-01T00:00:00.000000000Z"),
            (1_464_049_534_853_000_000, "2016-05-24T00:25:34.853000000Z"),
            (951_782_400_000_000_001, "2000-02-29T00:00:00.000000001Z"),
            (-1, "1969-12-31T23:59:59.999999999Z"),
            (4_107_542_400_000_000_000, "2100-03-01T00:00:00.000000000Z"),
        ] {
            assert_eq!(format_rfc3339_nanos(ns), want, "{ns}");
        }
    }
}
