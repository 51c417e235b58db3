//! The exact check: a search for a linearization of one key's history under the model of the
//! [module docs](super): Wing and Gong's search, with Lowe's just-in-time choice of the calls that
//! may take effect next and a memo of the configurations (calls done, current value, open
//! flights) already explored, in the manner of Lowe's and Porcupine's checkers.
//!
//! A *configuration* is the set of calls that have taken effect, the current value, and what is
//! still owed to loads some follower returned the value of. From a configuration, a call may take
//! effect next if it has not and was invoked before every call that has not yet taken effect
//! responded (then an instant exists after all that came before and inside its call). Values are
//! unique, which keeps the search small:
//!
//! * A call that does not change the key and is possible now (a read of the current value, a miss
//!   while the key is absent, a follower's miss) is taken at once, without branching: any
//!   linearization that takes it later can take it now instead.
//! * A value that leaves the key while some call that has not taken effect still has to read it
//!   current ends the branch: a value is written once, so it never comes back.
//! * With eviction allowed, a value current is never worse than the key absent (it can be evicted
//!   at any instant), so a leader with no follower left to explain always inserts.
//!
//! Each configuration reached by a choice is explored once (the memo); from it, the search walks
//! on in place while only one event can be next, one way. On real stress histories it takes
//! about one step per write or remove (see the README for the cost). It gives up after `budget`
//! steps.

use std::collections::{HashMap, HashSet};

use super::configuration::{Flight, FxBuild, Node, NONE};
use super::Mode;
use crate::history::{Kind, Op};

/// What a call does at its instant; values are dense ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Finds the key absent.
    Absent,
    /// Finds the value current.
    Read(u32),
    /// Finds the value current and makes the key absent.
    Take(u32),
    /// Makes the value current.
    Write(u32),
    /// A leader: finds the key absent, then makes its value current or leaves the key absent.
    Load(u32),
    /// A `get_or_insert_with` that returned the value without loading: finds it current, or
    /// follows its leader.
    Share(u32),
}

/// One step of one call (a call is one event, except a loader that returned another value: two).
#[derive(Clone, Copy, Debug)]
struct Event {
    call: usize,
    invoke: u64,
    respond: u64,
    step: Step,
}

/// How a chosen event takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// As its step says (a write, a remove, a miss that evicts first).
    Plain,
    /// A leader that makes its value current.
    Install,
    /// A leader that leaves the key absent.
    Skip,
    /// A `Share` that follows its leader (evicting first).
    Follow,
}

/// What the search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// None exists. `explained`: most calls any branch got through; `stuck`: the calls (indices
    /// into the history) that could be next there, none of which could take effect.
    NotLinearizable {
        /// Calls done in the furthest configuration.
        explained: usize,
        /// The candidates there.
        stuck: Vec<usize>,
    },
    /// The budget ran out first; `stuck` as above, for the furthest configuration so far.
    OutOfBudget {
        /// The candidates in the furthest configuration reached.
        stuck: Vec<usize>,
    },
}

/// The verdict and its cost.
#[derive(Clone, Debug)]
pub struct Searched {
    /// What the search found.
    pub verdict: Verdict,
    /// Steps taken (configurations tried).
    pub steps: u64,
}

/// One key's history, ready to search.
struct History {
    /// Sorted by invocation.
    events: Vec<Event>,
    /// Per event: for a `Share`, the `Load` event of its value (another call's), else [`NONE`].
    leader: Vec<u32>,
    /// Per event: for a `Load`, the `Share` events of its value.
    followers: Vec<Vec<u32>>,
    /// Per value: the events that must find it current or may follow it (`Read`, `Take`, `Share`).
    readers: Vec<Vec<u32>>,
    /// Per value: the event that writes it (`Write` or `Load`), or [`NONE`].
    writer: Vec<u32>,
    /// The key may become absent at any instant.
    evict: bool,
}

impl History {
    fn new(ops: &[Op], mode: Mode) -> History {
        let mut ids: HashMap<u64, u32, FxBuild> = HashMap::default();
        let mut id = |v: u64| {
            let fresh = ids.len() as u32;
            *ids.entry(v).or_insert(fresh)
        };
        let mut events = Vec::with_capacity(ops.len());
        for (call, op) in ops.iter().enumerate() {
            let mut push = |step| {
                events.push(Event {
                    call,
                    invoke: op.invoke,
                    respond: op.respond,
                    step,
                });
            };
            match op.kind {
                Kind::Insert => op
                    .written
                    .into_iter()
                    .for_each(|w| push(Step::Write(id(w)))),
                Kind::Get => push(op.returned.map_or(Step::Absent, |v| Step::Read(id(v)))),
                Kind::Remove => push(op.returned.map_or(Step::Absent, |v| Step::Take(id(v)))),
                Kind::GetOrInsert => {
                    if let Some(w) = op.written {
                        push(Step::Load(id(w)));
                    }
                    match (op.written, op.returned) {
                        (_, Some(v)) if Some(v) != op.written => push(Step::Share(id(v))),
                        (None, None) => push(Step::Absent),
                        _ => {}
                    }
                }
            }
        }
        events.sort_by_key(|e| (e.invoke, e.respond));
        let n = events.len();
        let mut readers = vec![Vec::new(); ids.len()];
        let mut writer = vec![NONE; ids.len()];
        for (i, e) in events.iter().enumerate() {
            match e.step {
                Step::Read(v) | Step::Take(v) | Step::Share(v) => {
                    readers[v as usize].push(i as u32)
                }
                Step::Write(v) | Step::Load(v) if writer[v as usize] == NONE => {
                    writer[v as usize] = i as u32;
                }
                Step::Write(_) | Step::Load(_) | Step::Absent => {}
            }
        }
        let (mut leader, mut followers) = (vec![NONE; n], vec![Vec::new(); n]);
        for (i, e) in events.iter().enumerate() {
            if let Step::Share(v) = e.step {
                let l = writer[v as usize] as usize;
                let loaded = l != NONE as usize && matches!(events[l].step, Step::Load(_));
                if loaded && events[l].call != e.call {
                    leader[i] = l as u32;
                    followers[l].push(i as u32);
                }
            }
        }
        History {
            events,
            leader,
            followers,
            readers,
            writer,
            evict: !mode.no_eviction,
        }
    }

    fn any_pending(node: &Node, events: &[u32]) -> bool {
        events.iter().rev().any(|&e| !node.done(e as usize))
    }

    /// The events that may take effect next, into `out`.
    fn frontier(&self, node: &Node, out: &mut Vec<usize>) {
        let n = self.events.len();
        // Pending events invoked after some pending event responded cannot be next; the ones
        // invoked after the running minimum cannot lower it (they respond later still).
        let mut bound = node
            .flights
            .iter()
            .filter(|f| !f.skipped)
            .map(|f| f.deadline)
            .min()
            .unwrap_or(u64::MAX);
        let mut end = node.pending_from(0);
        while end < n && self.events[end].invoke < bound {
            bound = bound.min(self.events[end].respond);
            end = node.pending_from(end + 1);
        }
        out.clear();
        let mut e = node.pending_from(0);
        while e < end.min(n) {
            if self.events[e].invoke < bound {
                out.push(e);
            }
            e = node.pending_from(e + 1);
        }
    }

    /// The earliest an event taking effect now can: after every invocation of the events done.
    fn now(&self, node: &Node, e: usize) -> u64 {
        let last = node.last_done().map_or(0, |d| self.events[d].invoke);
        last.max(self.events[e].invoke)
    }

    /// If event `e` (a `Share`) may follow its leader now, the flight's new deadline.
    fn may_follow(&self, node: &Node, e: usize) -> Option<u64> {
        let leader = self.leader[e];
        if leader == NONE {
            return None;
        }
        let flight = node.flight(leader as usize).map(|f| node.flights[f]);
        let deadline = match flight {
            Some(f) => f.deadline,
            // A leader that took effect without a record inserted its value.
            None if node.done(leader as usize) => return None,
            None => self.events[leader as usize].respond,
        };
        let deadline = deadline.min(self.events[e].respond);
        (self.now(node, e) < deadline).then_some(deadline)
    }

    /// Takes event `e` the way `way` says; `None` if that cannot lead to a linearization.
    fn apply(&self, node: &Node, e: usize, way: Way) -> Option<Node> {
        let mut child = node.clone();
        let before = node.state;
        match (self.events[e].step, way) {
            (Step::Write(v) | Step::Load(v), Way::Plain | Way::Install) => {
                child.state = v;
                child.flights.retain(|f| f.leader as usize != e);
            }
            (Step::Load(v), Way::Skip) => {
                child.state = NONE;
                // Its value will never be current: nothing may still have to read it.
                let readers = &self.readers[v as usize];
                let must_read = readers
                    .iter()
                    .any(|&r| !node.done(r as usize) && self.leader[r as usize] as usize != e);
                if must_read {
                    return None;
                }
                match node.flight(e) {
                    Some(f) => child.flights[f].skipped = true,
                    None => child.flights.push(Flight {
                        leader: e as u32,
                        skipped: true,
                        deadline: self.events[e].respond,
                    }),
                }
            }
            (Step::Share(_), Way::Follow) => {
                let deadline = self.may_follow(node, e)?;
                child.state = NONE;
                let leader = self.leader[e];
                match node.flight(leader as usize) {
                    Some(f) => child.flights[f].deadline = deadline,
                    None => child.flights.push(Flight {
                        leader,
                        skipped: false,
                        deadline,
                    }),
                }
            }
            (Step::Take(_) | Step::Absent, _) => child.state = NONE,
            (Step::Read(_) | Step::Share(_), _) => {}
            (Step::Write(_), _) | (Step::Load(_), Way::Follow) => unreachable!("no such choice"),
        }
        child.mark(e);
        // A value that left the key never comes back: no call may still have to read it.
        let left = before != NONE && child.state != before;
        if left && Self::any_pending(&child, &self.readers[before as usize]) {
            return None;
        }
        let mut flights = std::mem::take(&mut child.flights);
        flights.retain(|f| {
            !f.skipped || Self::any_pending(&child, &self.followers[f.leader as usize])
        });
        flights.sort_unstable_by_key(|f| f.leader);
        child.flights = flights;
        Some(child)
    }

    /// Takes, one at a time, the events that may be next and change nothing (module docs).
    fn settle(&self, node: &mut Node, scratch: &mut Vec<usize>) {
        'again: loop {
            self.frontier(node, scratch);
            for &e in scratch.iter() {
                let way = match self.events[e].step {
                    Step::Read(v) | Step::Share(v) if node.state == v => Way::Plain,
                    Step::Absent if node.state == NONE => Way::Plain,
                    Step::Share(_) if node.state == NONE && self.may_follow(node, e).is_some() => {
                        Way::Follow
                    }
                    _ => continue,
                };
                *node = self
                    .apply(node, e, way)
                    .expect("a step that changes nothing");
                continue 'again;
            }
            return;
        }
    }

    /// The ways the frontier's events may take effect that change the key.
    fn choices(&self, node: &Node, frontier: &[usize]) -> Vec<(usize, Way)> {
        let (state, evict) = (node.state, self.evict);
        let mut out = Vec::new();
        for &e in frontier {
            match self.events[e].step {
                Step::Write(_) => out.push((e, Way::Plain)),
                Step::Take(v) if state == v => out.push((e, Way::Plain)),
                Step::Absent if evict && state != NONE => out.push((e, Way::Plain)),
                Step::Share(v)
                    if evict
                        && state != NONE
                        && state != v
                        && self.may_follow(node, e).is_some() =>
                {
                    out.push((e, Way::Follow));
                }
                Step::Load(_) if evict || state == NONE => {
                    out.push((e, Way::Install));
                    if !evict || Self::any_pending(node, &self.followers[e]) {
                        out.push((e, Way::Skip));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// One configuration being explored: its choices, and the next one to try.
struct Frame {
    node: Node,
    choices: Vec<(usize, Way)>,
    tried: usize,
}

/// Searches for a linearization of `ops` (all on one key, in any order), trying at most
/// `budget` configurations.
pub fn search(ops: &[Op], mode: Mode, budget: u64) -> Searched {
    let history = History::new(ops, mode);
    let n = history.events.len();
    let mut scratch = Vec::new();
    let mut root = Node {
        next: 0,
        after: Vec::new(),
        state: NONE,
        flights: Vec::new(),
    };
    history.settle(&mut root, &mut scratch);
    let mut steps = 0;
    let mut furthest = root.clone();
    let mut seen: HashSet<Node, FxBuild> = HashSet::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut next = Some(root);
    let verdict = 'search: loop {
        // A configuration reached by a choice is explored once; from it, the search walks on
        // without a frame while there is only one way on.
        if let Some(mut node) = next.take().filter(|node| seen.insert(node.clone())) {
            loop {
                if node.next as usize == n {
                    break 'search Verdict::Linearizable;
                }
                history.frontier(&node, &mut scratch);
                let choices = history.choices(&node, &scratch);
                if let [(e, way)] = choices[..] {
                    steps += 1;
                    if steps > budget {
                        break 'search Verdict::OutOfBudget {
                            stuck: stuck(&history, &furthest),
                        };
                    }
                    if let Some(mut child) = history.apply(&node, e, way) {
                        history.settle(&mut child, &mut scratch);
                        node = child;
                        continue;
                    }
                }
                // A branch, or a dead end (the furthest configuration is one of those).
                if node.progress() > furthest.progress() {
                    furthest = node.clone();
                }
                if choices.len() > 1 {
                    stack.push(Frame {
                        node,
                        choices,
                        tried: 0,
                    });
                }
                break;
            }
        }
        let Some(frame) = stack.last_mut() else {
            break Verdict::NotLinearizable {
                explained: calls_done(&history, &furthest),
                stuck: stuck(&history, &furthest),
            };
        };
        let Some(&(e, way)) = frame.choices.get(frame.tried) else {
            stack.pop();
            continue;
        };
        frame.tried += 1;
        steps += 1;
        if steps > budget {
            break Verdict::OutOfBudget {
                stuck: stuck(&history, &furthest),
            };
        }
        if let Some(mut child) = history.apply(&frame.node, e, way) {
            history.settle(&mut child, &mut scratch);
            next = Some(child);
        }
    };
    Searched { verdict, steps }
}

/// The calls all of whose events are done in `node`.
fn calls_done(history: &History, node: &Node) -> usize {
    let mut pending: Vec<usize> = (0..history.events.len())
        .filter(|&e| !node.done(e))
        .map(|e| history.events[e].call)
        .collect();
    pending.sort_unstable();
    pending.dedup();
    let calls: HashSet<usize> = history.events.iter().map(|e| e.call).collect();
    calls.len() - pending.len()
}

/// The calls of the events that could be next in `node`, each with what kept it from going next:
/// the writer of the value it needed, or the first pending reader of the value it would end.
fn stuck(history: &History, node: &Node) -> Vec<usize> {
    let mut frontier = Vec::new();
    history.frontier(node, &mut frontier);
    let current: &[u32] = match node.state {
        NONE => &[],
        v => &history.readers[v as usize],
    };
    let mut events = Vec::new();
    for &e in &frontier {
        events.push(e as u32);
        let blocker = match history.events[e].step {
            Step::Read(v) | Step::Take(v) | Step::Share(v) if v != node.state => {
                history.writer[v as usize]
            }
            _ if node.state != NONE => current
                .iter()
                .copied()
                .find(|&r| r as usize != e && !node.done(r as usize))
                .unwrap_or(NONE),
            _ => NONE,
        };
        events.extend((blocker != NONE).then_some(blocker));
    }
    let mut calls: Vec<usize> = events
        .iter()
        .map(|&e| history.events[e as usize].call)
        .collect();
    calls.sort_unstable();
    calls.dedup();
    calls.truncate(8);
    calls
}
