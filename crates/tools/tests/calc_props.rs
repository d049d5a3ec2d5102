//! Property tests for the calculator: no input panics, and exact arithmetic is exact.

use llmos_tools::calc::{calculate, Value};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::Zero;
use proptest::prelude::*;

fn exact(expr: &str) -> Option<BigRational> {
    match calculate(expr, 20).ok()?.value {
        Value::Exact(r) => Some(r),
        Value::Approx(_) => None,
    }
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
