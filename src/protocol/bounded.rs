//! A bounded walk over an untrusted frame, before serde builds anything: nesting
//! depth, and (MessagePack) that every length fits in the bytes. After it passes, the
//! frame can be parsed into a `serde_json::Value` without recursion trouble (the crate
//! builds `serde_json` with `unbounded_depth`).
//!
//! It allocates nothing and never panics; it reads each byte at most once.

use crate::wire::Format;

/// Why a frame failed the walk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// Nested deeper than allowed.
    TooDeep(usize),
    /// Not well-formed (MessagePack lengths past the end, a reserved marker); JSON
    /// syntax is left to serde.
    Malformed(&'static str),
}

/// Checks that `bytes` nests at most `max_depth` containers deep.
pub(crate) fn check(bytes: &[u8], format: Format, max_depth: usize) -> Result<(), Walk> {
    match format {
        Format::Json => json(bytes, max_depth),
        Format::MessagePack => msgpack(bytes, max_depth),
    }
}

fn json(bytes: &[u8], max_depth: usize) -> Result<(), Walk> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(Walk::TooDeep(max_depth));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Walks MessagePack values with an explicit count of the values still to read at
/// each open container (a stack of at most `max_depth` counters).
fn msgpack(bytes: &[u8], max_depth: usize) -> Result<(), Walk> {
    const SHORT: Walk = Walk::Malformed("the bytes end inside a value");
    let mut pos = 0usize;
    // Values still to read in each open container; the bottom one is the top value.
    let mut pending: Vec<u64> = vec![1];
    let take = |pos: &mut usize, n: usize| -> Result<usize, Walk> {
        let start = *pos;
        let end = start.checked_add(n).ok_or(SHORT)?;
        if end > bytes.len() {
            return Err(SHORT);
        }
        *pos = end;
        Ok(start)
    };
    let be = |s: &[u8]| s.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        let at = take(&mut pos, 1)?;
        let m = bytes[at];
        // (bytes to skip, values of a new container)
        let (skip, open): (u64, Option<u64>) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, None),
            0x80..=0x8f => (0, Some(u64::from(m & 0x0f) * 2)),
            0x90..=0x9f => (0, Some(u64::from(m & 0x0f))),
            0xa0..=0xbf => (u64::from(m & 0x1f), None),
            0xc1 => return Err(Walk::Malformed("reserved MessagePack marker 0xc1")),
            0xc4 | 0xd9 => {
                let s = take(&mut pos, 1)?;
                (be(&bytes[s..s + 1]), None)
            }
            0xc5 | 0xda => {
                let s = take(&mut pos, 2)?;
                (be(&bytes[s..s + 2]), None)
            }
            0xc6 | 0xdb => {
                let s = take(&mut pos, 4)?;
                (be(&bytes[s..s + 4]), None)
            }
            0xc7 => {
                let s = take(&mut pos, 1)?;
                (be(&bytes[s..s + 1]) + 1, None)
            }
            0xc8 => {
                let s = take(&mut pos, 2)?;
                (be(&bytes[s..s + 2]) + 1, None)
            }
            0xc9 => {
                let s = take(&mut pos, 4)?;
                (be(&bytes[s..s + 4]) + 1, None)
            }
            0xca => (4, None),
            0xcb => (8, None),
            0xcc | 0xd0 => (1, None),
            0xcd | 0xd1 => (2, None),
            0xce | 0xd2 => (4, None),
            0xcf | 0xd3 => (8, None),
            0xd4 => (2, None),
            0xd5 => (3, None),
            0xd6 => (5, None),
            0xd7 => (9, None),
            0xd8 => (17, None),
            0xdc => {
                let s = take(&mut pos, 2)?;
                (0, Some(be(&bytes[s..s + 2])))
            }
            0xdd => {
                let s = take(&mut pos, 4)?;
                (0, Some(be(&bytes[s..s + 4])))
            }
            0xde => {
                let s = take(&mut pos, 2)?;
                (0, Some(be(&bytes[s..s + 2]) * 2))
            }
            0xdf => {
                let s = take(&mut pos, 4)?;
                (0, Some(be(&bytes[s..s + 4]) * 2))
            }
        };
        take(&mut pos, usize::try_from(skip).map_err(|_| SHORT)?)?;
        if let Some(n) = open {
            // Every value takes at least one byte: a count past the rest is damage.
            if n > (bytes.len() - pos) as u64 {
                return Err(SHORT);
            }
            if pending.len() > max_depth {
                return Err(Walk::TooDeep(max_depth));
            }
            pending.push(n);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_bounded_in_both_formats() {
        let deep_json = "[".repeat(100_000);
        assert_eq!(
            check(deep_json.as_bytes(), Format::Json, 64),
            Err(Walk::TooDeep(64))
        );
        let ok = r#"{"a": [[1, "]]]]"], {"b": "\"{"}]}"#;
        assert_eq!(check(ok.as_bytes(), Format::Json, 3), Ok(()));
        assert_eq!(check(ok.as_bytes(), Format::Json, 2), Err(Walk::TooDeep(2)));

        let deep_mp = vec![0x91u8; 100_000];
        assert!(check(&deep_mp, Format::MessagePack, 64).is_err());
        let v = serde_json::json!({"a": [[1, "x"], {"b": 2.5}], "c": null});
        let bytes = rmp_serde::to_vec_named(&v).unwrap();
        assert_eq!(check(&bytes, Format::MessagePack, 3), Ok(()));
        assert_eq!(check(&bytes, Format::MessagePack, 2), Err(Walk::TooDeep(2)));
    }

    #[test]
    fn msgpack_lengths_past_the_end_are_malformed() {
        // A map claiming 2^32-1 entries, a string claiming 255 bytes.
        assert!(check(&[0xdf, 0xff, 0xff, 0xff, 0xff], Format::MessagePack, 64).is_err());
        assert!(check(&[0xd9, 0xff, b'a'], Format::MessagePack, 64).is_err());
        assert!(check(&[], Format::MessagePack, 64).is_err());
        assert!(check(&[0xc1], Format::MessagePack, 64).is_err());
    }
}
