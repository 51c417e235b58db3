//! Revalidation: a conditional request with the stored response's validators, 304 merges,
//! stale serves on errors and outages, and background refreshes for `stale-while-revalidate`.

use super::fill::{storage_ttl, strip_conditionals};
use super::*;

/// The request sent to revalidate: the client's, as a `GET`, with the stored response's
/// validators instead of the client's own.
pub(super) fn revalidation_parts(
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
pub(super) fn conditionals_of(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE] {
        for value in headers.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

impl Lookup<'_> {
    /// Sends a conditional request for a stale entry; a `304` refreshes the stored headers and
    /// serves the stored body, another response is handled like a miss's.
    pub(super) async fn revalidate<S, ReqB, ResB>(
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
        let response = match fetch(self.inner, upstream, request).await {
            Ok(response) => response,
            Err(error) => {
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
    pub(super) fn revalidate_in_background<S, ReqB, ResB>(
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
