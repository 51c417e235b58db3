//! A configuration of the exact search ([`super::search`]): which events have taken effect (a
//! bitset past the first one that has not), the current value, and the open flights; hashed into
//! the search's memo.

use std::hash::{BuildHasherDefault, Hasher};

/// No value (the key absent), or no event.
pub(super) const NONE: u32 = u32::MAX;

/// rustc's FxHash: the memo's keys are not adversarial, and SipHash took a third of the search.
#[derive(Clone, Copy, Default)]
pub(super) struct Fx(u64);

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(super) type FxBuild = BuildHasherDefault<Fx>;

/// A load that one of its followers has returned the value of, or whose leader left the key
/// absent while followers may still return its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Flight {
    /// The leader's event.
    pub(super) leader: u32,
    /// The leader has taken effect and left the key absent (otherwise it has not taken effect:
    /// a leader that inserts closes its flight to followers, and its record goes).
    pub(super) skipped: bool,
    /// The flight completes before this tick: the earliest response of the leader and of the
    /// followers that followed. While the leader has not taken effect, no call may take effect
    /// at or after it.
    pub(super) deadline: u64,
}

/// A configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Node {
    /// Every event before `next` has taken effect; `next` has not.
    pub(super) next: u32,
    /// Bit `j`: event `next + 1 + j` has taken effect. No trailing zero words.
    pub(super) after: Vec<u64>,
    /// The current value, or [`NONE`].
    pub(super) state: u32,
    /// Open flights, by leader.
    pub(super) flights: Vec<Flight>,
}

impl Node {
    pub(super) fn done(&self, e: usize) -> bool {
        let next = self.next as usize;
        if e <= next {
            return e < next;
        }
        let j = e - next - 1;
        self.after
            .get(j / 64)
            .is_some_and(|w| (w >> (j % 64)) & 1 == 1)
    }

    /// The first event at or after `from` that has not taken effect (maybe past the end).
    pub(super) fn pending_from(&self, from: usize) -> usize {
        let next = self.next as usize;
        if from <= next {
            return next;
        }
        let mut j = from - next - 1;
        while j / 64 < self.after.len() {
            let free = !self.after[j / 64] >> (j % 64);
            if free != 0 {
                return next + 1 + j + free.trailing_zeros() as usize;
            }
            j = (j / 64 + 1) * 64;
        }
        next + 1 + j
    }

    pub(super) fn mark(&mut self, e: usize) {
        let next = self.next as usize;
        if e > next {
            let j = e - next - 1;
            if self.after.len() <= j / 64 {
                self.after.resize(j / 64 + 1, 0);
            }
            self.after[j / 64] |= 1 << (j % 64);
            return;
        }
        // `next` is done: move past it and the run of done events after it.
        let mut ones = 0;
        for &word in &self.after {
            ones += word.trailing_ones() as usize;
            if word != u64::MAX {
                break;
            }
        }
        self.next += 1 + ones as u32;
        let (words, bits) = ((ones + 1) / 64, (ones + 1) % 64);
        self.after.drain(..words.min(self.after.len()));
        if bits > 0 {
            for i in 0..self.after.len() {
                let high = self.after.get(i + 1).map_or(0, |w| w << (64 - bits));
                self.after[i] = (self.after[i] >> bits) | high;
            }
        }
        while self.after.last() == Some(&0) {
            self.after.pop();
        }
    }

    /// Events done: `next` and the bits after it.
    pub(super) fn progress(&self) -> usize {
        self.next as usize
            + self
                .after
                .iter()
                .map(|w| w.count_ones() as usize)
                .sum::<usize>()
    }

    /// The last event done (in invocation order), if any.
    pub(super) fn last_done(&self) -> Option<usize> {
        match self.after.last() {
            Some(&w) => {
                let j = (self.after.len() - 1) * 64 + 63 - w.leading_zeros() as usize;
                Some(self.next as usize + 1 + j)
            }
            None => (self.next as usize).checked_sub(1),
        }
    }

    pub(super) fn flight(&self, leader: usize) -> Option<usize> {
        self.flights
            .iter()
            .position(|f| f.leader as usize == leader)
    }
}
