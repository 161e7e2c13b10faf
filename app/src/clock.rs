//! UTC timestamps for log lines (`2026-11-27T18:55:00.123Z`), without a date library.
//!
//! The access log writes one per request, so the date part is computed once per second and
//! cached per thread; only the milliseconds are formatted each time.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends the current UTC time in RFC 3339 with milliseconds to `out`.
pub fn now_rfc3339(out: &mut String) {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    write_rfc3339(out, since_epoch.as_secs(), since_epoch.subsec_millis());
}

/// Appends `seconds` since the epoch plus `millis` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn write_rfc3339(out: &mut String, seconds: u64, millis: u32) {
    thread_local! {
        static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != seconds {
            let prefix = format_seconds(seconds);
            *cache = (seconds, prefix);
        }
        out.push_str(&cache.1);
    });
    let millis = millis.min(999);
    out.push('.');
    out.push(char::from(b'0' + (millis / 100) as u8));
    out.push(char::from(b'0' + (millis / 10 % 10) as u8));
    out.push(char::from(b'0' + (millis % 10) as u8));
    out.push('Z');
}

/// `YYYY-MM-DDTHH:MM:SS` for `seconds` since the epoch.
fn format_seconds(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60)
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let check = |seconds: u64, millis: u32, expect: &str| {
            let mut out = String::new();
            write_rfc3339(&mut out, seconds, millis);
            assert_eq!(out, expect, "{seconds}.{millis}");
        };
        check(0, 0, "1970-01-01T00:00:00.000Z");
        check(951_782_400, 5, "2000-02-29T00:00:00.005Z");
        check(1_709_251_199, 999, "2024-02-29T23:59:59.999Z");
        check(1_795_805_700, 123, "2026-11-27T18:55:00.123Z");
        check(4_102_444_800, 42, "2100-01-01T00:00:00.042Z");
        // The per-second cache must not leak a previous second into the next one.
        check(1_795_805_701, 0, "2026-11-27T18:55:01.000Z");
    }
}
