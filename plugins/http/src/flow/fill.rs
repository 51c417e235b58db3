//! Misses and fills: `only-if-cached`, collapsing, the upstream fetch, and what is stored
//! for how long.

use super::passthrough::marked;
use super::*;

impl Lookup<'_> {
    /// A miss: `only-if-cached` gets a `504`; otherwise upstream, collapsed with concurrent
    /// misses of the same key when the request is shareable.
    pub(super) async fn miss<S, ReqB, ResB>(
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
            let response = fetch(self.inner, upstream, request).await?;
            return Ok((marked(self.inner, response, CacheStatus::Miss), None));
        }
        strip_conditionals(request.headers_mut());
        let response = fetch(self.inner, upstream, request).await?;
        Ok(self.store_upstream(response, SystemTime::now()).await)
    }

    /// Decides whether an upstream response is stored, stores it, and answers the client.
    pub(super) async fn store_upstream<ResB>(
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

    /// [`store_upstream`](Self::store_upstream) for any method: stores what may be stored and
    /// answers with the body.
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
    pub(super) fn normalize(
        &self,
        status: StatusCode,
        headers: &mut HeaderMap,
    ) -> Option<Vec<HeaderName>> {
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
    pub(super) fn may_store(&self, headers: &HeaderMap) -> bool {
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

/// Status codes a response may be reused for without explicit freshness (RFC 9110 §15.1):
/// the only ones application mode gives its default TTL.
const HEURISTICALLY_CACHEABLE: &[u16] = &[200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];

/// How long a response stays in the tiers: its freshness, plus the stale retention if it can
/// be revalidated or served stale.
pub(super) fn storage_ttl(
    stored: &StoredResponse,
    now: SystemTime,
    retention: Duration,
) -> Duration {
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
pub(super) fn strip_conditionals(headers: &mut HeaderMap) {
    headers.remove(header::IF_NONE_MATCH);
    headers.remove(header::IF_MODIFIED_SINCE);
}
