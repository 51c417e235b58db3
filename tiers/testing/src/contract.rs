//! The [`Tier`] contract as a test suite: run [`check`] against your tier.
//!
//! Each promise the trait documents is one named case. The suite owns the tier it is given: it
//! writes keys under `contract:`, clears the tier, and closes it last. Give it a fresh tier.
//!
//! ```
//! use std::sync::Arc;
//! use strata_testing::{contract, MemoryTier};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let tier = Arc::new(MemoryTier::new("mem"));
//! let peer = Arc::new(tier.peer());
//! let options = contract::Options::default().peer(peer);
//! let report = contract::check(tier, options).await.unwrap();
//! println!("{report}");
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_tier::{
    Health, Invalidation, InvalidationSink, KeyPattern, Lookup, Stored, Tier, TierError, TierWrite,
    WriteIntent,
};

/// Reopens a persistent tier after `close`, to check that acknowledged writes survived.
pub type Reopen =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn Tier>> + Send>> + Send + Sync>;

/// What the suite may assume about the tier under test.
pub struct Options {
    ttl: Duration,
    max_value_size: Option<usize>,
    exact_counts: bool,
    peer: Option<Arc<dyn Tier>>,
    reopen: Option<Reopen>,
    deadline: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ttl: Duration::from_millis(200),
            max_value_size: None,
            exact_counts: true,
            peer: None,
            reopen: None,
            deadline: Duration::from_secs(5),
        }
    }
}

impl Options {
    /// The short TTL the expiry cases use (default 200 ms; raise it for a tier whose expiry
    /// has a coarse resolution).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The tier refuses values above this many bytes with [`TierError::TooLarge`]; the suite
    /// checks that it does, and that nothing is stored.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = Some(bytes);
        self
    }

    /// The tier cannot count what `delete` and `delete_matching` removed (it may answer
    /// `false` and `0`); the suite then checks only what is readable afterwards.
    pub fn inexact_counts(mut self) -> Self {
        self.exact_counts = false;
        self
    }

    /// Another handle on the same backend, standing for another process: with it the suite
    /// checks that invalidations made through one handle reach the other's subscribers (for
    /// tiers that claim `invalidation_events`).
    pub fn peer(mut self, peer: Arc<dyn Tier>) -> Self {
        self.peer = Some(peer);
        self
    }

    /// How to reopen the tier after `close` (for tiers that persist): the suite then checks
    /// that every write acknowledged before `close` is there after it.
    pub fn reopen(mut self, reopen: Reopen) -> Self {
        self.reopen = Some(reopen);
        self
    }

    /// How long any one operation may take before the suite calls it hung (default 5 s).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
}

/// The cases that passed, in order.
#[derive(Debug, Default)]
pub struct Report {
    /// Names of the cases checked.
    pub checked: Vec<&'static str>,
    /// Cases skipped because the tier does not claim the capability, with why.
    pub skipped: Vec<(&'static str, &'static str)>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} contract cases passed", self.checked.len())?;
        for (case, why) in &self.skipped {
            writeln!(f, "skipped {case}: {why}")?;
        }
        Ok(())
    }
}

/// A broken promise: which case, and what the tier did.
#[derive(Debug, thiserror::Error)]
#[error("tier {tier:?} breaks the contract in case {case}: {detail}")]
pub struct Failure {
    /// The tier's name.
    pub tier: String,
    /// The case.
    pub case: &'static str,
    /// What was expected and what happened.
    pub detail: String,
}

struct Run<'a> {
    tier: &'a dyn Tier,
    options: &'a Options,
    case: &'static str,
}

impl Run<'_> {
    fn fail(&self, detail: impl Into<String>) -> Failure {
        Failure {
            tier: self.tier.name().to_owned(),
            case: self.case,
            detail: detail.into(),
        }
    }

    async fn within<T>(&self, what: &str, work: impl Future<Output = T>) -> Result<T, Failure> {
        tokio::time::timeout(self.options.deadline, work)
            .await
            .map_err(|_| {
                self.fail(format!(
                    "{what} took longer than {:?}",
                    self.options.deadline
                ))
            })
    }

    async fn get(&self, key: &str) -> Result<Lookup, Failure> {
        self.within(&format!("get({key:?})"), self.tier.get(key))
            .await
    }

    async fn expect_hit(&self, key: &str, want: &[u8]) -> Result<(), Failure> {
        match self.get(key).await? {
            Lookup::Hit(bytes) if bytes == want => Ok(()),
            Lookup::Hit(bytes) => Err(self.fail(format!(
                "get({key:?}) returned {} bytes that differ from the {} stored",
                bytes.len(),
                want.len()
            ))),
            other => Err(self.fail(format!("get({key:?}) after set answered {other:?}"))),
        }
    }

    async fn expect_miss(&self, key: &str, why: &str) -> Result<(), Failure> {
        match self.get(key).await? {
            Lookup::Miss => Ok(()),
            other => Err(self.fail(format!("get({key:?}) {why}: answered {other:?}"))),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<Stored, Failure> {
        self.set_as(key, value, ttl, WriteIntent::Update).await
    }

    async fn set_as(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        intent: WriteIntent,
    ) -> Result<Stored, Failure> {
        let bytes = Bytes::copy_from_slice(value);
        self.within(
            &format!("set({key:?})"),
            self.tier.set(key, bytes, ttl, intent),
        )
        .await?
        .map_err(|e| self.fail(format!("set({key:?}, {} bytes) failed: {e}", value.len())))
    }

    async fn delete(&self, key: &str) -> Result<bool, Failure> {
        self.within(&format!("delete({key:?})"), self.tier.delete(key))
            .await?
            .map_err(|e| self.fail(format!("delete({key:?}) failed: {e}")))
    }
}

/// Checks every promise of the [`Tier`] contract against `tier`, and closes it at the end.
/// Returns the cases checked, or the first broken promise.
pub async fn check(tier: Arc<dyn Tier>, options: Options) -> Result<Report, Failure> {
    let mut report = Report::default();
    let cases: &[(&'static str, CaseFn)] = &[
        ("name_is_stable", |r| Box::pin(name_is_stable(r))),
        ("never_set_is_a_miss", |r| Box::pin(never_set_is_a_miss(r))),
        ("set_then_get_returns_the_bytes", |r| {
            Box::pin(set_then_get_returns_the_bytes(r))
        }),
        ("update_replaces", |r| Box::pin(update_replaces(r))),
        ("fill_intent", |r| Box::pin(fill_intent(r))),
        ("ttl_is_never_exceeded", |r| {
            Box::pin(ttl_is_never_exceeded(r))
        }),
        ("delete_removes", |r| Box::pin(delete_removes(r))),
        ("delete_matching_removes_only_matches", |r| {
            Box::pin(delete_matching_removes_only_matches(r))
        }),
        ("get_many_answers_per_key", |r| {
            Box::pin(get_many_answers_per_key(r))
        }),
        ("set_many_results_per_item", |r| {
            Box::pin(set_many_results_per_item(r))
        }),
        ("delete_many_results_per_item", |r| {
            Box::pin(delete_many_results_per_item(r))
        }),
        ("too_large_is_refused", |r| {
            Box::pin(too_large_is_refused(r))
        }),
        ("concurrent_writers_all_land", |r| {
            Box::pin(concurrent_writers_all_land(r))
        }),
        ("health_answers_promptly", |r| {
            Box::pin(health_answers_promptly(r))
        }),
        ("clear_removes_everything", |r| {
            Box::pin(clear_removes_everything(r))
        }),
    ];
    for (name, case) in cases {
        let run = Run {
            tier: &*tier,
            options: &options,
            case: name,
        };
        match case(&run).await? {
            Outcome::Passed => report.checked.push(name),
            Outcome::Skipped(why) => report.skipped.push((name, why)),
        }
    }
    let run = Run {
        tier: &*tier,
        options: &options,
        case: "invalidation_events_reach_peers",
    };
    match invalidation_events_reach_peers(&run).await? {
        Outcome::Passed => report.checked.push(run.case),
        Outcome::Skipped(why) => report.skipped.push((run.case, why)),
    }
    let run = Run {
        tier: &*tier,
        options: &options,
        case: "close_keeps_acknowledged_writes",
    };
    close_keeps_acknowledged_writes(&run).await?;
    report.checked.push(run.case);
    Ok(report)
}

enum Outcome {
    Passed,
    Skipped(&'static str),
}

type CaseFn =
    for<'a> fn(&'a Run<'a>) -> Pin<Box<dyn Future<Output = Result<Outcome, Failure>> + 'a>>;

async fn name_is_stable(run: &Run<'_>) -> Result<Outcome, Failure> {
    let name = run.tier.name().to_owned();
    if name.is_empty() {
        return Err(run.fail("name() is empty"));
    }
    run.set("contract:name", b"x", None).await?;
    if run.tier.name() != name {
        return Err(run.fail("name() changed after a write"));
    }
    Ok(Outcome::Passed)
}

async fn never_set_is_a_miss(run: &Run<'_>) -> Result<Outcome, Failure> {
    run.expect_miss("contract:never-set", "for a key never set")
        .await?;
    Ok(Outcome::Passed)
}

async fn set_then_get_returns_the_bytes(run: &Run<'_>) -> Result<Outcome, Failure> {
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let large: Vec<u8> = (0..(256 * 1024u32)).map(|i| (i * 7 % 251) as u8).collect();
    for (key, value) in [
        ("contract:bytes:empty", &b""[..]),
        ("contract:bytes:small", &b"Ada Lovelace"[..]),
        ("contract:bytes:binary", &binary[..]),
        ("contract:bytes:large", &large[..]),
        ("contract:bytes:unicode-key:\u{e9}\u{1F600}", &b"v"[..]),
    ] {
        if run
            .options
            .max_value_size
            .is_some_and(|max| value.len() > max)
        {
            continue;
        }
        let stored = run.set(key, value, None).await?;
        if stored != Stored::Written {
            return Err(run.fail(format!("an update of {key:?} answered {stored:?}")));
        }
        run.expect_hit(key, value).await?;
    }
    Ok(Outcome::Passed)
}

async fn update_replaces(run: &Run<'_>) -> Result<Outcome, Failure> {
    run.set("contract:update", b"one", None).await?;
    run.set("contract:update", b"two", None).await?;
    run.expect_hit("contract:update", b"two").await?;
    Ok(Outcome::Passed)
}

async fn fill_intent(run: &Run<'_>) -> Result<Outcome, Failure> {
    let fill = WriteIntent::Fill;
    let absent = run
        .set_as("contract:fill:absent", b"filled", None, fill)
        .await?;
    if absent != Stored::Written {
        return Err(run.fail(format!("a fill of an absent key answered {absent:?}")));
    }
    run.expect_hit("contract:fill:absent", b"filled").await?;
    run.set("contract:fill:present", b"newer", None).await?;
    let present = run
        .set_as("contract:fill:present", b"older", None, fill)
        .await?;
    if run.tier.capabilities().fill_if_absent {
        if present != Stored::Kept {
            return Err(run.fail(format!(
                "claims fill_if_absent, but a fill of a present key answered {present:?}"
            )));
        }
        run.expect_hit("contract:fill:present", b"newer").await?;
    } else {
        run.expect_hit("contract:fill:present", b"older").await?;
    }
    Ok(Outcome::Passed)
}

async fn ttl_is_never_exceeded(run: &Run<'_>) -> Result<Outcome, Failure> {
    let ttl = run.options.ttl;
    let started = Instant::now();
    run.set("contract:ttl", b"short-lived", Some(ttl)).await?;
    run.set(
        "contract:ttl:long",
        b"long-lived",
        Some(Duration::from_secs(3600)),
    )
    .await?;
    // Poll until well past the deadline: any hit once `ttl` has elapsed since the write began
    // breaks the promise.
    let end = started + ttl * 3;
    let mut polls = 0u32;
    while Instant::now() < end && polls < 10_000 {
        polls += 1;
        let asked = Instant::now();
        if let Lookup::Hit(_) = run.get("contract:ttl").await? {
            if asked.duration_since(started) > ttl {
                return Err(run.fail(format!(
                    "returned the entry {:?} after a write with ttl {ttl:?}",
                    asked.duration_since(started)
                )));
            }
        }
        tokio::time::sleep(ttl / 20).await;
    }
    run.expect_miss("contract:ttl", "after its ttl").await?;
    run.expect_hit("contract:ttl:long", b"long-lived").await?;
    Ok(Outcome::Passed)
}

async fn delete_removes(run: &Run<'_>) -> Result<Outcome, Failure> {
    run.set("contract:delete", b"doomed", None).await?;
    let removed = run.delete("contract:delete").await?;
    if run.options.exact_counts && !removed {
        return Err(run.fail("delete of a present key answered false"));
    }
    run.expect_miss("contract:delete", "after delete returned Ok")
        .await?;
    let again = run.delete("contract:delete").await?;
    if again {
        return Err(run.fail("delete of an absent key answered true"));
    }
    Ok(Outcome::Passed)
}

async fn delete_matching_removes_only_matches(run: &Run<'_>) -> Result<Outcome, Failure> {
    let doomed = [
        "contract:pat:user:1",
        "contract:pat:user:2",
        "contract:pat:user:3:x",
    ];
    let kept = [
        "contract:pat:users",
        "contract:pat:admin:1",
        "contract:pat:user",
    ];
    for key in doomed.iter().chain(&kept) {
        run.set(key, key.as_bytes(), None).await?;
    }
    let pattern = KeyPattern::new("contract:pat:user:*").expect("a valid pattern");
    let removed = run
        .within("delete_matching", run.tier.delete_matching(&pattern))
        .await?
        .map_err(|e| run.fail(format!("delete_matching failed: {e}")))?;
    if run.options.exact_counts && removed != doomed.len() as u64 {
        return Err(run.fail(format!(
            "delete_matching removed {removed}, expected {}",
            doomed.len()
        )));
    }
    for key in doomed {
        run.expect_miss(key, "after delete_matching of a pattern it matches")
            .await?;
    }
    for key in kept {
        run.expect_hit(key, key.as_bytes()).await?;
    }
    // A glob with a class and a single-character wildcard.
    run.set("contract:pat:id:7", b"7", None).await?;
    run.set("contract:pat:id:x", b"x", None).await?;
    let digits = KeyPattern::new("contract:pat:id:[0-9]").expect("a valid pattern");
    run.within("delete_matching", run.tier.delete_matching(&digits))
        .await?
        .map_err(|e| run.fail(format!("delete_matching failed: {e}")))?;
    run.expect_miss("contract:pat:id:7", "after delete_matching of [0-9]")
        .await?;
    run.expect_hit("contract:pat:id:x", b"x").await?;
    Ok(Outcome::Passed)
}

async fn get_many_answers_per_key(run: &Run<'_>) -> Result<Outcome, Failure> {
    run.set("contract:many:a", b"A", None).await?;
    run.set("contract:many:c", b"C", None).await?;
    let keys = [
        "contract:many:a",
        "contract:many:b",
        "contract:many:c",
        "contract:many:a",
    ];
    let answers = run.within("get_many", run.tier.get_many(&keys)).await?;
    if answers.len() != keys.len() {
        return Err(run.fail(format!(
            "get_many of {} keys answered {}",
            keys.len(),
            answers.len()
        )));
    }
    let want: [Option<&[u8]>; 4] = [Some(b"A"), None, Some(b"C"), Some(b"A")];
    for ((key, answer), want) in keys.iter().zip(answers).zip(want) {
        match (answer, want) {
            (Lookup::Hit(bytes), Some(want)) if bytes == want => {}
            (Lookup::Miss, None) => {}
            (other, _) => {
                return Err(run.fail(format!("get_many answered {other:?} for {key:?}")));
            }
        }
    }
    let empty = run.within("get_many", run.tier.get_many(&[])).await?;
    if !empty.is_empty() {
        return Err(run.fail("get_many of no keys answered something"));
    }
    Ok(Outcome::Passed)
}

async fn set_many_results_per_item(run: &Run<'_>) -> Result<Outcome, Failure> {
    run.set("contract:setmany:present", b"newer", None).await?;
    let mut writes = vec![
        TierWrite::update("contract:setmany:1", Bytes::from_static(b"one"), None),
        TierWrite::update(
            "contract:setmany:2",
            Bytes::from_static(b"two"),
            Some(Duration::from_secs(60)),
        ),
        TierWrite::fill(
            "contract:setmany:present",
            Bytes::from_static(b"older"),
            None,
        ),
    ];
    let oversize = run.options.max_value_size.map(|max| {
        writes.push(TierWrite::update(
            "contract:setmany:oversize",
            Bytes::from(vec![0u8; max + 1]),
            None,
        ));
        writes.len() - 1
    });
    let count = writes.len();
    let results = run.within("set_many", run.tier.set_many(writes)).await?;
    if results.len() != count {
        return Err(run.fail(format!(
            "set_many of {count} writes answered {}",
            results.len()
        )));
    }
    for (i, result) in results.iter().enumerate() {
        match (result, Some(i) == oversize) {
            (Err(TierError::TooLarge { .. }), true) | (Ok(_), false) => {}
            (other, _) => return Err(run.fail(format!("set_many item {i} answered {other:?}"))),
        }
    }
    run.expect_hit("contract:setmany:1", b"one").await?;
    run.expect_hit("contract:setmany:2", b"two").await?;
    if run.tier.capabilities().fill_if_absent {
        if !matches!(results[2], Ok(Stored::Kept)) {
            return Err(run.fail("a batched fill of a present key did not answer Kept"));
        }
        run.expect_hit("contract:setmany:present", b"newer").await?;
    }
    if oversize.is_some() {
        run.expect_miss(
            "contract:setmany:oversize",
            "after a refused oversize write",
        )
        .await?;
    }
    Ok(Outcome::Passed)
}

async fn delete_many_results_per_item(run: &Run<'_>) -> Result<Outcome, Failure> {
    run.set("contract:delmany:a", b"a", None).await?;
    let keys = ["contract:delmany:a", "contract:delmany:absent"];
    let results = run
        .within("delete_many", run.tier.delete_many(&keys))
        .await?;
    match results.as_slice() {
        [Ok(first), Ok(false)] if *first || !run.options.exact_counts => {}
        other => return Err(run.fail(format!("delete_many answered {other:?}"))),
    }
    run.expect_miss("contract:delmany:a", "after delete_many")
        .await?;
    Ok(Outcome::Passed)
}

async fn too_large_is_refused(run: &Run<'_>) -> Result<Outcome, Failure> {
    let Some(max) = run.options.max_value_size else {
        return Ok(Outcome::Skipped("no max_value_size given in the options"));
    };
    run.set("contract:large", b"small", None).await?;
    let big = Bytes::from(vec![7u8; max + 1]);
    let result = run
        .within(
            "set(oversize)",
            run.tier
                .set("contract:large", big, None, WriteIntent::Update),
        )
        .await?;
    match result {
        Err(TierError::TooLarge { size, limit }) if size > limit || size == 0 => {}
        Err(TierError::TooLarge { size, limit }) => {
            return Err(run.fail(format!("TooLarge reports size {size} <= limit {limit}")))
        }
        other => return Err(run.fail(format!("a value above the limit answered {other:?}"))),
    }
    if (TierError::TooLarge { size: 1, limit: 0 }).is_fault() {
        return Err(run.fail("TooLarge counts as a fault"));
    }
    // Refused, not truncated: the old value or nothing, never a prefix of the new one.
    match run.get("contract:large").await? {
        Lookup::Hit(bytes) if &bytes[..] == b"small" => {}
        Lookup::Miss => {}
        other => return Err(run.fail(format!("after a refused write the key answered {other:?}"))),
    }
    Ok(Outcome::Passed)
}

async fn concurrent_writers_all_land(run: &Run<'_>) -> Result<Outcome, Failure> {
    let tier = run.tier;
    let writers = (0..8u32).map(|w| async move {
        for i in 0..25u32 {
            let key = format!("contract:conc:{w}:{i}");
            tier.set(&key, Bytes::from(key.clone()), None, WriteIntent::Update)
                .await?;
        }
        Ok::<_, TierError>(())
    });
    let results = run
        .within(
            "8 concurrent writers",
            futures_util::future::join_all(writers),
        )
        .await?;
    for result in results {
        result.map_err(|e| run.fail(format!("a concurrent set failed: {e}")))?;
    }
    for w in 0..8u32 {
        for i in 0..25u32 {
            let key = format!("contract:conc:{w}:{i}");
            run.expect_hit(&key, key.as_bytes()).await?;
        }
    }
    Ok(Outcome::Passed)
}

async fn health_answers_promptly(run: &Run<'_>) -> Result<Outcome, Failure> {
    let health = run.within("health", run.tier.health()).await?;
    match health {
        Health::Healthy | Health::Degraded(_) => Ok(Outcome::Passed),
        Health::Down(reason) => Err(run.fail(format!("a working tier reports down: {reason}"))),
    }
}

async fn clear_removes_everything(run: &Run<'_>) -> Result<Outcome, Failure> {
    run.set("contract:clear:1", b"1", None).await?;
    run.set("contract:clear:2", b"2", Some(Duration::from_secs(60)))
        .await?;
    run.within("clear", run.tier.clear())
        .await?
        .map_err(|e| run.fail(format!("clear failed: {e}")))?;
    for key in [
        "contract:clear:1",
        "contract:clear:2",
        "contract:update",
        "contract:many:a",
    ] {
        run.expect_miss(key, "after clear").await?;
    }
    run.set("contract:clear:after", b"a", None).await?;
    run.expect_hit("contract:clear:after", b"a").await?;
    Ok(Outcome::Passed)
}

/// What a subscription delivered: the events, and how often the feed said it lost some.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Invalidation>>,
    lost: std::sync::atomic::AtomicU64,
}

impl Recorder {
    fn events(&self) -> Vec<Invalidation> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl InvalidationSink for Recorder {
    fn invalidate(&self, event: Invalidation) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }

    fn events_lost(&self) {
        self.lost.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A feed may start asynchronously (a Redis subscription is up a few milliseconds after
/// `subscribe` returns), so the peer repeats its invalidations until they arrive or the
/// deadline passes. Once they arrive, an invalidation made through this handle, followed by a
/// marker from the peer, shows whether the handle's own events are echoed back: the marker's
/// arrival means the own event, had it been sent, would have arrived first.
async fn invalidation_events_reach_peers(run: &Run<'_>) -> Result<Outcome, Failure> {
    let recorder = Arc::new(Recorder::default());
    let subscription = run
        .tier
        .subscribe(Arc::clone(&recorder) as Arc<dyn InvalidationSink>);
    if !run.tier.capabilities().invalidation_events {
        if subscription.is_some() {
            return Err(run.fail("subscribe answered Some without claiming invalidation_events"));
        }
        return Ok(Outcome::Skipped(
            "the tier does not claim invalidation_events",
        ));
    }
    if subscription.is_none() {
        return Err(run.fail("claims invalidation_events, but subscribe answered None"));
    }
    let Some(peer) = &run.options.peer else {
        return Ok(Outcome::Skipped("no peer handle given in the options"));
    };
    let peer_fail = |what: &str, e: TierError| run.fail(format!("peer {what} failed: {e}"));
    let pattern = KeyPattern::new("contract:events:*").expect("a valid pattern");
    let deadline = Instant::now() + run.options.deadline;
    loop {
        peer.set(
            "contract:events:key",
            Bytes::from_static(b"v"),
            None,
            WriteIntent::Update,
        )
        .await
        .map_err(|e| peer_fail("set", e))?;
        peer.delete("contract:events:key")
            .await
            .map_err(|e| peer_fail("delete", e))?;
        peer.delete_matching(&pattern)
            .await
            .map_err(|e| peer_fail("delete_matching", e))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let events = recorder.events();
        let key = events
            .iter()
            .any(|e| *e == Invalidation::Key("contract:events:key".into()));
        let pat = events
            .iter()
            .any(|e| matches!(e, Invalidation::Pattern(p) if p == &pattern));
        if key && pat {
            break;
        }
        if Instant::now() > deadline {
            return Err(run.fail(format!(
                "peer invalidations not delivered (key: {key}, pattern: {pat}); saw {events:?}"
            )));
        }
    }
    // An invalidation made through this very handle is not echoed back.
    run.delete("contract:events:own").await?;
    peer.delete("contract:events:marker")
        .await
        .map_err(|e| peer_fail("delete", e))?;
    loop {
        let events = recorder.events();
        if events
            .iter()
            .any(|e| *e == Invalidation::Key("contract:events:own".into()))
        {
            return Err(run.fail("an invalidation made through this handle was echoed back"));
        }
        if events
            .iter()
            .any(|e| *e == Invalidation::Key("contract:events:marker".into()))
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(run.fail("the peer's marker invalidation was not delivered"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(subscription);
    // Give a feed that stops asynchronously a moment, then nothing more may arrive.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = recorder.events().len();
    peer.delete("contract:events:after").await.ok();
    tokio::time::sleep(Duration::from_millis(50)).await;
    if recorder.events().len() != before {
        return Err(run.fail("events were delivered after the subscription was dropped"));
    }
    Ok(Outcome::Passed)
}

async fn close_keeps_acknowledged_writes(run: &Run<'_>) -> Result<(), Failure> {
    let keys: Vec<String> = (0..50).map(|i| format!("contract:close:{i}")).collect();
    for key in &keys {
        run.set(key, key.as_bytes(), None).await?;
    }
    run.within("close", run.tier.close())
        .await?
        .map_err(|e| run.fail(format!("close failed: {e}")))?;
    run.within("close again", run.tier.close())
        .await?
        .map_err(|e| run.fail(format!("a second close failed: {e}")))?;
    match run
        .within(
            "set after close",
            run.tier.set(
                "contract:close:late",
                Bytes::new(),
                None,
                WriteIntent::Update,
            ),
        )
        .await?
    {
        Err(_) => {}
        Ok(stored) => return Err(run.fail(format!("a set after close answered Ok({stored:?})"))),
    }
    match run.get("contract:close:0").await? {
        Lookup::Degraded(_) => {}
        other => return Err(run.fail(format!("a get after close answered {other:?}"))),
    }
    if let Some(reopen) = &run.options.reopen {
        let reopened = run.within("reopen", reopen()).await?;
        let again = Run {
            tier: &*reopened,
            options: run.options,
            case: run.case,
        };
        for key in &keys {
            again.expect_hit(key, key.as_bytes()).await?;
        }
        reopened.close().await.ok();
    }
    Ok(())
}
