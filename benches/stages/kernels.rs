//! `kernels/{quat_mul,apply_quat,vec3_add}/{scalar,simd}/1k`: the vector/quaternion
//! kernels of `column/kernels.rs`, scalar twin vs `wide` f32x4 twin, over 1,000 seeded
//! input pairs (a chain: each result feeds the next call, as a cell's fold does).
//! Throughput is in kernel calls.
//!
//! Reproduce: `cargo bench --bench main -- kernels/`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use vuer_rtc::column::kernels::{
    quat_mul_scalar, quat_mul_simd, vec3_add_scalar, vec3_add_simd, vec3_apply_quat_scalar,
    vec3_apply_quat_simd,
};
use vuer_rtc::workload::SplitMix64;

const N: usize = 1_000;

fn kernel_benches(c: &mut Criterion) {
    let mut rng = SplitMix64::new(7);
    let quats: Vec<[f32; 4]> = (0..N)
        .map(|_| {
            [
                rng.unit_f32(),
                rng.unit_f32(),
                rng.unit_f32(),
                rng.unit_f32(),
            ]
        })
        .collect();
    let mut group = c.benchmark_group("kernels");
    group.throughput(Throughput::Elements(N as u64));
    type Q = fn([f32; 4], [f32; 4]) -> [f32; 4];
    for (variant, f) in [
        ("scalar", quat_mul_scalar as Q),
        ("simd", quat_mul_simd as Q),
    ] {
        group.bench_function(BenchmarkId::new("quat_mul", format!("{variant}/1k")), |b| {
            b.iter(|| {
                let mut acc = [0.0, 0.0, 0.0, 1.0];
                for q in &quats {
                    acc = f(acc, black_box(*q));
                }
                acc
            });
        });
    }
    type A = fn([f32; 3], [f32; 4]) -> [f32; 3];
    for (variant, f) in [
        ("scalar", vec3_apply_quat_scalar as A),
        ("simd", vec3_apply_quat_simd as A),
    ] {
        group.bench_function(
            BenchmarkId::new("apply_quat", format!("{variant}/1k")),
            |b| {
                b.iter(|| {
                    let mut acc = [1.0, 0.0, 0.0];
                    for q in &quats {
                        acc = f(acc, black_box(*q));
                    }
                    acc
                });
            },
        );
    }
    type V = fn([f32; 3], [f32; 3]) -> [f32; 3];
    for (variant, f) in [
        ("scalar", vec3_add_scalar as V),
        ("simd", vec3_add_simd as V),
    ] {
        group.bench_function(BenchmarkId::new("vec3_add", format!("{variant}/1k")), |b| {
            b.iter(|| {
                let mut acc = [0.0; 3];
                for q in &quats {
                    acc = f(acc, black_box([q[0], q[1], q[2]]));
                }
                acc
            });
        });
    }
    group.finish();
}

criterion_group!(benches, kernel_benches);
