//! One request through the cache: bypass, hit, stale serve, revalidation, or a (collapsed)
//! miss whose response is stored when the rules and RFC 9111 allow it.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_cache_semantics::BeforeRequest;
use tower::ServiceExt;
use tower_service::Service;

use crate::body::{buffer_up_to, Buffered, CacheBody};
use crate::cache::{HttpCache, Inner};
use crate::collapse::{self, Outcome, Role};
use crate::key::{request_key, RequestKey};
use crate::request::{
    check_headers, has_credentials, is_unsafe, policy_parts, policy_view, request_directive,
    PolicyRequest, CREDENTIALS,
};
use crate::respond::{self, directive, mark, serve};
use crate::rules::{PathDecision, Settings};
use crate::service::Disconnected;
use crate::stats::{CacheStatus, Stats};
use crate::stored::{CachedResponse, Entry, StoredResponse, Variants};

/// What every step needs to reach upstream.
pub(crate) trait Upstream<ReqB, ResB>:
    Service<Request<ReqB>, Response = Response<ResB>, Future: Send, Error: Send>
    + Clone
    + Send
    + 'static
{
}

impl<S, ReqB, ResB> Upstream<ReqB, ResB> for S where
    S: Service<Request<ReqB>, Response = Response<ResB>, Future: Send, Error: Send>
        + Clone
        + Send
        + 'static
{
}

/// What the layer needs of a response body.
pub(crate) trait UpstreamBody: Body<Data = Bytes, Error: Send> + Send + 'static {}

impl<B> UpstreamBody for B where B: Body<Data = Bytes, Error: Send> + Send + 'static {}

type Reply<ResB, E> = Result<Response<CacheBody<ResB>>, E>;

/// The request's facts that the miss and revalidation paths share.
struct Lookup<'a> {
    cache: &'a HttpCache,
    inner: &'a Inner,
    settings: &'a Settings,
    key: RequestKey,
    /// The URI the policy compares (the key's path and normalized query).
    policy_uri: Uri,
    per_user: bool,
    variants: Option<Variants>,
    /// The client's method, URI and headers as it sent them.
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    /// The headers as the policy sees them ([`policy_view`]).
    view: HeaderMap,
}

/// What a stored response can do for a request.
enum Decision {
    Serve(CacheStatus),
    /// Revalidate with these conditional headers (the stored response's validators only).
    Revalidate(HeaderMap),
    Miss,
}

pub(crate) async fn handle<S, ReqB, ResB>(
    cache: HttpCache,
    upstream: S,
    request: Request<ReqB>,
) -> Reply<ResB, S::Error>
where
    S: Upstream<ReqB, ResB>,
    ReqB: Default + Send + 'static,
    ResB: UpstreamBody,
{
    let inner = &*cache.inner;
    let rules = &inner.rules;
    if rules.admin_path.as_deref() == Some(request.uri().path()) && request.method() == Method::GET
    {
        let json = cache.admin_json().await;
        let body = Bytes::from(serde_json::to_vec_pretty(&json).unwrap_or_default());
        return Ok(respond::own(StatusCode::OK, Some("application/json"), body));
    }
    let method = request.method().clone();
    if is_unsafe(&method) {
        return unsafe_method(inner, upstream, request).await;
    }
    let settings = match rules.for_path(request.uri().path()) {
        PathDecision::Cache(settings) => settings,
        PathDecision::Bypass(rule) => return bypass(inner, rule, upstream, request).await,
    };
    let headers = request.headers();
    let per_user = has_credentials(headers);
    if !settings.methods.contains(&method)
        || check_headers(headers).is_err()
        || (per_user && !settings.cache_authenticated)
        || request_directive(headers, "no-store")
    {
        return bypass(inner, settings.index, upstream, request).await;
    }
    let extra: &[&HeaderName] = if per_user { &CREDENTIALS } else { &[] };
    let mut key = match request_key(&method, request.uri(), headers, &rules.key, extra) {
        Ok(key) => key,
        Err(_) => return bypass(inner, settings.index, upstream, request).await,
    };
    let (parts, body) = request.into_parts();
    if let Some(key_fn) = &inner.key_fn {
        match key_fn(&parts) {
            Some(material) => {
                // The hashed part (keyed headers, credentials) stays: a key function decides
                // what is the same resource, never who may see it.
                let hashed = key.key[key.uri_key_len..].to_owned();
                key.key = custom_key(&rules.key.prefix, &material);
                key.uri_key_len = key.key.len();
                key.key.push_str(&hashed);
                // The function decides what is the same resource: the policy compares no URI.
                key.path_and_query = "/".to_owned();
            }
            None => {
                let request = Request::from_parts(parts, body);
                return bypass(inner, settings.index, upstream, request).await;
            }
        }
    }
    let found = inner.lookup(&key.key, &parts.headers).await;
    if let Some((_, entry)) = &found.response {
        let fresh = serve_fresh(
            inner,
            settings,
            entry,
            &method,
            &parts.headers,
            per_user,
            &key.path_and_query,
        );
        if let Some(response) = fresh {
            return Ok(response);
        }
    }
    let lookup = Lookup {
        cache: &cache,
        inner,
        settings,
        policy_uri: key.uri(),
        key,
        per_user,
        variants: found.variants,
        method,
        uri: parts.uri.clone(),
        view: policy_view(&parts.headers),
        headers: parts.headers.clone(),
    };
    if let Some((entry_key, entry)) = found.response {
        if let Entry::Response(stored) = &*entry.0 {
            let now = SystemTime::now();
            match lookup.decide(stored, now) {
                Decision::Serve(status) => return Ok(lookup.serve(stored, now, status)),
                // only-if-cached: never contact the origin (the miss path answers 504).
                Decision::Revalidate(_) if request_directive(&lookup.headers, "only-if-cached") => {
                }
                Decision::Revalidate(conditionals) => {
                    if lookup.may_serve_stale_while_revalidating(stored, now) {
                        let request = revalidation_parts(&parts, &conditionals);
                        lookup.revalidate_in_background(&entry_key, &entry, &upstream, request);
                        return Ok(lookup.serve(stored, now, CacheStatus::Stale));
                    }
                    let request =
                        Request::from_parts(revalidation_parts(&parts, &conditionals), body);
                    return lookup
                        .revalidate(&entry_key, &entry, upstream, request, true)
                        .await
                        .map(|(response, _)| response);
                }
                Decision::Miss => {}
            }
        }
    }
    lookup
        .miss(upstream, Request::from_parts(parts, body))
        .await
}

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
fn serve_fresh<B>(
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

/// A custom key: the prefix, `fn:`, and the function's material, bounded like other keys; a
/// material holding `#` (the hashed part's separator) or a space (the shortened keys' mark) is
/// shortened too, so that no material can name another key.
fn custom_key(prefix: &str, material: &str) -> String {
    let key = format!("{prefix}fn:{material}");
    if key.len() <= crate::key::MAX_KEY_LEN && !material.contains(['#', ' ']) {
        key
    } else {
        crate::key::shorten(&key)
    }
}

/// The request sent to revalidate: the client's, as a `GET`, with the stored response's
/// validators instead of the client's own.
fn revalidation_parts(
    parts: &http::request::Parts,
    conditionals: &HeaderMap,
) -> http::request::Parts {
    let (mut request, ()) = Request::new(()).into_parts();
    request.method = Method::GET;
    request.uri = parts.uri.clone();
    request.version = parts.version;
    request.headers = parts.headers.clone();
    strip_conditionals(&mut request.headers);
    for (name, value) in conditionals {
        request.headers.append(name.clone(), value.clone());
    }
    request
}

/// The validators in a revalidation request the policy made.
fn conditionals_of(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE] {
        for value in headers.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Passes a request through untouched (marked `BYPASS`).
async fn bypass<S, ReqB, ResB>(
    inner: &Inner,
    rule: usize,
    upstream: S,
    request: Request<ReqB>,
) -> Reply<ResB, S::Error>
where
    S: Upstream<ReqB, ResB>,
{
    inner.stats.count(rule, CacheStatus::Bypass);
    let response = upstream.oneshot(request).await.inspect_err(|_| {
        Stats::bump(&inner.stats.upstream_errors);
    })?;
    Ok(marked(inner, response, CacheStatus::Bypass))
}

fn marked<ResB>(
    inner: &Inner,
    response: Response<ResB>,
    status: CacheStatus,
) -> Response<CacheBody<ResB>> {
    let (mut parts, body) = response.into_parts();
    mark(&mut parts.headers, &inner.rules.status_header, status);
    Response::from_parts(parts, CacheBody::upstream(body))
}

/// An unsafe method: passed through; on success its target URI, `Location` and
/// `Content-Location` (same host only) are invalidated (RFC 9111 §4.4).
async fn unsafe_method<S, ReqB, ResB>(
    inner: &Inner,
    upstream: S,
    request: Request<ReqB>,
) -> Reply<ResB, S::Error>
where
    S: Upstream<ReqB, ResB>,
{
    let rules = &inner.rules;
    let settings_index = match rules.for_path(request.uri().path()) {
        PathDecision::Cache(settings) => settings.index,
        PathDecision::Bypass(rule) => rule,
    };
    let keyed = inner.keyed();
    let target = request_key(
        &Method::GET,
        request.uri(),
        request.headers(),
        &rules.key,
        &[],
    )
    .ok();
    let request_host = host_of(request.uri(), request.headers());
    let request_headers = request.headers().clone();
    inner.stats.count(settings_index, CacheStatus::Bypass);
    let response = upstream.oneshot(request).await.inspect_err(|_| {
        Stats::bump(&inner.stats.upstream_errors);
    })?;
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        let mut targets: Vec<RequestKey> = target.into_iter().collect();
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let Some(uri) = response
                .headers()
                .get(&name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<Uri>().ok())
            else {
                continue;
            };
            // Another host's entries are not this origin's to invalidate.
            if uri.authority().is_some() && host_of(&uri, &HeaderMap::new()) != request_host {
                continue;
            }
            if let Ok(key) = request_key(&Method::GET, &uri, &request_headers, &rules.key, &[]) {
                targets.push(key);
            }
        }
        for target in targets {
            let primary = &target.key[..target.uri_key_len];
            if let Err(error) = inner.invalidate_uri(primary, keyed).await {
                Stats::bump(&inner.stats.store_errors);
                tracing::warn!(%error, key = primary, "invalidation after an unsafe method failed");
            }
        }
    }
    Ok(marked(inner, response, CacheStatus::Bypass))
}

fn host_of(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let host = match uri.authority() {
        Some(authority) => authority.host().to_owned(),
        None => headers
            .get(header::HOST)?
            .to_str()
            .ok()?
            .split(':')
            .next()?
            .to_owned(),
    };
    Some(host.to_ascii_lowercase())
}

impl Lookup<'_> {
    fn serve<B>(
        &self,
        stored: &StoredResponse,
        now: SystemTime,
        status: CacheStatus,
    ) -> Response<CacheBody<B>> {
        let stats = &self.inner.stats;
        stats.count(self.settings.index, status);
        let (response, not_modified) = serve(
            stored,
            &self.method,
            &self.headers,
            now,
            &self.inner.rules.status_header,
            status,
        );
        if not_modified {
            Stats::bump(&stats.not_modified);
        }
        response
    }

    /// `stale-while-revalidate` (RFC 5861): within its window after going stale, and only for
    /// a request that does not forbid stale responses.
    fn may_serve_stale_while_revalidating(&self, stored: &StoredResponse, now: SystemTime) -> bool {
        let Some(Some(window)) = directive(&stored.headers, "stale-while-revalidate") else {
            return false;
        };
        !self.forbids_stale(stored) && stored.stale_for(now) <= Duration::from_secs(window)
    }

    /// `stale-if-error` (RFC 5861), from the response or the request.
    /// Or, when the origin could not be reached at all (`disconnected`), for as long as the
    /// entry is kept, since RFC 9111 §4.2.4 lets a disconnected cache serve stale.
    fn may_serve_stale_on_error(
        &self,
        stored: &StoredResponse,
        now: SystemTime,
        disconnected: bool,
    ) -> bool {
        if self.forbids_stale(stored) {
            return false;
        }
        let window = [&stored.headers, &self.headers]
            .into_iter()
            .filter_map(|headers| directive(headers, "stale-if-error").flatten())
            .max();
        match window {
            Some(window) => disconnected || stored.stale_for(now) <= Duration::from_secs(window),
            None => disconnected,
        }
    }

    /// Whether the request (`no-cache`, `max-age`, `min-fresh`) or the response forbids a
    /// stale serve.
    fn forbids_stale(&self, stored: &StoredResponse) -> bool {
        ["no-cache", "max-age", "min-fresh"]
            .iter()
            .any(|d| request_directive(&self.headers, d))
            || response_forbids_stale(stored)
    }

    /// What `stored` can do for this request: the policy decides, on the request without
    /// credentials or client validators; a stale response the policy would serve because the
    /// request allows `max-stale` is served as `STALE`, or revalidated if the response forbids
    /// stale serves in any form (the policy only checks `must-revalidate`).
    fn decide(&self, stored: &StoredResponse, now: SystemTime) -> Decision {
        let view = PolicyRequest {
            uri: &self.policy_uri,
            headers: &self.view,
        };
        match stored.policy.before_request(&view, now) {
            BeforeRequest::Fresh(_) if now < stored.fresh_until => {
                Decision::Serve(CacheStatus::Hit)
            }
            BeforeRequest::Fresh(_) if !response_forbids_stale(stored) => {
                Decision::Serve(CacheStatus::Stale)
            }
            BeforeRequest::Fresh(_) => {
                // Ask again as a request that accepts nothing stale, for the validators.
                let mut strict = self.view.clone();
                strict.remove(header::CACHE_CONTROL);
                strict.remove(header::PRAGMA);
                let view = PolicyRequest {
                    uri: &self.policy_uri,
                    headers: &strict,
                };
                match stored.policy.before_request(&view, now) {
                    BeforeRequest::Stale {
                        request,
                        matches: true,
                    } => Decision::Revalidate(conditionals_of(&request.headers)),
                    _ => Decision::Miss,
                }
            }
            BeforeRequest::Stale {
                request,
                matches: true,
            } => Decision::Revalidate(conditionals_of(&request.headers)),
            BeforeRequest::Stale { matches: false, .. } => Decision::Miss,
        }
    }

    /// Sends a conditional request for a stale entry; a `304` refreshes the stored headers and
    /// serves the stored body, another response is handled like a miss's.
    async fn revalidate<S, ReqB, ResB>(
        &self,
        entry_key: &str,
        entry: &CachedResponse,
        upstream: S,
        request: Request<ReqB>,
        respond: bool,
    ) -> Result<(Response<CacheBody<ResB>>, Option<CachedResponse>), S::Error>
    where
        S: Upstream<ReqB, ResB>,
        ReqB: Default + Send + 'static,
        ResB: UpstreamBody,
    {
        let Entry::Response(stored) = &*entry.0 else {
            unreachable!("revalidate is only called for a response");
        };
        let stats = &self.inner.stats;
        // Only the stored response's validators are in the request (see revalidation_parts).
        let conditional = request.headers().contains_key(header::IF_NONE_MATCH)
            || request.headers().contains_key(header::IF_MODIFIED_SINCE);
        if conditional {
            Stats::bump(&stats.revalidations);
        }
        let stale = |_: ()| {
            (
                self.serve(stored, SystemTime::now(), CacheStatus::Stale),
                None,
            )
        };
        let response = match upstream.oneshot(request).await {
            Ok(response) => response,
            Err(error) => {
                Stats::bump(&stats.upstream_errors);
                if self.may_serve_stale_on_error(stored, SystemTime::now(), true) {
                    return Ok(stale(()));
                }
                return Err(error);
            }
        };
        let now = SystemTime::now();
        let disconnected = response.extensions().get::<Disconnected>().is_some();
        if (disconnected || response.status().is_server_error())
            && self.may_serve_stale_on_error(stored, now, disconnected)
        {
            return Ok(stale(()));
        }
        // A 304 to an unconditional request is not about the stored response: pass it on.
        if response.status() != StatusCode::NOT_MODIFIED || !conditional {
            return Ok(self.store_upstream(response, now).await);
        }
        // The request carried the validators of this one stored response and no others, so a
        // 304 is about it (whatever validators the 304 repeats): refresh its headers, keep its
        // body.
        let (parts, _) = response.into_parts();
        let mut headers = merge_not_modified(&stored.headers, &parts.headers);
        // The refreshed headers go through the same edits and rules as a new response, and
        // must still vary on what the entry's key was made of.
        let same_vary =
            self.normalize(stored.status, &mut headers) == respond::vary_names(&stored.headers);
        let refreshed = StoredResponse::new(
            stored.request.clone(),
            stored.status,
            headers,
            stored.body.clone(),
            now,
            stored.per_user,
        );
        if !same_vary || !refreshed.policy.is_storable() {
            if let Err(error) = self.inner.store.delete(entry_key).await {
                Stats::bump(&stats.store_errors);
                tracing::warn!(%error, key = entry_key, "removing a no longer storable entry failed");
            }
            let response = if respond {
                self.serve(&refreshed, now, CacheStatus::Miss)
            } else {
                respond::own(StatusCode::NO_CONTENT, None, Bytes::new())
            };
            return Ok((response, None));
        }
        let ttl = storage_ttl(&refreshed, now, self.inner.rules.stale_retention);
        let value = self.inner.put_refreshed(entry_key, refreshed, ttl).await;
        let Entry::Response(refreshed) = &*value.0 else {
            unreachable!("put_refreshed stores a response");
        };
        let response = if respond {
            self.serve(refreshed, now, CacheStatus::Hit)
        } else {
            respond::own(StatusCode::NO_CONTENT, None, Bytes::new())
        };
        Ok((response, Some(value.clone())))
    }

    /// Serves stale now and revalidates in a background task (one per key at a time).
    fn revalidate_in_background<S, ReqB, ResB>(
        &self,
        entry_key: &str,
        entry: &CachedResponse,
        upstream: &S,
        request: http::request::Parts,
    ) where
        S: Upstream<ReqB, ResB>,
        ReqB: Default + Send + 'static,
        ResB: UpstreamBody,
    {
        let Role::Leader(leader) = self
            .inner
            .collapser
            .join(&format!("revalidate {entry_key}"))
        else {
            return;
        };
        let request = Request::from_parts(request, ReqB::default());
        let cache = self.cache.clone();
        let settings_index = self.settings.index;
        let key = self.key.clone();
        let policy_uri = self.policy_uri.clone();
        let per_user = self.per_user;
        let variants = self.variants.clone();
        let headers = self.headers.clone();
        let view = self.view.clone();
        let uri = self.uri.clone();
        let entry_key = entry_key.to_owned();
        let entry = entry.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let inner = &*cache.inner;
            let Some(settings) = inner.rules.settings(settings_index) else {
                return;
            };
            let lookup = Lookup {
                cache: &cache,
                inner,
                settings,
                key,
                policy_uri,
                per_user,
                variants,
                method: Method::GET,
                uri,
                headers,
                view,
            };
            // A failure leaves the stale entry as it is; the next request tries again.
            let _ = lookup
                .revalidate(&entry_key, &entry, upstream, request, false)
                .await;
            drop(leader);
        });
    }

    /// A miss: `only-if-cached` gets a `504`; otherwise upstream, collapsed with concurrent
    /// misses of the same key when the request is shareable.
    async fn miss<S, ReqB, ResB>(
        &self,
        upstream: S,
        request: Request<ReqB>,
    ) -> Reply<ResB, S::Error>
    where
        S: Upstream<ReqB, ResB>,
        ReqB: Default + Send + 'static,
        ResB: UpstreamBody,
    {
        if request_directive(&self.headers, "only-if-cached") {
            self.inner
                .stats
                .count(self.settings.index, CacheStatus::Miss);
            let mut response = respond::own(StatusCode::GATEWAY_TIMEOUT, None, Bytes::new());
            mark(
                response.headers_mut(),
                &self.inner.rules.status_header,
                CacheStatus::Miss,
            );
            return Ok(response);
        }
        // Each waiter checks the shared response against its own request (Vary, request
        // directives) before using it.
        let collapsible = self.method == Method::GET && !self.per_user;
        if !collapsible {
            return self
                .fetch(upstream, request)
                .await
                .map(|(response, _)| response);
        }
        match self.inner.collapser.join(&self.key.key) {
            Role::Leader(leader) => {
                let (response, stored) = self.fetch(upstream, request).await?;
                leader.finish(match stored {
                    Some(_) if !self.per_user => Outcome::Stored,
                    _ => Outcome::Alone,
                });
                Ok(response)
            }
            Role::Follower(slot) => {
                // A leader stuck on a stalled body does not hold its waiters past the timeout.
                let outcome =
                    tokio::time::timeout(self.inner.rules.collapse_timeout, collapse::wait(slot))
                        .await
                        .unwrap_or(Outcome::Alone);
                if let Outcome::Stored = outcome {
                    // Look up again rather than take the leader's response: what is found under
                    // this request's own key (its own Vary variant) is what it may be served.
                    let found = self.inner.lookup(&self.key.key, &self.headers).await;
                    if let Some((_, entry)) = found.response {
                        if let Entry::Response(stored) = &*entry.0 {
                            let now = SystemTime::now();
                            if let Decision::Serve(CacheStatus::Hit) = self.decide(stored, now) {
                                Stats::bump(&self.inner.stats.collapsed);
                                return Ok(self.serve(stored, now, CacheStatus::Hit));
                            }
                        }
                    }
                }
                self.fetch(upstream, request)
                    .await
                    .map(|(response, _)| response)
            }
        }
    }

    /// Fetches from upstream (without the client's validators, so that a full response comes
    /// back to be stored) and stores what may be stored.
    async fn fetch<S, ReqB, ResB>(
        &self,
        upstream: S,
        mut request: Request<ReqB>,
    ) -> Result<(Response<CacheBody<ResB>>, Option<CachedResponse>), S::Error>
    where
        S: Upstream<ReqB, ResB>,
        ResB: UpstreamBody,
    {
        if self.method == Method::HEAD {
            // A HEAD response has no body to store: pass it on.
            self.inner
                .stats
                .count(self.settings.index, CacheStatus::Miss);
            let response = upstream.oneshot(request).await.inspect_err(|_| {
                Stats::bump(&self.inner.stats.upstream_errors);
            })?;
            return Ok((marked(self.inner, response, CacheStatus::Miss), None));
        }
        strip_conditionals(request.headers_mut());
        let response = upstream.oneshot(request).await.inspect_err(|_| {
            Stats::bump(&self.inner.stats.upstream_errors);
        })?;
        Ok(self.store_upstream(response, SystemTime::now()).await)
    }

    /// Decides whether an upstream response is stored, stores it, and answers the client.
    async fn store_upstream<ResB>(
        &self,
        response: Response<ResB>,
        now: SystemTime,
    ) -> (Response<CacheBody<ResB>>, Option<CachedResponse>)
    where
        ResB: UpstreamBody,
    {
        let inner = self.inner;
        inner.stats.count(self.settings.index, CacheStatus::Miss);
        let (response, stored) = self.store_upstream_body(response, now).await;
        if self.method == Method::HEAD {
            // A HEAD that revalidated with a GET: the headers, never the GET's body.
            let (parts, _) = response.into_parts();
            return (Response::from_parts(parts, CacheBody::empty()), stored);
        }
        (response, stored)
    }

    async fn store_upstream_body<ResB>(
        &self,
        response: Response<ResB>,
        now: SystemTime,
    ) -> (Response<CacheBody<ResB>>, Option<CachedResponse>)
    where
        ResB: UpstreamBody,
    {
        let inner = self.inner;
        let (mut parts, body) = response.into_parts();
        let Some((stored, vary, ttl)) = self.storable(&mut parts, now) else {
            mark(
                &mut parts.headers,
                &inner.rules.status_header,
                CacheStatus::Miss,
            );
            return (Response::from_parts(parts, CacheBody::upstream(body)), None);
        };
        mark(
            &mut parts.headers,
            &inner.rules.status_header,
            CacheStatus::Miss,
        );
        match buffer_up_to(body, inner.rules.max_body_size).await {
            Ok(Buffered::Whole(bytes)) => {
                let mut stored = stored;
                stored.body = bytes.clone();
                let value = inner
                    .put(
                        &self.key.key,
                        stored,
                        &vary,
                        self.variants.as_ref(),
                        &self.headers,
                        ttl,
                    )
                    .await;
                let response = match &*value.0 {
                    // The client's own validators were not sent upstream: answer them here (and
                    // a HEAD that revalidated with a GET gets no body).
                    Entry::Response(stored)
                        if self.method == Method::HEAD
                            || respond::conditional_matches(&self.headers, &stored.headers) =>
                    {
                        let (response, not_modified) = serve(
                            stored,
                            &self.method,
                            &self.headers,
                            now,
                            &inner.rules.status_header,
                            CacheStatus::Miss,
                        );
                        if not_modified {
                            Stats::bump(&inner.stats.not_modified);
                        }
                        response
                    }
                    _ => Response::from_parts(parts, CacheBody::full(bytes)),
                };
                (response, Some(value))
            }
            Ok(Buffered::Partial(body)) => {
                Stats::bump(&inner.stats.too_large);
                (Response::from_parts(parts, body), None)
            }
            Err(_) => {
                Stats::bump(&inner.stats.upstream_errors);
                let mut response = respond::own(StatusCode::BAD_GATEWAY, None, Bytes::new());
                mark(
                    response.headers_mut(),
                    &inner.rules.status_header,
                    CacheStatus::Miss,
                );
                (response, None)
            }
        }
    }

    /// The edits and checks every stored header set goes through, new or refreshed by a 304:
    /// a readable `Cache-Control`, the storage rules of [`may_store`](Self::may_store), the
    /// rule's added `Vary`, application mode's `max-age`. Returns the names the response varies
    /// on, or `None` if it must not be stored.
    fn normalize(&self, status: StatusCode, headers: &mut HeaderMap) -> Option<Vec<HeaderName>> {
        if headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .any(|v| v.to_str().is_err())
            || !self.may_store(headers)
        {
            return None;
        }
        respond::add_vary(headers, &self.settings.vary);
        if let Some(ttl) = self.settings.ttl {
            if HEURISTICALLY_CACHEABLE.contains(&status.as_u16())
                && !respond::has_explicit_freshness(headers)
            {
                // A per-user response says so, or a cache downstream could share it.
                respond::add_max_age(headers, ttl, self.per_user);
            }
        }
        respond::vary_names(headers)
    }

    /// Whether response headers allow storing: `Set-Cookie` and `private` only in a per-user
    /// entry on a path with `cache_private`, and never `no-store` (also checked by the policy).
    fn may_store(&self, headers: &HeaderMap) -> bool {
        let private_allowed = self.per_user && self.settings.cache_private;
        let private =
            headers.contains_key(header::SET_COOKIE) || directive(headers, "private").is_some();
        (!private || private_allowed) && directive(headers, "no-store").is_none()
    }

    /// The stored form of an upstream response and its lifetime in the tiers, or `None` if it
    /// must not be stored. Edits the client's response the way the stored one is edited
    /// (added `Vary`, application-mode `max-age`).
    fn storable(
        &self,
        parts: &mut http::response::Parts,
        now: SystemTime,
    ) -> Option<(StoredResponse, Vec<HeaderName>, Duration)> {
        if !self.settings.status_codes.contains(&parts.status.as_u16())
            || parts.headers.contains_key(header::CONTENT_RANGE)
        {
            return None;
        }
        let vary = self.normalize(parts.status, &mut parts.headers)?;
        let request = policy_parts(&self.policy_uri, &self.view, &vary);
        let mut headers = respond::storable_headers(&parts.headers);
        // Placeholders for what every serve sets, so that setting them replaces in place
        // instead of growing the map each time.
        if !headers.contains_key(header::AGE) {
            headers.insert(header::AGE, http::HeaderValue::from_static("0"));
        }
        mark(
            &mut headers,
            &self.inner.rules.status_header,
            CacheStatus::Hit,
        );
        let stored = StoredResponse::new(
            request,
            parts.status,
            headers,
            Bytes::new(),
            now,
            self.per_user,
        );
        if !stored.policy.is_storable() {
            return None;
        }
        let ttl = storage_ttl(&stored, now, self.inner.rules.stale_retention);
        (!ttl.is_zero()).then_some((stored, vary, ttl))
    }
}

/// Whether a response forbids being served stale: `must-revalidate`, `proxy-revalidate`,
/// `no-cache`, or (for a shared entry) `s-maxage`, which implies `proxy-revalidate` (RFC 9111
/// §5.2.2.10).
fn response_forbids_stale(stored: &StoredResponse) -> bool {
    ["must-revalidate", "proxy-revalidate", "no-cache"]
        .iter()
        .any(|d| directive(&stored.headers, d).is_some())
        || (!stored.per_user && directive(&stored.headers, "s-maxage").is_some())
}

/// Status codes a response may be reused for without explicit freshness (RFC 9110 §15.1):
/// the only ones application mode gives its default TTL.
const HEURISTICALLY_CACHEABLE: &[u16] = &[200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];

/// How long a response stays in the tiers: its freshness, plus the stale retention if it can
/// be revalidated or served stale.
fn storage_ttl(stored: &StoredResponse, now: SystemTime, retention: Duration) -> Duration {
    let fresh = stored.policy.time_to_live(now);
    let headers = &stored.headers;
    let stale_window = ["stale-while-revalidate", "stale-if-error"]
        .iter()
        .filter_map(|d| directive(headers, d).flatten())
        .max()
        .map_or(Duration::ZERO, Duration::from_secs);
    let has_validator =
        headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED);
    // Without a validator, a stale copy is only of use when the origin cannot be reached, and
    // not even then if the response forbids serving it stale.
    let never_stale = [
        "must-revalidate",
        "proxy-revalidate",
        "no-cache",
        "s-maxage",
    ]
    .iter()
    .any(|d| directive(headers, d).is_some());
    if has_validator || !stale_window.is_zero() || !never_stale {
        fresh.saturating_add(retention.max(stale_window))
    } else {
        fresh
    }
}

/// Removes the client's validators from a request the cache sends to fill itself.
fn strip_conditionals(headers: &mut HeaderMap) {
    headers.remove(header::IF_NONE_MATCH);
    headers.remove(header::IF_MODIFIED_SINCE);
}

/// The stored headers updated by a `304` (RFC 9111 §4.3.4): each header the `304` carries
/// replaces all of that name, except those describing the stored body and its validator.
fn merge_not_modified(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    const KEEP_STORED: &[&str] = &[
        "content-length",
        "content-encoding",
        "content-range",
        "content-md5",
        "transfer-encoding",
        "etag",
    ];
    let mut merged = stored.clone();
    let updates = respond::storable_headers(not_modified);
    for name in updates.keys() {
        if KEEP_STORED.contains(&name.as_str()) {
            continue;
        }
        merged.remove(name);
        for value in updates.get_all(name) {
            merged.append(name.clone(), value.clone());
        }
    }
    merged
}
