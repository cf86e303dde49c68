//! Scalar math kernels for vector, quaternion and colour ops.
//!
//! Each kernel is a pure function on plain arrays with a fixed operation order and no
//! fused multiply-add, so results are bit-identical on every replica of a platform (and
//! a future SIMD twin can reproduce them lane by lane). Vector and quaternion math runs
//! in `f32`; Euler angles are turned into a quaternion in `f64` (trigonometry) and
//! rounded once.
//!
//! Formulas follow the reference (`vuer_rtc.operations.dispatcher`): Hamilton product
//! with `[x, y, z, w]` layout, `q · v · q⁻¹` rotation without normalisation, and the
//! per-order Euler → quaternion table (extrinsic = reversed order).

use super::value::Rgb;
use crate::op::EulerOrder;

/// Component-wise `a + b`.
#[inline]
pub fn vec3_add(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// Component-wise `a × b`.
#[inline]
pub fn vec3_mul(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] * b[0], a[1] * b[1], a[2] * b[2]]
}

/// Hamilton product `a × b` of `[x, y, z, w]` quaternions.
#[inline]
pub fn quat_mul(a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
    let [ax, ay, az, aw] = a;
    let [bx, by, bz, bw] = b;
    [
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ]
}

/// Rotates `v` by `q` (`q · v · q⁻¹`, with the conjugate as inverse; not normalised).
#[inline]
pub fn vec3_apply_quat(v: [f32; 3], q: [f32; 4]) -> [f32; 3] {
    let [vx, vy, vz] = v;
    let [qx, qy, qz, qw] = q;
    let ix = qw * vx + qy * vz - qz * vy;
    let iy = qw * vy + qz * vx - qx * vz;
    let iz = qw * vz + qx * vy - qy * vx;
    let iw = -qx * vx - qy * vy - qz * vz;
    [
        ix * qw + iw * -qx + iy * -qz - iz * -qy,
        iy * qw + iw * -qy + iz * -qx - ix * -qz,
        iz * qw + iw * -qz + ix * -qy - iy * -qx,
    ]
}

/// The quaternion of Euler angles (radians) in `order`; extrinsic uses the reversed order.
pub fn euler_to_quat(angles: [f32; 3], order: EulerOrder, intrinsic: bool) -> [f32; 4] {
    let order = if intrinsic { order } else { order.reversed() };
    let [x, y, z] = angles.map(f64::from);
    let (c1, s1) = ((x / 2.0).cos(), (x / 2.0).sin());
    let (c2, s2) = ((y / 2.0).cos(), (y / 2.0).sin());
    let (c3, s3) = ((z / 2.0).cos(), (z / 2.0).sin());
    let (a, b, c, d) = (s1 * c2 * c3, c1 * s2 * c3, c1 * c2 * s3, c1 * c2 * c3);
    let (e, f, g, h) = (c1 * s2 * s3, s1 * c2 * s3, s1 * s2 * c3, s1 * s2 * s3);
    let q = match order {
        EulerOrder::Xyz => [a + e, b - f, c + g, d - h],
        EulerOrder::Yxz => [a + e, b - f, c - g, d + h],
        EulerOrder::Zxy => [a - e, b + f, c + g, d - h],
        EulerOrder::Zyx => [a - e, b + f, c - g, d + h],
        EulerOrder::Yzx => [a + e, b + f, c - g, d - h],
        EulerOrder::Xzy => [a - e, b - f, c + g, d + h],
    };
    #[expect(
        clippy::cast_possible_truncation,
        reason = "quaternions are f32 by design"
    )]
    q.map(|x| x as f32)
}

/// Blends `current` towards `target` by `alpha`, per channel:
/// `round_half_even(c + (t − c)·alpha)`, clamped to `0..=255`.
pub fn rgb_blend(current: Rgb, target: Rgb, alpha: f64) -> Rgb {
    let c = current.channels();
    let t = target.channels();
    let mut out = [0u8; 3];
    for i in 0..3 {
        let (a, b) = (f64::from(c[i]), f64::from(t[i]));
        let x = (a + (b - a) * alpha).round_ties_even().clamp(0.0, 255.0);
        #[expect(clippy::cast_possible_truncation, reason = "clamped to 0..=255")]
        #[expect(clippy::cast_sign_loss, reason = "clamped to 0..=255")]
        {
            out[i] = x as u8;
        }
    }
    Rgb::from_channels(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    #[test]
    fn quaternion_identity_and_rotation() {
        let id = [0.0, 0.0, 0.0, 1.0];
        let q = [0.0, 0.707_106_77, 0.0, 0.707_106_77];
        assert_eq!(quat_mul(id, q), q);
        assert_eq!(quat_mul(q, id), q);
        // 90° about Y takes +X to −Z.
        assert!(close(
            &vec3_apply_quat([1.0, 0.0, 0.0], q),
            &[0.0, 0.0, -1.0]
        ));
    }

    #[test]
    fn euler_matches_quaternion_composition() {
        use std::f32::consts::FRAC_PI_2;
        // Intrinsic XYZ of (0, π/2, 0) is 90° about Y.
        let q = euler_to_quat([0.0, FRAC_PI_2, 0.0], EulerOrder::Xyz, true);
        assert!(close(&q, &[0.0, 0.707_106_77, 0.0, 0.707_106_77]));
        // Intrinsic XYZ == extrinsic ZYX.
        let a = [0.3, -1.1, 0.7];
        assert_eq!(
            euler_to_quat(a, EulerOrder::Xyz, true),
            euler_to_quat(a, EulerOrder::Zyx, false)
        );
        // Each order equals the product of its axis rotations in that order.
        let axis = |i: usize, t: f32| {
            let mut q = [0.0, 0.0, 0.0, (t / 2.0).cos()];
            q[i] = (t / 2.0).sin();
            q
        };
        for (order, s) in EulerOrder::ALL {
            let mut expect = [0.0, 0.0, 0.0, 1.0];
            for ch in s.chars() {
                let i = (ch as u8 - b'X') as usize;
                expect = quat_mul(expect, axis(i, a[i]));
            }
            assert!(close(&euler_to_quat(a, order, true), &expect), "{s}");
        }
    }

    #[test]
    fn blend_rounds_half_to_even() {
        let b = |x: u8, y: u8| {
            rgb_blend(
                Rgb::from_channels([x, 0, 0]),
                Rgb::from_channels([y, 0, 0]),
                0.5,
            )
            .channels()[0]
        };
        assert_eq!(b(1, 2), 2);
        assert_eq!(b(2, 3), 2);
        assert_eq!(b(0, 255), 128);
        assert_eq!(b(255, 0), 128);
        assert_eq!(rgb_blend(Rgb(0), Rgb(0xffffff), 2.0), Rgb(0xffffff));
    }
}
