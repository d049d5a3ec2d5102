//! Evaluation: exact rationals wherever the answer is rational, f64 (labelled
//! approximate) only where it cannot be (π, trigonometry, irrational roots).

use num_bigint::{BigInt, Sign};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use super::parse::{BinOp, Expr, ExprKind, Span};
use super::CalcError;

/// A value: exact, or an f64 that is marked approximate all the way to the answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Exact(BigRational),
    Approx(f64),
}

/// What an expression evaluates to: a number, or a date, a duration or a
/// name (a weekday), which only the date functions and operators take.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Num(Value),
    Date(super::time::Moment),
    /// Exact seconds.
    Duration(BigRational),
    Text(String),
}

impl Datum {
    /// What kind of value it is, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Datum::Num(_) => "a number",
            Datum::Date(_) => "a date",
            Datum::Duration(_) => "a duration",
            Datum::Text(_) => "a name",
        }
    }
}

impl Value {
    pub fn int(i: i64) -> Value {
        Value::Exact(BigRational::from_integer(BigInt::from(i)))
    }

    pub fn to_f64(&self) -> f64 {
        match self {
            Value::Exact(r) => r.to_f64().unwrap_or(f64::NAN),
            Value::Approx(x) => *x,
        }
    }
}

/// Size limits that keep `10**10**10` from eating the machine.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest numerator or denominator of any intermediate result, in bits.
    pub max_bits: u64,
}

impl Default for Limits {
    /// 100 000 bits: about 30 100 decimal digits.
    fn default() -> Self {
        Limits { max_bits: 100_000 }
    }
}

pub struct Evaluator<'a> {
    pub src: &'a str,
    pub limits: Limits,
}

fn bits(r: &BigRational) -> u64 {
    r.numer().bits().max(r.denom().bits())
}

fn digits_of_bits(b: u64) -> u64 {
    (b as f64 * std::f64::consts::LOG10_2).ceil() as u64
}

impl Evaluator<'_> {
    pub(super) fn err(&self, span: Span, msg: String) -> CalcError {
        CalcError::at(self.src, span, msg)
    }

    pub(super) fn check_size(&self, v: Value, span: Span) -> Result<Value, CalcError> {
        match &v {
            Value::Exact(r) if bits(r) > self.limits.max_bits => Err(self.too_big(span, bits(r))),
            Value::Approx(x) if !x.is_finite() => Err(self.err(
                span,
                format!(
                    "result is {x}, not a finite number (f64 overflow or an undefined operation)"
                ),
            )),
            _ => Ok(v),
        }
    }

    fn too_big(&self, span: Span, bits: u64) -> CalcError {
        self.err(
            span,
            format!(
                "result would have about {} digits; the limit is {} digits ({} bits): reformulate, e.g. compute a logarithm or a modulus instead",
                digits_of_bits(bits),
                digits_of_bits(self.limits.max_bits),
                self.limits.max_bits
            ),
        )
    }

    pub fn eval(&self, e: &Expr) -> Result<Datum, CalcError> {
        let v = match &e.kind {
            ExprKind::Num(text) => self.number(text, e.span)?,
            ExprKind::Date(text) => return self.date_literal(text, e.span).map(Datum::Date),
            ExprKind::Name(n) => self.constant(n, e.span)?,
            ExprKind::Neg(x) => match self.eval(x)? {
                Datum::Num(Value::Exact(r)) => Value::Exact(-r),
                Datum::Num(Value::Approx(f)) => Value::Approx(-f),
                Datum::Duration(s) => return Ok(Datum::Duration(-s)),
                d => return Err(self.err(e.span, format!("{} cannot be negated", d.kind()))),
            },
            ExprKind::Factorial(x) => {
                let v = self.num(self.eval(x)?, x.span, "factorial")?;
                self.factorial(&v, x.span)?
            }
            ExprKind::Bin(op, a, b) => match (self.eval(a)?, self.eval(b)?) {
                (Datum::Num(x), Datum::Num(y)) => self.binary(*op, x, y, e.span, b.span)?,
                (x, y) => return self.time_binary(*op, x, y, e.span),
            },
            ExprKind::Call(f, args) => {
                let vals = args
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<Result<Vec<_>, _>>()?;
                if super::time::FUNCTIONS.contains(&f.as_str()) {
                    return self.time_call(f, vals, args, e.span);
                }
                let nums = vals
                    .into_iter()
                    .zip(args)
                    .map(|(v, a)| self.num(v, a.span, f))
                    .collect::<Result<Vec<_>, _>>()?;
                self.call(f, &nums, args, e.span)?
            }
        };
        self.check_size(v, e.span).map(Datum::Num)
    }

    /// `d` as a number, or an error saying `what` takes numbers.
    pub(super) fn num(&self, d: Datum, span: Span, what: &str) -> Result<Value, CalcError> {
        match d {
            Datum::Num(v) => Ok(v),
            d => Err(self.err(
                span,
                format!(
                    "{what} takes numbers, not {}; dates and durations take + and -, \
                     durations also * and / by a number, and the date functions ({})",
                    d.kind(),
                    super::time::FUNCTIONS.join(", ")
                ),
            )),
        }
    }

    fn number(&self, text: &str, span: Span) -> Result<Value, CalcError> {
        let (mant, exp) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, "0"),
        };
        let exp: i64 = exp
            .parse()
            .ok()
            .filter(|e: &i64| e.unsigned_abs() <= 100_000)
            .ok_or_else(|| {
                self.err(
                    span,
                    format!("exponent of {text} is out of range (|e| ≤ 100000)"),
                )
            })?;
        let (int_part, frac) = mant.split_once('.').unwrap_or((mant, ""));
        let digits = format!("{int_part}{frac}");
        let digits = if digits.is_empty() { "0" } else { &digits };
        let n: BigInt = digits
            .parse()
            .map_err(|_| self.err(span, format!("'{text}' is not a number")))?;
        let scale = exp - frac.len() as i64;
        let bits_needed = (scale.unsigned_abs() as f64 * std::f64::consts::LOG2_10) as u64;
        if bits_needed > self.limits.max_bits {
            return Err(self.too_big(span, bits_needed));
        }
        let p = BigInt::from(10).pow(scale.unsigned_abs() as u32);
        let r = if scale >= 0 {
            BigRational::from_integer(n * p)
        } else {
            BigRational::new(n, p)
        };
        Ok(Value::Exact(r))
    }

    fn constant(&self, name: &str, span: Span) -> Result<Value, CalcError> {
        Ok(Value::Approx(match name {
            "pi" => std::f64::consts::PI,
            "tau" => std::f64::consts::TAU,
            "e" => std::f64::consts::E,
            _ => {
                return Err(self.err(
                    span,
                    format!("unknown name '{name}': the constants are pi, tau and e; functions need parentheses, e.g. sqrt(2)"),
                ))
            }
        }))
    }

    fn binary(
        &self,
        op: BinOp,
        x: Value,
        y: Value,
        span: Span,
        rspan: Span,
    ) -> Result<Value, CalcError> {
        use Value::{Approx, Exact};
        let div0 = || self.err(rspan, "division by zero".to_string());
        Ok(match (op, x, y) {
            (BinOp::Pow, x, y) => return self.pow(x, y, span),
            (BinOp::Add, Exact(a), Exact(b)) => Exact(a + b),
            (BinOp::Sub, Exact(a), Exact(b)) => Exact(a - b),
            (BinOp::Mul, Exact(a), Exact(b)) => {
                if bits(&a) + bits(&b) > self.limits.max_bits.saturating_mul(2) {
                    return Err(self.too_big(span, bits(&a) + bits(&b)));
                }
                Exact(a * b)
            }
            (BinOp::Div, Exact(a), Exact(b)) => {
                if b.is_zero() {
                    return Err(div0());
                }
                Exact(a / b)
            }
            (BinOp::FloorDiv, Exact(a), Exact(b)) => {
                if b.is_zero() {
                    return Err(div0());
                }
                Exact((a / b).floor())
            }
            (BinOp::Mod, Exact(a), Exact(b)) => {
                if b.is_zero() {
                    return Err(self.err(rspan, "modulo by zero".to_string()));
                }
                // Python's sign convention: the result takes the divisor's sign.
                let q = (&a / &b).floor();
                Exact(a - b * q)
            }
            (op, x, y) => {
                let (a, b) = (x.to_f64(), y.to_f64());
                if b == 0.0 && matches!(op, BinOp::Div | BinOp::FloorDiv | BinOp::Mod) {
                    return Err(div0());
                }
                Approx(match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    BinOp::Div => a / b,
                    BinOp::FloorDiv => (a / b).floor(),
                    BinOp::Mod => a - b * (a / b).floor(),
                    BinOp::Pow => a.powf(b),
                })
            }
        })
    }

    fn pow(&self, x: Value, y: Value, span: Span) -> Result<Value, CalcError> {
        let (Value::Exact(base), Value::Exact(exp)) = (&x, &y) else {
            let (a, b) = (x.to_f64(), y.to_f64());
            if a < 0.0 && b.fract() != 0.0 {
                return Err(self.err(span, format!("{a} ** {b}: a fractional power of a negative number is complex, which is not supported")));
            }
            return Ok(Value::Approx(a.powf(b)));
        };
        if exp.is_integer() {
            return self.int_pow(base, exp.numer(), span).map(Value::Exact);
        }
        // p/q: exact when the base is a perfect q-th power.
        let (p, q) = (exp.numer(), exp.denom());
        if base.is_negative() && q.is_even() {
            return Err(self.err(
                span,
                format!("({base}) ** ({exp}): an even root of a negative number is complex, which is not supported"),
            ));
        }
        if let Some(root) = q.to_u32().and_then(|q| exact_root(base, q)) {
            return self.int_pow(&root, p, span).map(Value::Exact);
        }
        let a = base.to_f64().unwrap_or(f64::NAN);
        let b = exp.to_f64().unwrap_or(f64::NAN);
        // Odd roots of negatives are real: -8 ** (1/3) handled above when exact, here approximately.
        let r = if a < 0.0 { -(-a).powf(b) } else { a.powf(b) };
        Ok(Value::Approx(r))
    }

    fn int_pow(
        &self,
        base: &BigRational,
        exp: &BigInt,
        span: Span,
    ) -> Result<BigRational, CalcError> {
        if base.is_zero() {
            return match exp.sign() {
                Sign::Minus => Err(self.err(
                    span,
                    "0 raised to a negative power is a division by zero".into(),
                )),
                Sign::NoSign => Ok(BigRational::one()),
                Sign::Plus => Ok(BigRational::zero()),
            };
        }
        let one = BigInt::one();
        if base.denom() == &one && base.numer().abs() == one {
            // ±1 to any power, however large.
            let neg = base.is_negative() && exp.is_odd();
            return Ok(BigRational::from_integer(if neg { -one } else { one }));
        }
        let e = exp.abs().to_u64().unwrap_or(u64::MAX);
        let est = bits(base).saturating_sub(1).max(1).saturating_mul(e);
        if est > self.limits.max_bits {
            return Err(self.too_big(span, est));
        }
        let e = e as u32; // fits: est ≤ max_bits
        let r = num_traits::pow::Pow::pow(base, e);
        Ok(if exp.is_negative() { r.recip() } else { r })
    }

    fn factorial(&self, v: &Value, span: Span) -> Result<Value, CalcError> {
        let n = self.nonneg_int(v, span, "factorial")?;
        // log2(n!) by Stirling, checked before any multiplication.
        let nf = n as f64;
        let log2 = if n < 2 {
            0.0
        } else {
            (nf * nf.ln() - nf + 0.5 * (std::f64::consts::TAU * nf).ln()) / std::f64::consts::LN_2
        };
        if log2 > self.limits.max_bits as f64 {
            return Err(self.too_big(span, log2 as u64));
        }
        let mut acc = BigInt::one();
        for i in 2..=n {
            acc *= i;
        }
        Ok(Value::Exact(BigRational::from_integer(acc)))
    }

    fn nonneg_int(&self, v: &Value, span: Span, what: &str) -> Result<u64, CalcError> {
        match v {
            Value::Exact(r) if r.is_integer() && !r.is_negative() => r
                .numer()
                .to_u64()
                .ok_or_else(|| self.err(span, format!("{what} of {r} is far too large"))),
            Value::Exact(r) => Err(self.err(
                span,
                format!("{what} needs a non-negative integer, got {r}"),
            )),
            Value::Approx(x) => Err(self.err(
                span,
                format!(
                    "{what} needs an exact non-negative integer, got the approximate value {x}"
                ),
            )),
        }
    }

    fn integer(&self, v: &Value, span: Span, what: &str) -> Result<BigInt, CalcError> {
        match v {
            Value::Exact(r) if r.is_integer() => Ok(r.numer().clone()),
            Value::Exact(r) => Err(self.err(span, format!("{what} needs integers, got {r}"))),
            Value::Approx(x) => Err(self.err(
                span,
                format!("{what} needs exact integers, got the approximate value {x}"),
            )),
        }
    }

    fn call(&self, f: &str, v: &[Value], args: &[Expr], span: Span) -> Result<Value, CalcError> {
        let arity = |n: usize| -> Result<(), CalcError> {
            if v.len() == n {
                Ok(())
            } else {
                Err(self.err(
                    span,
                    format!(
                        "{f}() takes {n} argument{}, got {}",
                        if n == 1 { "" } else { "s" },
                        v.len()
                    ),
                ))
            }
        };
        let approx1 = |g: fn(f64) -> f64| -> Result<Value, CalcError> {
            arity(1)?;
            let x = v[0].to_f64();
            if !x.is_finite() {
                return Err(self.err(
                    args[0].span,
                    format!("the argument of {f}() does not fit in an f64"),
                ));
            }
            Ok(Value::Approx(g(x)))
        };
        let domain = |ok: bool, what: &str| -> Result<(), CalcError> {
            if ok {
                Ok(())
            } else {
                Err(self.err(
                    span,
                    format!("{f}() is only defined for {what}, got {}", v[0].to_f64()),
                ))
            }
        };
        match f {
            "sin" => approx1(f64::sin),
            "cos" => approx1(f64::cos),
            "tan" => approx1(f64::tan),
            "asin" | "acos" => {
                arity(1)?;
                domain(
                    (-1.0..=1.0).contains(&v[0].to_f64()),
                    "arguments in [-1, 1]",
                )?;
                approx1(if f == "asin" { f64::asin } else { f64::acos })
            }
            "atan" => approx1(f64::atan),
            "sinh" => approx1(f64::sinh),
            "cosh" => approx1(f64::cosh),
            "tanh" => approx1(f64::tanh),
            "exp" => {
                arity(1)?;
                if v[0] == Value::int(0) {
                    return Ok(Value::int(1));
                }
                approx1(f64::exp)
            }
            "atan2" => {
                arity(2)?;
                Ok(Value::Approx(v[0].to_f64().atan2(v[1].to_f64())))
            }
            "ln" | "log" | "log2" | "log10" => {
                let base = match (f, v.len()) {
                    ("log", 2) => Some(v[1].clone()),
                    ("log2", 1) => Some(Value::int(2)),
                    ("log10", 1) => Some(Value::int(10)),
                    ("ln" | "log", 1) => None,
                    _ => {
                        return Err(self.err(
                            span,
                            format!(
                                "{f}() takes {} argument(s), got {}",
                                if f == "log" { "1 or 2" } else { "1" },
                                v.len()
                            ),
                        ))
                    }
                };
                self.log(&v[0], base.as_ref(), span)
            }
            "sqrt" => self.root_fn(v, 2, span, f),
            "cbrt" => self.root_fn(v, 3, span, f),
            "root" => {
                arity(2)?;
                let n = self.nonneg_int(&v[1], args[1].span, "root degree")?;
                if n == 0 || n > 10_000 {
                    return Err(self.err(
                        args[1].span,
                        format!("root degree must be between 1 and 10000, got {n}"),
                    ));
                }
                self.root_fn(&v[..1], n as u32, span, f)
            }
            "abs" => {
                arity(1)?;
                Ok(match &v[0] {
                    Value::Exact(r) => Value::Exact(r.abs()),
                    Value::Approx(x) => Value::Approx(x.abs()),
                })
            }
            "floor" | "ceil" | "trunc" | "round" => {
                if f == "round" && v.len() == 2 {
                    let places = self.integer(&v[1], args[1].span, "round's number of places")?;
                    let places = places
                        .to_i32()
                        .filter(|p| p.unsigned_abs() <= 10_000)
                        .ok_or_else(|| {
                            self.err(
                                args[1].span,
                                "round's number of places must be within ±10000".into(),
                            )
                        })?;
                    let Value::Exact(r) = &v[0] else {
                        return Ok(Value::Approx(
                            (v[0].to_f64() * 10f64.powi(places)).round() / 10f64.powi(places),
                        ));
                    };
                    let scale =
                        BigRational::from_integer(BigInt::from(10).pow(places.unsigned_abs()));
                    let scale = if places < 0 { scale.recip() } else { scale };
                    return Ok(Value::Exact(round_half_even(&(r * &scale)) / scale));
                }
                arity(1)?;
                Ok(match &v[0] {
                    Value::Exact(r) => Value::Exact(match f {
                        "floor" => r.floor(),
                        "ceil" => r.ceil(),
                        "trunc" => r.trunc(),
                        _ => round_half_even(r),
                    }),
                    Value::Approx(x) => {
                        Value::Exact(BigRational::from_integer(BigInt::from(match f {
                            "floor" => x.floor(),
                            "ceil" => x.ceil(),
                            "trunc" => x.trunc(),
                            _ => x.round_ties_even(),
                        }
                            as i64)))
                    }
                })
            }
            "min" | "max" => {
                if v.is_empty() {
                    return Err(self.err(span, format!("{f}() needs at least one argument")));
                }
                let mut best = v[0].clone();
                for x in &v[1..] {
                    let better = match (x, &best) {
                        (Value::Exact(a), Value::Exact(b)) => {
                            if f == "min" {
                                a < b
                            } else {
                                a > b
                            }
                        }
                        _ => {
                            if f == "min" {
                                x.to_f64() < best.to_f64()
                            } else {
                                x.to_f64() > best.to_f64()
                            }
                        }
                    };
                    if better {
                        best = x.clone();
                    }
                }
                Ok(best)
            }
            "gcd" | "lcm" => {
                if v.is_empty() {
                    return Err(self.err(span, format!("{f}() needs at least one integer")));
                }
                let mut acc = self.integer(&v[0], args[0].span, f)?.abs();
                for (x, a) in v.iter().zip(args).skip(1) {
                    let n = self.integer(x, a.span, f)?;
                    acc = if f == "gcd" { acc.gcd(&n) } else { acc.lcm(&n) };
                    if acc.bits() > self.limits.max_bits {
                        return Err(self.too_big(span, acc.bits()));
                    }
                }
                Ok(Value::Exact(BigRational::from_integer(acc)))
            }
            "factorial" => {
                arity(1)?;
                self.factorial(&v[0], args[0].span)
            }
            "comb" => {
                arity(2)?;
                let n = self.nonneg_int(&v[0], args[0].span, "comb")?;
                let k = self.nonneg_int(&v[1], args[1].span, "comb")?;
                if k > n {
                    return Ok(Value::int(0));
                }
                let k = k.min(n - k);
                // C(n, k) < n^k; check before the loop.
                if (k as f64) * (n as f64).log2() > self.limits.max_bits as f64 * 4.0 {
                    return Err(self.too_big(span, ((k as f64) * (n as f64).log2()) as u64));
                }
                let mut acc = BigInt::one();
                for i in 0..k {
                    acc = acc * (n - i) / (i + 1);
                }
                Ok(Value::Exact(BigRational::from_integer(acc)))
            }
            _ => Err(self.err(
                span,
                format!(
                    "unknown function '{f}': available are {}",
                    super::FUNCTIONS.join(", ")
                ),
            )),
        }
    }

    fn root_fn(&self, v: &[Value], n: u32, span: Span, f: &str) -> Result<Value, CalcError> {
        if v.len() != 1 {
            return Err(self.err(
                span,
                format!(
                    "{f}() takes 1 number{}, got {}",
                    if f == "root" { " and a degree" } else { "" },
                    v.len()
                ),
            ));
        }
        let neg = v[0].to_f64() < 0.0;
        if neg && n.is_multiple_of(2) {
            return Err(self.err(
                span,
                format!(
                    "{f}() of a negative number ({}) is complex, which is not supported",
                    v[0].to_f64()
                ),
            ));
        }
        if let Value::Exact(r) = &v[0] {
            if let Some(root) = exact_root(r, n) {
                return Ok(Value::Exact(root));
            }
        }
        let x = v[0].to_f64();
        let r = if n == 2 {
            x.sqrt()
        } else if n == 3 {
            x.cbrt()
        } else if neg {
            -(-x).powf(1.0 / f64::from(n))
        } else {
            x.powf(1.0 / f64::from(n))
        };
        Ok(Value::Approx(r))
    }

    fn log(&self, x: &Value, base: Option<&Value>, span: Span) -> Result<Value, CalcError> {
        let xf = x.to_f64();
        if xf <= 0.0 {
            return Err(self.err(
                span,
                format!("logarithm of {xf}: only positive numbers have a real logarithm"),
            ));
        }
        let Some(base) = base else {
            if *x == Value::int(1) {
                return Ok(Value::int(0));
            }
            return Ok(Value::Approx(xf.ln()));
        };
        let bf = base.to_f64();
        if bf <= 0.0 || bf == 1.0 {
            return Err(self.err(
                span,
                format!("logarithm base must be positive and not 1, got {bf}"),
            ));
        }
        // Exact when x is an integer power of an exact base: log(1024, 2) = 10.
        if let (Value::Exact(xr), Value::Exact(br)) = (x, base) {
            let k = (xf.ln() / bf.ln()).round();
            if k.is_finite() && k.abs() <= self.limits.max_bits as f64 {
                let kb = BigInt::from(k as i64);
                if let Ok(p) = self.int_pow(br, &kb, span) {
                    if &p == xr {
                        return Ok(Value::Exact(BigRational::from_integer(kb)));
                    }
                }
            }
        }
        Ok(Value::Approx(xf.ln() / bf.ln()))
    }
}

/// The exact n-th root of `r`, if both numerator and denominator are perfect n-th powers.
fn exact_root(r: &BigRational, n: u32) -> Option<BigRational> {
    if n == 0 || (r.is_negative() && n.is_multiple_of(2)) {
        return None;
    }
    let root_int = |x: &BigInt| -> Option<BigInt> {
        let a = x.abs();
        let c = a.nth_root(n);
        (num_traits::pow::Pow::pow(&c, n) == a).then(|| if x.is_negative() { -c } else { c })
    };
    Some(BigRational::new(root_int(r.numer())?, root_int(r.denom())?))
}

/// Round to the nearest integer, ties to even (as Python's `round`).
pub fn round_half_even(r: &BigRational) -> BigRational {
    let fl = r.floor();
    let diff = r - &fl;
    let half = BigRational::new(BigInt::one(), BigInt::from(2));
    let up = match diff.cmp(&half) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal => fl.numer().is_odd(),
    };
    if up {
        fl + BigRational::one()
    } else {
        fl
    }
}
