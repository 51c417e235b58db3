//! Requests the cache does not look up: bypasses and unsafe methods (which invalidate).

use super::*;

/// Passes a request through untouched (marked `BYPASS`).
pub(super) async fn bypass<S, ReqB, ResB>(
    inner: &Inner,
    rule: usize,
    upstream: S,
    request: Request<ReqB>,
) -> Reply<ResB, S::Error>
where
    S: Upstream<ReqB, ResB>,
{
    inner.stats.count(rule, CacheStatus::Bypass);
    let response = fetch(inner, upstream, request).await?;
    Ok(marked(inner, response, CacheStatus::Bypass))
}

pub(super) fn marked<ResB>(
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
pub(super) async fn unsafe_method<S, ReqB, ResB>(
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
    let response = fetch(inner, upstream, request).await?;
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
