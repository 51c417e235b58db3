//! What the `#[cached]` and `#[invalidates]` expansions call (`strata::__private`): the stable
//! key encoder, the memoized load (single-flight through the stack, with the function's TTL
//! and the caller's own error type), refresh and invalidation. Not a public API: only the
//! macros' expansions use it, and it may change with them.

use std::any::type_name;
use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cache::{SetOptions, TieredCache};
use crate::codec::Codec;

/// The version of the default key encoding (`{prefix}{namespace}:{VERSION}:{hex}`); bumped if
/// the encoding ever changes, so that old and new keys never collide.
pub const KEY_VERSION: &str = "1";

/// Builds a default key: `{prefix}{namespace}:1:` then the arguments' postcard bytes in
/// lowercase hex. Postcard is a fixed, documented format (varint integers, length-prefixed
/// strings and sequences, fields in declaration order): the same arguments give the same key
/// in every process and on every platform, unlike a process-random hasher. One allocation.
pub struct KeyEncoder {
    key: String,
    failed: bool,
}

/// Writes a default key's head: `{prefix}{namespace}:{KEY_VERSION}:`.
#[inline]
fn start_key(key: &mut String, prefix: &str, namespace: &str) {
    key.push_str(prefix);
    key.push_str(namespace);
    key.push(':');
    key.push_str(KEY_VERSION);
    key.push(':');
}

/// Appends one argument's postcard bytes in hex; `false` if it could not be encoded.
#[inline]
fn encode_arg<T: Serialize + ?Sized>(key: &mut String, value: &T) -> bool {
    postcard::serialize_with_flavor(value, HexInto(key)).is_ok()
}

impl KeyEncoder {
    /// Starts a key.
    #[inline]
    pub fn new(prefix: &str, namespace: &str) -> Self {
        let mut key = String::with_capacity(prefix.len() + namespace.len() + 3 + 32);
        start_key(&mut key, prefix, namespace);
        KeyEncoder { key, failed: false }
    }

    /// Appends one argument's encoding.
    #[inline]
    pub fn arg<T: Serialize + ?Sized>(&mut self, value: &T) {
        self.failed |= !encode_arg(&mut self.key, value);
    }

    /// The key, or `None` if an argument could not be encoded (a sequence of unknown length,
    /// say): the call then runs uncached.
    #[inline]
    pub fn finish(self) -> Option<String> {
        (!self.failed).then_some(self.key)
    }
}

/// A postcard output that writes each byte as two hex digits straight into the key.
struct HexInto<'a>(&'a mut String);

impl postcard::ser_flavors::Flavor for HexInto<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        self.0.push(DIGITS[usize::from(byte >> 4)] as char);
        self.0.push(DIGITS[usize::from(byte & 0xf)] as char);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// The key of a memoized call's L1 lookup, built here so that a hit allocates nothing.
    static KEY_BUFFER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The L1 hit of a memoized call, without allocating: `build` writes the key into a reused
/// thread-local buffer (and answers `false` if it could not, when the call runs uncached).
/// `None` on a miss; the caller then takes the full path (single flight, lower tiers).
#[inline]
pub fn l1_hit<V, C>(cache: &TieredCache<V, C>, build: impl FnOnce(&mut String) -> bool) -> Option<V>
where
    V: Clone + Send + Sync + 'static,
{
    KEY_BUFFER.with(|buffer| {
        // A `Display` of an argument that itself calls a memoized function finds the buffer
        // taken: that inner call just skips its fast path.
        let mut buffer = buffer.try_borrow_mut().ok()?;
        buffer.clear();
        if !build(&mut buffer) {
            return None;
        }
        cache.shared.l1.get(buffer.as_str())
    })
}

/// Builds a default key into a borrowed buffer, as [`KeyEncoder`] does into its own.
pub struct KeyWriter<'a> {
    key: &'a mut String,
    failed: bool,
}

impl<'a> KeyWriter<'a> {
    /// Starts a key in `key` (cleared by the caller).
    #[inline]
    pub fn new(key: &'a mut String, prefix: &str, namespace: &str) -> Self {
        start_key(key, prefix, namespace);
        KeyWriter { key, failed: false }
    }

    /// Appends one argument's encoding.
    #[inline]
    pub fn arg<T: Serialize + ?Sized>(&mut self, value: &T) {
        self.failed |= !encode_arg(self.key, value);
    }

    /// Whether every argument could be encoded.
    #[inline]
    pub fn finish(self) -> bool {
        !self.failed
    }
}

/// An argument interpolated into a key template; `(&KeyArg(&x)).push_key(buf)` appends it,
/// without the formatting machinery for strings and integers ([`PushFast`]), by `Display`
/// for anything else ([`PushDisplay`]). Either way the text is what `format!("{x}")` gives.
pub struct KeyArg<'a, T: ?Sized>(pub &'a T);

/// The fast way to append a key argument (strings, integers, `bool`, `char`).
pub trait PushFast {
    /// Appends the argument.
    fn push_key(&self, buf: &mut String);
}

/// The general way to append a key argument: its `Display`.
pub trait PushDisplay {
    /// Appends the argument.
    fn push_key(&self, buf: &mut String);
}

impl<T: FastKey + ?Sized> PushFast for KeyArg<'_, T> {
    #[inline]
    fn push_key(&self, buf: &mut String) {
        self.0.push_fast(buf);
    }
}

impl<T: fmt::Display + ?Sized> PushDisplay for &KeyArg<'_, T> {
    #[inline]
    fn push_key(&self, buf: &mut String) {
        use std::fmt::Write as _;
        let _ = write!(buf, "{}", self.0);
    }
}

/// Types whose `Display` text a key can take without the formatting machinery.
pub trait FastKey {
    /// Appends exactly what `Display` would write.
    fn push_fast(&self, buf: &mut String);
}

impl FastKey for str {
    #[inline]
    fn push_fast(&self, buf: &mut String) {
        buf.push_str(self);
    }
}

impl FastKey for String {
    #[inline]
    fn push_fast(&self, buf: &mut String) {
        buf.push_str(self);
    }
}

impl FastKey for bool {
    #[inline]
    fn push_fast(&self, buf: &mut String) {
        buf.push_str(if *self { "true" } else { "false" });
    }
}

impl FastKey for char {
    #[inline]
    fn push_fast(&self, buf: &mut String) {
        buf.push(*self);
    }
}

impl<T: FastKey + ?Sized> FastKey for &T {
    #[inline]
    fn push_fast(&self, buf: &mut String) {
        (**self).push_fast(buf);
    }
}

/// Appends the decimal digits of `n`.
#[inline]
fn push_decimal(buf: &mut String, mut n: u128) {
    let mut digits = [0u8; 39];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend(digits[at..].iter().map(|&digit| char::from(digit)));
}

macro_rules! fast_unsigned {
    ($($t:ty),*) => {$(
        impl FastKey for $t {
            #[inline]
            fn push_fast(&self, buf: &mut String) {
                push_decimal(buf, *self as u128);
            }
        }
    )*};
}

macro_rules! fast_signed {
    ($($t:ty),*) => {$(
        impl FastKey for $t {
            #[inline]
            fn push_fast(&self, buf: &mut String) {
                if *self < 0 {
                    buf.push('-');
                }
                push_decimal(buf, self.unsigned_abs() as u128);
            }
        }
    )*};
}

fast_unsigned!(u8, u16, u32, u64, u128, usize);
fast_signed!(i8, i16, i32, i64, i128, isize);

/// Escapes glob characters in a value interpolated into an `#[invalidates]` pattern, so that an
/// argument holding `*` matches itself only.
pub fn escape_glob(value: &dyn fmt::Display) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Compile-time check emitted at a memoized function's value type, so that a type that is not
/// serde names itself in the error.
pub fn assert_cacheable<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static>() {}

/// Compile-time check emitted at a memoized function's error type: concurrent callers share one
/// run of the body, and each receives its own clone of the error.
pub fn assert_shareable_error<E: Clone + Send + Sync + 'static>() {}

/// A memoized function's error, as it travels through a shared flight to the callers that
/// waited for it; each takes its own clone back out, so callers see their own error type.
struct Shared<E>(E);

impl<E> fmt::Debug for Shared<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shared<{}>", type_name::<E>())
    }
}

impl<E> fmt::Display for Shared<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memoized function failed with a {}", type_name::<E>())
    }
}

impl<E: 'static> Error for Shared<E> {}

/// The `None` of a memoized `Option` function: not cached, shared with the flight's callers.
#[derive(Clone, Copy)]
pub struct NoValue;

/// The memoized call: the value under `key`, or `body`'s value, which is stored in L1 and in
/// every tier that answered with `ttl` (the cache's `default_ttl` if `None`), unless a write of
/// the key started meanwhile. The single flight of
/// [`TieredCache::get_or_load`](crate::TieredCache::get_or_load), with a per-function TTL and
/// the body's own error type: concurrent callers missing one key run the body once; if it
/// fails, every caller gets a clone of its error and nothing is cached.
pub async fn load<V, C, E, F, Fut>(
    cache: &TieredCache<V, C>,
    key: &str,
    ttl: Option<Duration>,
    body: F,
) -> Result<V, E>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
    E: Clone + Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<V, E>>,
{
    let ttl = ttl.or(cache.shared.default_ttl);
    cache
        .single_flight(
            key,
            ttl,
            body,
            |error: &E| std::sync::Arc::new(Shared(error.clone())),
            // A flight of another function (or a plain `get_or_load`) on the same key that
            // failed with an error of another type: load for ourselves.
            |shared| {
                shared
                    .downcast_ref::<Shared<E>>()
                    .map(|Shared(e)| e.clone())
            },
        )
        .await
}

/// `#[cached]` on a function returning `Result<T, E>`.
#[inline]
pub async fn memo_result<V, C, E, F, Fut>(
    cache: &TieredCache<V, C>,
    key: Option<String>,
    ttl: Option<Duration>,
    body: F,
) -> Result<V, E>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
    E: Clone + Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<V, E>>,
{
    match key {
        Some(key) => load(cache, &key, ttl, body).await,
        None => body().await,
    }
}

/// `#[cached]` on a function returning `Option<T>`, `None` not cached.
#[inline]
pub async fn memo_option<V, C, F, Fut>(
    cache: &TieredCache<V, C>,
    key: Option<String>,
    ttl: Option<Duration>,
    body: F,
) -> Option<V>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Option<V>>,
{
    memo_result(cache, key, ttl, || async { body().await.ok_or(NoValue) })
        .await
        .ok()
}

/// `#[cached]` on a function returning a plain value (or an `Option` with `cache_none`).
#[inline]
pub async fn memo_value<V, C, F, Fut>(
    cache: &TieredCache<V, C>,
    key: Option<String>,
    ttl: Option<Duration>,
    body: F,
) -> V
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = V>,
{
    let outcome = memo_result(cache, key, ttl, || async {
        Ok::<V, Infallible>(body().await)
    })
    .await;
    match outcome {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

/// Stores a refreshed value; a value that cannot be stored is logged, as a memoized load does.
pub async fn store<V, C>(cache: &TieredCache<V, C>, key: &str, ttl: Option<Duration>, value: V)
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    let options = match ttl {
        Some(ttl) => SetOptions::default().ttl(ttl),
        None => SetOptions::default(),
    };
    match cache.set_with(key, value, options).await {
        Ok(report) if !report.is_complete() => {
            tracing::warn!(%key, ?report, "refreshed value not stored in every tier");
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%key, %error, "refreshed value not cached"),
    }
}

/// The `<name>_refresh` companion of a `Result` function: runs the body; stores an `Ok`.
pub async fn refresh_result<V, C, E, Fut>(
    cache: &TieredCache<V, C>,
    key: Option<String>,
    ttl: Option<Duration>,
    body: Fut,
) -> Result<V, E>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
    Fut: Future<Output = Result<V, E>>,
{
    let outcome = body.await;
    if let (Some(key), Ok(value)) = (key, &outcome) {
        store(cache, &key, ttl, value.clone()).await;
    }
    outcome
}

/// The `<name>_refresh` companion of an `Option` function: stores a `Some`; a `None` removes
/// the entry (the value is gone, so the old one must not be served).
pub async fn refresh_option<V, C, Fut>(
    cache: &TieredCache<V, C>,
    key: Option<String>,
    ttl: Option<Duration>,
    body: Fut,
) -> Option<V>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
    Fut: Future<Output = Option<V>>,
{
    let outcome = body.await;
    if let Some(key) = key {
        match &outcome {
            Some(value) => store(cache, &key, ttl, value.clone()).await,
            None => delete(cache, &key).await,
        }
    }
    outcome
}

/// The `<name>_refresh` companion of a plain function: stores the value.
pub async fn refresh_value<V, C, Fut>(
    cache: &TieredCache<V, C>,
    key: Option<String>,
    ttl: Option<Duration>,
    body: Fut,
) -> V
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
    Fut: Future<Output = V>,
{
    let value = body.await;
    if let Some(key) = key {
        store(cache, &key, ttl, value.clone()).await;
    }
    value
}

/// The `<name>_invalidate` companion: removes the entry from every tier.
pub async fn invalidate_key<V, C>(
    cache: &TieredCache<V, C>,
    key: Option<String>,
) -> Result<bool, crate::CacheError>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    match key {
        Some(key) => cache.delete(&key).await,
        None => Ok(false),
    }
}

/// `#[invalidates]`: deletes a key, logging a failure (the failed tier already skips the key
/// for reads until a later write or delete succeeds there, so no stale value is served here).
pub async fn delete<V, C>(cache: &TieredCache<V, C>, key: &str)
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    if let Err(error) = cache.delete(key).await {
        tracing::error!(%key, %error, "invalidation failed");
    }
}

/// `#[invalidates]`: invalidates a pattern, logging a failure (as [`delete`]).
pub async fn delete_pattern<V, C>(cache: &TieredCache<V, C>, pattern: &str)
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    if let Err(error) = cache.invalidate_pattern(pattern).await {
        tracing::error!(%pattern, %error, "invalidation failed");
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    fn pushed<T: FastKey + fmt::Display + ?Sized>(value: &T) -> (String, String) {
        let mut fast = String::new();
        value.push_fast(&mut fast);
        (fast, value.to_string())
    }

    #[test]
    fn fast_key_text_is_what_display_writes() {
        for n in [0u64, 7, 10, 99, 12345, u64::MAX] {
            let (fast, display) = pushed(&n);
            assert_eq!(fast, display);
        }
        for n in [0i64, -1, 42, -9_223_372_036_854_775_808, i64::MAX] {
            let (fast, display) = pushed(&n);
            assert_eq!(fast, display);
        }
        for n in [i128::MIN, u128::MAX as i128 / 3] {
            let (fast, display) = pushed(&n);
            assert_eq!(fast, display);
        }
        let (fast, display) = pushed(&u128::MAX);
        assert_eq!(fast, display);
        let (fast, display) = pushed(&i8::MIN);
        assert_eq!(fast, display);
        let (fast, display) = pushed("héllo {x}");
        assert_eq!(fast, display);
        let (fast, display) = pushed(&true);
        assert_eq!(fast, display);
        let (fast, display) = pushed(&'é');
        assert_eq!(fast, display);
    }

    #[test]
    // The borrow is what picks the path (autoref specialization), as in the macro's expansion.
    #[allow(clippy::needless_borrow)]
    fn the_display_path_serves_other_types() {
        #[allow(unused_imports)]
        use super::{PushDisplay as _, PushFast as _};
        let mut buf = String::new();
        (&KeyArg(&1.5f64)).push_key(&mut buf);
        (&KeyArg(&std::net::Ipv4Addr::LOCALHOST)).push_key(&mut buf);
        (&KeyArg(&42u32)).push_key(&mut buf);
        (&KeyArg(&"s")).push_key(&mut buf);
        assert_eq!(buf, "1.5127.0.0.142s");
    }
}
