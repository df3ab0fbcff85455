//! `--format-ts`: strftime for log timestamps, compiled once.
//!
//! The common conversions of strftime(3) plus `%s` (Unix seconds) and
//! fractions of a second: `%N` (9 digits), `%3N`, `%6N`, `%9N` (GNU date)
//! and `%f` (6 digits, Python). UTC unless asked for local time (the
//! offset comes from the C library, so `TZ` applies).

use netwho_model::time::civil_from_days;
use netwho_query::{FilterError, Span};
use std::fmt::Write as _;

/// The timestamp format when none is given: RFC 3339, milliseconds, UTC.
pub const DEFAULT: &str = "%Y-%m-%dT%H:%M:%S.%3N%:z";

/// One piece of a compiled format.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Lit(String),
    Year,
    Year2,
    Century,
    Month,
    Day,
    DaySpace,
    Hour,
    Hour12,
    Minute,
    Second,
    Epoch,
    /// This many digits of the fraction of a second.
    Frac(usize),
    DayOfYear,
    WeekdayName,
    WeekdayShort,
    WeekdayNum,
    WeekdayMon1,
    MonthName,
    MonthShort,
    AmPm,
    /// `+0100`, or `+01:00` if true.
    Offset(bool),
    ZoneName,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// The conversions, for help texts.
pub const HELP: &str = "%Y year, %y 2-digit year, %C century, %m month, %d day, %e day \
(space-padded), %H hour, %I hour (12h), %p AM/PM, %M minute, %S second, %s Unix seconds, \
%N nanoseconds (9 digits), %3N milliseconds, %6N microseconds, %f microseconds, %j day of \
year, %a/%A weekday name, %u weekday (1=Monday), %w weekday (0=Sunday), %b/%B month name, \
%z offset (+0100), %:z offset (+01:00; Z in UTC), %Z zone name, %F = %Y-%m-%d, %T = \
%H:%M:%S, %D = %m/%d/%y, %R = %H:%M, %t tab, %% a percent sign";

/// A compiled timestamp format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsFormat {
    items: Vec<Item>,
    local: bool,
}

impl Default for TsFormat {
    fn default() -> Self {
        // DEFAULT compiles: a test says so
        TsFormat::new(DEFAULT, false).unwrap_or(TsFormat {
            items: Vec::new(),
            local: false,
        })
    }
}

impl TsFormat {
    /// Compile `src`; `local` renders in local time instead of UTC.
    /// Errors carry the span of the offending conversion.
    pub fn new(src: &str, local: bool) -> Result<TsFormat, FilterError> {
        let mut items = Vec::new();
        let mut lit = String::new();
        let mut it = src.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            let Some((_, mut k)) = it.next() else {
                return Err(FilterError::new(
                    Span::new(i, i + 1),
                    "a lone '%' at the end: write %% for a percent sign",
                ));
            };
            let mut width = None;
            let mut colon = false;
            if let Some(d) = k.to_digit(10) {
                width = Some(d as usize);
                match it.next() {
                    Some((_, n)) => k = n,
                    None => {
                        return Err(FilterError::new(
                            Span::new(i, src.len()),
                            "a width must be followed by N (e.g. %3N)",
                        ));
                    }
                }
            } else if k == ':' {
                colon = true;
                match it.next() {
                    Some((_, n)) => k = n,
                    None => k = ':',
                }
            }
            let end = it.peek().map_or(src.len(), |(j, _)| *j);
            let bad = |why: String| Err(FilterError::new(Span::new(i, end), why));
            if (width.is_some() && k != 'N') || (colon && k != 'z') {
                return bad(format!(
                    "'{}' is not a conversion: widths go with N (%3N) and the colon with z (%:z)",
                    &src[i..end]
                ));
            }
            let simple = |s: &str| Item::Lit(s.to_owned());
            let mut push = |item: Item, lit: &mut String| {
                if !lit.is_empty() {
                    items.push(Item::Lit(std::mem::take(lit)));
                }
                items.push(item);
            };
            match k {
                '%' => lit.push('%'),
                't' => lit.push('\t'),
                'Y' => push(Item::Year, &mut lit),
                'y' => push(Item::Year2, &mut lit),
                'C' => push(Item::Century, &mut lit),
                'm' => push(Item::Month, &mut lit),
                'd' => push(Item::Day, &mut lit),
                'e' => push(Item::DaySpace, &mut lit),
                'H' => push(Item::Hour, &mut lit),
                'I' => push(Item::Hour12, &mut lit),
                'M' => push(Item::Minute, &mut lit),
                'S' => push(Item::Second, &mut lit),
                's' => push(Item::Epoch, &mut lit),
                'N' => match width.unwrap_or(9) {
                    w @ 1..=9 => push(Item::Frac(w), &mut lit),
                    _ => return bad("a fraction has 1 to 9 digits (%3N, %6N, %9N)".into()),
                },
                'f' => push(Item::Frac(6), &mut lit),
                'j' => push(Item::DayOfYear, &mut lit),
                'a' => push(Item::WeekdayShort, &mut lit),
                'A' => push(Item::WeekdayName, &mut lit),
                'w' => push(Item::WeekdayNum, &mut lit),
                'u' => push(Item::WeekdayMon1, &mut lit),
                'b' | 'h' => push(Item::MonthShort, &mut lit),
                'B' => push(Item::MonthName, &mut lit),
                'p' => push(Item::AmPm, &mut lit),
                'z' => push(Item::Offset(colon), &mut lit),
                'Z' => push(Item::ZoneName, &mut lit),
                'F' => {
                    push(Item::Year, &mut lit);
                    push(simple("-"), &mut lit);
                    push(Item::Month, &mut lit);
                    push(simple("-"), &mut lit);
                    push(Item::Day, &mut lit);
                }
                'T' => {
                    push(Item::Hour, &mut lit);
                    push(simple(":"), &mut lit);
                    push(Item::Minute, &mut lit);
                    push(simple(":"), &mut lit);
                    push(Item::Second, &mut lit);
                }
                'R' => {
                    push(Item::Hour, &mut lit);
                    push(simple(":"), &mut lit);
                    push(Item::Minute, &mut lit);
                }
                'D' => {
                    push(Item::Month, &mut lit);
                    push(simple("/"), &mut lit);
                    push(Item::Day, &mut lit);
                    push(simple("/"), &mut lit);
                    push(Item::Year2, &mut lit);
                }
                other => {
                    return bad(format!(
                        "'%{other}' is not a conversion this format knows (see --help)"
                    ));
                }
            }
        }
        if !lit.is_empty() {
            items.push(Item::Lit(lit));
        }
        Ok(TsFormat { items, local })
    }

    /// Append the instant `unix_ns` to `out`.
    pub fn write(&self, unix_ns: i128, out: &mut String) {
        let secs = unix_ns.div_euclid(1_000_000_000);
        let frac = unix_ns.rem_euclid(1_000_000_000);
        let (offset, zone) = if self.local {
            local_offset(secs)
        } else {
            (0, None)
        };
        let t = secs + i128::from(offset);
        let days = i64::try_from(t.div_euclid(86_400)).unwrap_or(0);
        let sod = t.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (h, mi, s) = (sod / 3600, (sod / 60) % 60, sod % 60);
        // 1970-01-01 was a Thursday
        let wday = (days + 4).rem_euclid(7) as usize;
        let m0 = (m as usize).saturating_sub(1).min(11);
        for item in &self.items {
            let _ = match item {
                Item::Lit(l) => {
                    out.push_str(l);
                    Ok(())
                }
                Item::Year => write!(out, "{y:04}"),
                Item::Year2 => write!(out, "{:02}", y.rem_euclid(100)),
                Item::Century => write!(out, "{:02}", y.div_euclid(100)),
                Item::Month => write!(out, "{m:02}"),
                Item::Day => write!(out, "{d:02}"),
                Item::DaySpace => write!(out, "{d:2}"),
                Item::Hour => write!(out, "{h:02}"),
                Item::Hour12 => write!(out, "{:02}", (h + 11) % 12 + 1),
                Item::Minute => write!(out, "{mi:02}"),
                Item::Second => write!(out, "{s:02}"),
                Item::Epoch => write!(out, "{secs}"),
                Item::Frac(w) => {
                    let digits = format!("{frac:09}");
                    out.push_str(&digits[..(*w).min(9)]);
                    Ok(())
                }
                Item::DayOfYear => {
                    let jan1 = netwho_model::time::days_from_civil(y, 1, 1);
                    write!(out, "{:03}", days - jan1 + 1)
                }
                Item::WeekdayName => {
                    out.push_str(DAYS[wday]);
                    Ok(())
                }
                Item::WeekdayShort => {
                    out.push_str(&DAYS[wday][..3]);
                    Ok(())
                }
                Item::WeekdayNum => write!(out, "{wday}"),
                Item::WeekdayMon1 => write!(out, "{}", if wday == 0 { 7 } else { wday }),
                Item::MonthName => {
                    out.push_str(MONTHS[m0]);
                    Ok(())
                }
                Item::MonthShort => {
                    out.push_str(&MONTHS[m0][..3]);
                    Ok(())
                }
                Item::AmPm => {
                    out.push_str(if h < 12 { "AM" } else { "PM" });
                    Ok(())
                }
                Item::Offset(colon) => {
                    if *colon && offset == 0 && !self.local {
                        out.push('Z');
                        Ok(())
                    } else {
                        let sign = if offset < 0 { '-' } else { '+' };
                        let a = offset.unsigned_abs();
                        let (oh, om) = (a / 3600, (a / 60) % 60);
                        if *colon {
                            write!(out, "{sign}{oh:02}:{om:02}")
                        } else {
                            write!(out, "{sign}{oh:02}{om:02}")
                        }
                    }
                }
                Item::ZoneName => {
                    out.push_str(zone.as_deref().unwrap_or("UTC"));
                    Ok(())
                }
            };
        }
    }

    /// The instant as a new string.
    pub fn format(&self, unix_ns: i128) -> String {
        let mut s = String::with_capacity(32);
        self.write(unix_ns, &mut s);
        s
    }
}

/// The local UTC offset in seconds at `secs`, and the zone's abbreviation.
fn local_offset(secs: i128) -> (i64, Option<String>) {
    let Ok(t) = libc::time_t::try_from(secs) else {
        return (0, None);
    };
    // SAFETY: tm is plain old data, filled by localtime_r; t lives on the
    // stack for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return (0, None);
    }
    let zone = (!tm.tm_zone.is_null()).then(|| {
        // SAFETY: tm_zone points to a NUL-terminated string owned by the C
        // library that stays valid while TZ is unchanged.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    });
    (tm.tm_gmtoff, zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monday 2026-11-23 10:15:15.123456789 UTC.
    const T: i128 = 1_795_428_915_123_456_789;

    fn utc(f: &str) -> String {
        TsFormat::new(f, false).unwrap().format(T)
    }

    #[test]
    fn every_conversion() {
        assert_eq!(utc(DEFAULT), "2026-11-23T10:15:15.123Z");
        assert_eq!(TsFormat::default().format(T), "2026-11-23T10:15:15.123Z");
        assert_eq!(utc("%s"), "1795428915");
        assert_eq!(utc("%s.%3N"), "1795428915.123");
        assert_eq!(
            utc("%s.%6N %f %N %1N"),
            "1795428915.123456 123456 123456789 1"
        );
        assert_eq!(utc("%F %T"), "2026-11-23 10:15:15");
        assert_eq!(utc("%D %R"), "11/23/26 10:15");
        assert_eq!(utc("%Y%m%d%H%M%S"), "20261123101515");
        assert_eq!(utc("%C %y %j"), "20 26 327");
        assert_eq!(utc("%a %A %u %w"), "Mon Monday 1 1");
        assert_eq!(utc("%b %h %B %e"), "Nov Nov November 23");
        assert_eq!(utc("%I %p"), "10 AM");
        assert_eq!(utc("%z %:z %Z"), "+0000 Z UTC");
        assert_eq!(utc("100%% at%t%H"), "100% at\t10");
        assert_eq!(utc("no conversions"), "no conversions");
        // Sunday, 1 January, 13h, before 1970
        let sun = TsFormat::new("%a %w %u %j %I %p %e %s", false).unwrap();
        assert_eq!(
            sun.format(1_672_578_000_000_000_000),
            "Sun 0 7 001 01 PM  1 1672578000"
        );
        assert_eq!(
            TsFormat::new("%F %T.%3N", false).unwrap().format(-1),
            "1969-12-31 23:59:59.999"
        );
    }

    #[test]
    fn bad_formats_say_where() {
        for (f, col, what) in [
            ("%Y-%Q", 3, "'%Q' is not a conversion"),
            ("%Y %", 3, "lone '%'"),
            ("%3S", 0, "widths go with N"),
            ("%0N", 0, "1 to 9 digits"),
            ("%:Y", 0, "colon with z"),
            ("%4", 0, "must be followed by N"),
        ] {
            let e = TsFormat::new(f, false).unwrap_err();
            assert_eq!(e.span.start, col, "{f}");
            assert!(e.message.contains(what), "{f}: {}", e.message);
        }
    }

    #[test]
    fn local_time_follows_the_c_library() {
        // whatever TZ is, local time is UTC shifted by the stated offset
        let f = TsFormat::new("%s %F %T %z", true).unwrap().format(T);
        let mut parts = f.split(' ');
        assert_eq!(parts.next(), Some("1795428915"));
        let (date, time, off) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let oh: i64 = off[1..3].parse().unwrap();
        let om: i64 = off[3..5].parse().unwrap();
        let shifted = 1_795_428_915 + sign * (oh * 3600 + om * 60);
        let expect = TsFormat::new("%F %T", false)
            .unwrap()
            .format(i128::from(shifted) * 1_000_000_000);
        assert_eq!(format!("{date} {time}"), expect);
    }
}
