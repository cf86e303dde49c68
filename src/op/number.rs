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

/// `x` widened to the `f64` with the same shortest decimal (`0.1f32` → `0.1`).
pub fn f32_to_f64(x: f32) -> f64 {
    if x.fract() == 0.0 || !x.is_finite() {
        return f64::from(x);
    }
    format!("{x}").parse().unwrap_or(f64::from(x))
}

/// `x` as a JSON number with its shortest decimal.
pub fn f32_to_json(x: f32) -> Json {
    f64_to_json(f32_to_f64(x))
}
