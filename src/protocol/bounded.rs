//! Bounded walks over an untrusted frame, before serde builds anything:
//!
//! - [`check`]: the nesting depth of the whole frame, and (MessagePack) that every
//!   length fits in the bytes. After it passes, any part of the frame can be parsed
//!   with serde's recursion limits lifted (the crate builds `serde_json` with
//!   `unbounded_depth`).
//! - [`map_entries`]: the entries of one map, each key with the exact bytes of its
//!   value, so that a message inside a frame goes to [`crate::wire`]'s decoder as its
//!   own slice (with that decoder's pre-pass) and nothing else of the frame is built.
//!
//! Neither recurses nor panics, and neither allocates per value (beyond one entry per
//! key of the map asked about, and `check`'s stack of at most `max_depth` counters).
//!
//! JSON syntax is not checked here beyond what finding the spans needs: every span is
//! later parsed by serde (or the wire decoder), which reports the precise error.

use crate::wire::Format;

/// Why a frame failed a walk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// Nested deeper than allowed.
    TooDeep(usize),
    /// Not well-formed: MessagePack lengths past the end, a reserved marker, a value
    /// that is not a map, bytes after the map.
    Malformed(&'static str),
}

const SHORT: Walk = Walk::Malformed("the bytes end inside a value");
const NOT_A_MAP: Walk = Walk::Malformed("a frame is one map");
const BAD_JSON: Walk = Walk::Malformed("not well-formed JSON");

/// Checks that `bytes` nests at most `max_depth` containers deep.
pub(crate) fn check(bytes: &[u8], format: Format, max_depth: usize) -> Result<(), Walk> {
    match format {
        Format::Json => json_depth(bytes, max_depth),
        Format::MessagePack => msgpack_depth(bytes, max_depth),
    }
}

/// The entries of the map that `bytes` is (exactly: only whitespace may follow it in
/// JSON, nothing in MessagePack): each key with its value's bytes, in input order.
/// MessagePack entries whose keys are not strings are left out; a JSON key with
/// escapes is unescaped.
pub(crate) fn map_entries(bytes: &[u8], format: Format) -> Result<Vec<(String, &[u8])>, Walk> {
    match format {
        Format::Json => json_entries(bytes),
        Format::MessagePack => msgpack_entries(bytes),
    }
}

/// True when `span` (a value found by [`map_entries`]) is a map.
pub(crate) fn is_map(span: &[u8], format: Format) -> bool {
    match (format, span.first()) {
        (Format::Json, Some(&b)) => b == b'{',
        (Format::MessagePack, Some(&b)) => matches!(b, 0x80..=0x8f | 0xde | 0xdf),
        (_, None) => false,
    }
}

/// True when `span` (a value found by [`map_entries`]) is an array.
pub(crate) fn is_array(span: &[u8], format: Format) -> bool {
    match (format, span.first()) {
        (Format::Json, Some(&b)) => b == b'[',
        (Format::MessagePack, Some(&b)) => matches!(b, 0x90..=0x9f | 0xdc | 0xdd),
        (_, None) => false,
    }
}

/// True when `span` (a value found by [`map_entries`]) is null / nil.
pub(crate) fn is_null(span: &[u8], format: Format) -> bool {
    match format {
        Format::Json => span == b"null",
        Format::MessagePack => span == [0xc0],
    }
}

// ---------------------------------------------------------------------------------
// JSON

fn json_depth(bytes: &[u8], max_depth: usize) -> Result<(), Walk> {
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

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// One past the closing quote of the string whose opening quote is at `i`.
fn json_string_end(b: &[u8], i: usize) -> Result<usize, Walk> {
    let mut j = i + 1;
    loop {
        let rest = b.get(j..).ok_or(SHORT)?;
        j += memchr::memchr2(b'"', b'\\', rest).ok_or(SHORT)?;
        if b.get(j) == Some(&b'"') {
            return Ok(j + 1);
        }
        // A backslash: skip it and the byte it escapes.
        j += 2;
    }
}

/// One past the end of the value that starts at `i` (no whitespace before it).
/// Containers are matched by their brackets (strings skipped); scalars run to the
/// next delimiter. serde checks the syntax inside.
fn json_value_end(b: &[u8], i: usize) -> Result<usize, Walk> {
    match b.get(i).ok_or(SHORT)? {
        b'"' => json_string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while let Some(&c) = b.get(j) {
                match c {
                    b'"' => {
                        j = json_string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Err(SHORT)
        }
        _ => {
            let mut j = i;
            while b.get(j).is_some_and(|c| {
                !matches!(c, b',' | b'}' | b']' | b':' | b' ' | b'\t' | b'\n' | b'\r')
            }) {
                j += 1;
            }
            if j == i { Err(BAD_JSON) } else { Ok(j) }
        }
    }
}

/// A key, from its bytes with the quotes.
fn json_key(raw: &[u8]) -> Result<String, Walk> {
    let inner = raw.get(1..raw.len().saturating_sub(1)).ok_or(BAD_JSON)?;
    if inner.contains(&b'\\') {
        serde_json::from_slice::<String>(raw).map_err(|_| BAD_JSON)
    } else {
        std::str::from_utf8(inner)
            .map(str::to_owned)
            .map_err(|_| BAD_JSON)
    }
}

/// The error for a byte that is not what the grammar needs at `i`.
fn unexpected(b: &[u8], i: usize) -> Walk {
    if i >= b.len() { SHORT } else { BAD_JSON }
}

fn json_entries(b: &[u8]) -> Result<Vec<(String, &[u8])>, Walk> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(NOT_A_MAP);
    }
    let mut out = Vec::new();
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return Err(unexpected(b, i));
            }
            let key_end = json_string_end(b, i)?;
            let key = json_key(b.get(i..key_end).ok_or(SHORT)?)?;
            i = skip_ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return Err(unexpected(b, i));
            }
            i = skip_ws(b, i + 1);
            let end = json_value_end(b, i)?;
            out.push((key, b.get(i..end).ok_or(SHORT)?));
            i = skip_ws(b, end);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return Err(unexpected(b, i)),
            }
        }
    }
    if skip_ws(b, i) != b.len() {
        return Err(Walk::Malformed("bytes after the frame's map"));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// MessagePack

/// The value whose marker is at `pos`: where its header and payload end, and how many
/// values it contains (a map's entries count twice).
fn mp_head(b: &[u8], pos: usize) -> Result<(usize, u64), Walk> {
    let be = |at: usize, n: usize| -> Result<u64, Walk> {
        let s = b.get(at..at.checked_add(n).ok_or(SHORT)?).ok_or(SHORT)?;
        Ok(s.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    let m = *b.get(pos).ok_or(SHORT)?;
    let p = pos + 1;
    // (header bytes after the marker, payload bytes, values inside)
    let (head, payload, inside): (usize, u64, u64) = match m {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0, 0),
        0x80..=0x8f => (0, 0, u64::from(m & 0x0f) * 2),
        0x90..=0x9f => (0, 0, u64::from(m & 0x0f)),
        0xa0..=0xbf => (0, u64::from(m & 0x1f), 0),
        0xc1 => return Err(Walk::Malformed("reserved MessagePack marker 0xc1")),
        0xc4 | 0xd9 => (1, be(p, 1)?, 0),
        0xc5 | 0xda => (2, be(p, 2)?, 0),
        0xc6 | 0xdb => (4, be(p, 4)?, 0),
        0xc7 => (1, be(p, 1)? + 1, 0),
        0xc8 => (2, be(p, 2)? + 1, 0),
        0xc9 => (4, be(p, 4)? + 1, 0),
        0xca => (0, 4, 0),
        0xcb => (0, 8, 0),
        0xcc | 0xd0 => (0, 1, 0),
        0xcd | 0xd1 => (0, 2, 0),
        0xce | 0xd2 => (0, 4, 0),
        0xcf | 0xd3 => (0, 8, 0),
        0xd4 => (0, 2, 0),
        0xd5 => (0, 3, 0),
        0xd6 => (0, 5, 0),
        0xd7 => (0, 9, 0),
        0xd8 => (0, 17, 0),
        0xdc => (2, 0, be(p, 2)?),
        0xdd => (4, 0, be(p, 4)?),
        0xde => (2, 0, be(p, 2)? * 2),
        0xdf => (4, 0, be(p, 4)? * 2),
    };
    let end = usize::try_from(payload)
        .ok()
        .and_then(|n| (p + head).checked_add(n))
        .filter(|&e| e <= b.len())
        .ok_or(SHORT)?;
    // Every value takes at least one byte: a count past the rest is damage.
    if inside > (b.len() - end) as u64 {
        return Err(SHORT);
    }
    Ok((end, inside))
}

/// One past the end of the value at `pos` (a counter, no stack).
fn mp_value_end(b: &[u8], mut pos: usize) -> Result<usize, Walk> {
    let mut remaining: u64 = 1;
    while remaining > 0 {
        let (end, inside) = mp_head(b, pos)?;
        pos = end;
        remaining = remaining - 1 + inside;
        // Each value still to read takes a byte.
        if remaining > (b.len() - pos) as u64 {
            return Err(SHORT);
        }
    }
    Ok(pos)
}

/// Walks MessagePack values with an explicit count of the values still to read at
/// each open container (a stack of at most `max_depth` counters).
fn msgpack_depth(b: &[u8], max_depth: usize) -> Result<(), Walk> {
    let mut pos = 0usize;
    // Values still to read in each open container; the bottom one is the top value.
    let mut pending: Vec<u64> = vec![1];
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        let container = b
            .get(pos)
            .is_some_and(|&m| matches!(m, 0x80..=0x9f | 0xdc..=0xdf));
        let (end, inside) = mp_head(b, pos)?;
        pos = end;
        if container {
            if pending.len() > max_depth {
                return Err(Walk::TooDeep(max_depth));
            }
            pending.push(inside);
        }
    }
    Ok(())
}

/// The bytes of the MessagePack string at `pos` (`None`: another type).
fn mp_str(b: &[u8], pos: usize) -> Option<&[u8]> {
    let len_at = |n: usize| -> Option<usize> {
        let s = b.get(pos + 1..pos + 1 + n)?;
        usize::try_from(s.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))).ok()
    };
    let m = *b.get(pos)?;
    let (head, len) = match m {
        0xa0..=0xbf => (0, usize::from(m & 0x1f)),
        0xd9 => (1, len_at(1)?),
        0xda => (2, len_at(2)?),
        0xdb => (4, len_at(4)?),
        _ => return None,
    };
    let start = pos + 1 + head;
    b.get(start..start.checked_add(len)?)
}

fn msgpack_entries(b: &[u8]) -> Result<Vec<(String, &[u8])>, Walk> {
    if !is_map(b, Format::MessagePack) {
        return Err(NOT_A_MAP);
    }
    let (mut pos, inside) = mp_head(b, 0)?;
    let mut out = Vec::new();
    for _ in 0..inside / 2 {
        let key_at = pos;
        let value_at = mp_value_end(b, key_at)?;
        let end = mp_value_end(b, value_at)?;
        if let Some(key) = mp_str(b, key_at) {
            let key = std::str::from_utf8(key)
                .map_err(|_| Walk::Malformed("a map key that is not UTF-8"))?;
            out.push((key.to_owned(), b.get(value_at..end).ok_or(SHORT)?));
        }
        pos = end;
    }
    if pos != b.len() {
        return Err(Walk::Malformed("bytes after the frame's map"));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Lazy MessagePack walks (for reading a few leading fields of a trusted frame without
// walking the rest; see `protocol::scan_broadcast`)

/// The entries of the MessagePack map at the start of `b`, one at a time. Each value
/// is given as the slice from its first byte to the end of `b`; its end is found only
/// when the next entry is asked for, so a caller that stops early never walks the rest.
pub(crate) struct MpMap<'a> {
    b: &'a [u8],
    /// Where the next key starts, or the start of the last value given out.
    pos: usize,
    /// `pos` is the start of a value given out (its end is not yet known).
    in_value: bool,
    left: u64,
}

/// A lazy walk over the map at the start of `b` (`Err` when it is not a map).
pub(crate) fn mp_map(b: &[u8]) -> Result<MpMap<'_>, Walk> {
    if !is_map(b, Format::MessagePack) {
        return Err(NOT_A_MAP);
    }
    let (pos, inside) = mp_head(b, 0)?;
    Ok(MpMap {
        b,
        pos,
        in_value: false,
        left: inside / 2,
    })
}

impl<'a> Iterator for MpMap<'a> {
    /// The key (`None` when it is not a UTF-8 string) and the value's slice.
    type Item = Result<(Option<&'a str>, &'a [u8]), Walk>;

    fn next(&mut self) -> Option<Self::Item> {
        let step = || -> Result<Option<(Option<&'a str>, usize)>, Walk> {
            let mut pos = self.pos;
            if self.in_value {
                pos = mp_value_end(self.b, pos)?;
            }
            if self.left == 0 {
                return Ok(None);
            }
            let key = mp_str(self.b, pos).and_then(|k| std::str::from_utf8(k).ok());
            let value_at = mp_value_end(self.b, pos)?;
            Ok(Some((key, value_at)))
        };
        match step() {
            Ok(Some((key, value_at))) => {
                self.pos = value_at;
                self.in_value = true;
                self.left -= 1;
                Some(Ok((key, self.b.get(value_at..)?)))
            }
            Ok(None) => {
                self.in_value = false;
                None
            }
            Err(e) => {
                self.left = 0;
                self.in_value = false;
                Some(Err(e))
            }
        }
    }
}

/// The items of the MessagePack array at the start of `b`, one at a time, each as the
/// slice from its first byte to the end of `b` (found as [`MpMap`] finds values).
pub(crate) struct MpArray<'a> {
    b: &'a [u8],
    pos: usize,
    started: bool,
    left: u64,
}

/// A lazy walk over the array at the start of `b` (`Err` when it is not an array).
pub(crate) fn mp_array(b: &[u8]) -> Result<MpArray<'_>, Walk> {
    if !is_array(b, Format::MessagePack) {
        return Err(Walk::Malformed("expected an array"));
    }
    let (pos, left) = mp_head(b, 0)?;
    Ok(MpArray {
        b,
        pos,
        started: false,
        left,
    })
}

impl MpArray<'_> {
    /// The items not yet given out (the array's length before the first `next`).
    pub(crate) fn len(&self) -> usize {
        usize::try_from(self.left).unwrap_or(usize::MAX)
    }
}

impl<'a> Iterator for MpArray<'a> {
    type Item = Result<&'a [u8], Walk>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        if self.started {
            match mp_value_end(self.b, self.pos) {
                Ok(end) => self.pos = end,
                Err(e) => {
                    self.left = 0;
                    return Some(Err(e));
                }
            }
        }
        self.started = true;
        self.left -= 1;
        match self.b.get(self.pos..) {
            Some(s) if !s.is_empty() => Some(Ok(s)),
            _ => {
                self.left = 0;
                Some(Err(SHORT))
            }
        }
    }
}

/// The MessagePack string at the start of `s` (`None`: another type, or not UTF-8).
pub(crate) fn mp_str_at(s: &[u8]) -> Option<&str> {
    mp_str(s, 0).and_then(|k| std::str::from_utf8(k).ok())
}

/// The MessagePack number (integer or float) at the start of `s`, as `f64`.
pub(crate) fn mp_number_at(s: &[u8]) -> Option<f64> {
    let m = *s.first()?;
    let be = |n: usize| -> Option<u64> {
        let bytes = s.get(1..1 + n)?;
        Some(bytes.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    // The `as` casts below reinterpret the big-endian bits at the marker's width.
    Some(match m {
        0x00..=0x7f => f64::from(m),
        0xe0..=0xff => f64::from(m as i8),
        0xcc => be(1)? as f64,
        0xcd => be(2)? as f64,
        0xce => be(4)? as f64,
        0xcf => be(8)? as f64,
        0xd0 => f64::from(be(1)? as u8 as i8),
        0xd1 => f64::from(be(2)? as u16 as i16),
        0xd2 => f64::from(be(4)? as u32 as i32),
        0xd3 => be(8)? as i64 as f64,
        0xca => f64::from(f32::from_bits(be(4)? as u32)),
        0xcb => f64::from_bits(be(8)?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_walks_read_leading_fields_and_never_panic() {
        let v = serde_json::json!({
            "mtype": "broadcast-batch",
            "msgs": [{"id": "a:1", "lt": 300, "ts": 1.5, "ops": [[1, 2], {"x": "y"}]},
                     {"id": "b:2", "lt": -7, "ts": 70000}],
            "z": null
        });
        let bytes = rmp_serde::to_vec_named(&v).unwrap();
        let entries: Vec<_> = mp_map(&bytes).unwrap().map(Result::unwrap).collect();
        assert_eq!(entries.len(), 3);
        // (serde_json's map is sorted: msgs, mtype, z)
        assert_eq!(entries[1].0, Some("mtype"));
        assert_eq!(mp_str_at(entries[1].1), Some("broadcast-batch"));
        assert_eq!(entries[0].0, Some("msgs"));
        let msgs: Vec<_> = mp_array(entries[0].1)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(msgs.len(), 2);
        let heads: Vec<Vec<(Option<&str>, Option<f64>)>> = msgs
            .iter()
            .map(|m| {
                mp_map(m)
                    .unwrap()
                    .map(Result::unwrap)
                    .map(|(k, s)| (k, mp_number_at(s)))
                    .collect()
            })
            .collect();
        // (sorted: id, lt, ops, ts)
        assert_eq!(heads[0][1], (Some("lt"), Some(300.0)));
        assert_eq!(heads[0][3], (Some("ts"), Some(1.5)));
        assert_eq!(heads[1][1], (Some("lt"), Some(-7.0)));
        assert_eq!(heads[1][2], (Some("ts"), Some(70000.0)));
        assert_eq!(
            mp_str_at(&rmp_serde::to_vec(&"x".repeat(40)).unwrap()).map(str::len),
            Some(40)
        );
        // Every truncation and every flipped byte: an error or a value, never a panic.
        for cut in 0..bytes.len() {
            let b = &bytes[..cut];
            if let Ok(m) = mp_map(b) {
                for e in m.flatten() {
                    let _ = mp_number_at(e.1);
                    if let Ok(a) = mp_array(e.1) {
                        a.flatten().for_each(|i| drop(mp_map(i).map(|m| m.count())));
                    }
                }
            }
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            if let Ok(m) = mp_map(&b) {
                let _ = m.count();
            }
        }
    }

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
        assert!(map_entries(&[0xdf, 0xff, 0xff, 0xff, 0xff], Format::MessagePack).is_err());
        assert!(map_entries(&[0x81, 0xa1, b'a'], Format::MessagePack).is_err());
        assert!(map_entries(&[0x81, 0xa1, b'a', 0x92, 0x91], Format::MessagePack).is_err());
    }

    #[test]
    fn entries_are_the_exact_value_bytes_in_both_formats() {
        let v = serde_json::json!({
            "mtype": "crdt", "msg": {"id": "a:1", "ops": [[1, "]"], {"x": "}\""}]},
            "n": -1.5e3, "t": true, "z": null, "s": "a\"b", "long": "x".repeat(300),
            "big": (0..70).collect::<Vec<u32>>()
        });
        let json = serde_json::to_vec_pretty(&v).unwrap();
        let mp = rmp_serde::to_vec_named(&v).unwrap();
        for (bytes, format) in [(&json, Format::Json), (&mp, Format::MessagePack)] {
            let entries = map_entries(bytes, format).unwrap();
            assert_eq!(entries.len(), 8);
            for (k, span) in entries {
                let got: serde_json::Value = match format {
                    Format::Json => serde_json::from_slice(span).unwrap(),
                    Format::MessagePack => rmp_serde::from_slice(span).unwrap(),
                };
                assert_eq!(got, v[&k], "{k}");
            }
        }
        assert_eq!(
            map_entries(br#" { "m\u0074ype" : "x" } "#, Format::Json).unwrap(),
            vec![("mtype".to_string(), &b"\"x\""[..])]
        );
        assert_eq!(map_entries(b"{}", Format::Json).unwrap(), vec![]);
        for bad in [
            &b"[1]"[..],
            b"",
            b"{",
            b"{\"a\"",
            b"{\"a\":",
            b"{\"a\":1",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{\"a\":1} x",
            b"{\"a\":[1}",
            b"{\"a\":\"\\",
            b"{\"a\":,}",
        ] {
            assert!(
                map_entries(bad, Format::Json).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut trailing = mp.clone();
        trailing.push(0xc0);
        assert!(map_entries(&trailing, Format::MessagePack).is_err());
    }
}
