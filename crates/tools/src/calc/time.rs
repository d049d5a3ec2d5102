//! Dates, times and durations in the calculator: `2031-11-02 - 1987-03-14`
//! is 16304 days, `2024-02-29 + 1000` a date, `add_months(2023-01-31, 17)`
//! the last day of June 2024. Small models send date questions to the
//! calculator; answering them exactly beats refusing (calendar rules are
//! chrono's: proleptic Gregorian, no time zones, no leap seconds).
//!
//! A date is a [`Moment`]; a duration is an exact number of seconds. A plain
//! number added to a date counts days.

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime, TimeDelta};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{ToPrimitive, Zero};

use super::eval::{Datum, Evaluator, Value};
use super::parse::{BinOp, Expr, Span};
use super::CalcError;

/// The date functions (listed in errors and in the tool description).
pub const FUNCTIONS: &[&str] = &[
    "date",
    "today",
    "weekday",
    "day_of_year",
    "iso_week",
    "add_months",
    "add_years",
    "months_between",
    "years_between",
    "weeks",
    "days",
    "hours",
    "minutes",
    "seconds",
];

/// A date, or a date and time of day (no time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub at: NaiveDateTime,
    /// Written or computed with a time of day; shown with one.
    pub has_time: bool,
}

impl Moment {
    fn date(d: NaiveDate) -> Moment {
        Moment {
            at: d.and_time(chrono::NaiveTime::MIN),
            has_time: false,
        }
    }

    /// `2026-11-25 (Wednesday, day 329 of 2026, ISO week 48)`.
    pub fn text(&self) -> String {
        let d = self.at.date();
        let when = if self.has_time {
            self.at.format("%Y-%m-%d %H:%M:%S").to_string()
        } else {
            d.format("%Y-%m-%d").to_string()
        };
        let w = d.iso_week();
        let week = if w.year() == d.year() {
            format!("ISO week {}", w.week())
        } else {
            format!("ISO week {} of {}", w.week(), w.year())
        };
        format!(
            "{when} ({}, day {} of {}, {week})",
            d.format("%A"),
            d.ordinal(),
            d.year()
        )
    }
}

const DAY: i64 = 86_400;

/// A duration of `secs` seconds: `16304 days`, or `2 days 09:25:30 = 206730 seconds`.
pub fn duration_text(secs: &BigRational, digits: usize) -> String {
    let whole = secs.is_integer().then(|| secs.numer().to_i64()).flatten();
    let Some(s) = whole else {
        let n = super::Answer {
            value: Datum::Num(Value::Exact(secs.clone())),
            digits,
        };
        return format!("{} seconds", n.text());
    };
    let sign = if s < 0 { "-" } else { "" };
    let a = s.unsigned_abs();
    let (days, rest) = (a / DAY as u64, a % DAY as u64);
    let plural = |n: u64, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    if rest == 0 {
        return format!("{sign}{}", plural(days, "day"));
    }
    let hms = format!("{:02}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60);
    let day_part = if days > 0 {
        format!("{} ", plural(days, "day"))
    } else {
        String::new()
    };
    format!("{sign}{day_part}{hms} = {s} seconds")
}

fn secs(n: i64) -> BigRational {
    BigRational::from_integer(BigInt::from(n))
}

impl Evaluator<'_> {
    pub(super) fn date_literal(&self, text: &str, span: Span) -> Result<Moment, CalcError> {
        let t = text.replacen('T', " ", 1);
        let parsed = match t.len() {
            10 => NaiveDate::parse_from_str(&t, "%Y-%m-%d").map(Moment::date),
            16 => NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M")
                .map(|at| Moment { at, has_time: true }),
            _ => NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S")
                .map(|at| Moment { at, has_time: true }),
        };
        parsed.map_err(|_| {
            self.err(
                span,
                format!("'{text}' is not a valid date or time (YYYY-MM-DD, optionally HH:MM or HH:MM:SS)"),
            )
        })
    }

    fn shift(&self, m: Moment, by: &BigRational, span: Span) -> Result<Datum, CalcError> {
        if !by.is_integer() {
            return Err(self.err(
                span,
                format!("dates move by whole seconds; {by} seconds is not one"),
            ));
        }
        let s = by.numer().to_i64().unwrap_or(i64::MAX);
        let at = TimeDelta::try_seconds(s)
            .and_then(|d| m.at.checked_add_signed(d))
            .ok_or_else(|| self.err(span, "the date is out of range (years ±262143)".into()))?;
        Ok(Datum::Date(Moment {
            at,
            has_time: m.has_time || s % DAY != 0,
        }))
    }

    fn exact(&self, v: &Value, span: Span, what: &str) -> Result<BigRational, CalcError> {
        match v {
            Value::Exact(r) => Ok(r.clone()),
            Value::Approx(x) => Err(self.err(
                span,
                format!("{what} needs an exact number, got the approximate value {x}"),
            )),
        }
    }

    /// `x op y` where at least one side is a date, duration or name.
    pub(super) fn time_binary(
        &self,
        op: BinOp,
        x: Datum,
        y: Datum,
        span: Span,
    ) -> Result<Datum, CalcError> {
        use Datum::{Date, Duration, Num};
        let days = |v: &Value| -> Result<BigRational, CalcError> {
            Ok(self.exact(v, span, "a number of days")? * secs(DAY))
        };
        let d = match (op, x, y) {
            (BinOp::Sub, Date(a), Date(b)) => {
                Duration(secs(a.at.signed_duration_since(b.at).num_seconds()))
            }
            (BinOp::Add, Date(m), Duration(s)) | (BinOp::Add, Duration(s), Date(m)) => {
                return self.shift(m, &s, span)
            }
            (BinOp::Sub, Date(m), Duration(s)) => return self.shift(m, &-s, span),
            (BinOp::Add, Date(m), Num(n)) | (BinOp::Add, Num(n), Date(m)) => {
                return self.shift(m, &days(&n)?, span)
            }
            (BinOp::Sub, Date(m), Num(n)) => return self.shift(m, &-days(&n)?, span),
            (BinOp::Add, Duration(a), Duration(b)) => Duration(a + b),
            (BinOp::Sub, Duration(a), Duration(b)) => Duration(a - b),
            (BinOp::Mul, Duration(a), Num(n)) | (BinOp::Mul, Num(n), Duration(a)) => {
                Duration(a * self.exact(&n, span, "scaling a duration")?)
            }
            (BinOp::Div, Duration(a), Num(n)) => {
                let n = self.exact(&n, span, "dividing a duration")?;
                if n.is_zero() {
                    return Err(self.err(span, "division by zero".into()));
                }
                Duration(a / n)
            }
            (BinOp::Div | BinOp::FloorDiv, Duration(a), Duration(b)) => {
                if b.is_zero() {
                    return Err(self.err(span, "division by a zero duration".into()));
                }
                let q = a / b;
                Num(Value::Exact(if op == BinOp::FloorDiv {
                    q.floor()
                } else {
                    q
                }))
            }
            (BinOp::Mod, Duration(a), Duration(b)) => {
                if b.is_zero() {
                    return Err(self.err(span, "modulo by a zero duration".into()));
                }
                let q = (&a / &b).floor();
                Duration(a - b * q)
            }
            (op, x, y) => {
                let hint = match (&x, &y) {
                    (Duration(_), Num(_)) | (Num(_), Duration(_)) => {
                        " (say which unit: days(3), hours(3), ...)"
                    }
                    (Date(_), Date(_)) => " (subtract them for the time between)",
                    _ => "",
                };
                return Err(self.err(
                    span,
                    format!(
                        "{} {} {} is not defined{hint}",
                        x.kind(),
                        op_word(op),
                        y.kind()
                    ),
                ));
            }
        };
        if let Duration(s) = &d {
            self.check_size(Value::Exact(s.clone()), span)?;
        }
        Ok(d)
    }

    pub(super) fn time_call(
        &self,
        f: &str,
        v: Vec<Datum>,
        args: &[Expr],
        span: Span,
    ) -> Result<Datum, CalcError> {
        let arity = |lo: usize, hi: usize| -> Result<(), CalcError> {
            if (lo..=hi).contains(&v.len()) {
                return Ok(());
            }
            let n = if lo == hi {
                format!("{lo}")
            } else {
                format!("{lo} to {hi}")
            };
            Err(self.err(
                span,
                format!("{f}() takes {n} argument(s), got {}", v.len()),
            ))
        };
        let date_arg = |i: usize| -> Result<Moment, CalcError> {
            match &v[i] {
                Datum::Date(m) => Ok(*m),
                d => Err(self.err(
                    args[i].span,
                    format!(
                        "{f}() needs a date (YYYY-MM-DD) as argument {}, got {}",
                        i + 1,
                        d.kind()
                    ),
                )),
            }
        };
        let int_arg = |i: usize| -> Result<i64, CalcError> {
            let bad = || {
                self.err(
                    args[i].span,
                    format!(
                        "{f}() needs an integer as argument {}, got {}",
                        i + 1,
                        v[i].kind()
                    ),
                )
            };
            match &v[i] {
                Datum::Num(Value::Exact(r)) if r.is_integer() => r.numer().to_i64().ok_or_else(bad),
                _ => Err(bad()),
            }
        };
        let num = |n: i64| Datum::Num(Value::int(n));
        let out_of_range = || self.err(span, format!("{f}(): the date is out of range"));
        Ok(match f {
            "date" => {
                arity(3, 6)?;
                let p = (0..v.len()).map(int_arg).collect::<Result<Vec<_>, _>>()?;
                let valid = NaiveDate::from_ymd_opt(
                    i32::try_from(p[0]).unwrap_or(i32::MAX),
                    u32::try_from(p[1]).unwrap_or(0),
                    u32::try_from(p[2]).unwrap_or(0),
                )
                .and_then(|d| {
                    let t = |i: usize| u32::try_from(*p.get(i).unwrap_or(&0)).ok();
                    d.and_hms_opt(t(3)?, t(4)?, t(5)?)
                })
                .ok_or_else(|| {
                    self.err(
                        span,
                        format!(
                            "date({}) is not a valid date or time",
                            p.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
                        ),
                    )
                })?;
                Datum::Date(Moment {
                    at: valid,
                    has_time: p.len() > 3,
                })
            }
            "today" => {
                arity(0, 0)?;
                Datum::Date(Moment::date(chrono::Local::now().date_naive()))
            }
            "weekday" => {
                arity(1, 1)?;
                Datum::Text(date_arg(0)?.at.format("%A").to_string())
            }
            "day_of_year" => {
                arity(1, 1)?;
                num(i64::from(date_arg(0)?.at.ordinal()))
            }
            "iso_week" => {
                arity(1, 1)?;
                num(i64::from(date_arg(0)?.at.iso_week().week()))
            }
            "add_months" | "add_years" => {
                arity(2, 2)?;
                let m = date_arg(0)?;
                let n = int_arg(1)?;
                let months = if f == "add_years" {
                    n.checked_mul(12)
                } else {
                    Some(n)
                };
                let at = months
                    .and_then(|n| add_months(m.at, n))
                    .ok_or_else(out_of_range)?;
                Datum::Date(Moment { at, ..m })
            }
            "months_between" | "years_between" => {
                arity(2, 2)?;
                let n =
                    months_between(date_arg(0)?.at, date_arg(1)?.at).ok_or_else(out_of_range)?;
                num(if f == "years_between" { n / 12 } else { n })
            }
            // a number of units → a duration; a duration → its number of units
            _ => {
                arity(1, 1)?;
                let unit = match f {
                    "weeks" => 7 * DAY,
                    "days" => DAY,
                    "hours" => 3600,
                    "minutes" => 60,
                    _ => 1,
                };
                match &v[0] {
                    Datum::Num(n) => {
                        let s = self.exact(n, args[0].span, f)? * secs(unit);
                        self.check_size(Value::Exact(s.clone()), span)?;
                        Datum::Duration(s)
                    }
                    Datum::Duration(s) => Datum::Num(Value::Exact(s / secs(unit))),
                    d => {
                        return Err(self.err(
                            args[0].span,
                            format!(
                                "{f}() takes a number (giving a duration) or a duration (giving a number), not {}",
                                d.kind()
                            ),
                        ))
                    }
                }
            }
        })
    }
}

fn op_word(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::FloorDiv => "//",
        BinOp::Mod => "%",
        BinOp::Pow => "**",
    }
}

/// `at` moved by `n` calendar months; a day past the end of the target month
/// becomes its last day (2023-01-31 + 1 month = 2023-02-28).
fn add_months(at: NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
    let m = Months::new(u32::try_from(n.unsigned_abs()).ok()?);
    if n >= 0 {
        at.checked_add_months(m)
    } else {
        at.checked_sub_months(m)
    }
}

/// Whole calendar months from `a` to `b` (negative when `b` is earlier), as
/// spreadsheet DATEDIF and dateutil's relativedelta count them: an age in
/// years is `months_between(birth, day) / 12`.
fn months_between(a: NaiveDateTime, b: NaiveDateTime) -> Option<i64> {
    let mut n = i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month());
    if n > 0 && add_months(a, n)? > b {
        n -= 1;
    } else if n < 0 && add_months(a, n)? < b {
        n += 1;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::super::calculate;

    fn calc(s: &str) -> String {
        match calculate(s, 10) {
            Ok(a) => a.text(),
            Err(e) => format!("ERROR {e}"),
        }
    }

    /// Expected values computed with Python's datetime (and dateutil's
    /// relativedelta for months), e.g. `(date(2031,11,2) - date(1987,3,14)).days`.
    #[test]
    fn date_arithmetic_matches_python() {
        assert_eq!(calc("2031-11-02 - 1987-03-14"), "16304 days");
        assert_eq!(calc("2026-07-04 - 2025-12-25"), "191 days");
        assert_eq!(calc("1987-03-14 - 1987-03-15"), "-1 day");
        assert_eq!(
            calc("2024-02-29 + 1000"),
            "2026-11-25 (Wednesday, day 329 of 2026, ISO week 48)"
        );
        assert!(calc("2030-01-15 - 250").starts_with("2029-05-10 (Thursday"));
        assert!(calc("2036-01-01 + 299").starts_with("2036-10-26 "));
        assert!(calc("2047-09-13").starts_with("2047-09-13 (Friday, day 256 of 2047"));
        assert!(calc("1823-11-05").starts_with("1823-11-05 (Wednesday"));
        assert_eq!(
            calc("2027-01-01"),
            "2027-01-01 (Friday, day 1 of 2027, ISO week 53 of 2026)"
        );
        assert_eq!(calc("weekday(2047-09-13)"), "Friday");
        assert_eq!(calc("iso_week(2027-01-01)"), "53");
        assert_eq!(calc("day_of_year(2024-12-31)"), "366");
        assert!(calc("add_months(2023-01-31, 17)").starts_with("2024-06-30 "));
        assert!(calc("add_months(2024-03-31, -1)").starts_with("2024-02-29 "));
        assert!(calc("add_years(2024-02-29, 1)").starts_with("2025-02-28 "));
        assert_eq!(calc("years_between(1958-08-29, 2025-08-28)"), "66");
        assert_eq!(calc("years_between(1958-08-29, 2025-08-29)"), "67");
        assert_eq!(calc("months_between(2023-01-31, 2023-02-28)"), "1");
        assert_eq!(calc("months_between(2025-08-28, 1958-08-29)"), "-803");
        assert_eq!(
            calc("2024-03-12 17:40:30 - 2024-03-10 08:15:00"),
            "2 days 09:25:30 = 206730 seconds"
        );
        assert_eq!(
            calc("seconds(2024-03-12 17:40:30 - 2024-03-10T08:15)"),
            "206730"
        );
        assert_eq!(
            calc("days(2031-11-02 - 1987-03-14) / 7"),
            "2329 + 1/7 exactly (= 16304/7 = 2329.(142857), the digits in parentheses repeating forever)"
        );
        assert!(calc("2024-03-10 08:15 + hours(36)").starts_with("2024-03-11 20:15:00 (Monday"));
        assert_eq!(
            calc("(2024-01-02 - 2024-01-01) * 3 + hours(1)"),
            "3 days 01:00:00 = 262800 seconds"
        );
        assert_eq!(calc("weeks(2)"), "14 days");
        assert_eq!(calc("(2025-01-01 - 2024-01-01) / days(1)"), "366");
        assert!(calc("date(2024, 2, 29) + 1").starts_with("2024-03-01 "));
    }

    #[test]
    fn date_errors_say_what_to_do() {
        let e = calc("2023-02-30 + 1");
        assert!(e.contains("'2023-02-30' is not a valid date"), "{e}");
        let e = calc("2024-01-01 + 2024-01-02");
        assert!(e.contains("a date + a date is not defined"), "{e}");
        let e = calc("(2024-01-02 - 2024-01-01) + 3");
        assert!(e.contains("days(3)"), "{e}");
        let e = calc("sqrt(2024-01-01)");
        assert!(e.contains("sqrt takes numbers, not a date"), "{e}");
        let e = calc("2024-01-01 + 0.5");
        assert!(
            calc("2024-01-01 + 0.5").starts_with("2024-01-01 12:00:00"),
            "{e}"
        );
        let e = calc("2024-01-01 + 1/7");
        assert!(e.contains("whole seconds"), "{e}");
        let e = calc("2024-01-01 + 10**20");
        assert!(e.contains("out of range"), "{e}");
        let e = calc("add_months(2024-01-01, 1.5)");
        assert!(e.contains("integer"), "{e}");
        let e = calc("weekday(3)");
        assert!(e.contains("needs a date"), "{e}");
        let e = calc("-2024-01-01");
        assert!(e.contains("cannot be negated"), "{e}");
        let e = calc("2024-01-01 + pi");
        assert!(e.contains("exact"), "{e}");
    }
}
