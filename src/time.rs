//! Time as the platform counts it: China Standard Time (UTC+8 all year, no daylight saving) and
//! the proleptic Gregorian calendar. Daily and annual limits, settlement days, statements, SMS
//! texts and alerts all reset or print in China time, so the offset and the calendar live here
//! once.
//!
//! Times are Unix milliseconds (`u64`) in the ledger and Unix seconds (`u32`) on a secure
//! element; days are counted from 1970-01-01 in China time. The clocks the platform reads (the
//! machine's, or one a test moves) are here too: nothing else reads the machine's time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub const MINUTE_MS: u64 = 60_000;
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
pub const DAY_MS: u64 = 24 * HOUR_MS;
pub const DAY_S: u32 = 86_400;

/// China time is UTC+8: local midnight is 16:00 UTC the day before.
pub const CHINA_OFFSET_MS: u64 = 8 * HOUR_MS;
pub const CHINA_OFFSET_S: u32 = 8 * 3_600;

const _: () = assert!(CHINA_OFFSET_MS == CHINA_OFFSET_S as u64 * 1000);
const _: () = assert!(DAY_MS == DAY_S as u64 * 1000);

/// Where time comes from; handed in so that tests and simulations control it.
pub trait Clock: Send {
    fn now_ms(&mut self) -> u64;
}

/// Unix milliseconds by the machine's clock: the only place the platform reads it.
pub fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&mut self) -> u64 {
        system_now_ms()
    }
}

/// A clock that moves only when told: for tests.
#[derive(Clone, Debug)]
pub struct ManualClock(pub Arc<AtomicU64>);

impl Clock for ManualClock {
    fn now_ms(&mut self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// One clock read by several threads of a server: the node stamping entries, the scheduler
/// waiting for due work. The machine's, or one a test moves.
#[derive(Clone, Debug, Default)]
pub enum SharedClock {
    #[default]
    System,
    Manual(Arc<AtomicU64>),
}

impl SharedClock {
    /// A clock a test moves, starting at `start_ms`, and the handle that moves it.
    pub fn manual(start_ms: u64) -> (SharedClock, Arc<AtomicU64>) {
        let time = Arc::new(AtomicU64::new(start_ms));
        (SharedClock::Manual(time.clone()), time)
    }

    pub fn read_ms(&self) -> u64 {
        match self {
            SharedClock::System => system_now_ms(),
            SharedClock::Manual(time) => time.load(Ordering::SeqCst),
        }
    }
}

impl Clock for SharedClock {
    fn now_ms(&mut self) -> u64 {
        self.read_ms()
    }
}

/// Day number since 1970-01-01 in China time.
pub fn china_day(timestamp_ms: u64) -> u32 {
    ((timestamp_ms + CHINA_OFFSET_MS) / DAY_MS) as u32
}

/// Day number since 1970-01-01 in China time of a secure element's clock, in seconds.
pub fn china_day_of_seconds(time_s: u32) -> u32 {
    time_s.saturating_add(CHINA_OFFSET_S) / DAY_S
}

/// Day number since 1970-01-01 and the calendar year, both in China time.
pub fn china_day_and_year(timestamp_ms: u64) -> (u32, u16) {
    let day = china_day(timestamp_ms);
    (day, civil_year(i64::from(day)) as u16)
}

/// Gregorian year of a day count since 1970-01-01.
pub fn civil_year(days: i64) -> i64 {
    civil_date(days).0
}

/// The Unix time in ms at which China-time day `day` begins.
pub fn china_midnight_ms(day: u32) -> u64 {
    u64::from(day) * DAY_MS - CHINA_OFFSET_MS
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
pub fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// Day count since 1970-01-01 of a Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_index + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A China-time day as `YYYY-MM-DD`.
pub fn format_day(day: u32) -> String {
    let (year, month, date) = civil_date(i64::from(day));
    format!("{year:04}-{month:02}-{date:02}")
}

/// A `YYYY-MM-DD` date as a day number, refusing dates that do not exist or precede 1970.
pub fn parse_day(text: &str) -> Option<u32> {
    let mut parts = text.trim().splitn(3, '-');
    let mut field = |len: usize| {
        parts
            .next()
            .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok())
    };
    let (year, month, date) = (field(4)?, field(2)?, field(2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&date) {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, date);
    // 31 February and the like come back as another date.
    (days >= 0 && civil_date(days) == (i64::from(year), month, date)).then_some(days as u32)
}

/// A ledger time in China time as ISO 8601 with milliseconds: `2024-03-01T08:30:00.000+08:00`.
pub fn china_time(at_ms: u64) -> String {
    let ms_of_day = (at_ms + CHINA_OFFSET_MS) % DAY_MS;
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}+08:00",
        format_day(china_day(at_ms)),
        ms_of_day / HOUR_MS,
        ms_of_day / MINUTE_MS % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    )
}

/// Reads what [`china_time`] writes.
pub fn parse_china_time(text: &str) -> Option<u64> {
    let (date, time) = text.strip_suffix("+08:00")?.split_once('T')?;
    let day = u64::from(parse_day(date)?);
    let (hms, millis) = time.split_once('.')?;
    let mut parts = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (hours, minutes, seconds) = (parts.next()??, parts.next()??, parts.next()??);
    let millis: u64 = millis.parse().ok()?;
    if parts.next().is_some() || hours > 23 || minutes > 59 || seconds > 59 || millis > 999 {
        return None;
    }
    let local = day * DAY_MS + ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis;
    local.checked_sub(CHINA_OFFSET_MS)
}

/// `2021-02-17 23:59:59` in China time, for texts people read (SMS, refusals).
pub fn china_date_time(unix_ms: u64) -> String {
    let local_ms = i64::try_from(unix_ms)
        .unwrap_or(i64::MAX)
        .saturating_add(CHINA_OFFSET_MS as i64);
    let days = local_ms.div_euclid(DAY_MS as i64);
    let seconds_of_day = local_ms.rem_euclid(DAY_MS as i64) / 1000;
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60
    )
}

/// `HH:MM:SS` in China time, for validity and receipt times.
pub fn china_clock(unix_s: u64) -> String {
    let seconds = (unix_s + u64::from(CHINA_OFFSET_S)) % u64::from(DAY_S);
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23 12:00 in Beijing (04:00 UTC).
    const NOON_2026_11_23_MS: u64 = 1_795_406_400_000;

    #[test]
    fn a_china_day_begins_at_16_00_utc() {
        let day = china_day(NOON_2026_11_23_MS);
        assert_eq!(format_day(day), "2026-11-23");
        let midnight = china_midnight_ms(day + 1);
        assert_eq!(midnight, NOON_2026_11_23_MS + 12 * HOUR_MS);
        assert_eq!(china_day(midnight - 1), day);
        assert_eq!(china_day(midnight), day + 1);
        assert_eq!(china_time(midnight), "2026-11-24T00:00:00.000+08:00");
        assert_eq!(china_day(0), 0);
        assert_eq!(china_day(DAY_MS - CHINA_OFFSET_MS - 1), 0);
        assert_eq!(china_day(DAY_MS - CHINA_OFFSET_MS), 1);
        // The secure element's seconds land on the same days.
        let midnight_s = (midnight / 1000) as u32;
        assert_eq!(china_day_of_seconds(midnight_s - 1), day);
        assert_eq!(china_day_of_seconds(midnight_s), day + 1);
        assert_eq!(china_day_of_seconds(u32::MAX), (u32::MAX / DAY_S));
    }

    #[test]
    fn years_turn_at_china_midnight() {
        assert_eq!(china_day_and_year(0).1, 1970);
        // 2024-12-31T16:00Z is 2025-01-01 00:00 in Beijing.
        assert_eq!(china_day_and_year(1_735_660_800_000).1, 2025);
        assert_eq!(china_day_and_year(1_735_660_799_999).1, 2024);
    }

    #[test]
    fn leap_years_follow_the_gregorian_rules() {
        assert_eq!(parse_day("2024-02-29"), Some(19_782));
        assert_eq!(format_day(19_783), "2024-03-01");
        // Divisible by 100 but not by 400: no 29 February.
        assert_eq!(parse_day("2100-02-29"), None);
        assert_eq!(
            format_day(parse_day("2100-02-28").unwrap() + 1),
            "2100-03-01"
        );
        // Divisible by 400: a 29 February.
        assert!(parse_day("2000-02-29").is_some());
        assert_eq!(parse_day("2023-02-29"), None);
        assert_eq!(
            china_date_time(4_107_513_600_000),
            "2100-03-01 00:00:00",
            "the day after 2100-02-28"
        );
        assert_eq!(china_date_time(1_709_181_296_000), "2024-02-29 12:34:56");
    }

    #[test]
    fn dates_print_and_parse_back() {
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(format_day(20_780), "2026-11-23");
        assert_eq!(parse_day("2026-11-23"), Some(20_780));
        for day in (0..80_000).step_by(7) {
            assert_eq!(parse_day(&format_day(day)), Some(day));
            let (year, month, date) = civil_date(i64::from(day));
            assert_eq!(days_from_civil(year, month, date), i64::from(day));
        }
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-1-01",
            "26-11-23",
            "1969-12-31",
            "x",
            "",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_print_in_china_time_and_read_back() {
        // 2024-03-01 00:00 UTC is 08:00 in China.
        let at = 1_709_251_200_123;
        assert_eq!(china_time(at), "2024-03-01T08:00:00.123+08:00");
        for at in [0, at, NOON_2026_11_23_MS - 1, 4_107_513_599_999] {
            assert_eq!(parse_china_time(&china_time(at)), Some(at));
        }
        assert_eq!(parse_china_time("2024-03-01T24:00:00.000+08:00"), None);
        assert_eq!(parse_china_time("2024-03-01T08:00:00Z"), None);
        // Before the epoch in UTC: not a ledger time.
        assert_eq!(parse_china_time("1970-01-01T07:59:59.999+08:00"), None);
        assert_eq!(china_date_time(0), "1970-01-01 08:00:00");
        assert_eq!(china_date_time(1_609_084_799_000), "2020-12-27 23:59:59");
        assert_eq!(china_clock(0), "08:00:00");
        assert_eq!(china_clock(16 * 3600 + 61), "00:01:01");
    }
}
