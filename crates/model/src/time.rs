//! Turning CLOCK_BOOTTIME into wall time, and wall time into RFC 3339.
//!
//! The model keeps kernel time. Records show UTC. The conversion needs the
//! offset between the two clocks, which the pipeline measures (it owns the
//! clock) and passes in as a [`WallClock`].

use crate::ids::MonoNs;
use std::fmt::Write as _;

/// Unix time = boot time + `boot_to_unix_ns`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WallClock {
    /// Unix ns minus boot ns.
    pub boot_to_unix_ns: i128,
}

impl WallClock {
    /// Boot time `t` as Unix ns.
    pub fn unix_ns(self, t: MonoNs) -> i128 {
        i128::from(t.0) + self.boot_to_unix_ns
    }

    /// RFC 3339 in UTC with nanoseconds: `2026-11-23T10:15:15.123456789Z`.
    pub fn rfc3339(self, t: MonoNs) -> String {
        rfc3339_from_unix_ns(self.unix_ns(t))
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    // d in 1..=31 and m in 1..=12 by construction
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// (year, month, day) to days since 1970-01-01 (Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days in month `m` (1..=12) of year `y` (proleptic Gregorian).
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Unix nanoseconds of an RFC 3339 UTC timestamp as records carry it
/// (`2026-11-23T10:15:15.123456789Z`; any number of fraction digits, or
/// none). `None` if it is not one, or names a day the month does not have.
pub fn unix_ns_from_rfc3339(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())
            .flatten()
    };
    let dash = s.find('-')?;
    if b.get(dash + 3) != Some(&b'-') || b.get(dash + 6) != Some(&b'T') {
        return None;
    }
    let y = num(0..dash)?;
    let mo = u32::try_from(num(dash + 1..dash + 3)?).ok()?;
    let d = u32::try_from(num(dash + 4..dash + 6)?).ok()?;
    let t = dash + 7;
    if b.get(t + 2) != Some(&b':') || b.get(t + 5) != Some(&b':') {
        return None;
    }
    let (h, mi, sec) = (num(t..t + 2)?, num(t + 3..t + 5)?, num(t + 6..t + 8)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60
    {
        return None;
    }
    let rest = s.get(t + 8..)?;
    let (frac, z) = match rest.strip_prefix('.') {
        Some(r) => r.split_at(r.find(|c: char| !c.is_ascii_digit())?),
        None => ("", rest),
    };
    if z != "Z" || frac.len() > 9 {
        return None;
    }
    let mut ns: i128 = 0;
    for (i, c) in frac.bytes().enumerate() {
        ns += i128::from(c - b'0') * 10i128.pow(8 - i as u32);
    }
    let days = days_from_civil(y, mo, d);
    let secs = i128::from(days) * 86_400 + i128::from(h * 3600 + mi * 60 + sec);
    Some(secs * 1_000_000_000 + ns)
}

/// Write `v` as exactly `width` decimal digits into `out`.
fn digits(out: &mut [u8], mut v: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Unix ns as RFC 3339 with nanoseconds, UTC.
pub fn rfc3339_from_unix_ns(ns: i128) -> String {
    // a record has four timestamps: the common case (years 1678 to 2262,
    // in an i64) formats without 128-bit division and without fmt
    if let Ok(ns) = i64::try_from(ns) {
        let secs = ns.div_euclid(1_000_000_000);
        let days = secs.div_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        if let Ok(y) = u64::try_from(y)
            && y <= 9999
        {
            let n = |v: i64| u64::try_from(v).unwrap_or(0);
            let sod = n(secs.rem_euclid(86_400));
            let mut b = *b"0000-00-00T00:00:00.000000000Z";
            digits(&mut b[0..4], y);
            digits(&mut b[5..7], u64::from(m));
            digits(&mut b[8..10], u64::from(d));
            digits(&mut b[11..13], sod / 3600);
            digits(&mut b[14..16], (sod / 60) % 60);
            digits(&mut b[17..19], sod % 60);
            digits(&mut b[20..29], n(ns.rem_euclid(1_000_000_000)));
            // ASCII digits and separators only: always valid
            return String::from_utf8(b.to_vec()).unwrap_or_default();
        }
    }
    rfc3339_any(ns)
}

/// Any instant, through fmt (years beyond four digits as fmt writes them).
fn rfc3339_any(ns: i128) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let days = i64::try_from(secs.div_euclid(86_400)).unwrap_or(0);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = String::with_capacity(32);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_from_unix_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_from_unix_ns(1_373_127_181_000_000_001),
            "2013-07-06T16:13:01.000000001Z"
        );
        // 2024-02-29 (leap day) 23:59:59.5
        assert_eq!(
            rfc3339_from_unix_ns(1_709_251_199_500_000_000),
            "2024-02-29T23:59:59.500000000Z"
        );
        assert_eq!(rfc3339_from_unix_ns(-1), "1969-12-31T23:59:59.999999999Z");
        // beyond year 9999 the slow path keeps working
        assert_eq!(
            rfc3339_from_unix_ns(253_402_300_800_000_000_000),
            "10000-01-01T00:00:00.000000000Z"
        );
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // the date sequence must be contiguous and well-formed
        let mut prev = (1969, 12, 31);
        for day in 0..146_097 {
            let (y, m, d) = civil_from_days(day);
            let next_day = (prev.0, prev.1, prev.2 + 1);
            let next_month = (prev.0, prev.1 + 1, 1);
            let next_year = (prev.0 + 1, 1, 1);
            assert!(
                (y, m, d) == next_day || (y, m, d) == next_month || (y, m, d) == next_year,
                "{prev:?} -> {:?}",
                (y, m, d)
            );
            prev = (y, m, d);
        }
        assert_eq!(prev, (2369, 12, 31));
    }

    #[test]
    fn rfc3339_reads_back() {
        for ns in [
            0,
            1_373_127_181_000_000_001,
            1_709_251_199_500_000_000,
            -1,
            4_102_444_800_123_456_789,
        ] {
            assert_eq!(unix_ns_from_rfc3339(&rfc3339_from_unix_ns(ns)), Some(ns));
        }
        assert_eq!(
            unix_ns_from_rfc3339("2026-11-23T10:15:15.123Z"),
            unix_ns_from_rfc3339("2026-11-23T10:15:15.123000000Z")
        );
        assert_eq!(
            unix_ns_from_rfc3339("2026-11-23T10:15:15Z"),
            Some(1_795_428_915_000_000_000)
        );
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23T10:15:15",
            "2026-13-23T10:15:15Z",
            "2026-11-23T10:15:15.1234567890Z",
            "2026-11-23T10:15:15+01:00",
            "x026-11-23T10:15:15Z",
            "2026-02-31T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-01-00T00:00:00Z",
        ] {
            assert_eq!(unix_ns_from_rfc3339(bad), None, "{bad}");
        }
        for good in [
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "2026-12-31T23:59:59Z",
        ] {
            assert!(unix_ns_from_rfc3339(good).is_some(), "{good}");
        }
        for day in [-719_468, -1, 0, 1, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn wall_clock_offsets_boot_time() {
        let w = WallClock {
            boot_to_unix_ns: 1_700_000_000_000_000_000,
        };
        assert_eq!(
            w.rfc3339(MonoNs(1_500_000_000)),
            "2023-11-14T22:13:21.500000000Z"
        );
    }

    proptest::proptest! {
        #[test]
        fn the_fast_timestamp_is_the_one_fmt_writes(ns in proptest::prelude::any::<i64>()) {
            proptest::prop_assert_eq!(rfc3339_from_unix_ns(i128::from(ns)), rfc3339_any(i128::from(ns)));
        }
    }

    #[test]
    fn timestamps_at_the_edges_are_the_ones_fmt_writes() {
        let edges = [
            i128::from(i64::MIN),
            i128::from(i64::MAX),
            i128::from(i64::MIN) - 1,
            i128::from(i64::MAX) + 1,
            -1,
            0,
            1,
            999_999_999,
            1_000_000_000,
            -1_000_000_000,
            -1_000_000_001,
            // 9999-12-31T23:59:59.999999999Z and the next nanosecond
            253_402_300_799_999_999_999,
            253_402_300_800_000_000_000,
        ];
        for ns in edges {
            assert_eq!(rfc3339_from_unix_ns(ns), rfc3339_any(ns), "{ns}");
        }
        assert_eq!(rfc3339_from_unix_ns(-1), "1969-12-31T23:59:59.999999999Z");
    }
}
