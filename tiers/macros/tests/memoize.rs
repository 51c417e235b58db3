//! Guards `#[cached]` and `#[invalidates]` against what breaks memoization in practice: a hot
//! key whose body runs once per caller (a thundering herd on the source), failures and misses
//! that get cached, entries that outlive their TTL, invalidations that leave a stale copy in
//! one tier (L1 or disk), and keys that differ between two processes sharing a tier.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use strata::{cached, invalidates, Lookup, Postcard, RedbTier, Tier, TieredCache};

type Numbers = TieredCache<u64, Postcard<u64>>;

fn numbers() -> Numbers {
    Numbers::builder().memory_max_entries(1_000).build()
}

// --- single flight ---------------------------------------------------------------------------

static HOT: LazyLock<Numbers> = LazyLock::new(numbers);
static HOT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = HOT, key = "hot:{id}")]
async fn hot(id: u64) -> Result<u64, String> {
    HOT_RUNS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(id * 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_calls_run_the_body_once() {
    let start = Arc::new(tokio::sync::Barrier::new(100));
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                hot(21).await
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), Ok(42));
    }
    assert_eq!(HOT_RUNS.load(SeqCst), 1);
    assert_eq!(hot(21).await, Ok(42));
    assert_eq!(HOT_RUNS.load(SeqCst), 1);
    assert_eq!(HOT.get("hot:21").await, Some(42));
}

static SHARED_FAILURE: LazyLock<Numbers> = LazyLock::new(numbers);
static SHARED_FAILURE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, PartialEq)]
enum SourceError {
    Down(u32),
}

#[cached(cache = SHARED_FAILURE, key = "down:{id}")]
async fn failing(id: u64) -> Result<u64, SourceError> {
    SHARED_FAILURE_RUNS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Err(SourceError::Down(id as u32))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_share_one_failure_in_their_own_error_type() {
    let start = Arc::new(tokio::sync::Barrier::new(20));
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                failing(5).await
            })
        })
        .collect();
    for call in calls {
        // The caller's own error type, each a clone of the one the body returned.
        assert_eq!(call.await.unwrap(), Err(SourceError::Down(5)));
    }
    assert_eq!(SHARED_FAILURE_RUNS.load(SeqCst), 1);
    assert_eq!(SHARED_FAILURE.get("down:5").await, None);
    // Not cached: the next call runs the body again.
    assert_eq!(failing(5).await, Err(SourceError::Down(5)));
    assert_eq!(SHARED_FAILURE_RUNS.load(SeqCst), 2);
}

// --- TTL -------------------------------------------------------------------------------------

static SHORT: LazyLock<Numbers> = LazyLock::new(numbers);
static SHORT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = SHORT, key = "short:{id}", ttl = "300ms")]
async fn short_lived(id: u64) -> u64 {
    SHORT_RUNS.fetch_add(1, SeqCst) as u64 + id
}

#[tokio::test]
async fn entries_expire_after_the_functions_ttl() {
    assert_eq!(short_lived(100).await, 100);
    assert_eq!(short_lived(100).await, 100);
    assert_eq!(SHORT_RUNS.load(SeqCst), 1);
    let entry = SHORT.get_entry("short:100").await.expect("cached");
    let left = entry
        .expires_at
        .expect("a TTL")
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(left <= Duration::from_millis(300), "{left:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(SHORT.get("short:100").await, None);
    assert_eq!(short_lived(100).await, 101);
    assert_eq!(SHORT_RUNS.load(SeqCst), 2);
}

// --- what is not cached ----------------------------------------------------------------------

static FLAKY: LazyLock<Numbers> = LazyLock::new(numbers);
static FLAKY_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Fails on its first run, succeeds after.
#[cached(cache = FLAKY, key = "flaky:{id}")]
async fn flaky(id: u64) -> std::result::Result<u64, Arc<std::io::Error>> {
    if FLAKY_RUNS.fetch_add(1, SeqCst) == 0 {
        return Err(Arc::new(std::io::Error::other("first run fails")));
    }
    Ok(id)
}

#[tokio::test]
async fn an_err_is_not_cached() {
    assert!(flaky(3).await.is_err());
    assert_eq!(FLAKY.get("flaky:3").await, None);
    assert_eq!(flaky(3).await.unwrap(), 3);
    assert_eq!(flaky(3).await.unwrap(), 3);
    assert_eq!(FLAKY_RUNS.load(SeqCst), 2);
}

static MAYBE: LazyLock<Numbers> = LazyLock::new(numbers);
static MAYBE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = MAYBE, key = "maybe:{id}")]
async fn maybe(id: u64) -> Option<u64> {
    MAYBE_RUNS.fetch_add(1, SeqCst);
    (id % 2 == 0).then_some(id)
}

#[tokio::test]
async fn a_none_is_not_cached_and_a_some_is() {
    assert_eq!(maybe(1).await, None);
    assert_eq!(maybe(1).await, None);
    assert_eq!(MAYBE_RUNS.load(SeqCst), 2);
    assert_eq!(maybe(2).await, Some(2));
    assert_eq!(maybe(2).await, Some(2));
    assert_eq!(MAYBE_RUNS.load(SeqCst), 3);
}

static MAYBE_ALL: LazyLock<TieredCache<Option<u64>, Postcard<Option<u64>>>> =
    LazyLock::new(|| TieredCache::builder().build());
static MAYBE_ALL_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = MAYBE_ALL, key = "maybe-all:{id}", cache_none = true)]
async fn maybe_all(id: u64) -> Option<u64> {
    MAYBE_ALL_RUNS.fetch_add(1, SeqCst);
    (id % 2 == 0).then_some(id)
}

#[tokio::test]
async fn cache_none_caches_a_none() {
    assert_eq!(maybe_all(1).await, None);
    assert_eq!(maybe_all(1).await, None);
    assert_eq!(MAYBE_ALL_RUNS.load(SeqCst), 1);
    assert_eq!(MAYBE_ALL.get("maybe-all:1").await, Some(None));
}

// --- cancellation ----------------------------------------------------------------------------

static SLOW: LazyLock<Numbers> = LazyLock::new(numbers);
static SLOW_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = SLOW, key = "slow:{id}")]
async fn slow(id: u64) -> u64 {
    SLOW_RUNS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_takes_over_when_the_running_call_is_cancelled() {
    let leader = tokio::spawn(slow(9));
    while SLOW_RUNS.load(SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Joins the leader's flight (or, if it comes late, leads after the abort: two runs either way).
    let follower = tokio::spawn(slow(9));
    tokio::time::sleep(Duration::from_millis(50)).await;
    leader.abort();
    assert_eq!(follower.await.unwrap(), 9);
    assert_eq!(
        SLOW_RUNS.load(SeqCst),
        2,
        "the leader's run, then the follower's own"
    );
    assert_eq!(SLOW.get("slow:9").await, Some(9));
}

// --- companions ------------------------------------------------------------------------------

static COUNTED: LazyLock<Numbers> = LazyLock::new(numbers);
static COUNTED_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Returns how many times its body ran, so each run is visible.
#[cached(cache = COUNTED, key_prefix = "t:", namespace = "counted.v1")]
async fn counted(name: &str, page: u32) -> u64 {
    let _ = (name, page);
    COUNTED_RUNS.fetch_add(1, SeqCst) as u64 + 1
}

#[tokio::test]
async fn companions_bypass_refresh_and_invalidate() {
    let key = "t:counted.v1:1:0361626307"; // postcard of ("abc", 7): 03 'a' 'b' 'c' 07
    assert_eq!(counted("abc", 7).await, 1);
    assert_eq!(COUNTED.get(key).await, Some(1), "the default key");
    assert_eq!(counted("abc", 7).await, 1);

    // Bypass: runs every time, stores nothing.
    assert_eq!(counted_uncached("abc", 7).await, 2);
    assert_eq!(counted_uncached("abc", 7).await, 3);
    assert_eq!(counted("abc", 7).await, 1);

    // Refresh: runs and stores.
    assert_eq!(counted_refresh("abc", 7).await, 4);
    assert_eq!(counted("abc", 7).await, 4);
    assert_eq!(COUNTED.get(key).await, Some(4));

    // Invalidate: removes this entry only.
    assert_eq!(counted("abc", 8).await, 5);
    assert!(counted_invalidate("abc", 7).await.unwrap());
    assert!(!counted_invalidate("abc", 7).await.unwrap());
    assert_eq!(COUNTED.get(key).await, None);
    assert_eq!(counted("abc", 8).await, 5);
    assert_eq!(counted("abc", 7).await, 6);

    // Every entry of the function: its namespace as a pattern.
    COUNTED.invalidate_pattern("t:counted.v1:*").await.unwrap();
    assert_eq!(counted("abc", 8).await, 7);
}

static GENERIC: LazyLock<Numbers> = LazyLock::new(numbers);

/// Generic arguments work as any other: their encoding is the key.
#[cached(cache = GENERIC, namespace = "len.v1", ttl = "1m")]
async fn length<T>(items: Vec<T>) -> u64
where
    T: serde::Serialize + Send,
{
    items.len() as u64
}

#[tokio::test]
async fn generic_functions_are_memoized_per_argument_value() {
    assert_eq!(length(vec!["a", "b"]).await, 2);
    assert_eq!(length(vec![1u8, 2, 3]).await, 3);
    // postcard: a sequence of 2 strings of 1 byte each.
    assert_eq!(GENERIC.get("len.v1:1:0201610162").await, Some(2));
    assert!(length_invalidate(vec!["a", "b"]).await.unwrap());
}

// --- invalidation across L1 and redb ---------------------------------------------------------

type Names = TieredCache<Arc<String>, Postcard<Arc<String>>>;

struct Users {
    cache: Names,
    disk: Arc<RedbTier>,
    loads: AtomicUsize,
}

#[derive(Debug, Clone, PartialEq)]
struct Refused;

impl Users {
    #[cached(cache = self.cache, key = "user:{id}", ttl = "1h")]
    async fn name(&self, id: u64) -> Result<Arc<String>, Refused> {
        let run = self.loads.fetch_add(1, SeqCst);
        Ok(Arc::new(format!("user {id} v{run}")))
    }

    #[cached(cache = self.cache, key = "users:list:{page}")]
    async fn list(&self, page: u32) -> Arc<String> {
        let run = self.loads.fetch_add(1, SeqCst);
        Arc::new(format!("page {page} v{run}"))
    }

    #[invalidates("user:{id}", "users:list:*", cache = self.cache)]
    async fn rename(&self, id: u64, ok: bool) -> Result<(), Refused> {
        let _ = id;
        if ok {
            Ok(())
        } else {
            Err(Refused)
        }
    }

    #[invalidates("users:list:{page}", cache = self.cache)]
    async fn touch_page(&self, page: &str) {
        let _ = page;
    }

    async fn on_disk(&self, key: &str) -> bool {
        matches!(self.disk.get(key).await, Lookup::Hit(_))
    }

    fn in_l1(&self, key: &str) -> bool {
        self.cache.l1().contains_key(key)
    }
}

#[tokio::test]
async fn invalidation_by_key_and_by_pattern_reaches_l1_and_disk() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(
        RedbTier::builder(dir.path().join("memo.redb"))
            .open_async()
            .await
            .unwrap(),
    );
    let users = Users {
        cache: Names::builder().tier(disk.clone()).build(),
        disk,
        loads: AtomicUsize::new(0),
    };
    assert_eq!(*users.name(1).await.unwrap(), "user 1 v0");
    assert_eq!(*users.name(2).await.unwrap(), "user 2 v1");
    assert_eq!(*users.list(1).await, "page 1 v2");
    assert_eq!(*users.list(2).await, "page 2 v3");
    for key in ["user:1", "user:2", "users:list:1", "users:list:2"] {
        assert!(
            users.in_l1(key) && users.on_disk(key).await,
            "{key} cached in both"
        );
    }

    // A failed update invalidates nothing.
    assert_eq!(users.rename(1, false).await, Err(Refused));
    assert!(users.in_l1("user:1") && users.on_disk("users:list:1").await);

    // A successful one: its key and its pattern, in both tiers; other keys stay.
    users.rename(1, true).await.unwrap();
    for key in ["user:1", "users:list:1", "users:list:2"] {
        assert!(!users.in_l1(key), "{key} left in L1");
        assert!(!users.on_disk(key).await, "{key} left on disk");
    }
    assert!(users.in_l1("user:2") && users.on_disk("user:2").await);
    assert_eq!(*users.name(1).await.unwrap(), "user 1 v4");
    assert_eq!(*users.name(2).await.unwrap(), "user 2 v1");

    // An L1 miss reads the disk copy (promotion), so the disk must really be clean: a new
    // cache over the same file sees only what survived.
    assert_eq!(*users.list(1).await, "page 1 v5");
    users.cache.l1().clear();
    assert_eq!(*users.list(1).await, "page 1 v5", "read back from disk");

    // A non-Result function invalidates on return; a template value is a key, not a pattern.
    users.touch_page("*").await;
    assert!(
        users.on_disk("users:list:1").await,
        "`*` from an argument is literal"
    );
    users.touch_page("1").await;
    assert!(!users.on_disk("users:list:1").await && !users.in_l1("users:list:1"));
    users.cache.close().await.unwrap();
}

static TEAMS: LazyLock<Numbers> = LazyLock::new(numbers);

#[invalidates("team:{team}:*", cache = TEAMS)]
async fn reorganize(team: &str) -> Result<(), Refused> {
    let _ = team;
    Ok(())
}

#[tokio::test]
async fn arguments_in_a_pattern_match_only_themselves() {
    for key in ["team:a*:1", "team:ab:1", "team:a:1"] {
        assert!(TEAMS.set(key, 1).await.unwrap().is_complete());
    }
    reorganize("a*").await.unwrap();
    assert_eq!(TEAMS.get("team:a*:1").await, None);
    assert_eq!(
        TEAMS.get("team:ab:1").await,
        Some(1),
        "`*` in the argument is not a glob"
    );
    reorganize("a").await.unwrap();
    assert_eq!(TEAMS.get("team:a:1").await, None);
    assert_eq!(TEAMS.get("team:ab:1").await, Some(1));
}

// --- keys across processes -------------------------------------------------------------------

static SHARED_KEYS: LazyLock<Numbers> = LazyLock::new(numbers);

#[derive(serde::Serialize)]
struct Query {
    tenant: String,
    ids: Vec<u32>,
    limit: Option<u16>,
}

#[cached(cache = SHARED_KEYS, namespace = "search.v1")]
async fn search(query: Query, page: u64, exact: bool) -> u64 {
    let _ = (query, exact);
    page
}

/// The key `search` stores under for fixed arguments, read back from the cache.
async fn search_key() -> String {
    let query = Query {
        tenant: "acme".into(),
        ids: vec![1, 300],
        limit: Some(10),
    };
    search(query, 1 << 40, true).await;
    let keys: Vec<String> = SHARED_KEYS
        .l1()
        .iter()
        .map(|(key, _)| key.clone())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    keys.into_iter().next().unwrap()
}

const CHILD: &str = "STRATA_MEMO_PRINT_KEY";

/// Run by `keys_are_the_same_in_another_process` in a child process; does nothing otherwise.
#[tokio::test]
async fn child_prints_its_key() {
    if std::env::var_os(CHILD).is_some() {
        println!("KEY={}", search_key().await);
    }
}

#[tokio::test]
async fn keys_are_the_same_in_another_process() {
    let here = search_key().await;
    // postcard: "acme" (len 4), [1, 300] (len 2, varints), Some(10), 2^40 (varint), true.
    assert_eq!(
        here,
        "search.v1:1:0461636d650201ac02010a808080808020 01".replace(' ', "")
    );
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_prints_its_key",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(child.status.success(), "{child:?}");
    let stdout = String::from_utf8(child.stdout).unwrap();
    let there = stdout
        .lines()
        .find_map(|line| line.split_once("KEY=").map(|(_, key)| key.trim()))
        .unwrap_or_else(|| panic!("no key printed: {stdout}"));
    assert_eq!(there, here);
}

// --- the L1 fast path builds the same key --------------------------------------------------

static MIXED: LazyLock<Numbers> = LazyLock::new(numbers);
static MIXED_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Integers, strings, a `Display` type and literal braces: a hit builds its key without
/// `format!`, and must build exactly the key the first call stored.
#[cached(cache = MIXED, key = "mix:{a}:{b}:{c}:{d}:{{x}}")]
async fn mixed(a: i64, b: &str, c: std::net::Ipv4Addr, d: bool) -> u64 {
    let _ = (a, b, c, d);
    MIXED_RUNS.fetch_add(1, SeqCst) as u64 + 1
}

#[tokio::test]
async fn a_hit_builds_exactly_the_stored_key() {
    let ip = std::net::Ipv4Addr::new(10, 0, 0, 1);
    assert_eq!(mixed(-5, "héllo", ip, true).await, 1);
    assert!(MIXED.l1().contains_key("mix:-5:héllo:10.0.0.1:true:{x}"));
    for _ in 0..3 {
        assert_eq!(mixed(-5, "héllo", ip, true).await, 1, "a hit ran the body");
    }
    assert_eq!(mixed(i64::MIN, "", ip, false).await, 2);
    assert!(MIXED
        .l1()
        .contains_key(&format!("mix:{}::10.0.0.1:false:{{x}}", i64::MIN)));
    assert_eq!(mixed(i64::MIN, "", ip, false).await, 2);
    assert_eq!(MIXED_RUNS.load(SeqCst), 2);
}

// --- cost of a hit ---------------------------------------------------------------------------

static BENCH: LazyLock<Numbers> = LazyLock::new(numbers);

#[cached(cache = BENCH, key = "bench:{id}")]
async fn bench_template(id: u64) -> u64 {
    id
}

#[cached(cache = BENCH, namespace = "bench")]
async fn bench_default(id: u64) -> u64 {
    id
}

/// ns per call of `call`, `n` calls.
async fn ns_per_op<F, Fut>(n: u32, mut call: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let start = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(call().await);
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// A memoized call that hits L1 against a bare `TieredCache::get` of the same key (the issue
/// asks for at most 1.5x). 5 runs of 1M calls each, medians. Run with
/// `cargo test --release -p strata-macros --test memoize -- --ignored --nocapture l1_hit_cost`.
#[tokio::test]
#[ignore = "a measurement, not a check: run by hand"]
async fn l1_hit_cost_against_a_bare_get() {
    const N: u32 = 1_000_000;
    assert_eq!(bench_template(7).await, 7);
    assert_eq!(bench_default(7).await, 7);
    let default_key = "bench:1:07";
    assert_eq!(BENCH.get(default_key).await, Some(7));
    let (mut bare, mut template, mut default, mut l1) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        bare.push(
            ns_per_op(N, || async {
                BENCH.get(std::hint::black_box("bench:7")).await.unwrap()
            })
            .await,
        );
        template.push(ns_per_op(N, || bench_template(std::hint::black_box(7))).await);
        default.push(ns_per_op(N, || bench_default(std::hint::black_box(7))).await);
        // The engine alone, for scale: `get` also reads the entry's TTL and names its tier.
        l1.push(
            ns_per_op(N, || async {
                BENCH.l1().get(std::hint::black_box("bench:7")).unwrap()
            })
            .await,
        );
    }
    let (bare, template, default, l1) =
        (median(bare), median(template), median(default), median(l1));
    println!(
        "bare get {bare:.1} ns/op; #[cached] key template {template:.1} ns/op ({:.2}x); \
         default key {default:.1} ns/op ({:.2}x); L1 engine get {l1:.1} ns/op",
        template / bare,
        default / bare
    );
}
