//! Differential fuzzing of the engine against the reference model in `strata_verify::model`
//! (the same rules as the proptest in `verify/tests/model.rs`): the input decodes into a cache
//! setup (count bound, weight bound, default TTL) and a sequence of steps (insert,
//! insert_with_ttl, get, remove, contains_key, get_or_insert_with, time_to_live_of, retain,
//! clear, iter, run_pending_maintenance, advances of the mocked clock). Any disagreement panics
//! with the failing step.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use strata_verify::model::{run, Setup, Step, KEYS};

/// Most steps decoded from one input.
const MAX_STEPS: usize = 2_000;

#[derive(Debug)]
struct Input {
    setup: Setup,
    steps: Vec<Step>,
}

fn option<T>(
    u: &mut Unstructured<'_>,
    f: impl FnOnce(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Option<T>> {
    Ok(if u.arbitrary::<bool>()? {
        Some(f(u)?)
    } else {
        None
    })
}

/// TTLs in whole milliseconds: mostly short (0 expires at once), sometimes long.
fn ttl(u: &mut Unstructured<'_>) -> Result<u64> {
    Ok(if u.ratio(1, 8)? {
        u.int_in_range(0..=3_600_000)?
    } else {
        u.int_in_range(0..=16)?
    })
}

fn setup(u: &mut Unstructured<'_>) -> Result<Setup> {
    let max_capacity = match u.int_in_range(0..=7u8)? {
        0 => None,
        1 => Some(4 * u64::from(KEYS)),
        _ => Some(u.int_in_range(0..=16)?),
    };
    let max_weight = if u.ratio(1, 4)? {
        Some(u.int_in_range(0..=24)?)
    } else {
        None
    };
    let time_to_live_ms = if u.ratio(1, 4)? { Some(ttl(u)?) } else { None };
    Ok(Setup {
        max_capacity,
        max_weight,
        time_to_live_ms,
    })
}

fn step(u: &mut Unstructured<'_>) -> Result<Step> {
    let key = |u: &mut Unstructured<'_>| u.int_in_range(0..=KEYS - 1);
    Ok(match u.int_in_range(0..=27u8)? {
        0..=5 => Step::Insert(key(u)?, option(u, ttl)?),
        6..=11 => Step::Get(key(u)?),
        12..=13 => Step::Remove(key(u)?),
        14..=15 => Step::Contains(key(u)?),
        16..=18 => Step::GetOrInsert(key(u)?),
        19 => Step::TimeToLive(key(u)?),
        20 => Step::Retain(u.int_in_range(1..=5)?),
        21 => Step::Clear,
        22 => Step::Iter,
        23 => Step::Maintenance,
        _ => Step::Advance(if u.ratio(1, 16)? {
            u.int_in_range(0..=10_000)?
        } else {
            u.int_in_range(0..=6)?
        }),
    })
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let setup = setup(u)?;
        let mut steps = Vec::new();
        while !u.is_empty() && steps.len() < MAX_STEPS {
            steps.push(step(u)?);
        }
        Ok(Input { setup, steps })
    }
}

fuzz_target!(|input: Input| {
    if let Err(mismatch) = run(input.setup, &input.steps) {
        panic!("{mismatch}");
    }
});
