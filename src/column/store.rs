//! Struct-of-arrays property storage: one typed [`Column`] per path, indexed by node
//! [`Row`], with a per-cell LWW [`Stamp`]; a per-path dynamic map for cells whose kind
//! differs from the path's column.
//!
//! Invariants:
//! - in a [`Column`], `values.len() == stamps.len() == present.len()`, and index *i* of
//!   each describes the cell of row *i*;
//! - a cell is present in at most one place: `primary.present[row]` xor
//!   `dynamic.contains_key(row)`;
//! - a path's primary kind is fixed by the first value written to it; a later value of
//!   another kind goes to `dynamic` (the "path written with two dtypes" fallback of
//!   DESIGN.md §5), so no write ever fails or panics.
//!
//! - every row whose cell a [`PathColumn`] wrote or took since the last
//!   [`PropertyStore::take_changes`] is marked in that column's dirty bitmap (a written
//!   cell may end equal to what it was: the feed may over-report, never under-report).
//!
//! Nothing here knows what an op means or compares stamps: callers pass the stamp to
//! store. Absent cells report [`Stamp::ZERO`].

use ahash::AHashMap;

use super::dirty::RowBits;
use super::value::{Kind, Rgb, TextCell, Value, ValueRef};
use crate::ids::{PathId, Stamp};
use crate::op::Json;

/// A node's row in every column (dense, assigned at node creation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Row(pub u32);

impl Row {
    /// The row as an index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One typed column: values, stamps and presence, in parallel arrays.
#[derive(Clone, Debug, Default)]
pub struct Column<T> {
    // values.len() == stamps.len() == present.len()
    values: Vec<T>,
    stamps: Vec<Stamp>,
    present: Vec<bool>,
}

impl<T: Default> Column<T> {
    /// The cell of `row`, if present.
    #[inline]
    pub fn get(&self, row: Row) -> Option<(&T, Stamp)> {
        let i = row.index();
        if *self.present.get(i)? {
            Some((&self.values[i], self.stamps[i]))
        } else {
            None
        }
    }

    /// Writes the cell of `row`.
    #[inline]
    pub fn set(&mut self, row: Row, value: T, stamp: Stamp) {
        let i = row.index();
        if i >= self.values.len() {
            self.values.resize_with(i + 1, T::default);
            self.stamps.resize(i + 1, Stamp::ZERO);
            self.present.resize(i + 1, false);
        }
        self.values[i] = value;
        self.stamps[i] = stamp;
        self.present[i] = true;
    }

    /// Writes the cell of `row` unless it holds a stamp `newer` says no to; true when
    /// it wrote. One bounds check and one stamp read, no [`Value`] dispatch.
    #[inline]
    pub fn set_lww(
        &mut self,
        row: Row,
        value: T,
        stamp: Stamp,
        newer: impl Fn(Stamp) -> bool,
    ) -> bool {
        let i = row.index();
        if i < self.values.len() {
            if self.present[i] && !newer(self.stamps[i]) {
                return false;
            }
            self.values[i] = value;
            self.stamps[i] = stamp;
            self.present[i] = true;
        } else {
            self.set(row, value, stamp);
        }
        true
    }

    /// A column from its parallel arrays; `None` unless the three have equal length.
    pub fn from_parts(values: Vec<T>, stamps: Vec<Stamp>, present: Vec<bool>) -> Option<Self> {
        (values.len() == stamps.len() && values.len() == present.len()).then_some(Column {
            values,
            stamps,
            present,
        })
    }

    /// The parallel arrays: values, stamps and presence, indexed by row.
    pub fn parts(&self) -> (&[T], &[Stamp], &[bool]) {
        (&self.values, &self.stamps, &self.present)
    }

    /// Removes the cell of `row`, returning its value and stamp.
    pub fn take(&mut self, row: Row) -> Option<(T, Stamp)> {
        let i = row.index();
        if !*self.present.get(i)? {
            return None;
        }
        self.present[i] = false;
        let stamp = std::mem::replace(&mut self.stamps[i], Stamp::ZERO);
        Some((std::mem::take(&mut self.values[i]), stamp))
    }

    /// Number of rows the column has room for.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The typed column of one path.
#[derive(Clone, Debug, Default)]
pub enum TypedColumn {
    /// Nothing written yet.
    #[default]
    Empty,
    /// `f64` values.
    F64(Column<f64>),
    /// `[f32; 3]` values (vector3, euler).
    F32x3(Column<[f32; 3]>),
    /// `[f32; 4]` values (quaternion).
    F32x4(Column<[f32; 4]>),
    /// Packed RGB colours.
    Rgb(Column<u32>),
    /// Booleans.
    Bool(Column<bool>),
    /// Strings.
    Str(Column<String>),
    /// JSON values.
    Json(Column<Json>),
    /// Collaborative texts.
    Text(Column<Box<TextCell>>),
}

impl TypedColumn {
    fn kind(&self) -> Option<Kind> {
        Some(match self {
            TypedColumn::Empty => return None,
            TypedColumn::F64(_) => Kind::F64,
            TypedColumn::F32x3(_) => Kind::F32x3,
            TypedColumn::F32x4(_) => Kind::F32x4,
            TypedColumn::Rgb(_) => Kind::Rgb,
            TypedColumn::Bool(_) => Kind::Bool,
            TypedColumn::Str(_) => Kind::Str,
            TypedColumn::Json(_) => Kind::Json,
            TypedColumn::Text(_) => Kind::Text,
        })
    }

    fn empty_of(kind: Kind) -> TypedColumn {
        match kind {
            Kind::F64 => TypedColumn::F64(Column::default()),
            Kind::F32x3 => TypedColumn::F32x3(Column::default()),
            Kind::F32x4 => TypedColumn::F32x4(Column::default()),
            Kind::Rgb => TypedColumn::Rgb(Column::default()),
            Kind::Bool => TypedColumn::Bool(Column::default()),
            Kind::Str => TypedColumn::Str(Column::default()),
            Kind::Json => TypedColumn::Json(Column::default()),
            Kind::Text => TypedColumn::Text(Column::default()),
        }
    }

    /// The cell of `row`.
    pub fn get(&self, row: Row) -> Option<(ValueRef<'_>, Stamp)> {
        match self {
            TypedColumn::Empty => None,
            TypedColumn::F64(c) => c.get(row).map(|(v, s)| (ValueRef::Number(*v), s)),
            TypedColumn::F32x3(c) => c.get(row).map(|(v, s)| (ValueRef::Vec3(*v), s)),
            TypedColumn::F32x4(c) => c.get(row).map(|(v, s)| (ValueRef::Quat(*v), s)),
            TypedColumn::Rgb(c) => c.get(row).map(|(v, s)| (ValueRef::Color(Rgb(*v)), s)),
            TypedColumn::Bool(c) => c.get(row).map(|(v, s)| (ValueRef::Bool(*v), s)),
            TypedColumn::Str(c) => c.get(row).map(|(v, s)| (ValueRef::Str(v), s)),
            TypedColumn::Json(c) => c.get(row).map(|(v, s)| (ValueRef::Json(v), s)),
            TypedColumn::Text(c) => c.get(row).map(|(v, s)| (ValueRef::Text(v), s)),
        }
    }

    /// A column of the same kind whose row `i` holds this column's cell of row
    /// `from[i]` (absent where `from[i]` is `None` or the cell is absent here): a bulk
    /// copy, no per-cell dispatch.
    pub fn gather(&self, from: &[Option<Row>]) -> TypedColumn {
        fn g<T: Default + Clone>(c: &Column<T>, from: &[Option<Row>]) -> Column<T> {
            let mut out = Column {
                values: Vec::with_capacity(from.len()),
                stamps: Vec::with_capacity(from.len()),
                present: Vec::with_capacity(from.len()),
            };
            for f in from {
                match f.and_then(|r| c.get(r)) {
                    Some((v, s)) => {
                        out.values.push(v.clone());
                        out.stamps.push(s);
                        out.present.push(true);
                    }
                    None => {
                        out.values.push(T::default());
                        out.stamps.push(Stamp::ZERO);
                        out.present.push(false);
                    }
                }
            }
            out
        }
        match self {
            TypedColumn::Empty => TypedColumn::Empty,
            TypedColumn::F64(c) => TypedColumn::F64(g(c, from)),
            TypedColumn::F32x3(c) => TypedColumn::F32x3(g(c, from)),
            TypedColumn::F32x4(c) => TypedColumn::F32x4(g(c, from)),
            TypedColumn::Rgb(c) => TypedColumn::Rgb(g(c, from)),
            TypedColumn::Bool(c) => TypedColumn::Bool(g(c, from)),
            TypedColumn::Str(c) => TypedColumn::Str(g(c, from)),
            TypedColumn::Json(c) => TypedColumn::Json(g(c, from)),
            TypedColumn::Text(c) => TypedColumn::Text(g(c, from)),
        }
    }

    fn take(&mut self, row: Row) -> Option<(Value, Stamp)> {
        match self {
            TypedColumn::Empty => None,
            TypedColumn::F64(c) => c.take(row).map(|(v, s)| (Value::Number(v), s)),
            TypedColumn::F32x3(c) => c.take(row).map(|(v, s)| (Value::Vec3(v), s)),
            TypedColumn::F32x4(c) => c.take(row).map(|(v, s)| (Value::Quat(v), s)),
            TypedColumn::Rgb(c) => c.take(row).map(|(v, s)| (Value::Color(Rgb(v)), s)),
            TypedColumn::Bool(c) => c.take(row).map(|(v, s)| (Value::Bool(v), s)),
            TypedColumn::Str(c) => c.take(row).map(|(v, s)| (Value::Str(v), s)),
            TypedColumn::Json(c) => c.take(row).map(|(v, s)| (Value::Json(v), s)),
            TypedColumn::Text(c) => c.take(row).map(|(v, s)| (Value::Text(v), s)),
        }
    }

    /// Writes `value` if its kind matches; hands it back otherwise.
    fn try_set(&mut self, row: Row, value: Value, stamp: Stamp) -> Result<(), Value> {
        match (self, value) {
            (TypedColumn::F64(c), Value::Number(v)) => c.set(row, v, stamp),
            (TypedColumn::F32x3(c), Value::Vec3(v)) => c.set(row, v, stamp),
            (TypedColumn::F32x4(c), Value::Quat(v)) => c.set(row, v, stamp),
            (TypedColumn::Rgb(c), Value::Color(v)) => c.set(row, v.0, stamp),
            (TypedColumn::Bool(c), Value::Bool(v)) => c.set(row, v, stamp),
            (TypedColumn::Str(c), Value::Str(v)) => c.set(row, v, stamp),
            (TypedColumn::Json(c), Value::Json(v)) => c.set(row, v, stamp),
            (TypedColumn::Text(c), Value::Text(v)) => c.set(row, v, stamp),
            (_, v) => return Err(v),
        }
        Ok(())
    }
}

/// All cells of one path: the typed primary column plus the dynamic fallback.
#[derive(Clone, Debug, Default)]
pub struct PathColumn {
    primary: TypedColumn,
    // Cells whose kind differs from `primary`'s. Disjoint from `primary`'s present rows.
    dynamic: AHashMap<Row, (Value, Stamp)>,
    // Rows written or taken since the change feed last took them (not state: never
    // snapshotted or compared).
    dirty: RowBits,
}

impl PathColumn {
    /// The primary column (typed view for batch kernels).
    pub fn primary(&self) -> &TypedColumn {
        &self.primary
    }

    /// Number of cells held in the dynamic fallback.
    /// A path column from its typed column and the cells of other kinds; `None` when
    /// a dynamic cell's row is also present in the typed column.
    pub fn from_parts(
        primary: TypedColumn,
        dynamic: AHashMap<Row, (Value, Stamp)>,
    ) -> Option<Self> {
        let clash = dynamic.keys().any(|&r| primary.get(r).is_some());
        (!clash).then_some(PathColumn {
            primary,
            dynamic,
            dirty: RowBits::default(),
        })
    }

    /// The cells whose kind differs from the typed column's, in no particular order.
    pub fn dynamic(&self) -> impl Iterator<Item = (Row, &Value, Stamp)> + '_ {
        self.dynamic.iter().map(|(&r, (v, s))| (r, v, *s))
    }

    /// Number of cells held in the dynamic map.
    pub fn dynamic_len(&self) -> usize {
        self.dynamic.len()
    }

    /// The cell of `row` and its stamp.
    pub fn get(&self, row: Row) -> Option<(ValueRef<'_>, Stamp)> {
        if let Some(hit) = self.primary.get(row) {
            return Some(hit);
        }
        if self.dynamic.is_empty() {
            return None;
        }
        self.dynamic.get(&row).map(|(v, s)| (v.as_ref(), *s))
    }

    /// Writes the cell of `row` (typed column when the kind matches, else dynamic).
    pub fn set(&mut self, row: Row, value: Value, stamp: Stamp) {
        self.dirty.mark(row);
        if self.primary.kind().is_none() {
            self.primary = TypedColumn::empty_of(value.kind());
        }
        match self.primary.try_set(row, value, stamp) {
            Ok(()) => {
                if !self.dynamic.is_empty() {
                    self.dynamic.remove(&row);
                }
            }
            Err(value) => {
                self.primary.take(row);
                self.dynamic.insert(row, (value, stamp));
            }
        }
    }

    /// Writes the cell of `row` unless it is present with a stamp `newer` says no to
    /// (a last-writer-wins write); true when it wrote. A value of the typed column's
    /// kind, with no dynamic cells, is written in place without a [`Value`] round trip.
    pub fn set_lww(
        &mut self,
        row: Row,
        value: Value,
        stamp: Stamp,
        newer: impl Fn(Stamp) -> bool,
    ) -> bool {
        if self.dynamic.is_empty() {
            let wrote = match (&mut self.primary, value) {
                (TypedColumn::F32x3(c), Value::Vec3(v)) => c.set_lww(row, v, stamp, newer),
                (TypedColumn::F32x4(c), Value::Quat(q)) => c.set_lww(row, q, stamp, newer),
                (TypedColumn::F64(c), Value::Number(x)) => c.set_lww(row, x, stamp, newer),
                (TypedColumn::Bool(c), Value::Bool(b)) => c.set_lww(row, b, stamp, newer),
                (_, value) => return self.set_lww_general(row, value, stamp, newer),
            };
            if wrote {
                self.dirty.mark(row);
            }
            return wrote;
        }
        self.set_lww_general(row, value, stamp, newer)
    }

    fn set_lww_general(
        &mut self,
        row: Row,
        value: Value,
        stamp: Stamp,
        newer: impl Fn(Stamp) -> bool,
    ) -> bool {
        let write = self.get(row).is_none_or(|(_, s)| newer(s));
        if write {
            self.set(row, value, stamp);
        }
        write
    }

    /// Takes the cell of `row` out.
    pub fn take(&mut self, row: Row) -> Option<(Value, Stamp)> {
        let taken = self.primary.take(row).or_else(|| self.dynamic.remove(&row));
        if taken.is_some() {
            self.dirty.mark(row);
        }
        taken
    }

    /// The rows written or taken since the last call (see the module doc).
    pub fn take_dirty(&mut self) -> RowBits {
        self.dirty.take()
    }
}

/// Every property of every node: one [`PathColumn`] per interned path.
#[derive(Clone, Debug, Default)]
pub struct PropertyStore {
    // Indexed by PathId::index().
    paths: Vec<PathColumn>,
}

impl PropertyStore {
    /// The cell at (`path`, `row`) and its LWW stamp.
    #[inline]
    pub fn get(&self, path: PathId, row: Row) -> Option<(ValueRef<'_>, Stamp)> {
        self.paths.get(path.index())?.get(row)
    }

    /// The LWW stamp of a cell ([`Stamp::ZERO`] when absent or never LWW-written).
    pub fn stamp(&self, path: PathId, row: Row) -> Stamp {
        self.get(path, row).map_or(Stamp::ZERO, |(_, s)| s)
    }

    /// Writes a cell with the given stamp, in the path's typed column when the kind
    /// matches and in the dynamic fallback otherwise.
    pub fn set(&mut self, path: PathId, row: Row, value: Value, stamp: Stamp) {
        self.column_mut(path).set(row, value, stamp);
    }

    /// The column of `path`, made (with the columns before it) when missing.
    fn column_mut(&mut self, path: PathId) -> &mut PathColumn {
        let i = path.index();
        if i >= self.paths.len() {
            self.paths.resize_with(i + 1, PathColumn::default);
        }
        &mut self.paths[i]
    }

    /// [`PathColumn::set_lww`] of the cell at (`path`, `row`).
    #[inline]
    pub fn set_lww(
        &mut self,
        path: PathId,
        row: Row,
        value: Value,
        stamp: Stamp,
        newer: impl Fn(Stamp) -> bool,
    ) -> bool {
        self.column_mut(path).set_lww(row, value, stamp, newer)
    }

    /// Removes a cell, returning it.
    pub fn take(&mut self, path: PathId, row: Row) -> Option<(Value, Stamp)> {
        self.paths.get_mut(path.index())?.take(row)
    }

    /// Removes every cell of `row`.
    pub fn clear_row(&mut self, row: Row) {
        for c in &mut self.paths {
            c.take(row);
        }
    }

    /// Mutable access to the columns of paths `0..n` (creating missing ones), so that
    /// distinct paths can be merged in parallel.
    pub fn columns_mut(&mut self, n: usize) -> &mut [PathColumn] {
        if self.paths.len() < n {
            self.paths.resize_with(n, PathColumn::default);
        }
        &mut self.paths[..n]
    }

    /// Per path, the rows written or taken since the last call (paths with none left
    /// out), in path order.
    pub fn take_changes(&mut self) -> Vec<(PathId, RowBits)> {
        self.paths
            .iter_mut()
            .enumerate()
            .filter_map(|(i, c)| {
                let bits = c.take_dirty();
                (!bits.is_empty()).then(|| (PathId::from_index(i), bits))
            })
            .collect()
    }

    /// A store from its path columns, indexed by [`PathId::index`].
    pub fn from_columns(paths: Vec<PathColumn>) -> Self {
        PropertyStore { paths }
    }

    /// Every path column, indexed by [`PathId::index`].
    pub fn columns(&self) -> &[PathColumn] {
        &self.paths
    }

    /// The column of a path, if anything was ever written to it.
    pub fn path(&self, path: PathId) -> Option<&PathColumn> {
        self.paths.get(path.index())
    }

    /// Every present cell of `row`, by path id.
    pub fn row(&self, row: Row) -> impl Iterator<Item = (PathId, ValueRef<'_>)> + '_ {
        self.paths.iter().enumerate().filter_map(move |(i, c)| {
            let (v, _) = c.get(row)?;
            let id = PathId::from_index(i);
            Some((id, v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientId, PathTable};

    #[test]
    fn typed_then_dynamic_fallback() {
        let mut paths = PathTable::default();
        let p = paths.intern("position");
        let mut s = PropertyStore::default();
        let st = Stamp {
            lt: 3,
            client: ClientId::NONE,
        };
        s.set(p, Row(0), Value::Vec3([1.0, 2.0, 3.0]), st);
        s.set(p, Row(5), Value::Vec3([4.0, 5.0, 6.0]), Stamp::ZERO);
        // Another dtype on the same path: goes to the dynamic map, no panic.
        s.set(p, Row(0), Value::Str("hello".into()), st);
        assert_eq!(
            s.get(p, Row(0)).map(|(v, _)| v),
            Some(ValueRef::Str("hello"))
        );
        assert_eq!(s.stamp(p, Row(0)), st);
        assert_eq!(s.path(p).map(PathColumn::dynamic_len), Some(1));
        // Back to the typed kind: leaves the dynamic map.
        s.set(p, Row(0), Value::Vec3([0.0; 3]), st);
        assert_eq!(s.path(p).map(PathColumn::dynamic_len), Some(0));
        assert_eq!(s.row(Row(5)).count(), 1);
        assert!(s.take(p, Row(5)).is_some());
        assert_eq!(s.get(p, Row(5)), None);
        assert_eq!(s.stamp(p, Row(5)), Stamp::ZERO);
    }
}
