//! Strata's memoization macros, [`cached`] and [`invalidates`]. Use them through the `strata`
//! crate (`strata::cached`, `strata::invalidates`): the expansions call into `strata`, so this
//! crate depends on nothing of Strata's.

use proc_macro::TokenStream;

mod cached;
mod common;
mod invalidates;

/// Memoizes an `async fn` in a `strata::TieredCache`: a call first looks for the value under the
/// arguments' key (L1, then each lower tier); on a miss it runs the body and stores the value
/// in L1 and every tier. Concurrent calls that miss the same key run the body **once** (the
/// cache's single flight, across every tier) and all get its outcome.
///
/// ```
/// use std::sync::{Arc, LazyLock};
/// use strata::{cached, invalidates, Postcard, TieredCache};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// pub struct User { id: u64, name: String }
///
/// #[derive(Clone, Debug)]
/// pub enum DbError { NotFound, Down }
///
/// // One cache per value type; share it (a static here, or a field of your app state).
/// static USERS: LazyLock<TieredCache<Arc<User>, Postcard<Arc<User>>>> =
///     LazyLock::new(|| TieredCache::builder().memory_max_entries(10_000).build());
///
/// #[cached(cache = USERS, key = "user:{id}", ttl = "5m")]
/// async fn load_user(id: u64) -> Result<Arc<User>, DbError> {
///     // ... the slow query; an `Err` is returned to the callers and not cached.
///     Ok(Arc::new(User { id, name: "Ada".into() }))
/// }
///
/// #[invalidates("user:{id}", "users:list:*", cache = USERS)]
/// async fn rename_user(id: u64, name: String) -> Result<(), DbError> {
///     // ... the update; after an `Ok`, `user:{id}` and every `users:list:*` key are gone.
///     Ok(())
/// }
///
/// // A web handler: the memoized call is an ordinary `async fn` call. With axum it is
/// // `async fn get_user(Path(id): Path<u64>) -> Result<Json<Arc<User>>, StatusCode>`; the
/// // `strata` crate's example `memo_axum` runs one (`cargo run -p strata --example memo_axum`).
/// async fn get_user_handler(id: u64) -> Result<String, (u16, String)> {
///     match load_user(id).await {
///         Ok(user) => Ok(format!("{{\"id\":{},\"name\":{:?}}}", user.id, user.name)),
///         Err(DbError::NotFound) => Err((404, "no such user".into())),
///         Err(DbError::Down) => Err((503, "try again".into())),
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// assert!(get_user_handler(7).await.is_ok());                 // loaded, then cached
/// assert!(USERS.get("user:7").await.is_some());
/// rename_user(7, "Grace".into()).await.unwrap();             // invalidated
/// assert!(USERS.get("user:7").await.is_none());
/// let fresh = load_user_refresh(7).await.unwrap();           // recompute and store
/// let bypass = load_user_uncached(7).await.unwrap();         // the body, no cache
/// assert_eq!(fresh.id, bypass.id);
/// assert!(load_user_invalidate(7).await.unwrap());           // remove this entry
/// # });
/// ```
///
/// # Options
///
/// - `cache = EXPR` (required): a `TieredCache<V, C>`, or anything that derefs to one (a static
///   `LazyLock`, an `Arc`, `self.cache`, `state.cache`). Evaluated on every call; it may name
///   the arguments, but must not borrow one that the body takes by value. `V` is the cached
///   value type (below) and must match the cache's.
/// - `key = "user:{id}"`: the key, from a template over the arguments (each `{name}` must be
///   an argument; its `Display` is used; `{{`/`}}` are literal braces). Without it, the key is
///   the default encoding below.
/// - `key_prefix = "app:"`: put before every key (template or default).
/// - `namespace = "users.v1"`: names the function in the default key (default: its module
///   path and name, `my_crate::users::load_user`; required on methods). Change it when the
///   function's meaning or value type changes, so that old entries are not read.
/// - `ttl = "5m"`: how long a stored value lives (`ms`, `s`, `m`, `h`, `d`, combined as
///   `"1h30m"`), capped in each tier by that tier's TTL. Default: the cache's `default_ttl`.
/// - `cache_none = true`: on an `Option` function, cache `None` as well (the cache's value type
///   is then `Option<T>`).
///
/// # What is cached
///
/// | the function returns | cached | the cache's `V` |
/// | --- | --- | --- |
/// | `Result<T, E>` (or an alias such as `io::Result<T>`) | `Ok` only | `T` |
/// | `Option<T>` | `Some` only (`None` too with `cache_none = true`) | `T` (`Option<T>`) |
/// | anything else, `T` | every value | `T` |
///
/// `T` must be `Serialize + DeserializeOwned + Clone + Send + Sync + 'static` (lower tiers hold
/// it in the cache's codec; hold large values as `Arc<T>` so that L1 hits clone a pointer).
/// The function's error type is its own, unboxed: callers that shared a failed run each get a
/// clone of the error, so `E` must be `Clone + Send + Sync + 'static` (return `Arc<E>` for an
/// error that is not `Clone`). Nothing is cached when the body fails or returns `None`, and
/// the next call runs it again.
///
/// # Keys
///
/// The default key is `{key_prefix}{namespace}:1:{hex}`: `hex` is the arguments' postcard
/// encoding (varint integers, length-prefixed strings and sequences, fields in declaration
/// order; a fixed, documented format), in lowercase hex. Every process and platform computes
/// the same key for the same arguments (no process-random hasher is involved), so instances
/// sharing a Redis or disk tier share entries. The `1` is the encoding's version. Arguments
/// must then be `Serialize`, and serialize deterministically: a `HashMap` argument does not
/// (its order is random per process), a `BTreeMap` does. An argument that fails to encode
/// makes that call run uncached. To invalidate every entry of a function keyed by default,
/// invalidate the pattern `"{key_prefix}{namespace}:*"`.
///
/// On a method, the receiver (`self`) is not part of the key: give each instance its own
/// `namespace`, `key_prefix` or cache if their results differ.
///
/// # Companions
///
/// Next to `fn name(args)`, with the same arguments and visibility:
///
/// - `name_uncached(args)`: the original body, bypassing the cache.
/// - `name_refresh(args)`: runs the body and stores its value (for every later call to see);
///   an `Err` stores nothing, a `None` that is not cached removes the entry. A value that cannot
///   be stored is logged (`tracing`), as a memoized load does.
/// - `name_invalidate(args) -> Result<bool, CacheError>`: removes the entry for these arguments
///   from every tier.
///
/// On a method the companions are methods of the same `impl` block, so `#[cached]` works in
/// inherent impls, not in trait impls (the companions are not members of the trait).
///
/// # Consistency
///
/// A memoized call is a `strata::TieredCache::get_or_load` with the function's TTL, and keeps its
/// guarantees: a `set`, `delete` or invalidation of the key that starts while the body runs
/// wins (the body's value is returned but not stored), so an `#[invalidates]` that returned is
/// never undone by a call that was already running.
///
/// # Synchronous functions
///
/// Not supported, with a compile error: the tiered cache and its single flight are async. A
/// synchronous function can memoize in the L1 engine alone with
/// `strata::Cache::get_or_insert_with` (or `try_get_or_insert_with`), which has its own
/// single-flight loader.
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_or_keep(item, |item| cached::expand(attr.into(), item))
}

/// Invalidates cache entries after an `async fn` that changes their data succeeds: after it
/// returns `Ok` (or whenever it returns, for a function that does not return a `Result`), each
/// key is deleted and each pattern invalidated, in L1 and every lower tier (and, with a tier
/// that publishes invalidations such as Redis, in other instances' L1).
///
/// ```
/// # use std::sync::LazyLock;
/// # use strata::{invalidates, Postcard, TieredCache};
/// # static USERS: LazyLock<TieredCache<String, Postcard<String>>> =
/// #     LazyLock::new(|| TieredCache::builder().build());
/// #[invalidates("user:{id}", "users:list:*", cache = USERS)]
/// async fn rename_user(id: u64, name: String) -> Result<(), std::io::Error> {
///     Ok(())
/// }
/// ```
///
/// - Templates are as in [`cached`]'s `key`, over the function's arguments, evaluated with the
///   arguments as passed (before the body runs). A template with a glob character (`*`, `?`,
///   `[`) outside its `{placeholders}` is a pattern (`TieredCache::invalidate_pattern`); the
///   others are keys (`TieredCache::delete`). Values put into a pattern have their glob
///   characters escaped, so an argument `"a*"` matches only itself.
/// - `cache = EXPR` (required) and `key_prefix = "..."` as in [`cached`]. For a function keyed
///   by default, invalidate `"{key_prefix}{namespace}:*"`, or call its `_invalidate` companion.
/// - The function's return value is returned unchanged. A failed invalidation is logged
///   (`tracing`, error level) rather than returned, since the function's own return type cannot
///   carry it: the tier that failed skips the affected keys for reads until a later write or
///   invalidation succeeds there, so this process does not serve the old value meanwhile.
#[proc_macro_attribute]
pub fn invalidates(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_or_keep(item, |item| invalidates::expand(attr.into(), item))
}

/// The expansion, or on error the error and the function unchanged (so that its callers do not
/// add "cannot find function" errors to the one that matters).
fn expand_or_keep(
    item: TokenStream,
    expand: impl FnOnce(proc_macro2::TokenStream) -> syn::Result<proc_macro2::TokenStream>,
) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match expand(item.clone()) {
        Ok(expanded) => expanded.into(),
        Err(error) => {
            let error = error.into_compile_error();
            quote::quote!(#error #item).into()
        }
    }
}
