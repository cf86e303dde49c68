//! The edit buffer: a client's uncommitted ops, merged per `key:path` as the seeds
//! describe (`../shared/seeds`, "Edit Buffer").
//!
//! Rules, in the order [`EditBuffer::push`] applies them:
//! - a property op on a `key:path` nothing in the buffer targets is appended;
//! - the same additive op on a buffered `key:path` is merged into the buffered one:
//!   `vector3.add` adds component-wise, `number.add` adds, `number.multiply` multiplies,
//!   `quaternion.multiply` multiplies (buffered · new, the order they would apply in);
//! - any other property op on a buffered `key:path` replaces the buffered op in its slot
//!   (so a `text.delete` followed by a `text.insert` keeps only the insert: use
//!   `text.replace`, as the guide says);
//! - node ops (`node.*`) are always appended: the reference keys them by their parent's
//!   `key:children` and so drops all but the last insert under one parent, which loses
//!   nodes; here each one is kept.
//!
//! Invariant: at most one property op per `(key, path)`; ops keep the order of their
//! first edit. The merged values use the engine's own kernels ([`vec3_add`],
//! [`quat_mul`]), so the committed op gives every replica the same bits.

use crate::column::kernels::{quat_mul, vec3_add};
use crate::error::OpError;
use crate::op::{Op, OpKind};

/// A client's uncommitted ops (see the module doc).
///
/// # Examples
/// ```
/// use vuer_rtc::op::Op;
/// use vuer_rtc::store::EditBuffer;
/// let mut buf = EditBuffer::default();
/// buf.push(Op::vector3_add("n", "pos", [1.0, 0.0, 0.0]))?;
/// buf.push(Op::vector3_add("n", "pos", [0.0, 1.0, 0.0]))?;
/// buf.push(Op::vector3_add("n", "pos", [0.0, 0.0, 1.0]))?;
/// assert_eq!(buf.ops(), &[Op::vector3_add("n", "pos", [1.0, 1.0, 1.0])]);
/// # Ok::<(), vuer_rtc::error::OpError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EditBuffer {
    ops: Vec<Op>,
}

/// The merge of two additive payloads of the same kind, if they merge.
fn merge(a: &OpKind, b: &OpKind) -> Option<OpKind> {
    use OpKind::*;
    Some(match (a, b) {
        (Vector3Add(x), Vector3Add(y)) => Vector3Add(vec3_add(*x, *y)),
        (NumberAdd(x), NumberAdd(y)) => NumberAdd(x + y),
        (NumberMultiply(x), NumberMultiply(y)) => NumberMultiply(x * y),
        (QuaternionMultiply(x), QuaternionMultiply(y)) => QuaternionMultiply(quat_mul(*x, *y)),
        _ => return None,
    })
}

impl EditBuffer {
    /// Adds an op by the rules of the module doc. Returns the index of the slot it
    /// landed in.
    ///
    /// # Errors
    /// The op is not valid ([`Op::validate`]), merging it would give a non-finite
    /// value, or it is a `meta.*` op (undo and redo are messages of their own). The
    /// buffer is then unchanged.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::EditBuffer};
    /// let mut buf = EditBuffer::default();
    /// assert_eq!(buf.push(Op::vector3_set("n", "p", [1.0, 2.0, 3.0]))?, 0);
    /// assert_eq!(buf.push(Op::vector3_add("n", "p", [1.0, 0.0, 0.0]))?, 0); // replaces
    /// assert!(buf.push(Op::meta_undo("a:1")).is_err());
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn push(&mut self, op: Op) -> Result<usize, OpError> {
        op.validate()?;
        if op.kind.is_meta() {
            return Err(OpError::Invalid {
                field: "ot",
                reason: format!("`{}` is not an edit: use undo()/redo()", op.kind.ot()),
            });
        }
        if op.kind.is_node() {
            self.ops.push(op);
            return Ok(self.ops.len() - 1);
        }
        let slot = self
            .ops
            .iter()
            .position(|o| !o.kind.is_node() && o.key == op.key && o.path == op.path);
        match slot {
            None => {
                self.ops.push(op);
                Ok(self.ops.len() - 1)
            }
            Some(i) => {
                match merge(&self.ops[i].kind, &op.kind) {
                    Some(kind) => {
                        let merged = Op::new(op.key, op.path, kind);
                        merged.validate()?;
                        self.ops[i].kind = merged.kind;
                    }
                    None => self.ops[i] = op,
                }
                Ok(i)
            }
        }
    }

    /// The buffered ops, in slot order.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::EditBuffer};
    /// let mut buf = EditBuffer::default();
    /// buf.push(Op::number_add("n", "hp", -25.0))?;
    /// buf.push(Op::number_set("n", "x", 1.0))?;
    /// buf.push(Op::number_add("n", "hp", -10.0))?;
    /// assert_eq!(buf.ops(), &[Op::number_add("n", "hp", -35.0), Op::number_set("n", "x", 1.0)]);
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Number of buffered ops.
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::EditBuffer};
    /// let mut buf = EditBuffer::default();
    /// buf.push(Op::node_insert("", "a", "Mesh"))?;
    /// buf.push(Op::node_insert("", "b", "Mesh"))?;
    /// assert_eq!(buf.len(), 2);
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when nothing is buffered.
    ///
    /// # Examples
    /// ```
    /// assert!(vuer_rtc::store::EditBuffer::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Empties the buffer, returning its ops (commit or cancel).
    ///
    /// # Examples
    /// ```
    /// use vuer_rtc::{op::Op, store::EditBuffer};
    /// let mut buf = EditBuffer::default();
    /// buf.push(Op::number_set("n", "x", 1.0))?;
    /// assert_eq!(buf.take(), vec![Op::number_set("n", "x", 1.0)]);
    /// assert!(buf.is_empty());
    /// # Ok::<(), vuer_rtc::error::OpError>(())
    /// ```
    pub fn take(&mut self) -> Vec<Op> {
        std::mem::take(&mut self.ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(ops: Vec<Op>) -> EditBuffer {
        let mut b = EditBuffer::default();
        for op in ops {
            b.push(op).unwrap();
        }
        b
    }

    #[test]
    fn additive_ops_merge() {
        let b = buf(vec![
            Op::number_add("n", "hp", -25.0),
            Op::number_add("n", "hp", -10.0),
            Op::number_multiply("n", "s", 2.0),
            Op::number_multiply("n", "s", 3.0),
        ]);
        assert_eq!(
            b.ops(),
            &[
                Op::number_add("n", "hp", -35.0),
                Op::number_multiply("n", "s", 6.0)
            ]
        );
    }

    #[test]
    fn quaternions_merge_in_application_order() {
        let a = [0.0, 0.707, 0.0, 0.707];
        let c = [0.5, 0.5, 0.5, 0.5];
        let b = buf(vec![
            Op::quaternion_multiply("n", "r", a),
            Op::quaternion_multiply("n", "r", c),
        ]);
        assert_eq!(
            b.ops(),
            &[Op::quaternion_multiply("n", "r", quat_mul(a, c))]
        );
        assert_ne!(
            quat_mul(a, c),
            quat_mul(c, a),
            "the order matters for this pair"
        );
    }

    #[test]
    fn other_ops_replace_in_their_slot() {
        let b = buf(vec![
            Op::number_add("n", "hp", 1.0),
            Op::vector3_set("n", "pos", [1.0, 2.0, 3.0]),
            Op::number_set("n", "hp", 7.0),
            Op::vector3_add("n", "pos", [1.0, 1.0, 1.0]),
        ]);
        assert_eq!(
            b.ops(),
            &[
                Op::number_set("n", "hp", 7.0),
                Op::vector3_add("n", "pos", [1.0, 1.0, 1.0])
            ]
        );
    }

    #[test]
    fn different_kinds_on_one_cell_do_not_merge() {
        let b = buf(vec![
            Op::number_add("n", "x", 1.0),
            Op::number_multiply("n", "x", 2.0),
        ]);
        assert_eq!(b.ops(), &[Op::number_multiply("n", "x", 2.0)]);
    }

    #[test]
    fn invalid_ops_and_overflowing_merges_leave_the_buffer_unchanged() {
        let mut b = buf(vec![Op::number_multiply("n", "x", 1e200)]);
        assert!(b.push(Op::number_multiply("n", "x", 1e200)).is_err());
        assert!(b.push(Op::number_set("n", "y", f64::NAN)).is_err());
        assert!(b.push(Op::meta_undo("a:1")).is_err());
        assert_eq!(b.ops(), &[Op::number_multiply("n", "x", 1e200)]);
    }

    #[test]
    fn node_ops_are_all_kept() {
        let b = buf(vec![
            Op::node_insert("", "a", "Mesh"),
            Op::node_insert("", "b", "Mesh"),
            Op::number_set("a", "x", 1.0),
        ]);
        assert_eq!(b.len(), 3);
        let mut b = b;
        assert_eq!(b.take().len(), 3);
        assert!(b.is_empty());
    }
}
