//! Crash safety under SIGKILL. A child process (`strata-redb-crashwriter`) writes continuously
//! from eight tasks, in four configurations of ack and durability, and prints every write once
//! it is acknowledged as durable; the test kills it with SIGKILL at a random moment (seeded,
//! replay with `SEED=...`), reopens the file, and checks that it opens, that every record passes
//! its checksum and the indexes and counters agree with the records, that every write
//! acknowledged as durable (in this round or any earlier one) is there with its exact bytes or
//! a later version, and that no durably deleted value came back. Guards against torn group
//! commits, lost durable acks, a durable ack sent before its fsync, counters or indexes that a
//! crash leaves out of step, and a file that a crash leaves unopenable.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{crash_value, Rng, TempTier};
use strata_tier::{Lookup, Tier};

const KILLS: u64 = 24;

/// What must hold for a key after a crash.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A durable set of this version: the key holds it or a later version (unless the round
    /// evicts, then it may be missing).
    AtLeast { version: u64, may_be_evicted: bool },
    /// A durable delete after this version: the key is missing or holds a later version.
    DeletedAfter(u64),
}

/// The version a stored value claims, if its bytes are exactly that version's value.
fn parse_value(key: &str, value: &[u8]) -> Result<u64, String> {
    let text_end = value
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'|')
        .nth(1)
        .map(|(i, _)| i)
        .ok_or_else(|| format!("{key}: value without a version"))?;
    let head = std::str::from_utf8(&value[..text_end]).map_err(|e| format!("{key}: {e}"))?;
    let (stored_key, version) = head
        .rsplit_once('|')
        .ok_or_else(|| format!("{key}: malformed value"))?;
    if stored_key != key {
        return Err(format!("{key}: holds the value of {stored_key}"));
    }
    let version: u64 = version
        .parse()
        .map_err(|_| format!("{key}: bad version {version:?}"))?;
    if value != crash_value(key, version).as_slice() {
        return Err(format!("{key}: bytes of version {version} differ"));
    }
    Ok(version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_loses_a_durable_write() {
    let seed = common::seed("sigkill_never_loses_a_durable_write");
    let mut rng = Rng::new(seed);
    let file = TempTier::new();
    let binary = env!("CARGO_BIN_EXE_strata-redb-crashwriter");
    // Per key: what the last durable ack promises, and whether a delete was started after it
    // (a delete the kill interrupted may still have committed, so the key may be missing).
    let mut expected: BTreeMap<String, (Expect, bool)> = BTreeMap::new();
    let mut history: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let started = Instant::now();
    let (mut acks_total, mut checked_total, mut records_total) = (0u64, 0u64, 0u64);
    // Rounds whose reopen ran redb's repair: every one, as a killed process never closes.
    let mut repaired_rounds = 0u64;

    for round in 0..KILLS {
        let mode = round % 4;
        let mut child = Command::new(binary)
            .arg(&file.path)
            .arg(rng.next_u64().to_string())
            .arg(round.to_string())
            .arg(mode.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the crashwriter");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            // Only whole lines count: a line cut by the kill has no newline and is dropped.
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                if line.ends_with('\n') && lines_tx.send(line.trim_end().to_owned()).is_err() {
                    break;
                }
                line.clear();
            }
        });
        let ready = lines_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the crashwriter opened the file");
        assert_eq!(ready, "READY", "round {round}");
        let delay = Duration::from_millis(50 + rng.below(1000));
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL the crashwriter");
        let status = child.wait().expect("reap the crashwriter");
        assert!(
            !status.success(),
            "round {round}: the writer exited by itself"
        );
        reader.join().expect("the stdout reader");

        if mode == 3 {
            // This round's small max_size may have evicted any earlier entry.
            for expect in expected.values_mut() {
                if let (Expect::AtLeast { may_be_evicted, .. }, _) = expect {
                    *may_be_evicted = true;
                }
            }
        }
        let mut acks = 0;
        for line in lines_rx.try_iter() {
            let mut parts = line.split(' ');
            let (kind, key, version) = match (parts.next(), parts.next(), parts.next()) {
                (Some(kind), Some(key), Some(version)) => (kind, key, version),
                _ => panic!("round {round}: unexpected line {line:?}"),
            };
            let version: u64 = version.parse().expect("a version");
            let expect = match kind {
                "P" => Expect::AtLeast {
                    version,
                    may_be_evicted: mode == 3,
                },
                "D" => Expect::DeletedAfter(version),
                "d" => {
                    if let Some((_, delete_started)) = expected.get_mut(key) {
                        *delete_started = true;
                    }
                    history
                        .entry(key.to_owned())
                        .or_default()
                        .push(line.clone());
                    continue;
                }
                _ => panic!("round {round}: unexpected line {line:?}"),
            };
            expected.insert(key.to_owned(), (expect, false));
            history
                .entry(key.to_owned())
                .or_default()
                .push(line.clone());
            acks += 1;
        }
        acks_total += acks;

        // Reopen after the crash: redb repairs the file; everything must check out.
        let tier = file.open();
        repaired_rounds += u64::from(tier.stats().repaired);
        let report = tier.verify().await.expect("verify the reopened file");
        assert!(
            report.is_clean(),
            "round {round} (seed {seed}): file not clean after SIGKILL: {report:?}"
        );
        records_total += report.entries;
        let keys: Vec<&str> = expected.keys().map(String::as_str).collect();
        let answers = tier.get_many(&keys).await;
        for (key, answer) in keys.iter().zip(answers) {
            let (expect, delete_started) = expected[*key];
            let found = match answer {
                Lookup::Hit(value) => Some(parse_value(key, &value).unwrap_or_else(|e| {
                    panic!("round {round} (seed {seed}): {e}");
                })),
                Lookup::Miss => None,
                Lookup::Degraded(error) => {
                    panic!("round {round} (seed {seed}): degraded read of {key}: {error}")
                }
            };
            match (expect, found) {
                (Expect::AtLeast { version, .. }, Some(found)) => assert!(
                    found >= version,
                    "round {round} (seed {seed}): {key} holds version {found}, \
                     but version {version} was acknowledged durable"
                ),
                (Expect::AtLeast { may_be_evicted, .. }, None) => assert!(
                    may_be_evicted || delete_started,
                    "round {round} (seed {seed}): {key} is missing, but {expect:?} was \
                     acknowledged durable (its acks: {:?})",
                    history.get(*key)
                ),
                (Expect::DeletedAfter(version), Some(found)) => assert!(
                    found > version,
                    "round {round} (seed {seed}): {key} holds version {found}, deleted durably \
                     after version {version}"
                ),
                (Expect::DeletedAfter(_), None) => {}
            }
            checked_total += 1;
        }
        eprintln!(
            "round {round} (mode {mode}): killed after {delay:?}, {acks} durable acks, \
             {} records verified, {} keys checked",
            report.entries,
            keys.len()
        );
        tier.close().await.unwrap();
    }
    eprintln!(
        "{KILLS} kills in {:.1?}: {acks_total} durable acks, {records_total} record checksums \
         verified, {checked_total} key checks",
        started.elapsed()
    );
    assert!(
        acks_total > 0,
        "the writer never acknowledged a durable write"
    );
    // The open reports redb's repair (the shutdown test relies on the flag being false after a
    // clean close).
    assert_eq!(
        repaired_rounds, KILLS,
        "only {repaired_rounds} of {KILLS} reopens after SIGKILL reported a repair"
    );
}
