//! Hand-written histories for tests: calls on key 0 by thread 0, each given its invoke and
//! respond ticks as a `(invoke, respond)` span, without wall-clock stamps.

use super::{Kind, Op};

/// A call of `kind` that wrote `written` and returned `returned`.
pub fn op(kind: Kind, written: Option<u64>, returned: Option<u64>, span: (u64, u64)) -> Op {
    Op {
        thread: 0,
        kind,
        key: 0,
        written,
        returned,
        invoke: span.0,
        respond: span.1,
        wall: None,
    }
}

/// An `insert` of `value`.
pub fn insert(value: u64, span: (u64, u64)) -> Op {
    op(Kind::Insert, Some(value), None, span)
}

/// A `get` that returned `returned`.
pub fn get(returned: Option<u64>, span: (u64, u64)) -> Op {
    op(Kind::Get, None, returned, span)
}

/// A `remove` that returned `returned`.
pub fn remove(returned: Option<u64>, span: (u64, u64)) -> Op {
    op(Kind::Remove, None, returned, span)
}

/// A `get_or_insert_with` whose loader ran and loaded `value`.
pub fn load(value: u64, span: (u64, u64)) -> Op {
    op(Kind::GetOrInsert, Some(value), Some(value), span)
}

/// A `get_or_insert_with` that returned `value` without loading.
pub fn shared(value: u64, span: (u64, u64)) -> Op {
    op(Kind::GetOrInsert, None, Some(value), span)
}

/// The rules [`check_key`](crate::checker::check_key) finds `history` breaking (with the exact
/// search), in the order it reports them; no TTL.
pub fn rules(history: &[Op], no_eviction: bool) -> Vec<crate::checker::Rule> {
    let mode = crate::checker::Mode {
        no_eviction,
        ttl: None,
    };
    crate::checker::check_key(history, mode)
        .into_iter()
        .map(|v| v.rule)
        .collect()
}
