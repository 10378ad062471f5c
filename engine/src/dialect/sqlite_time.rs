//! SQLite's date and time functions — `date`, `time`, `datetime`, `julianday`,
//! `unixepoch`, `strftime` — with SQLite's semantics (<https://sqlite.org/lang_datefunc.html>).
//!
//! A point in time is, as in SQLite, a count of milliseconds since the Julian epoch
//! (noon UTC, 24 November 4714 BC), so arithmetic and rounding match SQLite's, including
//! its month arithmetic (`'2024-01-31', '+1 month'` is `2024-03-02`).
//!
//! One deliberate departure: where SQLite returns NULL for a malformed time value or an
//! unknown modifier, this returns a [`TimeError`] naming it, so that `'-30 dayz'` is an
//! error rather than a query that silently matches nothing. A NULL argument still gives
//! NULL.

use gluesql_core::chrono::{Datelike, Local, NaiveDate, Offset, TimeZone, Utc};
use std::fmt::Write as _;

/// Which SQLite function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeFunction {
    Date,
    Time,
    DateTime,
    JulianDay,
    UnixEpoch,
    Strftime,
}

impl TimeFunction {
    /// The function for a (case-insensitive) SQL name.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "date" => Self::Date,
            "time" => Self::Time,
            "datetime" => Self::DateTime,
            "julianday" => Self::JulianDay,
            "unixepoch" => Self::UnixEpoch,
            "strftime" => Self::Strftime,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Date => "date",
            Self::Time => "time",
            Self::DateTime => "datetime",
            Self::JulianDay => "julianday",
            Self::UnixEpoch => "unixepoch",
            Self::Strftime => "strftime",
        }
    }
}

/// An argument value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TimeArg {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

/// A result value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TimeValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

/// Why a call could not be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TimeError(pub String);

const MS_PER_DAY: i64 = 86_400_000;
/// The Unix epoch in Julian-day milliseconds.
const UNIX_EPOCH_JD_MS: i64 = 210_866_760_000_000;
/// 9999-12-31 23:59:59.999, the last instant SQLite handles.
const MAX_JD_MS: i64 = 464_269_060_799_999;

/// Broken-down time.
#[derive(Clone, Copy, Debug)]
struct Parts {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    /// Seconds with milliseconds.
    second: f64,
}

fn parts(jd_ms: i64) -> Parts {
    // Julian day number of the date, then the Gregorian calendar date (the classic
    // algorithm SQLite uses, valid for the years 0000-9999).
    let z = (jd_ms + 43_200_000) / MS_PER_DAY;
    let alpha = ((z as f64 - 1_867_216.25) / 36_524.25) as i64;
    let a = z + 1 + alpha - alpha / 4;
    let b = a + 1524;
    let c = ((b as f64 - 122.1) / 365.25) as i64;
    let d = (36525 * (c & 32767)) / 100;
    let e = ((b - d) as f64 / 30.6001) as i64;
    let x1 = (30.6001 * e as f64) as i64;
    let day = b - d - x1;
    let month = if e < 14 { e - 1 } else { e - 13 };
    let year = if month > 2 { c - 4716 } else { c - 4715 };
    let day_ms = (jd_ms + 43_200_000) % MS_PER_DAY;
    let minutes = day_ms / 60_000;
    Parts {
        year,
        month,
        day,
        hour: minutes / 60,
        minute: minutes % 60,
        second: (day_ms % 60_000) as f64 / 1000.0,
    }
}

/// Julian-day milliseconds of a broken-down time; days and months may overflow their
/// range and roll over, as in SQLite.
fn to_jd_ms(p: &Parts) -> i64 {
    let (mut y, mut m) = (p.year, p.month);
    if m <= 2 {
        y -= 1;
        m += 12;
    }
    let a = y.div_euclid(100);
    let b = 2 - a + a.div_euclid(4);
    let x1 = (36525 * (y + 4716)).div_euclid(100);
    let x2 = (306_001 * (m + 1)).div_euclid(10_000);
    let days = ((x1 + x2 + p.day + b) as f64 - 1524.5) * MS_PER_DAY as f64;
    days as i64 + p.hour * 3_600_000 + p.minute * 60_000 + (p.second * 1000.0 + 0.5) as i64
}

/// [`to_jd_ms`] for a date produced by calendar arithmetic: years outside -4713..=9999
/// are out of range, as in SQLite.
fn calendar_jd(p: &Parts) -> Result<i64, String> {
    if !(-4713..=9999).contains(&p.year) {
        return Err("the date is outside the years -4713..9999".to_owned());
    }
    Ok(to_jd_ms(p))
}

fn valid(jd_ms: i64) -> bool {
    (0..=MAX_JD_MS).contains(&jd_ms)
}

/// A time value being evaluated.
struct Moment {
    jd_ms: i64,
    /// The date and time as written or as the last calendar modifier left them, when
    /// known. SQLite keeps these apart from `jd_ms`: `'2024-02-31', '+1 month'` works on
    /// February 31st and gives March 31st.
    ymd: Option<Parts>,
    /// Whether `ymd` is also what the result shows. A time without a date works on
    /// 2000-01-01 in calendar modifiers, but `'24:00'` shows as the next day.
    show_ymd: bool,
    /// A number that is out of range as a Julian day: only `unixepoch` or `auto` can
    /// make sense of it.
    out_of_range: bool,
    /// The numeric value it was given as, for the `unixepoch`, `julianday` and `auto`
    /// modifiers.
    raw: Option<f64>,
    subsec: bool,
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = s.get(at..at + n)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(part).ok()?.parse().ok()
}

/// `HH:MM[:SS[.fff]]` at the start of `s`: hours, minutes, seconds and the bytes read.
fn parse_hms(s: &[u8]) -> Option<(i64, i64, f64, usize)> {
    let hour = digits(s, 0, 2)?;
    if s.get(2) != Some(&b':') {
        return None;
    }
    let minute = digits(s, 3, 2)?;
    let mut at = 5;
    let mut second = 0.0;
    if s.get(at) == Some(&b':') {
        second = digits(s, at + 1, 2)? as f64;
        at += 3;
        if s.get(at) == Some(&b'.') && s.get(at + 1).is_some_and(u8::is_ascii_digit) {
            at += 1;
            let (mut digits, mut scale) = (0.0_f64, 1.0_f64);
            while let Some(d) = s.get(at).filter(|c| c.is_ascii_digit()) {
                digits = digits * 10.0 + f64::from(d - b'0');
                scale *= 10.0;
                at += 1;
            }
            // Below a millisecond the fraction is cut, never rounded up into the next
            // second, as SQLite does (`59.9996` stays in second 59).
            second += (digits / scale).min(0.999);
        }
    }
    if hour > 24 || minute > 59 || second >= 60.0 {
        return None;
    }
    Some((hour, minute, second, at))
}

/// An optional time zone after a time: `Z` or `[+-]HH:MM`, in minutes east of UTC, and
/// the bytes read. Only trailing spaces may follow.
fn parse_zone(s: &[u8]) -> Option<(i64, usize)> {
    let mut at = 0;
    while s.get(at) == Some(&b' ') {
        at += 1;
    }
    let zone = match s.get(at) {
        None => 0,
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let hours = digits(s, at + 1, 2)?;
            if s.get(at + 3) != Some(&b':') {
                return None;
            }
            let minutes = digits(s, at + 4, 2)?;
            if hours > 14 || minutes > 59 {
                return None;
            }
            at += 6;
            let offset = hours * 60 + minutes;
            if sign == b'-' { -offset } else { offset }
        }
        Some(_) => return None,
    };
    while s.get(at) == Some(&b' ') {
        at += 1;
    }
    (at == s.len()).then_some((zone, at))
}

/// A time value written as text: a date, a date and time, a time, or a number.
fn parse_text(text: &str, now: i64) -> Option<Moment> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Some(Moment {
            jd_ms: now,
            ymd: None,
            show_ymd: false,
            out_of_range: false,
            raw: None,
            subsec: false,
        });
    }
    let s = t.as_bytes();
    if let (Some(year), Some(b'-'), Some(month), Some(b'-'), Some(day)) = (
        digits(s, 0, 4),
        s.get(4),
        digits(s, 5, 2),
        s.get(7),
        digits(s, 8, 2),
    ) {
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let mut p = Parts {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0.0,
        };
        let mut rest = &s[10..];
        let mut zone = 0;
        if !rest.is_empty() {
            // A time follows after spaces or a 'T'.
            let mut at = 0;
            if rest[0] == b'T' {
                at = 1;
            } else {
                while rest.get(at) == Some(&b' ') {
                    at += 1;
                }
            }
            rest = &rest[at..];
            if !rest.is_empty() {
                let (hour, minute, second, read) = parse_hms(rest)?;
                p.hour = hour;
                p.minute = minute;
                p.second = second;
                zone = parse_zone(&rest[read..])?.0;
            } else if at == 1 {
                return None;
            }
        }
        return Some(Moment {
            jd_ms: to_jd_ms(&p) - zone * 60_000,
            ymd: (zone == 0).then_some(p),
            show_ymd: true,
            out_of_range: false,
            raw: None,
            subsec: false,
        });
    }
    if let Some((hour, minute, second, read)) = parse_hms(s) {
        let zone = parse_zone(&s[read..])?.0;
        let p = Parts {
            year: 2000,
            month: 1,
            day: 1,
            hour,
            minute,
            second,
        };
        return Some(Moment {
            jd_ms: to_jd_ms(&p) - zone * 60_000,
            ymd: (zone == 0).then_some(p),
            show_ymd: false,
            out_of_range: false,
            raw: None,
            subsec: false,
        });
    }
    let numeric = !t.is_empty()
        && t.bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E'));
    let number: f64 = if numeric {
        t.parse().ok()?
    } else {
        return None;
    };
    from_number(number)
}

/// A number is a Julian day number until a modifier says otherwise.
fn from_number(number: f64) -> Option<Moment> {
    if !number.is_finite() {
        return None;
    }
    let jd = number * MS_PER_DAY as f64 + 0.5;
    let out_of_range = !(0.0..=MAX_JD_MS as f64).contains(&jd);
    Some(Moment {
        jd_ms: if out_of_range { -1 } else { jd as i64 },
        ymd: None,
        show_ymd: false,
        out_of_range,
        raw: Some(number),
        subsec: false,
    })
}

fn local_offset_ms(jd_ms: i64, from_utc: bool) -> Result<i64, String> {
    let unix_ms = jd_ms - UNIX_EPOCH_JD_MS;
    let naive = gluesql_core::chrono::DateTime::from_timestamp_millis(unix_ms)
        .ok_or("time out of range")?
        .naive_utc();
    let seconds = if from_utc {
        Local
            .offset_from_utc_datetime(&naive)
            .fix()
            .local_minus_utc()
    } else {
        Local
            .offset_from_local_datetime(&naive)
            .earliest()
            .ok_or("time does not exist in the local time zone")?
            .fix()
            .local_minus_utc()
    };
    Ok(i64::from(seconds) * 1000)
}

/// Applies one modifier.
fn apply(m: &mut Moment, modifier: &str, first: bool) -> Result<(), String> {
    let lower = modifier.trim().to_ascii_lowercase();
    let keeps_calendar = lower.starts_with("start of") || lower == "subsec" || lower == "subsecond";
    if !keeps_calendar && lower != "auto" && lower != "julianday" {
        // Everything else works on (or replaces) the instant itself; see `shift` for the
        // calendar arithmetic of months and years.
        let calendar = m.ymd.take();
        let result = apply_inner(m, &lower, first, calendar);
        return result;
    }
    apply_inner(m, &lower, first, None)
}

fn apply_inner(
    m: &mut Moment,
    lower: &str,
    first: bool,
    calendar: Option<Parts>,
) -> Result<(), String> {
    let raw_first = if first { m.raw } else { None };
    match lower {
        "unixepoch" => {
            let raw = raw_first.ok_or("'unixepoch' must directly follow a numeric time value")?;
            let jd = raw * 1000.0 + UNIX_EPOCH_JD_MS as f64;
            if !(0.0..=MAX_JD_MS as f64).contains(&jd) {
                return Err("the Unix time is out of range".to_owned());
            }
            m.jd_ms = (jd + 0.5) as i64;
            m.out_of_range = false;
            return Ok(());
        }
        "julianday" => {
            raw_first.ok_or("'julianday' must directly follow a numeric time value")?;
            return Ok(());
        }
        "auto" => {
            // Only a number is reinterpreted; anything else is left as it is.
            if let Some(raw) = raw_first
                && !(0.0..5_373_484.5).contains(&raw)
            {
                return apply_inner(m, "unixepoch", true, None);
            }
            return Ok(());
        }
        "subsec" | "subsecond" => {
            m.subsec = true;
            return Ok(());
        }
        "localtime" => {
            m.jd_ms += local_offset_ms(m.jd_ms, true)?;
            return Ok(());
        }
        "utc" => {
            m.jd_ms -= local_offset_ms(m.jd_ms, false)?;
            return Ok(());
        }
        "start of day" | "start of month" | "start of year" => {
            let mut p = m.ymd.unwrap_or_else(|| parts(m.jd_ms));
            p.hour = 0;
            p.minute = 0;
            p.second = 0.0;
            if lower != "start of day" {
                p.day = 1;
            }
            if lower == "start of year" {
                p.month = 1;
            }
            m.jd_ms = calendar_jd(&p)?;
            m.ymd = Some(p);
            m.show_ymd = true;
            return Ok(());
        }
        _ => {}
    }
    if let Some(n) = lower.strip_prefix("weekday ") {
        let n: i64 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| (0..=6).contains(n))
            .ok_or("'weekday N' takes N from 0 (Sunday) to 6")?;
        // Day of the week with 0 = Sunday.
        let mut z = ((m.jd_ms + 129_600_000) / MS_PER_DAY) % 7;
        if z > n {
            z -= 7;
        }
        m.jd_ms += (n - z) * MS_PER_DAY;
        return Ok(());
    }
    shift(m, lower, calendar)
}

/// `±N unit`, `±HH:MM[:SS.fff]` or `±YYYY-MM-DD[ HH:MM[:SS.fff]]`.
fn shift(m: &mut Moment, modifier: &str, calendar: Option<Parts>) -> Result<(), String> {
    let current = |m: &Moment| calendar.unwrap_or_else(|| parts(m.jd_ms));
    let s = modifier.as_bytes();
    let (sign, body) = match s.first() {
        Some(b'-') => (-1, &s[1..]),
        Some(b'+') => (1, &s[1..]),
        _ => (1, s),
    };
    let explicit_sign = s.first().is_some_and(|c| *c == b'+' || *c == b'-');
    if explicit_sign && let Some((hour, minute, second, read)) = parse_hms(body) {
        if read != body.len() {
            return Err("a time shift is ±HH:MM[:SS.SSS]".to_owned());
        }
        let ms = hour * 3_600_000 + minute * 60_000 + (second * 1000.0 + 0.5) as i64;
        m.jd_ms += sign * ms;
        return Ok(());
    }
    if explicit_sign
        && let (Some(years), Some(b'-'), Some(months), Some(b'-'), Some(days)) = (
            digits(body, 0, 4),
            body.get(4),
            digits(body, 5, 2),
            body.get(7),
            digits(body, 8, 2),
        )
    {
        if months > 11 || days > 30 {
            return Err("a date shift is ±YYYY-MM-DD with MM ≤ 11 and DD ≤ 30".to_owned());
        }
        let mut p = current(m);
        p.year += sign * years;
        p.month += sign * months;
        let carry = (p.month - 1).div_euclid(12);
        p.year += carry;
        p.month -= carry * 12;
        m.jd_ms = calendar_jd(&p)? + sign * days * MS_PER_DAY;
        let rest = &body[10..];
        let rest = rest.strip_prefix(b" ").unwrap_or(rest);
        if !rest.is_empty() {
            let (hour, minute, second, read) =
                parse_hms(rest).ok_or("a date shift's time is HH:MM[:SS.SSS]")?;
            if read != rest.len() {
                return Err("unexpected text after the date shift".to_owned());
            }
            m.jd_ms += sign * (hour * 3_600_000 + minute * 60_000 + (second * 1000.0 + 0.5) as i64);
        }
        return Ok(());
    }
    // `N unit`.
    let text = modifier.trim();
    let split = text
        .find(|c: char| c.is_ascii_whitespace())
        .ok_or_else(unknown_modifier)?;
    let (number, unit) = text.split_at(split);
    let number = number.trim();
    let numeric = !number.is_empty()
        && number
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+'));
    let value: f64 = if numeric {
        number.parse().map_err(|_| unknown_modifier())?
    } else {
        return Err(unknown_modifier());
    };
    let unit = unit.trim();
    let unit = unit.strip_suffix('s').unwrap_or(unit);
    let rounder = if value < 0.0 { -0.5 } else { 0.5 };
    let per_unit_ms = match unit {
        "second" => 1000.0,
        "minute" => 60_000.0,
        "hour" => 3_600_000.0,
        "day" => MS_PER_DAY as f64,
        "month" | "year" => {
            let whole = value.trunc();
            if whole.abs() > 1.0e6 {
                return Err("the shift is out of range".to_owned());
            }
            let whole = whole as i64;
            let mut p = current(m);
            if unit == "month" {
                p.month += whole;
                let carry = (p.month - 1).div_euclid(12);
                p.year += carry;
                p.month -= carry * 12;
            } else {
                p.year += whole;
            }
            m.jd_ms = calendar_jd(&p)?;
            let fraction = value - value.trunc();
            if fraction != 0.0 {
                let days = if unit == "month" { 30.0 } else { 365.0 };
                m.jd_ms += (fraction * days * MS_PER_DAY as f64 + rounder) as i64;
            }
            return Ok(());
        }
        _ => return Err(unknown_modifier()),
    };
    let delta = value * per_unit_ms + rounder;
    if delta.abs() > 2.0 * MAX_JD_MS as f64 {
        return Err("the shift is out of range".to_owned());
    }
    m.jd_ms += delta as i64;
    Ok(())
}

fn unknown_modifier() -> String {
    "unknown modifier".to_owned()
}

fn time_value(arg: &TimeArg, now: i64) -> Option<Option<Moment>> {
    match arg {
        TimeArg::Null => Some(None),
        TimeArg::Integer(i) => from_number(*i as f64).map(Some),
        TimeArg::Real(r) => from_number(*r).map(Some),
        TimeArg::Text(t) => parse_text(t, now).map(Some),
    }
}

fn shown(arg: &TimeArg) -> String {
    match arg {
        TimeArg::Null => "NULL".to_owned(),
        TimeArg::Integer(i) => i.to_string(),
        TimeArg::Real(r) => r.to_string(),
        TimeArg::Text(t) => format!("'{t}'"),
    }
}

/// Evaluates `function(args...)` as SQLite does; `now` is the statement's time.
pub(crate) fn evaluate(
    function: TimeFunction,
    args: &[TimeArg],
    now: gluesql_core::chrono::DateTime<Utc>,
) -> Result<TimeValue, TimeError> {
    let name = function.name();
    let fail = |message: String| TimeError(format!("{name}(): {message}"));
    let (format, rest) = if function == TimeFunction::Strftime {
        match args.split_first() {
            Some((TimeArg::Null, _)) => return Ok(TimeValue::Null),
            Some((TimeArg::Text(f), rest)) => (Some(f.as_str()), rest),
            Some((other, _)) => {
                return Err(fail(format!(
                    "the format must be text, not {}",
                    shown(other)
                )));
            }
            None => return Err(fail("needs a format".to_owned())),
        }
    } else {
        (None, args)
    };
    let now_ms = now.timestamp_millis() + UNIX_EPOCH_JD_MS;
    let offset = usize::from(format.is_some()) + 1;
    let mut moment = match rest.first() {
        None => Moment {
            jd_ms: now_ms,
            ymd: None,
            show_ymd: false,
            out_of_range: false,
            raw: None,
            subsec: false,
        },
        Some(arg) => match time_value(arg, now_ms) {
            Some(Some(moment)) => moment,
            Some(None) => return Ok(TimeValue::Null),
            None => {
                return Err(fail(format!(
                    "{} (argument {offset}) is not a time value; expected e.g. 'YYYY-MM-DD HH:MM:SS', 'now' or a number",
                    shown(arg)
                )));
            }
        },
    };
    for (i, modifier) in rest.iter().enumerate().skip(1) {
        let text = match modifier {
            TimeArg::Null => return Ok(TimeValue::Null),
            TimeArg::Text(t) => t,
            other => {
                return Err(fail(format!(
                    "modifier {} (argument {}) must be text",
                    shown(other),
                    offset + i
                )));
            }
        };
        let reinterprets = i == 1 && {
            let lower = text.trim().to_ascii_lowercase();
            lower == "unixepoch" || lower == "auto"
        };
        if moment.out_of_range && !reinterprets {
            return Err(fail(format!(
                "{} (argument {offset}) is out of range as a Julian day number",
                shown(&rest[0])
            )));
        }
        apply(&mut moment, text, i == 1).map_err(|why| {
            fail(format!(
                "{why}: modifier '{text}' (argument {}); expected e.g. '+1 day', '-30 days', 'start of month', 'weekday 0', 'unixepoch'",
                offset + i
            ))
        })?;
    }
    if !valid(moment.jd_ms) {
        return Err(fail("the result is outside the years 0000-9999".to_owned()));
    }
    if rest.len() <= 1 && moment.ymd.is_some_and(|p| p.day > 28) {
        // A date alone is normalized (`'2024-02-31'` is March 2nd).
        moment.ymd = None;
    }
    let p = match moment.ymd.filter(|_| moment.show_ymd) {
        Some(ymd) => Parts {
            hour: ymd.hour,
            minute: ymd.minute,
            second: ymd.second,
            ..ymd
        },
        None => parts(moment.jd_ms),
    };
    let date = format!("{}-{:02}-{:02}", year4(p.year), p.month, p.day);
    let time = if moment.subsec {
        format!("{:02}:{:02}:{}", p.hour, p.minute, seconds3(p.second))
    } else {
        format!("{:02}:{:02}:{:02}", p.hour, p.minute, p.second as i64)
    };
    let unix_ms = moment.jd_ms - UNIX_EPOCH_JD_MS;
    Ok(match function {
        TimeFunction::Date => TimeValue::Text(date),
        TimeFunction::Time => TimeValue::Text(time),
        TimeFunction::DateTime => TimeValue::Text(format!("{date} {time}")),
        TimeFunction::JulianDay => TimeValue::Real(moment.jd_ms as f64 / MS_PER_DAY as f64),
        TimeFunction::UnixEpoch if moment.subsec => TimeValue::Real(unix_ms as f64 / 1000.0),
        TimeFunction::UnixEpoch => TimeValue::Integer(unix_seconds(unix_ms)),
        TimeFunction::Strftime => {
            TimeValue::Text(strftime(format.unwrap_or_default(), moment.jd_ms, &p).map_err(fail)?)
        }
    })
}

/// Seconds as `SS.SSS`, rounding half away from zero as SQLite's printf does (Rust's
/// formatting rounds an exact tie like `0.0625` to even).
fn seconds3(second: f64) -> String {
    let millis = (second * 1000.0).round() as i64;
    format!("{:02}.{:03}", millis / 1000, millis % 1000)
}

/// A year as SQLite prints it: four digits, with a minus sign before them if negative.
fn year4(year: i64) -> String {
    if year < 0 {
        format!("-{:04}", -year)
    } else {
        format!("{year:04}")
    }
}

/// Whole seconds of a Unix time in milliseconds, rounded down as SQLite does.
fn unix_seconds(unix_ms: i64) -> i64 {
    unix_ms.div_euclid(1000)
}

/// `%.16g`, as SQLite prints `%J`.
fn g16(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = usize::try_from((15 - magnitude).max(0)).unwrap_or(0);
    let mut text = format!("{value:.decimals$}");
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    text
}

fn strftime(format: &str, jd_ms: i64, p: &Parts) -> Result<String, String> {
    let mut out = String::with_capacity(format.len() + 8);
    let start_of_year = to_jd_ms(&Parts {
        year: p.year,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0.0,
    });
    let day_of_year = (jd_ms - start_of_year) / MS_PER_DAY; // 0-based
    // 0 = Monday.
    let monday_based = ((jd_ms + 43_200_000) / MS_PER_DAY) % 7;
    let sunday_based = (monday_based + 1) % 7;
    let iso = NaiveDate::from_ymd_opt(
        i32::try_from(p.year).unwrap_or(0),
        u32::try_from(p.month).unwrap_or(1),
        u32::try_from(p.day).unwrap_or(1),
    )
    .map(|d| d.iso_week());
    let twelve = if p.hour % 12 == 0 { 12 } else { p.hour % 12 };
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars
            .next()
            .ok_or("the format ends with a lone %".to_owned())?;
        // Writing to a String cannot fail.
        let _ = match spec {
            'd' => write!(out, "{:02}", p.day),
            'e' => write!(out, "{:2}", p.day),
            'f' => write!(out, "{}", seconds3(p.second.min(59.999))),
            'F' => write!(out, "{:04}-{:02}-{:02}", p.year, p.month, p.day),
            'H' => write!(out, "{:02}", p.hour),
            'k' => write!(out, "{:2}", p.hour),
            'I' => write!(out, "{twelve:02}"),
            'l' => write!(out, "{twelve:2}"),
            'j' => write!(out, "{:03}", day_of_year + 1),
            'J' => write!(out, "{}", g16(jd_ms as f64 / MS_PER_DAY as f64)),
            'm' => write!(out, "{:02}", p.month),
            'M' => write!(out, "{:02}", p.minute),
            'p' => write!(out, "{}", if p.hour >= 12 { "PM" } else { "AM" }),
            'P' => write!(out, "{}", if p.hour >= 12 { "pm" } else { "am" }),
            'R' => write!(out, "{:02}:{:02}", p.hour, p.minute),
            's' => write!(out, "{}", unix_seconds(jd_ms - UNIX_EPOCH_JD_MS)),
            'S' => write!(out, "{:02}", p.second as i64),
            'T' => write!(out, "{:02}:{:02}:{:02}", p.hour, p.minute, p.second as i64),
            'u' => write!(out, "{}", monday_based + 1),
            'w' => write!(out, "{sunday_based}"),
            'W' => write!(out, "{:02}", (day_of_year + 7 - monday_based) / 7),
            'U' => write!(out, "{:02}", (day_of_year + 7 - sunday_based) / 7),
            'V' => write!(out, "{:02}", iso.map_or(0, |w| w.week())),
            'G' => write!(out, "{:04}", iso.map_or(p.year, |w| i64::from(w.year()))),
            'g' => write!(
                out,
                "{:02}",
                iso.map_or(p.year, |w| i64::from(w.year())) % 100
            ),
            'Y' => write!(out, "{:04}", p.year),
            '%' => write!(out, "%"),
            other => return Err(format!("unknown format %{other}")),
        };
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at() -> gluesql_core::chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 17, 13, 45, 10).unwrap()
    }

    fn text(function: TimeFunction, args: &[&str]) -> String {
        let args: Vec<TimeArg> = args
            .iter()
            .map(|a| TimeArg::Text((*a).to_owned()))
            .collect();
        match evaluate(function, &args, at()).unwrap() {
            TimeValue::Text(t) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn examples_from_the_sqlite_documentation() {
        use TimeFunction::*;
        assert_eq!(text(Date, &["now"]), "2024-05-17");
        assert_eq!(text(DateTime, &[]), "2024-05-17 13:45:10");
        assert_eq!(
            text(Date, &["now", "start of month", "+1 month", "-1 day"]),
            "2024-05-31"
        );
        assert_eq!(
            text(DateTime, &["2024-01-31", "+1 month"]),
            "2024-03-02 00:00:00"
        );
        assert_eq!(text(Date, &["2024-02-31"]), "2024-03-02");
        assert_eq!(
            text(Date, &["now", "start of year", "+9 months", "weekday 2"]),
            "2024-10-01"
        );
        assert_eq!(text(Time, &["12:00", "+1 hour", "+30 minutes"]), "13:30:00");
        assert_eq!(
            text(DateTime, &["2024-05-17T13:45:10Z"]),
            "2024-05-17 13:45:10"
        );
        assert_eq!(
            text(DateTime, &["2024-05-17 13:45:10+02:00"]),
            "2024-05-17 11:45:10"
        );
        assert_eq!(
            text(
                DateTime,
                &["2024-05-17 13:45:10", "-30 days", "start of day"]
            ),
            "2024-04-17 00:00:00"
        );
        assert_eq!(
            text(DateTime, &["2024-05-17 13:45:10.5", "subsec"]),
            "2024-05-17 13:45:10.500"
        );
        assert_eq!(
            text(DateTime, &["2024-05-17", "+01:30"]),
            "2024-05-17 01:30:00"
        );
        assert_eq!(
            text(DateTime, &["2024-05-17", "-0001-02-03"]),
            "2023-03-14 00:00:00"
        );
        assert_eq!(
            text(Strftime, &["%Y-%m-%d %H:%M:%f", "2024-05-17 13:45:10.25"]),
            "2024-05-17 13:45:10.250"
        );
        assert_eq!(
            text(Strftime, &["%j %w %u %W %U %V %G", "2024-12-31"]),
            "366 2 2 53 52 01 2025"
        );
        assert_eq!(text(Strftime, &["%s", "2024-01-01"]), "1704067200");
        assert_eq!(
            text(Strftime, &["%I %l %p %P %e %k", "2024-05-07 00:05"]),
            "12 12 AM am  7  0"
        );
        let v = evaluate(
            TimeFunction::DateTime,
            &[
                TimeArg::Integer(1_700_000_000),
                TimeArg::Text("unixepoch".into()),
            ],
            at(),
        )
        .unwrap();
        assert_eq!(v, TimeValue::Text("2023-11-14 22:13:20".into()));
        let v = evaluate(
            TimeFunction::JulianDay,
            &[TimeArg::Text("2000-01-01 12:00:00".into())],
            at(),
        )
        .unwrap();
        assert_eq!(v, TimeValue::Real(2_451_545.0));
        let v = evaluate(
            TimeFunction::UnixEpoch,
            &[TimeArg::Text("2024-01-01".into())],
            at(),
        )
        .unwrap();
        assert_eq!(v, TimeValue::Integer(1_704_067_200));
    }

    #[test]
    fn null_gives_null_and_garbage_gives_an_error_naming_it() {
        assert_eq!(
            evaluate(TimeFunction::Date, &[TimeArg::Null], at()).unwrap(),
            TimeValue::Null
        );
        let args = [TimeArg::Text("now".into()), TimeArg::Null];
        assert_eq!(
            evaluate(TimeFunction::Date, &args, at()).unwrap(),
            TimeValue::Null
        );
        let args = [
            TimeArg::Text("now".into()),
            TimeArg::Text("-30 dayz".into()),
        ];
        let err = evaluate(TimeFunction::DateTime, &args, at()).unwrap_err();
        assert!(
            err.0.contains("'-30 dayz'") && err.0.contains("argument 2"),
            "{err}"
        );
        let err = evaluate(
            TimeFunction::Date,
            &[TimeArg::Text("yesterday".into())],
            at(),
        )
        .unwrap_err();
        assert!(err.0.contains("'yesterday'"), "{err}");
        let args = [TimeArg::Text("%Q".into()), TimeArg::Text("now".into())];
        assert!(evaluate(TimeFunction::Strftime, &args, at()).is_err());
        let args = [
            TimeArg::Text("9999-12-31".into()),
            TimeArg::Text("+1 day".into()),
        ];
        assert!(evaluate(TimeFunction::Date, &args, at()).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(value in ".{0,24}", modifier in ".{0,24}", n in any::<i64>(), r in any::<f64>()) {
            for function in [TimeFunction::Date, TimeFunction::DateTime, TimeFunction::JulianDay, TimeFunction::UnixEpoch, TimeFunction::Strftime] {
                let _ = evaluate(function, &[TimeArg::Text(value.clone()), TimeArg::Text(modifier.clone())], at());
                let _ = evaluate(function, &[TimeArg::Integer(n), TimeArg::Text("unixepoch".into())], at());
                let _ = evaluate(function, &[TimeArg::Real(r), TimeArg::Text(modifier.clone())], at());
            }
        }

        #[test]
        fn unix_time_round_trips(seconds in -62_135_596_800i64..253_402_300_799) {
            let back = evaluate(TimeFunction::DateTime, &[TimeArg::Integer(seconds), TimeArg::Text("unixepoch".into())], at()).unwrap();
            let TimeValue::Text(back) = back else { panic!() };
            let again = evaluate(TimeFunction::UnixEpoch, &[TimeArg::Text(back)], at()).unwrap();
            prop_assert_eq!(again, TimeValue::Integer(seconds));
        }
    }
}
