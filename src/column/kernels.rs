//! Math kernels for vector, quaternion and colour ops.
//!
//! Each vector/quaternion kernel has a scalar twin (`*_scalar`) and a `wide` `f32x4`
//! twin (`*_simd`) with the same operation order lane by lane and no fused
//! multiply-add, so the two agree bit for bit (tested below, NaN and −0.0 included) and
//! every replica computes the same bits. The unsuffixed names are what the engine calls:
//! whichever twin measured faster (`cargo bench --bench main -- kernels/`): the SIMD
//! `quat_mul`, the scalar vector kernels (packing three lanes costs more than it saves).
//! Euler angles are turned into a quaternion in `f64` (trigonometry)
//! and rounded to `f32` once.
//!
//! Formulas follow the reference (`vuer_rtc.operations.dispatcher`): Hamilton product
//! with `[x, y, z, w]` layout, `q · v · q⁻¹` rotation without normalisation, and the
//! per-order Euler → quaternion table (extrinsic = reversed order).

use super::value::Rgb;
use crate::op::EulerOrder;

use wide::f32x4;

/// Component-wise `a + b` (the engine's kernel).
#[inline]
pub fn vec3_add(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    vec3_add_scalar(a, b)
}

/// Component-wise `a × b` (the engine's kernel).
#[inline]
pub fn vec3_mul(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    vec3_mul_scalar(a, b)
}

/// Hamilton product `a × b` of `[x, y, z, w]` quaternions (the engine's kernel).
#[inline]
pub fn quat_mul(a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
    quat_mul_simd(a, b)
}

/// Rotates `v` by `q` (`q · v · q⁻¹` with the conjugate as inverse; not normalised).
#[inline]
pub fn vec3_apply_quat(v: [f32; 3], q: [f32; 4]) -> [f32; 3] {
    vec3_apply_quat_scalar(v, q)
}

/// Scalar twin of [`vec3_add`].
#[inline]
pub fn vec3_add_scalar(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// Scalar twin of [`vec3_mul`].
#[inline]
pub fn vec3_mul_scalar(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] * b[0], a[1] * b[1], a[2] * b[2]]
}

/// Scalar twin of [`quat_mul`] (the reference's formula).
#[inline]
pub fn quat_mul_scalar(a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
    let [ax, ay, az, aw] = a;
    let [bx, by, bz, bw] = b;
    [
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ]
}

/// Scalar twin of [`vec3_apply_quat`] (the reference's formula).
#[inline]
pub fn vec3_apply_quat_scalar(v: [f32; 3], q: [f32; 4]) -> [f32; 3] {
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

fn lanes3(v: [f32; 3]) -> f32x4 {
    f32x4::new([v[0], v[1], v[2], 0.0])
}

fn first3(v: f32x4) -> [f32; 3] {
    let [x, y, z, _] = v.to_array();
    [x, y, z]
}

/// `f32x4` twin of [`vec3_add_scalar`] (lane 3 padding).
#[inline]
pub fn vec3_add_simd(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    first3(lanes3(a) + lanes3(b))
}

/// `f32x4` twin of [`vec3_mul_scalar`].
#[inline]
pub fn vec3_mul_simd(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    first3(lanes3(a) * lanes3(b))
}

/// `f32x4` twin of [`quat_mul_scalar`]: `aw·b + ax·p + ay·q + az·r` with the sign
/// patterns folded into `p`, `q`, `r` (a sign flip is exact, so each lane adds the
/// same products in the same order as the scalar formula).
#[inline]
pub fn quat_mul_simd(a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
    let [ax, ay, az, aw] = a;
    let [bx, by, bz, bw] = b;
    let r = f32x4::splat(aw) * f32x4::new([bx, by, bz, bw])
        + f32x4::splat(ax) * f32x4::new([bw, -bz, by, -bx])
        + f32x4::splat(ay) * f32x4::new([bz, bw, -bx, -by])
        + f32x4::splat(az) * f32x4::new([-by, bx, bw, -bz]);
    r.to_array()
}

/// `f32x4` twin of [`vec3_apply_quat_scalar`]: `i = q·v` in one vector (lanes x, y, z,
/// w), then `i·q⁻¹` in lanes x, y, z.
#[inline]
pub fn vec3_apply_quat_simd(v: [f32; 3], q: [f32; 4]) -> [f32; 3] {
    let [vx, vy, vz] = v;
    let [qx, qy, qz, qw] = q;
    let i = f32x4::new([qw, qw, qw, -qx]) * f32x4::new([vx, vy, vz, vx])
        + f32x4::new([qy, qz, qx, -qy]) * f32x4::new([vz, vx, vy, vy])
        - f32x4::new([qz, qx, qy, qz]) * f32x4::new([vy, vz, vx, vz]);
    let [ix, iy, iz, iw] = i.to_array();
    let out = f32x4::new([ix, iy, iz, 0.0]) * f32x4::splat(qw)
        + f32x4::splat(iw) * f32x4::new([-qx, -qy, -qz, 0.0])
        + f32x4::new([iy, iz, ix, 0.0]) * f32x4::new([-qz, -qx, -qy, 0.0])
        - f32x4::new([iz, ix, iy, 0.0]) * f32x4::new([-qy, -qz, -qx, 0.0]);
    first3(out)
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

    /// Equal bits, or both NaN (NaN payloads may differ between instruction sets).
    fn same(a: &[f32], b: &[f32]) -> bool {
        a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    #[test]
    fn simd_twins_agree_bit_for_bit() {
        let specials = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            1e-38,
            3.4e38,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1.0e-45,
        ];
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let bits = (state >> 32) as u32;
            if bits.is_multiple_of(7) {
                specials[(bits as usize / 7) % specials.len()]
            } else {
                f32::from_bits(bits % 0x7f00_0000) * if bits & 1 == 0 { 1.0 } else { -1.0 }
            }
        };
        for _ in 0..20_000 {
            let a = [next(), next(), next(), next()];
            let b = [next(), next(), next(), next()];
            let (a3, b3) = ([a[0], a[1], a[2]], [b[0], b[1], b[2]]);
            assert!(
                same(&quat_mul_simd(a, b), &quat_mul_scalar(a, b)),
                "quat_mul {a:?} {b:?}"
            );
            assert!(
                same(&vec3_apply_quat_simd(a3, b), &vec3_apply_quat_scalar(a3, b)),
                "apply {a3:?} {b:?}"
            );
            assert!(
                same(&vec3_add_simd(a3, b3), &vec3_add_scalar(a3, b3)),
                "add {a3:?} {b3:?}"
            );
            assert!(
                same(&vec3_mul_simd(a3, b3), &vec3_mul_scalar(a3, b3)),
                "mul {a3:?} {b3:?}"
            );
        }
    }

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
