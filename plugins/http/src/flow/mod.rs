//! One request through the cache: bypass, hit, stale serve, revalidation, or a (collapsed)
//! miss whose response is stored when the rules and RFC 9111 allow it.
//!
//! `handle` and the decisions live here; the synchronous hit path in `fast`, requests the
//! cache does not look up in `passthrough`, revalidation in `revalidate`, misses and fills in
//! `fill`.

mod fast;
mod fill;
mod passthrough;
mod revalidate;

use fast::serve_fresh;
pub(crate) use fast::try_hit;
use passthrough::{bypass, unsafe_method};
use revalidate::{conditionals_of, revalidation_parts};

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

/// Sends `request` upstream, counting a failure among the upstream errors.
async fn fetch<S, ReqB, ResB>(
    inner: &Inner,
    upstream: S,
    request: Request<ReqB>,
) -> Result<Response<ResB>, S::Error>
where
    S: Upstream<ReqB, ResB>,
{
    upstream
        .oneshot(request)
        .await
        .inspect_err(|_| Stats::bump(&inner.stats.upstream_errors))
}

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
