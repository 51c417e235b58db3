//! The synchronous hit path: a fresh L1 hit answered before the request's future is made.

use super::*;

/// The hit fast path, synchronous, tried before the request's future is made: a plain
/// cacheable request (no credentials, no `Cache-Control`/`Pragma`, no custom key function)
/// whose fresh response is in L1. `None` sends the request down the full path.
pub(crate) fn try_hit<ReqB, B>(
    cache: &HttpCache,
    request: &Request<ReqB>,
) -> Option<Response<CacheBody<B>>> {
    let inner = &*cache.inner;
    let rules = &inner.rules;
    let method = request.method();
    if inner.key_fn.is_some()
        || is_unsafe(method)
        || rules.admin_path.as_deref() == Some(request.uri().path())
    {
        return None;
    }
    let PathDecision::Cache(settings) = rules.for_path(request.uri().path()) else {
        return None;
    };
    let headers = request.headers();
    if !settings.methods.contains(method)
        || has_credentials(headers)
        || headers.contains_key(header::CACHE_CONTROL)
        || headers.contains_key(header::PRAGMA)
        || check_headers(headers).is_err()
    {
        return None;
    }
    let key = request_key(method, request.uri(), headers, &rules.key, &[]).ok()?;
    let entry = inner.lookup_l1(&key.key, headers)?;
    serve_fresh(
        inner,
        settings,
        &entry,
        method,
        headers,
        false,
        &key.path_and_query,
    )
}

/// The hit fast path: a response still fresh by its own freshness, for a request without
/// `Cache-Control` or `Pragma` of its own, is served without asking the policy. Its key already
/// matched what the policy compares (the `Vary` headers' values through the variant key), and
/// the rest is compared here: the stored request's normalized URI and host, and whether the
/// entry is per user like the request. Anything else takes the full path.
pub(super) fn serve_fresh<B>(
    inner: &Inner,
    settings: &Settings,
    entry: &CachedResponse,
    method: &Method,
    headers: &HeaderMap,
    per_user: bool,
    path_and_query: &str,
) -> Option<Response<CacheBody<B>>> {
    let Entry::Response(stored) = &*entry.0 else {
        return None;
    };
    let now = SystemTime::now();
    if now >= stored.fresh_until
        || stored.per_user != per_user
        || headers.contains_key(header::CACHE_CONTROL)
        || headers.contains_key(header::PRAGMA)
        || stored.request.uri != *path_and_query
        || stored.request.headers.get(header::HOST) != headers.get(header::HOST)
    {
        return None;
    }
    let stats = &inner.stats;
    stats.count(settings.index, CacheStatus::Hit);
    let (response, not_modified) = serve(
        stored,
        method,
        headers,
        now,
        &inner.rules.status_header,
        CacheStatus::Hit,
    );
    if not_modified {
        Stats::bump(&stats.not_modified);
    }
    Some(response)
}
