//! Canonical JSON numbers: how every float leaves the engine (wire output and state).
//!
//! Invariants: integral finite values print as integers (`65`, not `65.0`); `f32`
//! values print with their shortest round-trip decimal (`0.1`, not
//! `0.10000000149011612`); non-finite values (only reachable by arithmetic overflow)
//! become `null`. Equal inputs always print equal bytes.

use serde_json::Number;

use super::Json;

/// `x` as a JSON number: integral values print as integers.
pub fn f64_to_json(x: f64) -> Json {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
        #[expect(clippy::cast_possible_truncation, reason = "integral and below 2^53")]
        return Json::from(x as i64);
    }
    Number::from_f64(x).map_or(Json::Null, Json::Number)
}

/// `x` widened to the `f64` with the same shortest decimal (`0.1f32` → `0.1`): the
/// decimal `format!("{x}")` prints, read back as an `f64`.
///
/// The digits come from Ryū (on the stack, no allocation), which prints the same
/// shortest round-trip decimal as `format!` except on an exact tie between two
/// shortest candidates (`1765629.25f32`: Ryū `…9.2`, `format!` `…9.3`); ties are
/// detected exactly and go through `format!`. A test checks the two agree on random
/// bit patterns, an ignored one on every `f32`.
pub fn f32_to_f64(x: f32) -> f64 {
    if x.fract() == 0.0 || !x.is_finite() {
        return f64::from(x);
    }
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(x);
    match decimal(s) {
        Some((d, e)) if !is_tie(f64::from(x).abs(), d, e) => {
            // One correctly rounded operation on exact operands (d < 2^53, 10^|e|
            // exact): the nearest f64, as parsing gives.
            let v = match e {
                0..=22 => d as f64 * POW10[e as usize],
                -22..=-1 => d as f64 / POW10[(-e) as usize],
                _ => return s.parse().unwrap_or(f64::from(x)),
            };
            if x < 0.0 { -v } else { v }
        }
        _ => format!("{x}").parse().unwrap_or(f64::from(x)),
    }
}

/// The powers of ten an `f64` holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `s` (Ryū's output: `-`, digits, `.`, digits, `e`, exponent) as `(digits, exponent)`
/// with `|s| = digits × 10^exponent`; `None` past 18 digits or on anything else.
fn decimal(s: &str) -> Option<(u64, i32)> {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mant, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut d: u64 = 0;
    let mut n = 0;
    for c in int.bytes().chain(frac.bytes()) {
        if !c.is_ascii_digit() {
            return None;
        }
        if d == 0 && c == b'0' {
            continue;
        }
        n += 1;
        if n > 18 {
            return None;
        }
        d = d * 10 + u64::from(c - b'0');
    }
    let e = exp.checked_sub(i32::try_from(frac.len()).ok()?)?;
    Some((d, e))
}

/// True when `x` (an exact `f32` value, positive) lies exactly halfway between
/// `d × 10^e` and a neighbour one unit away in the last digit — the only case where
/// two shortest decimals exist and Ryū and `format!` may pick differently. `true` when
/// it cannot tell (so the caller takes the safe path).
fn is_tie(x: f64, d: u64, e: i32) -> bool {
    if e >= 0 {
        // A non-integral f32 never has an integral shortest decimal.
        return true;
    }
    // (2d ± 1) × 10^e / 2 = x is dyadic only if 5^-e divides 2d ± 1; then it equals
    // (2d ± 1) / 5^-e × 2^(e-1), exact in f64.
    let Some(p) = 5u64.checked_pow(e.unsigned_abs()) else {
        return false; // 5^-e > 2^64 > 2d + 1: no tie
    };
    [2 * d - 1, 2 * d + 1].into_iter().any(|n| {
        n % p == 0 && {
            let q = (n / p) as f64;
            q * 2f64.powi(e - 1) == x
        }
    })
}

/// `x` as a JSON number with its shortest decimal.
pub fn f32_to_json(x: f32) -> Json {
    f64_to_json(f32_to_f64(x))
}

#[cfg(test)]
mod tests {
    use super::f32_to_f64;

    /// The conversion through `format!`, as it was written first (the definition).
    fn by_format(x: f32) -> f64 {
        if x.fract() == 0.0 || !x.is_finite() {
            return f64::from(x);
        }
        format!("{x}").parse().unwrap_or(f64::from(x))
    }

    fn agree(bits: u32) {
        let x = f32::from_bits(bits);
        let (a, b) = (f32_to_f64(x), by_format(x));
        assert!(
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            "{x:?} ({bits:#x}): {a:?} vs {b:?}"
        );
    }

    #[test]
    fn widening_keeps_the_shortest_decimal() {
        assert_eq!(f32_to_f64(0.1), 0.1);
        assert_eq!(f32_to_f64(-2.5e-8), -2.5e-8);
        assert_eq!(f32_to_f64(1.0e-45), 1.0e-45);
        assert_eq!(f32_to_f64(65.0), 65.0);
        for x in [f32::MIN_POSITIVE, f32::EPSILON, f32::MAX, -0.0, 1.0 / 3.0] {
            agree(x.to_bits());
        }
        // Random bit patterns (every exponent), and a dense run of small values.
        let mut s = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..200_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            agree((s >> 32) as u32);
        }
        for bits in (0.001f32.to_bits()..10.0f32.to_bits()).step_by(4099) {
            agree(bits);
        }
    }

    /// Every `f32` (about 9 minutes in release on 2 cores): `cargo test --release --lib
    /// widening_agrees_on_every_f32 -- --ignored`.
    #[test]
    #[ignore = "exhaustive: minutes"]
    fn widening_agrees_on_every_f32() {
        let n = std::thread::available_parallelism().map_or(1, usize::from) as u64;
        let step = (1u64 << 32).div_ceil(n);
        std::thread::scope(|s| {
            for t in 0..n {
                let end = ((t + 1) * step).min(1 << 32);
                s.spawn(move || (t * step..end).for_each(|b| agree(b as u32)));
            }
        });
    }
}
