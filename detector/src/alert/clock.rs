//! The alert policy's time: the time of the event stream, not of the machine reading it.
//!
//! Suppression windows are measured on the documents' own `@timestamp`, so that a recorded
//! stream replayed in a second folds exactly as the live daemon folded it over minutes, and
//! the same documents give the same alerts whoever reads them (`run` or `replay`). The
//! stream's clock ([`StreamClock`]) is its latest `@timestamp` (the *mark*: time only moves
//! forward, so a document a little out of order cannot reopen closed windows). When no
//! document arrives the live daemon still has to close windows on time: between documents
//! the clock runs on from the mark by the real time elapsed since the mark was read
//! (monotonic, so a wall-clock step changes nothing). A document without a readable
//! `@timestamp` takes that running time (the wall clock before any mark).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A point in event time: nanoseconds since the Unix epoch (years 1678 to 2262).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventTime(i64);

impl EventTime {
    /// From nanoseconds since the Unix epoch.
    pub fn from_unix_nanos(ns: i64) -> Self {
        EventTime(ns)
    }

    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(self) -> i64 {
        self.0
    }

    /// The wall clock now.
    pub fn wall_clock() -> Self {
        let ns = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
        };
        EventTime(ns)
    }

    /// How long after `earlier` this is; zero when it is not after it.
    pub fn since(self, earlier: EventTime) -> Duration {
        Duration::from_nanos(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// Parses an ECS `date` as documents carry it: `YYYY-MM-DD`, optionally followed by
    /// `THH:MM`, `:SS` and a fraction of any length (digits past nanoseconds are dropped),
    /// and a zone `Z` or `±HH:MM` (`±HHMM`, `±HH`); no zone means UTC, as in
    /// Elasticsearch's `strict_date_optional_time`. `None` for anything else, or a date
    /// outside the range.
    pub fn parse(s: &str) -> Option<EventTime> {
        let b = s.as_bytes();
        let mut p = Cursor { b, i: 0 };
        let year = p.digits(4)?;
        p.byte(b'-')?;
        let month = p.digits(2)?;
        p.byte(b'-')?;
        let day = p.digits(2)?;
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        let (mut secs_of_day, mut nanos) = (0i64, 0i64);
        if matches!(p.peek(), Some(b'T' | b't')) {
            p.i += 1;
            let h = p.digits(2)?;
            p.byte(b':')?;
            let m = p.digits(2)?;
            let mut sec = 0;
            if p.peek() == Some(b':') {
                p.i += 1;
                sec = p.digits(2)?;
                if matches!(p.peek(), Some(b'.' | b',')) {
                    p.i += 1;
                    let start = p.i;
                    while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                        let d = i64::from(p.b[p.i] - b'0');
                        if p.i - start < 9 {
                            nanos = nanos * 10 + d;
                        }
                        p.i += 1;
                    }
                    let n = p.i - start;
                    if n == 0 {
                        return None;
                    }
                    for _ in n..9 {
                        nanos *= 10;
                    }
                }
            }
            // 60: a leap second, as RFC 3339 allows (it counts as the next second).
            if h > 23 || m > 59 || sec > 60 {
                return None;
            }
            secs_of_day = h * 3600 + m * 60 + sec;
            let offset = match p.peek() {
                None => 0,
                Some(b'Z' | b'z') => {
                    p.i += 1;
                    0
                }
                Some(sign @ (b'+' | b'-')) => {
                    p.i += 1;
                    let oh = p.digits(2)?;
                    if p.peek() == Some(b':') {
                        p.i += 1;
                    }
                    let om = if p.peek().is_some() { p.digits(2)? } else { 0 };
                    if oh > 23 || om > 59 {
                        return None;
                    }
                    let o = oh * 3600 + om * 60;
                    if sign == b'+' { o } else { -o }
                }
                Some(_) => return None,
            };
            secs_of_day -= offset;
        }
        if p.i != b.len() {
            return None;
        }
        let secs = days_from_civil(year, month, day) * 86_400 + secs_of_day;
        secs.checked_mul(1_000_000_000)
            .and_then(|ns| ns.checked_add(nanos))
            .map(EventTime)
    }
}

/// `t + d`, saturating at the end of the range.
impl std::ops::Add<Duration> for EventTime {
    type Output = EventTime;

    fn add(self, d: Duration) -> EventTime {
        EventTime(
            self.0
                .saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn byte(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn digits(&mut self, n: usize) -> Option<i64> {
        let d = self.b.get(self.i..self.i + n)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(d.iter().fold(0, |v, c| v * 10 + i64::from(c - b'0')))
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, the inverse of `ecs::time`'s `civil_from_days`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The event stream's clock (see the module docs): its latest `@timestamp`, and the real
/// time elapsed since that was read.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamClock {
    /// The latest event time seen, and when it was read.
    mark: Option<(EventTime, Instant)>,
}

impl StreamClock {
    /// A clock that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The time of a document read at `seen` whose `@timestamp` is `timestamp`: that time
    /// (moving the mark forward when it is later), or, when it has none or an unreadable
    /// one, the running time [`StreamClock::now`].
    pub fn observe(&mut self, timestamp: Option<&str>, seen: Instant) -> EventTime {
        self.observe_time(timestamp.and_then(EventTime::parse), seen)
    }

    /// [`StreamClock::observe`] of a time already read.
    pub fn observe_time(&mut self, time: Option<EventTime>, seen: Instant) -> EventTime {
        match time {
            Some(t) => {
                if self.mark.is_none_or(|(m, _)| t > m) {
                    self.mark = Some((t, seen));
                }
                t
            }
            None => self.now(seen),
        }
    }

    /// The latest event time seen: the time up to which the stream is known to have
    /// progressed.
    pub fn mark(&self) -> Option<EventTime> {
        self.mark.map(|(t, _)| t)
    }

    /// The stream's time at real instant `at`: the mark plus the time since it was read;
    /// the wall clock before any document had a time.
    pub fn now(&self, at: Instant) -> EventTime {
        match self.mark {
            Some((t, seen)) => t + at.saturating_duration_since(seen),
            None => EventTime::wall_clock(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_documents_carry() {
        let s = 1_000_000_000i64;
        for (text, want) in [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:00.000000001Z", 1),
            ("1970-01-01", 0),
            ("1970-01-01T00:01", 60 * s),
            ("2016-05-24T00:25:34.853Z", 1_464_049_534_853_000_000),
            (
                "2016-05-24T00:25:34.853000000999Z",
                1_464_049_534_853_000_000,
            ),
            ("2016-05-24t02:25:34,853+02:00", 1_464_049_534_853_000_000),
            ("2016-05-23T23:25:34.853-0100", 1_464_049_534_853_000_000),
            ("2016-05-24T00:25:34.853", 1_464_049_534_853_000_000),
            ("2000-02-29T00:00:00.000000001Z", 951_782_400_000_000_001),
            ("1969-12-31T23:59:59.999999999Z", -1),
            ("2100-03-01T00:00:00Z", 4_107_542_400 * s),
        ] {
            assert_eq!(EventTime::parse(text), Some(EventTime(want)), "{text}");
        }
        for bad in [
            "",
            "2016-05-24T",
            "2016-5-24",
            "2016-02-30",
            "2100-02-29",
            "2016-05-24T24:00:00Z",
            "2016-05-24T00:25:34.Z",
            "2016-05-24T00:25:34Zjunk",
            "2016-05-24 00:25:34",
            "2016-05-24T00:25:34+2",
            "1464049534853",
            "3000-01-01T00:00:00Z",
        ] {
            assert_eq!(EventTime::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_formatter_and_the_parser_agree() {
        for ns in [
            0i64,
            1,
            -1,
            1_464_049_534_853_000_123,
            4_102_444_799_999_999_999,
        ] {
            let text = crate::ecs::format_rfc3339_nanos(i128::from(ns));
            assert_eq!(EventTime::parse(&text), Some(EventTime(ns)), "{text}");
        }
    }

    #[test]
    fn the_mark_only_moves_forward_and_runs_on_in_real_time() {
        let mut c = StreamClock::new();
        let t0 = Instant::now();
        let at = |s: &str| EventTime::parse(s).unwrap();
        assert_eq!(c.mark(), None);
        assert_eq!(
            c.observe(Some("2026-01-01T00:00:10Z"), t0),
            at("2026-01-01T00:00:10Z")
        );
        // An earlier document keeps its own time but does not move the mark back.
        assert_eq!(
            c.observe(Some("2026-01-01T00:00:05Z"), t0 + Duration::from_secs(1)),
            at("2026-01-01T00:00:05Z")
        );
        assert_eq!(c.mark(), Some(at("2026-01-01T00:00:10Z")));
        // Between documents, time runs on from when the mark was read.
        assert_eq!(
            c.now(t0 + Duration::from_secs(3)),
            at("2026-01-01T00:00:13Z")
        );
        // No (readable) timestamp: the running time.
        assert_eq!(
            c.observe(Some("yesterday"), t0 + Duration::from_secs(2)),
            at("2026-01-01T00:00:12Z")
        );
        assert_eq!(
            c.observe(None, t0 + Duration::from_secs(2)),
            at("2026-01-01T00:00:12Z")
        );
        assert_eq!(c.mark(), Some(at("2026-01-01T00:00:10Z")));
    }
}
