//! `calculator`: exact arithmetic from an expression string.
//!
//! Integers and rationals are exact and unbounded up to [`Limits::max_bits`];
//! decimals like `0.1` are read as the exact fraction `1/10`, so
//! `0.1 + 0.2 == 0.3`. Only π, e, trigonometry, logarithms and irrational roots
//! fall back to `f64`, and the answer then says it is approximate.
//!
//! ```
//! use llmos_tools::calc::{calculate, Answer};
//! let a = calculate("2**200 / 7", 20).unwrap();
//! assert!(a.text().contains("= 1606938044258990275541962092341162602522202993782792835301376/7 ="));
//! assert_eq!(calculate("0.1 + 0.2", 20).unwrap().text(), "3/10 = 0.3");
//! ```

mod eval;
mod parse;
mod time;

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{Signed, Zero};
use serde_json::{json, Value as Json};

pub use eval::{Datum, Limits, Value};
use parse::{col, Span};
pub use time::Moment;

use crate::{args, Tool, ToolOutput};

/// Function names the calculator knows (listed in errors and in the tool description).
pub const FUNCTIONS: &[&str] = &[
    "sqrt",
    "cbrt",
    "root",
    "exp",
    "ln",
    "log",
    "log2",
    "log10",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "atan2",
    "sinh",
    "cosh",
    "tanh",
    "abs",
    "floor",
    "ceil",
    "trunc",
    "round",
    "min",
    "max",
    "gcd",
    "lcm",
    "factorial",
    "comb",
];

/// A calculator error; with the column of the offending token when there is one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{msg}")]
pub struct CalcError {
    pub msg: String,
    /// 1-based character column of the start of the bad token or subexpression.
    pub column: Option<usize>,
}

impl CalcError {
    fn plain(msg: String) -> CalcError {
        CalcError { msg, column: None }
    }

    /// An error pointing at `span`: "at column 5 ('*'): ...", then the expression with a caret line.
    fn at(src: &str, span: Span, msg: String) -> CalcError {
        let c = col(src, span.start);
        let text = src.get(span.start..span.end).unwrap_or("");
        let what = if text.is_empty() || text.len() > 40 {
            String::new()
        } else {
            format!(" ('{text}')")
        };
        let caret = if src.len() <= 200 && !src.contains('\n') {
            let width = src
                .get(span.start..span.end)
                .map_or(1, |s| s.chars().count().max(1));
            format!("\n  {src}\n  {}{}", " ".repeat(c - 1), "^".repeat(width))
        } else {
            String::new()
        };
        CalcError {
            msg: format!("at column {c}{what}: {msg}{caret}"),
            column: Some(c),
        }
    }
}

/// A computed answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub value: Datum,
    /// Digits after the point in decimal expansions of non-terminating rationals
    /// (after the leading zeros of numbers below 0.1).
    pub digits: usize,
}

impl Answer {
    /// The answer as the model sees it: exact form first, then a decimal expansion if that helps.
    pub fn text(&self) -> String {
        let v = match &self.value {
            Datum::Num(v) => v,
            Datum::Date(m) => return m.text(),
            Datum::Duration(s) => return time::duration_text(s, self.digits),
            Datum::Text(t) => return t.clone(),
        };
        match v {
            Value::Approx(x) => {
                format!("≈ {x} (approximate: computed in f64, about 15 significant digits)")
            }
            Value::Exact(r) if r.is_integer() => r.numer().to_string(),
            Value::Exact(r) => match terminating_decimal(r) {
                Some(d) if d.len() <= self.digits + 2 + r.trunc().numer().to_string().len() => {
                    format!("{r} = {d}")
                }
                _ => match repeating_decimal(r, self.digits) {
                    Some(d) => match mixed(r) {
                        Some(m) => format!("{m} exactly (= {r} = {d}, the digits in parentheses repeating forever)"),
                        None => format!("{r} = {d} exactly (the digits in parentheses repeat forever)"),
                    },
                    None => format!(
                        "{r} ≈ {} (decimal rounded to {} places)",
                        decimal(r, self.digits),
                        self.digits
                    ),
                },
            },
        }
    }

    pub fn is_exact(&self) -> bool {
        !matches!(self.value, Datum::Num(Value::Approx(_)))
    }
}

/// Evaluate `expr` with the default [`Limits`]; `digits` is the number of
/// digits after the point in decimal expansions of non-terminating rationals.
///
/// # Errors
/// [`CalcError`] for syntax errors (with the column), domain errors
/// (division by zero, `sqrt(-1)`), unknown names, and results over the size limit.
pub fn calculate(expr: &str, digits: usize) -> Result<Answer, CalcError> {
    calculate_with(expr, digits, Limits::default())
}

/// [`calculate`] with explicit limits.
///
/// # Errors
/// As [`calculate`].
pub fn calculate_with(expr: &str, digits: usize, limits: Limits) -> Result<Answer, CalcError> {
    let tree = parse::parse(expr)?;
    let value = eval::Evaluator { src: expr, limits }.eval(&tree)?;
    Ok(Answer {
        value,
        digits: digits.clamp(1, MAX_DIGITS),
    })
}

const MAX_DIGITS: usize = 1000;
const DEFAULT_DIGITS: usize = 50;

/// `r` as a finite decimal string, if its denominator has only the factors 2 and 5.
fn terminating_decimal(r: &BigRational) -> Option<String> {
    let mut d = r.denom().clone();
    let (two, five) = (BigInt::from(2), BigInt::from(5));
    let (mut n2, mut n5) = (0usize, 0usize);
    while d.is_even() {
        d /= &two;
        n2 += 1;
    }
    while (&d % &five).is_zero() {
        d /= &five;
        n5 += 1;
    }
    if d != BigInt::from(1) {
        return None;
    }
    let places = n2.max(n5);
    Some(fixed(r, places))
}

/// `r` as a whole number and a proper fraction (`22/7` is `3 + 1/7`), when
/// it is more than 1 in size.
fn mixed(r: &BigRational) -> Option<String> {
    let int = r.trunc();
    if int.is_zero() {
        return None;
    }
    let frac = (r - &int).abs();
    let op = if r.is_negative() { "-" } else { "+" };
    Some(format!("{int} {op} {frac}"))
}

/// `r` as an exact repeating decimal, the repeating digits in parentheses
/// (`1/7` is `0.(142857)`, `1/6` is `0.1(6)`), if the digits after the point
/// up to the end of the first period number at most `places`.
fn repeating_decimal(r: &BigRational, places: usize) -> Option<String> {
    let d = r.denom();
    let n = r.numer().abs();
    let (int, mut rem) = n.div_rem(d);
    let mut seen = std::collections::HashMap::new();
    let mut digits = String::new();
    while !rem.is_zero() {
        if let Some(&start) = seen.get(&rem) {
            let sign = if r.is_negative() { "-" } else { "" };
            let (head, period) = digits.split_at(start);
            return Some(format!("{sign}{int}.{head}({period})"));
        }
        if digits.len() == places {
            return None;
        }
        seen.insert(rem.clone(), digits.len());
        rem *= 10;
        let (q, r2) = rem.div_rem(d);
        digits.push_str(&q.to_string());
        rem = r2;
    }
    None // terminating: not for this function
}

/// `r` rounded (half away from zero) to `places` digits after the point.
fn fixed(r: &BigRational, places: usize) -> String {
    let scale = BigInt::from(10).pow(places as u32);
    let scaled = r.abs() * BigRational::from_integer(scale);
    let n = (scaled + BigRational::new(1.into(), 2.into()))
        .floor()
        .to_integer();
    let s = format!("{:0>width$}", n.to_string(), width = places + 1);
    let (int, frac) = s.split_at(s.len() - places);
    let sign = if r.is_negative() && !n.is_zero() {
        "-"
    } else {
        ""
    };
    if places == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// `r` in decimal: the whole integer part, then `places` digits after the
/// point, counted from the first non-zero digit when `|r| < 1` (so 1/7e30
/// still shows `places` meaningful digits).
fn decimal(r: &BigRational, places: usize) -> String {
    let mut zeros = 0;
    let ten = BigRational::from_integer(10.into());
    let tenth = BigRational::new(1.into(), 10.into());
    let mut x = r.abs();
    while !x.is_zero() && x < tenth && zeros < 100_000 {
        x *= &ten;
        zeros += 1;
    }
    fixed(r, zeros + places)
}

/// The `calculator` tool.
#[derive(Debug, Clone, Default)]
pub struct Calculator {
    pub limits: Limits,
}

impl Tool for Calculator {
    fn name(&self) -> &str {
        "calculator"
    }

    fn description(&self) -> &str {
        "Exact arithmetic. Use it for every calculation instead of computing in your head. \
         Integers and fractions are exact and unbounded (2**200 / 7 gives the exact fraction and its decimal expansion); \
         decimals are exact (0.1 + 0.2 = 3/10). Operators: + - * / // % ** (or ^) and postfix ! ; parentheses. \
         Functions, written inside the expression (they are not tools): sqrt cbrt root(x, n) exp ln log(x) log(x, base) log2 log10 sin cos tan asin acos atan atan2 \
         sinh cosh tanh abs floor ceil trunc round(x) round(x, places) min max gcd lcm factorial comb(n, k); constants pi, e, tau. \
         Results that cannot be exact (pi, trigonometry, irrational roots) are marked approximate. \
         Dates too, written YYYY-MM-DD: 2031-11-02 - 1987-03-14 gives the days between, 2024-02-29 + 1000 the date 1000 days later, \
         and a date alone its weekday."
    }

    fn parameters(&self) -> Json {
        json!({
            "type": "object",
            "properties": {
                "expression": {
                    "type": "string",
                    "description": "The arithmetic expression, e.g. \"2**200 / 7\", \"sqrt(2) * 3\" or \"2031-11-02 - 1987-03-14\". Only the expression, no '=' and no words."
                },
                "digits": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "maximum": MAX_DIGITS,
                    "description": "Digits after the decimal point in expansions of non-terminating fractions (after any leading zeros); null for the default (50)."
                }
            },
            "required": ["expression", "digits"],
            "additionalProperties": false
        })
    }

    fn call(&self, a: Json) -> ToolOutput {
        let parsed = args::Args::new(self.name(), &a, &["expression", "digits"]).and_then(|a| {
            Ok((
                a.string("expression")?,
                a.opt_uint("digits", 1, MAX_DIGITS as u64)?,
            ))
        });
        let (expr, digits) = match parsed {
            Ok(x) => x,
            Err(e) => return ToolOutput::error(e),
        };
        let digits = digits.map_or(DEFAULT_DIGITS, |d| d as usize);
        match calculate_with(&expr, digits, self.limits) {
            Ok(ans) => ToolOutput::ok(ans.text()),
            Err(e) => ToolOutput::error(format!("calculator: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc(s: &str) -> String {
        match calculate(s, 30) {
            Ok(a) => a.text(),
            Err(e) => format!("ERROR {e}"),
        }
    }

    #[test]
    fn exact_results() {
        assert_eq!(calc("1 + 2 * 3"), "7");
        assert_eq!(calc("2**64"), "18446744073709551616");
        assert_eq!(calc("0.1 + 0.2"), "3/10 = 0.3");
        assert_eq!(calc("1/8"), "1/8 = 0.125");
        assert_eq!(
            calc("1/3"),
            "1/3 = 0.(3) exactly (the digits in parentheses repeat forever)"
        );
        assert_eq!(
            calc("-2/3"),
            "-2/3 = -0.(6) exactly (the digits in parentheses repeat forever)"
        );
        assert_eq!(
            calc("1/6"),
            "1/6 = 0.1(6) exactly (the digits in parentheses repeat forever)"
        );
        assert_eq!(
            calc("-22/7"),
            "-3 - 1/7 exactly (= -22/7 = -3.(142857), the digits in parentheses repeating forever)"
        );
        // a period longer than the digits asked for: rounded, and said so
        assert_eq!(
            calc("1/97"),
            "1/97 ≈ 0.0103092783505154639175257731959 (decimal rounded to 30 places)"
        );
        assert_eq!(calc("1/7e30"), "1/7000000000000000000000000000000 ≈ 0.000000000000000000000000000000142857142857142857142857142857 (decimal rounded to 30 places)");
        assert_eq!(calc("-7 % 3"), "2");
        assert_eq!(calc("7 % -3"), "-2");
        assert_eq!(calc("-7 // 2"), "-4");
        assert_eq!(calc("2**-2"), "1/4 = 0.25");
        assert_eq!(calc("-2**2"), "-4");
        assert_eq!(calc("(-2)**3"), "-8");
        assert_eq!(calc("5!"), "120");
        assert_eq!(calc("factorial(20)"), "2432902008176640000");
        assert_eq!(calc("gcd(12, 18, 30)"), "6");
        assert_eq!(calc("lcm(4, 6)"), "12");
        assert_eq!(calc("sqrt(144)"), "12");
        assert_eq!(calc("sqrt(9/4)"), "3/2 = 1.5");
        assert_eq!(calc("8**(1/3)"), "2");
        assert_eq!(calc("(-27)**(1/3)"), "-3");
        assert_eq!(calc("root(1024, 10)"), "2");
        assert_eq!(calc("4**1.5"), "8");
        assert_eq!(calc("1.5e3"), "1500");
        assert_eq!(calc("1e-3"), "1/1000 = 0.001");
        assert_eq!(calc("log(1024, 2)"), "10");
        assert_eq!(calc("log10(1000)"), "3");
        assert_eq!(calc("round(2.5)"), "2");
        assert_eq!(calc("round(2.675, 2)"), "67/25 = 2.68");
        assert_eq!(calc("comb(52, 5)"), "2598960");
        assert_eq!(calc("1_000_000 * 3"), "3000000");
        assert_eq!(calc("2^10"), "1024");
        assert_eq!(calc("1**(10**100)"), "1");
    }

    #[test]
    fn two_pow_200_over_7_is_exact_with_expansion() {
        // 2**200 = 7 * 229562577751284325077423156048737514646028999111827547900196 + 4; 4/7 = 0.(571428)
        assert_eq!(calc("2**200 / 7"), "229562577751284325077423156048737514646028999111827547900196 + 4/7 exactly (= 1606938044258990275541962092341162602522202993782792835301376/7 = 229562577751284325077423156048737514646028999111827547900196.(571428), the digits in parentheses repeating forever)");
        let t = calculate("2**200 / 7", 5)
            .map(|a| a.text())
            .unwrap_or_default();
        assert!(t.contains("≈ 229562577751284325077423156048737514646028999111827547900196.57143 (decimal rounded to 5 places)"), "{t}");
    }

    #[test]
    fn approximate_results_are_labelled() {
        let t = calc("sqrt(2)");
        assert!(
            t.starts_with("≈ 1.41421356237309") && t.contains("approximate"),
            "{t}"
        );
        assert!(calc("sin(pi/2)").contains("≈ 1 "), "{}", calc("sin(pi/2)"));
        assert!(calc("ln(e)").contains("approximate"));
        assert_eq!(calc("exp(0)"), "1");
    }

    #[test]
    fn errors_say_what_and_where() {
        assert!(calc("1/0").contains("division by zero"));
        assert!(calc("1/(2-2)").contains("column 3"));
        assert!(calc("sqrt(-4)").contains("complex"));
        assert!(calc("foo(2)").contains("unknown function 'foo'"));
        assert!(calc("x + 1").contains("unknown name 'x'"));
        assert!(calc("(-8)**(1/2)").contains("complex"));
        assert!(calc("2.5!").contains("non-negative integer"));
        assert!(calc("").contains("empty expression"));
        assert!(calc("log(0)").contains("positive"));
        assert!(calc("gcd(1.5, 2)").contains("integers"));
    }

    #[test]
    fn blowups_are_refused_quickly() {
        let t = std::time::Instant::now();
        for e in [
            "10**10**10",
            "2**(2**64)",
            "9**9**9",
            "100000!",
            "factorial(10**9)",
            "1e99999999",
            "(10**20000)*(10**20000)",
            "comb(10**9, 10**8)",
        ] {
            let r = calc(e);
            assert!(
                r.starts_with("ERROR")
                    && (r.contains("limit")
                        || r.contains("too large")
                        || r.contains("out of range")),
                "{e}: {r}"
            );
        }
        assert!(
            t.elapsed().as_secs() < 5,
            "limits must be checked before computing: {:?}",
            t.elapsed()
        );
    }

    #[test]
    fn tool_validates_arguments() {
        let c = Calculator::default();
        let out = c.call(json!({"expression": "6*7", "digits": null}));
        assert_eq!((out.content.as_str(), out.is_error), ("42", false));
        let out = c.call(json!({"expression": "6*7"}));
        assert!(!out.is_error, "a missing nullable field is treated as null");
        let out = c.call(json!({"expr": "6*7"}));
        assert!(
            out.is_error && out.content.contains("'expr'"),
            "{}",
            out.content
        );
        let out = c.call(json!({"expression": 42}));
        assert!(
            out.is_error && out.content.contains("string"),
            "{}",
            out.content
        );
        let out = c.call(json!({"expression": "1 +", "digits": 5}));
        assert!(
            out.is_error && out.content.contains("column"),
            "{}",
            out.content
        );
    }
}
