//! Numbers in table cells: short, binary units, no space (`1.5KiB`,
//! `12.3MiB/s`, or `99.5Mb/s` in bits).

/// `512B`, `1.5KiB`, `123MiB` (at most 7 characters).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1023.95 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if v < 99.95 {
        format!("{v:.1}{}", UNITS[i])
    } else {
        format!("{v:.0}{}", UNITS[i])
    }
}

/// Bytes per second, or bits per second (decimal units) if `bits`.
pub fn rate(bytes_per_s: f64, bits: bool) -> String {
    let b = bytes_per_s.max(0.0);
    if !bits {
        return format!("{}/s", bytes(b.round() as u64));
    }
    let mut v = b * 8.0;
    let mut unit = 0;
    const UNITS: [&str; 5] = ["b/s", "kb/s", "Mb/s", "Gb/s", "Tb/s"];
    while v >= 999.95 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0}{}", UNITS[0])
    } else if v < 99.95 {
        format!("{v:.1}{}", UNITS[unit])
    } else {
        format!("{v:.0}{}", UNITS[unit])
    }
}

/// `42s`, `3m05s`, `2h10m`, `3d04h`.
pub fn age(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_stay_short() {
        assert_eq!(bytes(0), "0B");
        assert_eq!(bytes(1023), "1023B");
        assert_eq!(bytes(1536), "1.5KiB");
        assert_eq!(bytes(1024 * 1023), "1023KiB");
        assert_eq!(bytes(1024 * 1024 - 1), "1.0MiB");
        assert_eq!(bytes(123 * 1024 * 1024), "123MiB");
        assert_eq!(rate(1536.0, false), "1.5KiB/s");
        assert_eq!(rate(125.0, true), "1.0kb/s");
        assert_eq!(rate(12_437_500.0, true), "99.5Mb/s");
        assert_eq!(rate(100.0, true), "800b/s");
        assert_eq!(age(185), "3m05s");
        assert_eq!(age(7800), "2h10m");
    }
}
