//! [`Body`]: an op's payload in 24 bytes, the form the replica's journal keeps and the
//! fast MessagePack reader produces.
//!
//! The ops that carry a small fixed payload (numbers, vectors, quaternions, Euler
//! angles, booleans, `string.cut`, `array.move`) keep it inline, with no string and no
//! allocation; every other op is kept whole, boxed. The list of inline kinds is
//! written once (the `bodies!` invocation below), and the enum and both conversions
//! come from it.
//!
//! Invariant: `Body::inline(k).map(|b| b.kind())` is `k` for every inline kind
//! (tested in `replica/record.rs`); every inline kind is a single-cell property op.

use std::ops::Deref;

use super::{EulerOrder, Op, OpKind};

/// Declares [`Body`] with one inline variant per listed [`OpKind`] variant (same name,
/// same payload), and the conversions both ways, from one list.
macro_rules! bodies {
    (
        tuple { $($t:ident($ty:ty)),* $(,)? }
        fields { $($s:ident { $($f:ident: $fty:ty),* $(,)? }),* $(,)? }
    ) => {
        /// An op's payload as the journal keeps it (see the module docs).
        #[derive(Clone, Debug, PartialEq)]
        pub enum Body {
            $(
                #[doc = concat!("[`OpKind::", stringify!($t), "`], inline.")]
                $t($ty),
            )*
            $(
                #[doc = concat!("[`OpKind::", stringify!($s), "`], inline.")]
                $s { $(#[doc = concat!("As in [`OpKind::", stringify!($s), "`].")] $f: $fty),* },
            )*
            /// Any other op, whole.
            Whole(Box<Op>),
        }

        impl Body {
            /// The inline body of `kind`, when it has one.
            pub fn inline(kind: &OpKind) -> Option<Body> {
                Some(match *kind {
                    $(OpKind::$t(v) => Body::$t(v),)*
                    $(OpKind::$s { $($f),* } => Body::$s { $($f),* },)*
                    _ => return None,
                })
            }

            /// The op's kind: built on the stack for an inline body (a copy of at
            /// most 16 bytes of payload), borrowed for a whole op.
            pub fn kind(&self) -> Kind<'_> {
                match *self {
                    $(Body::$t(v) => Kind::Inline(OpKind::$t(v)),)*
                    $(Body::$s { $($f),* } => Kind::Inline(OpKind::$s { $($f),* }),)*
                    Body::Whole(ref op) => Kind::Whole(&op.kind),
                }
            }
        }
    };
}

bodies! {
    tuple {
        NumberSet(f64),
        NumberAdd(f64),
        NumberMultiply(f64),
        NumberMin(f64),
        NumberMax(f64),
        Vector3Set([f32; 3]),
        Vector3Add([f32; 3]),
        Vector3Multiply([f32; 3]),
        Vector3ApplyQuaternion([f32; 4]),
        EulerSet([f32; 3]),
        EulerAdd([f32; 3]),
        QuaternionSet([f32; 4]),
        QuaternionMultiply([f32; 4]),
        BooleanSet(bool),
        BooleanOr(bool),
        BooleanAnd(bool),
        BooleanXor(bool),
    }
    fields {
        Vector3ApplyEuler { angles: [f32; 3], order: EulerOrder, intrinsic: bool },
        StringCut { from: i64, to: i64 },
        ArrayMove { from: i64, to: i64 },
    }
}

/// The payload of an inline body of the common shape (numbers, vectors, Euler angles,
/// quaternions, booleans), as the wire's `value` carries it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Payload<'a> {
    /// `number.*`.
    Number(f64),
    /// `vector3.*` (a quaternion for `applyQuaternion`), `euler.*`, `quaternion.*`.
    Floats(&'a [f32]),
    /// `boolean.*`.
    Bool(bool),
}

impl Body {
    /// The payload of a body of the common shape; `None` for the others (fields
    /// besides `value`, or a whole op).
    pub fn payload(&self) -> Option<Payload<'_>> {
        Some(match self {
            Body::NumberSet(x)
            | Body::NumberAdd(x)
            | Body::NumberMultiply(x)
            | Body::NumberMin(x)
            | Body::NumberMax(x) => Payload::Number(*x),
            Body::Vector3Set(v)
            | Body::Vector3Add(v)
            | Body::Vector3Multiply(v)
            | Body::EulerSet(v)
            | Body::EulerAdd(v) => Payload::Floats(v),
            Body::Vector3ApplyQuaternion(q)
            | Body::QuaternionSet(q)
            | Body::QuaternionMultiply(q) => Payload::Floats(q),
            Body::BooleanSet(b)
            | Body::BooleanOr(b)
            | Body::BooleanAnd(b)
            | Body::BooleanXor(b) => Payload::Bool(*b),
            _ => return None,
        })
    }

    /// [`OpKind::is_lww`], without building the kind.
    pub fn is_lww(&self) -> bool {
        match self {
            Body::NumberSet(_)
            | Body::Vector3Set(_)
            | Body::EulerSet(_)
            | Body::QuaternionSet(_)
            | Body::BooleanSet(_) => true,
            Body::Whole(op) => op.kind.is_lww(),
            _ => false,
        }
    }

    /// [`OpKind::resets_cell`], without building the kind (no inline kind is a
    /// `string.set`).
    pub fn resets_cell(&self, text_path: bool) -> bool {
        match self {
            Body::Whole(op) => op.kind.resets_cell(text_path),
            b => b.is_lww(),
        }
    }

    /// [`OpKind::is_text`], without building the kind.
    pub fn is_text(&self) -> bool {
        matches!(self, Body::Whole(op) if op.kind.is_text())
    }

    /// [`OpKind::is_node`], without building the kind.
    pub fn is_node(&self) -> bool {
        matches!(self, Body::Whole(op) if op.kind.is_node())
    }

    /// [`OpKind::is_meta`], without building the kind.
    pub fn is_meta(&self) -> bool {
        matches!(self, Body::Whole(op) if op.kind.is_meta())
    }
}

/// An op's kind, read from a [`Body`]: derefs to [`OpKind`].
#[derive(Debug)]
pub enum Kind<'a> {
    /// Rebuilt from an inline body.
    Inline(OpKind),
    /// The kind of a whole op.
    Whole(&'a OpKind),
}

impl Deref for Kind<'_> {
    type Target = OpKind;

    fn deref(&self) -> &OpKind {
        match self {
            Kind::Inline(k) => k,
            Kind::Whole(k) => k,
        }
    }
}
