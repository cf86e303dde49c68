//! `decode/{json,msgpack}/10k`: [`wire::decode_messages`] of the 10,000-message ×
//! 10-op edit mix described in [`crate::stages::workload`] (100,000 ops: 50% `vector3.set`
//! `position`, 25% `number.add` `health`, 25% `quaternion.multiply` `rotation`; 1,000
//! nodes, 100 clients, interleaved `lt`s), with [`Limits::default`].
//!
//! Setup encodes the messages once with [`wire::encode_messages`] (one JSON array, one
//! MessagePack array of named maps) and checks that decoding gives them back. Each
//! iteration decodes the whole buffer, validation included; dropping the decoded
//! `Vec<Message>` is not timed (`iter_with_large_drop`). Throughput is in ops.
//!
//! Reproduce: `cargo bench --bench main -- decode/`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use vuer_rtc::op::{Limits, Message};
use vuer_rtc::wire::{self, Format};

use crate::stages::workload::{TOTAL_OPS, edit_messages};

#[inline(never)]
fn decode(bytes: &[u8], format: Format, limits: &Limits) -> Vec<Message> {
    wire::decode_messages(bytes, format, limits).expect("the fixture decodes")
}

fn decode_benches(c: &mut Criterion) {
    let msgs = edit_messages();
    let limits = Limits::default();
    let mut group = c.benchmark_group("decode");
    group.sample_size(20);
    group.throughput(Throughput::Elements(TOTAL_OPS as u64));
    for (variant, format) in [("json", Format::Json), ("msgpack", Format::MessagePack)] {
        let bytes = wire::encode_messages(&msgs, format);
        assert_eq!(
            decode(&bytes, format, &limits),
            msgs,
            "{variant} round trip"
        );
        group.bench_with_input(BenchmarkId::new(variant, "10k"), &bytes, |b, bytes| {
            b.iter_with_large_drop(|| decode(black_box(bytes), format, &limits));
        });
    }
    group.finish();
}

criterion_group!(benches, decode_benches);
