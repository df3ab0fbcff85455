//! The host's clocks, which the sensor, the pipeline and the outputs that
//! stamp their own records read (the model never does: time is its input).

use netwho_model::MonoNs;
use netwho_model::time::WallClock;

fn read(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which we own.
    let r = unsafe { libc::clock_gettime(clock, &mut ts) };
    if r != 0 {
        // CLOCK_BOOTTIME and CLOCK_REALTIME exist on every supported kernel
        return 0;
    }
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// CLOCK_BOOTTIME, the clock of the kernel's timestamps.
pub fn boot_now() -> MonoNs {
    MonoNs(u64::try_from(read(libc::CLOCK_BOOTTIME)).unwrap_or(0))
}

/// CLOCK_REALTIME as Unix nanoseconds (for outputs that stamp their own
/// records: log files, chain records).
pub fn unix_now_ns() -> i128 {
    read(libc::CLOCK_REALTIME)
}

/// The current offset from boot time to Unix time, measured between two
/// boot-clock reads to halve the error.
pub fn wall_clock() -> WallClock {
    let b1 = read(libc::CLOCK_BOOTTIME);
    let real = read(libc::CLOCK_REALTIME);
    let b2 = read(libc::CLOCK_BOOTTIME);
    WallClock {
        boot_to_unix_ns: real - (b1 + b2) / 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_time_advances_and_maps_to_now() {
        let a = boot_now();
        let b = boot_now();
        assert!(b >= a && a.0 > 0);
        let unix = wall_clock().unix_ns(b);
        let real = read(libc::CLOCK_REALTIME);
        assert!(
            (real - unix).abs() < 1_000_000_000,
            "within a second of real time"
        );
    }
}
