//! MessagePack of a journaled message written straight from its records, for the
//! messages a [`crate::Writer`] makes: no owned [`crate::Message`], no `Op`, no
//! `serde` value per op. The bytes are exactly [`crate::wire::encode_message`]'s of
//! [`Replica::journaled_message`] (the same field order, the same integer-or-float
//! choice per number, the same smallest encodings; tested byte for byte in
//! `tests/writer.rs`).
//!
//! Only messages whose ops all have one of the common inline bodies (numbers, vectors,
//! Euler angles, quaternions, booleans) are written here; any other message is
//! rebuilt and encoded the general way.

use super::Replica;
use crate::op::body::Payload;
use crate::op::number::f32_to_f64;
use crate::wire::{self, Format};

/// An `f64` as the wire writes a number: an integer when it is one (below 2^53), a
/// float64 otherwise (`op::number::f64_to_json`'s rule, then rmp's smallest form, as
/// `rmp_serde` writes a JSON number).
fn num(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
        #[expect(clippy::cast_possible_truncation, reason = "integral and below 2^53")]
        let i = x as i64;
        // Writing into a `Vec` cannot fail.
        let _ = if i >= 0 {
            rmp::encode::write_uint(out, i.unsigned_abs()).map(|_| ())
        } else {
            rmp::encode::write_sint(out, i).map(|_| ())
        };
    } else {
        let _ = rmp::encode::write_f64(out, x);
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    let _ = rmp::encode::write_str(out, s);
}

impl Replica {
    /// The journaled message with this id in `format`, exactly the bytes of
    /// [`wire::encode_message`] of [`Replica::journaled_message`]; MessagePack of a
    /// message of common inline ops (what a [`crate::Writer`] commits) is written
    /// straight from the records (see `encode.rs`). `None` when no such message is
    /// journaled.
    pub fn encode_journaled(&self, id: &str, format: Format) -> Option<Vec<u8>> {
        let i = self.journal.slot(id)?;
        let entry = self.journal.entry(i);
        let fast =
            format == Format::MessagePack && entry.ops.iter().all(|r| r.body.payload().is_some());
        if !fast {
            let m = self.journaled_message(id)?;
            return Some(wire::encode_message(&m, format));
        }
        let client = self.graph.clients.name(self.journal.stamp(i).client);
        let mut out = Vec::with_capacity(64 + entry.ops.len() * 48);
        let _ = rmp::encode::write_map_len(&mut out, 6);
        text(&mut out, "id");
        text(&mut out, &entry.id);
        text(&mut out, "client");
        text(&mut out, client);
        text(&mut out, "clock");
        let clock = entry.clock(client);
        let _ = rmp::encode::write_map_len(&mut out, u32::try_from(clock.len()).ok()?);
        for (name, n) in &clock {
            text(&mut out, name);
            let _ = rmp::encode::write_uint(&mut out, *n);
        }
        text(&mut out, "lt");
        let _ = rmp::encode::write_uint(&mut out, entry.lt);
        text(&mut out, "ts");
        num(&mut out, entry.ts);
        text(&mut out, "ops");
        let _ = rmp::encode::write_array_len(&mut out, u32::try_from(entry.ops.len()).ok()?);
        for r in entry.ops.iter() {
            let value = r.body.payload()?;
            let _ = rmp::encode::write_map_len(&mut out, 4);
            text(&mut out, "ot");
            text(&mut out, r.body.kind().ot());
            text(&mut out, "key");
            text(&mut out, r.key(&self.graph.keys));
            text(&mut out, "path");
            text(&mut out, r.path(&self.graph.paths));
            text(&mut out, "value");
            match value {
                Payload::Number(x) => num(&mut out, x),
                Payload::Bool(b) => {
                    let _ = rmp::encode::write_bool(&mut out, b);
                }
                Payload::Floats(v) => {
                    let _ = rmp::encode::write_array_len(&mut out, u32::try_from(v.len()).ok()?);
                    for &x in v {
                        num(&mut out, f32_to_f64(x));
                    }
                }
            }
        }
        Some(out)
    }
}
