//! Property tests for the calculator: no input panics, and exact arithmetic is exact.

use llmos_tools::calc::{calculate, Datum, Value};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::Zero;
use proptest::prelude::*;

fn exact(expr: &str) -> Option<BigRational> {
    match calculate(expr, 20).ok()?.value {
        Datum::Num(Value::Exact(r)) => Some(r),
        _ => None,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date, by Howard Hinnant's
/// `days_from_civil`: the reference the calculator's dates are checked against.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A valid date between the years 1000 and 9999, as `YYYY-MM-DD` and (y, m, d).
fn a_date() -> impl Strategy<Value = (String, (i64, i64, i64))> {
    (1000i64..10_000, 1i64..13, 1i64..32).prop_map(|(y, m, d)| {
        let d = d.min(days_in_month(y, m));
        (format!("{y:04}-{m:02}-{d:02}"), (y, m, d))
    })
}

/// A rational literal as the model would write it: `(-12/7)`, `3.25`, `-0.5`.
fn rational() -> impl Strategy<Value = (String, BigRational)> {
    prop_oneof![
        (any::<i64>(), 1..i64::MAX)
            .prop_map(|(n, d)| (format!("({n}/{d})"), BigRational::new(n.into(), d.into()))),
        (any::<i32>(), 0u32..12).prop_map(|(n, k)| {
            let s = format!("{}{}", if n < 0 { "-" } else { "" }, {
                let a = n.unsigned_abs().to_string();
                let k = (k as usize).min(a.len());
                let (i, f) = a.split_at(a.len() - k);
                if k == 0 {
                    i.to_string()
                } else {
                    format!("{}.{}", if i.is_empty() { "0" } else { i }, f)
                }
            });
            let r = BigRational::new(
                n.into(),
                BigInt::from(10).pow(k.min(n.unsigned_abs().to_string().len() as u32)),
            );
            (format!("({s})"), r)
        }),
    ]
}

/// A random expression tree with its value computed directly (the reference).
fn tree() -> impl Strategy<Value = (String, Option<BigRational>)> {
    let leaf = rational().prop_map(|(s, r)| (s, Some(r)));
    leaf.prop_recursive(4, 24, 2, |inner| {
        (inner.clone(), inner, 0..4usize).prop_map(|((sa, a), (sb, b), op)| {
            let sym = ["+", "-", "*", "/"][op];
            let v = match (a, b) {
                (Some(a), Some(b)) => match op {
                    0 => Some(a + b),
                    1 => Some(a - b),
                    2 => Some(a * b),
                    _ if b.is_zero() => None,
                    _ => Some(a / b),
                },
                _ => None,
            };
            (format!("({sa} {sym} {sb})"), v)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_input_never_panics(s in "[0-9a-z+*/%^!(),. \\-_eE]{0,40}") {
        let _ = calculate(&s, 30);
    }

    #[test]
    fn arbitrary_unicode_never_panics(s in "\\PC{0,30}") {
        let _ = calculate(&s, 30);
    }

    #[test]
    fn date_shaped_input_never_panics(s in "[0-9\\-: T+*/()a-z_,]{0,40}") {
        let _ = calculate(&s, 30);
    }

    #[test]
    fn days_between_dates_match_the_reference((sa, a) in a_date(), (sb, b) in a_date()) {
        let want = days_from_civil(b.0, b.1, b.2) - days_from_civil(a.0, a.1, a.2);
        prop_assert_eq!(exact(&format!("days({sb} - {sa})")), Some(BigRational::from_integer(want.into())));
        // and a date plus that many days is the other date
        let moved = calculate(&format!("{sa} + {want}"), 20).map(|a| a.text()).unwrap_or_default();
        prop_assert!(moved.starts_with(&sb), "{} + {} = {}", sa, want, moved);
    }

    #[test]
    fn add_then_subtract_is_identity((sa, a) in rational(), (sb, _) in rational()) {
        prop_assert_eq!(exact(&format!("{sa} + {sb} - {sb}")), Some(a));
    }

    #[test]
    fn multiply_then_divide_is_identity((sa, a) in rational(), (sb, b) in rational()) {
        prop_assume!(!b.is_zero());
        prop_assert_eq!(exact(&format!("{sa} * {sb} / {sb}")), Some(a));
    }

    #[test]
    fn trees_match_direct_rational_arithmetic((s, want) in tree()) {
        match want {
            Some(w) => prop_assert_eq!(exact(&s), Some(w)),
            None => {
                let e = calculate(&s, 20).err().map(|e| e.to_string()).unwrap_or_default();
                prop_assert!(e.contains("division by zero"), "{}: {}", s, e);
            }
        }
    }

    #[test]
    fn integer_powers_are_exact(b in -50i64..50, e in 0u32..60) {
        prop_assert_eq!(exact(&format!("({b})**{e}")), Some(BigRational::from_integer(BigInt::from(b).pow(e))));
    }
}
