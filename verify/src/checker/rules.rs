//! The fast rules: necessary conditions, each checked in about linear time, that catch most
//! broken histories and name the operations that prove it. They run first; the exact search
//! ([`super::search`]) runs on the histories they pass.
//!
//! Guards against: reads of values never written (torn or recycled nodes, a read of another
//! key's entry), stale reads (an overwritten or removed value coming back, or a replacement seen
//! as a gap and then the old value), a value removed twice, and — with eviction and expiry
//! impossible — misses after a completed insert.
//!
//! Every rule is *sound*: it flags only histories that no linearization explains. Each proof uses
//! the fact that an operation takes effect somewhere between its invocation and response, so
//! `a.respond < b.invoke` orders them. A write's effect is bounded above more tightly by the
//! earliest response of any read that returned its value (the write took effect before that
//! read did): its *upper bound* below.

use std::collections::HashMap;

use super::{Mode, Rule, Violation, MAX_PER_KEY};
use crate::history::{Kind, Op};

/// Checks the history of one key (`ops` all on that key, in any order) against the fast rules.
pub(super) fn check(ops: &[Op], mode: Mode) -> Vec<Violation> {
    let key = ops.first().map_or(0, |op| op.key);
    let mut out = Vec::new();
    let mut flag = |rule: Rule, involved: &[usize], detail: String| {
        if out.len() < MAX_PER_KEY {
            let ops = involved.iter().map(|&i| ops[i].clone()).collect();
            out.push(Violation {
                key,
                rule,
                ops,
                detail,
            });
        }
    };

    // Who wrote each value, and each operation's upper bound (its response, or for a write
    // the earliest response of a read of its value).
    let mut writer: HashMap<u64, usize> = HashMap::new();
    let mut upper: Vec<u64> = ops.iter().map(|op| op.respond).collect();
    for (i, op) in ops.iter().enumerate() {
        if let Some(v) = op.written {
            if let Some(&first) = writer.get(&v) {
                flag(
                    Rule::DuplicateWrite,
                    &[first, i],
                    "one value written twice".into(),
                );
            } else {
                writer.insert(v, i);
            }
        }
    }
    // The reads that name a plausible writer, as (read, writer).
    let mut reads: Vec<(usize, usize)> = Vec::new();
    // Removes that returned each value.
    let mut consumed: HashMap<u64, Vec<usize>> = HashMap::new();
    for (r, op) in ops.iter().enumerate() {
        let Some(v) = op.read_value() else { continue };
        match writer.get(&v) {
            Some(&w) if ops[w].invoke < op.respond => {
                upper[w] = upper[w].min(op.respond);
                reads.push((r, w));
                if op.is_successful_remove() {
                    consumed.entry(v).or_default().push(r);
                }
            }
            Some(&w) => flag(
                Rule::Invented,
                &[w, r],
                "returned a value whose write began only after the call returned".into(),
            ),
            None => flag(
                Rule::Invented,
                &[r],
                "returned a value no write on this key stored".into(),
            ),
        }
    }
    if let Some(ttl) = mode.ttl {
        check_expiry(ops, &reads, ttl, &mut flag);
    }
    for removes in consumed.values() {
        if let [first, second, ..] = removes[..] {
            let w = writer[&ops[first].read_value().unwrap_or_default()];
            flag(
                Rule::DoubleRemove,
                &[w, first, second],
                "two removes returned the same value".into(),
            );
        }
    }

    // Killers: operations after which a value written before them is gone for good — writes
    // (of another value), removes, and calls that found the key absent. Sorted by invocation,
    // with the suffix minimum of their upper bounds: for a threshold `t`, the earliest-ending
    // killer among those invoked after `t`.
    let mut killers: Vec<(u64, u64, usize)> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.is_write() || op.kind == Kind::Remove || op.observed_absent())
        .map(|(i, op)| (op.invoke, upper[i], i))
        .collect();
    killers.sort_unstable();
    let mut suffix_min = vec![(u64::MAX, usize::MAX); killers.len() + 1];
    for j in (0..killers.len()).rev() {
        let (_, up, i) = killers[j];
        suffix_min[j] = suffix_min[j + 1].min((up, i));
    }
    for &(r, w) in &reads {
        let read = &ops[r];
        let v = read.read_value().unwrap_or_default();
        // W took effect by `upper[w]`; a killer invoked after that took effect after W. If it
        // also took effect before R was invoked, R cannot return W's value.
        let from = killers.partition_point(|&(invoke, _, _)| invoke <= upper[w]);
        let (up, k) = suffix_min[from];
        if up < read.invoke {
            flag(
                Rule::Stale,
                &[w, k, r],
                "returned a value replaced, removed or found absent, after its write, by an \
                 operation that took effect before this call began"
                    .into(),
            );
            continue;
        }
        // A remove that returned v took effect after W; once it has, v is gone for good.
        if let Some(&x) = consumed.get(&v).and_then(|xs| {
            xs.iter()
                .filter(|&&x| x != r)
                .min_by_key(|&&x| ops[x].respond)
        }) {
            if ops[x].respond < read.invoke {
                flag(
                    Rule::Stale,
                    &[w, x, r],
                    "returned a value that a remove completed before this call began had \
                     already removed"
                        .into(),
                );
            }
        }
    }

    check_zones(ops, &reads, &mut flag);
    if mode.no_eviction {
        check_missing(ops, &upper, &mut flag);
    }
    out
}

/// A value's zone over its write and its reads: from the earliest response to the latest
/// invocation. When the former comes first (a *forward* zone), the value was current throughout:
/// one of its operations took effect by `start`, another no earlier than `end`, and a value once
/// gone never returns. (Gibbons and Korach's zones, for a register that may also be emptied.)
#[derive(Clone, Copy, Debug)]
struct Zone {
    start: u64,
    end: u64,
    /// The value's write.
    writer: usize,
    /// The operation that responded at `start`.
    first_end: usize,
    /// The operation invoked at `end`.
    last_start: usize,
}

impl Zone {
    fn witnesses(&self) -> Vec<usize> {
        let mut ids = vec![self.writer, self.first_end, self.last_start];
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// [`Rule::Overlap`] and [`Rule::Interrupted`].
fn check_zones(
    ops: &[Op],
    reads: &[(usize, usize)],
    flag: &mut impl FnMut(Rule, &[usize], String),
) {
    let mut zones: HashMap<usize, Zone> = (0..ops.len())
        .filter(|&i| ops[i].is_write())
        .map(|i| {
            let (start, end) = (ops[i].respond, ops[i].invoke);
            let zone = Zone {
                start,
                end,
                writer: i,
                first_end: i,
                last_start: i,
            };
            (i, zone)
        })
        .collect();
    // The value each operation read, as its writer.
    let mut read_from: Vec<Option<usize>> = vec![None; ops.len()];
    for &(r, w) in reads {
        read_from[r] = Some(w);
        if let Some(zone) = zones.get_mut(&w) {
            if ops[r].respond < zone.start {
                (zone.start, zone.first_end) = (ops[r].respond, r);
            }
            if ops[r].invoke > zone.end {
                (zone.end, zone.last_start) = (ops[r].invoke, r);
            }
        }
    }
    let mut zones: Vec<Zone> = zones.into_values().filter(|z| z.start < z.end).collect();
    zones.sort_unstable_by_key(|z| z.start);
    let mut widest: Option<Zone> = None;
    for &zone in &zones {
        if let Some(prev) = widest {
            if zone.start < prev.end {
                let mut ids = prev.witnesses();
                ids.extend(zone.witnesses());
                flag(
                    Rule::Overlap,
                    &ids,
                    "two values were each provably current over overlapping spans".into(),
                );
            }
        }
        if widest.is_none_or(|prev| zone.end > prev.end) {
            widest = Some(zone);
        }
    }
    for (i, op) in ops.iter().enumerate() {
        let j = zones.partition_point(|z| z.start < op.invoke);
        let Some(&zone) = j.checked_sub(1).map(|j| &zones[j]) else {
            continue;
        };
        let in_cluster = i == zone.writer || read_from[i] == Some(zone.writer);
        if op.respond < zone.end && !in_cluster {
            let mut ids = zone.witnesses();
            ids.push(i);
            flag(
                Rule::Interrupted,
                &ids,
                "ran entirely while another value was provably current, and did not see it".into(),
            );
        }
    }
}

/// [`Rule::Missing`]: a call R that found the key absent, after a write W that took effect
/// before R began (`upper[W] < R.invoke`), needs a successful remove X that can take effect
/// between them: `X.respond > W.invoke` and `X.invoke < R.respond`. The latest-invoked such W is
/// the hardest to explain, so it is the one tried.
///
/// A loader's value is a write only if it was cached, which a removal made during the load
/// prevents (even one that found nothing to remove): such a value counts here only once a `get`
/// or `remove` has found it in the cache (the callers that waited on the load get its value
/// whether or not it was cached, so their reads prove nothing).
fn check_missing(ops: &[Op], upper: &[u64], flag: &mut impl FnMut(Rule, &[usize], String)) {
    let read_by_another: std::collections::HashSet<u64> = ops
        .iter()
        .filter(|op| matches!(op.kind, Kind::Get | Kind::Remove))
        .filter_map(Op::read_value)
        .collect();
    let mut writes: Vec<(u64, usize)> = (0..ops.len())
        .filter(|&i| ops[i].is_write())
        .filter(|&i| {
            ops[i].kind != Kind::GetOrInsert
                || ops[i].written.is_some_and(|v| read_by_another.contains(&v))
        })
        .map(|i| (upper[i], i))
        .collect();
    writes.sort_unstable();
    // prefix_latest[j]: among writes[..j], the one invoked last.
    let mut prefix_latest: Vec<Option<usize>> = vec![None; writes.len() + 1];
    for (j, &(_, i)) in writes.iter().enumerate() {
        prefix_latest[j + 1] = match prefix_latest[j] {
            Some(best) if ops[best].invoke >= ops[i].invoke => Some(best),
            _ => Some(i),
        };
    }
    let mut removes: Vec<(u64, u64)> = ops
        .iter()
        .filter(|op| op.is_successful_remove())
        .map(|op| (op.invoke, op.respond))
        .collect();
    removes.sort_unstable();
    let mut prefix_max_respond = vec![0u64; removes.len() + 1];
    for (j, &(_, respond)) in removes.iter().enumerate() {
        prefix_max_respond[j + 1] = prefix_max_respond[j].max(respond);
    }
    for (r, read) in ops.iter().enumerate() {
        if !read.observed_absent() {
            continue;
        }
        let before = writes.partition_point(|&(up, _)| up < read.invoke);
        let Some(w) = prefix_latest[before] else {
            continue;
        };
        let candidates = removes.partition_point(|&(invoke, _)| invoke < read.respond);
        if prefix_max_respond[candidates] <= ops[w].invoke {
            flag(
                Rule::Missing,
                &[w, r],
                "found the key absent although a write completed before the call began, no \
                 remove could have taken effect in between, and nothing may be evicted"
                    .into(),
            );
        }
    }
}

/// [`Rule::Expired`]: a read of `v` that began, by the wall clock, more than the TTL (plus
/// [`EXPIRY_SLACK`](super::EXPIRY_SLACK)) after `v`'s write returned. The read's stamp is taken
/// before its call and the write's after its call, so the gap between them is at most the time
/// `v` really spent in the cache before the read. Calls without stamps are skipped.
fn check_expiry(
    ops: &[Op],
    reads: &[(usize, usize)],
    ttl: std::time::Duration,
    flag: &mut impl FnMut(Rule, &[usize], String),
) {
    let limit = u64::try_from((ttl + super::EXPIRY_SLACK).as_nanos()).unwrap_or(u64::MAX);
    for &(r, w) in reads {
        let (Some((read_start, _)), Some((_, written_end))) = (ops[r].wall, ops[w].wall) else {
            continue;
        };
        let age = read_start.saturating_sub(written_end);
        if age > limit {
            flag(
                Rule::Expired,
                &[w, r],
                format!(
                    "returned a value {:.3} ms after its write returned, past its TTL of {:?}",
                    age as f64 / 1e6,
                    ttl
                ),
            );
        }
    }
}
