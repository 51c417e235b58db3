//! Responses built by the cache: a stored response served (with `Age`, as a `304` to a client's
//! matching conditional request, without a body for `HEAD`), and the header edits the layer
//! makes on the way.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};

use crate::body::CacheBody;
use crate::stats::CacheStatus;
use crate::stored::StoredResponse;

/// Hop-by-hop headers, never stored or served from the cache (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a name a `Connection` header lists is hop-by-hop (or the `close` option): such a
/// name leaves the request the origin gets unchanged.
pub(crate) fn is_hop_by_hop(name: &str) -> bool {
    name.eq_ignore_ascii_case("close") || HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Headers a `304` carries over from the response it stands for (RFC 9110 §15.4.5).
const NOT_MODIFIED_KEEPS: &[&str] = &[
    "cache-control",
    "content-location",
    "date",
    "etag",
    "expires",
    "vary",
    "last-modified",
    "age",
];

/// A copy of `headers` without hop-by-hop headers (and those `Connection` names).
pub(crate) fn storable_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    strip_hop_by_hop(&mut out);
    out
}

/// Removes the hop-by-hop headers (RFC 9110 §7.6.1: `Connection`, `Keep-Alive`, `TE`,
/// `Transfer-Encoding`, `Upgrade`, `Trailer`, the `Proxy-*` ones) and every header `Connection`
/// names: what a proxy must not forward and a cache must not store.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
    for name in named {
        headers.remove(name);
    }
}

/// Sets the cache status header.
pub(crate) fn mark(headers: &mut HeaderMap, name: &HeaderName, status: CacheStatus) {
    headers.insert(name.clone(), HeaderValue::from_static(status.as_str()));
}

/// A stored response served to a request with `method` and `request_headers`.
pub(crate) fn serve<B>(
    stored: &StoredResponse,
    method: &Method,
    request_headers: &HeaderMap,
    now: SystemTime,
    status_header: &HeaderName,
    status: CacheStatus,
) -> (Response<CacheBody<B>>, bool) {
    let mut headers = stored.headers.clone();
    let age = stored.age(now);
    headers.insert(header::AGE, age_value(age));
    mark(&mut headers, status_header, status);
    let not_modified =
        stored.status == StatusCode::OK && conditional_matches(request_headers, &stored.headers);
    let (status_code, body) = if not_modified {
        headers.retain_names(NOT_MODIFIED_KEEPS, status_header);
        (StatusCode::NOT_MODIFIED, CacheBody::empty())
    } else if method == Method::HEAD {
        // The GET's length, which the empty body would otherwise make 0.
        if !headers.contains_key(header::CONTENT_LENGTH) {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(stored.body.len()));
        }
        (stored.status, CacheBody::empty())
    } else {
        (stored.status, CacheBody::full(stored.body.clone()))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status_code;
    *response.headers_mut() = headers;
    (response, not_modified)
}

fn age_value(age: Duration) -> HeaderValue {
    HeaderValue::from(age.as_secs())
}

/// Whether a client's `If-None-Match` (or, without one, `If-Modified-Since`) is satisfied by a
/// response with `headers` (RFC 9110 §13.1.2, §13.1.3: weak comparison for `If-None-Match`).
pub(crate) fn conditional_matches(request: &HeaderMap, response: &HeaderMap) -> bool {
    if request.contains_key(header::IF_NONE_MATCH) {
        let Some(etag) = response.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let etag = weak(etag.trim());
        return request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || weak(tag) == etag);
    }
    let Some(since) = request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
    else {
        return false;
    };
    response
        .get(header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|modified| modified <= since)
}

fn weak(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

trait RetainNames {
    fn retain_names(&mut self, keep: &[&str], also: &HeaderName);
}

impl RetainNames for HeaderMap {
    fn retain_names(&mut self, keep: &[&str], also: &HeaderName) {
        let drop: Vec<HeaderName> = self
            .keys()
            .filter(|name| *name != also && !keep.contains(&name.as_str()))
            .cloned()
            .collect();
        for name in drop {
            self.remove(name);
        }
    }
}

/// A response the layer makes itself (admin JSON, `504` for `only-if-cached`, `502` for a
/// broken upstream body).
pub(crate) fn own<B>(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: Bytes,
) -> Response<CacheBody<B>> {
    let mut response = Response::new(CacheBody::full(body));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}

/// The response's `Cache-Control` directives: `Some(None)` for a bare directive,
/// `Some(Some(n))` for `name=n`.
pub(crate) fn directive(headers: &HeaderMap, name: &str) -> Option<Option<u64>> {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let part = part.trim();
            let (key, value) = match part.split_once('=') {
                Some((key, value)) => (key.trim(), Some(value.trim().trim_matches('"'))),
                None => (part, None),
            };
            key.eq_ignore_ascii_case(name)
                .then(|| value.and_then(|v| v.parse().ok()))
        })
}

/// Whether the response states its own freshness (so application mode adds none).
pub(crate) fn has_explicit_freshness(headers: &HeaderMap) -> bool {
    headers.contains_key(header::EXPIRES)
        || directive(headers, "max-age").is_some()
        || directive(headers, "s-maxage").is_some()
        || ["no-store", "no-cache", "private"]
            .iter()
            .any(|d| directive(headers, d).is_some())
}

/// Adds `max-age` (and `private` for a per-user response) to a response's `Cache-Control`.
pub(crate) fn add_max_age(headers: &mut HeaderMap, ttl: Duration, private: bool) {
    let existing: Vec<String> = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let mut value = existing.join(", ");
    if !value.is_empty() {
        value.push_str(", ");
    }
    if private && directive(headers, "private").is_none() {
        value.push_str("private, ");
    }
    value.push_str(&format!("max-age={}", ttl.as_secs()));
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(header::CACHE_CONTROL, value);
    }
}

/// Adds `names` to a response's `Vary` (once each).
pub(crate) fn add_vary(headers: &mut HeaderMap, names: &[HeaderName]) {
    let mut vary = vary_names(headers).unwrap_or_default();
    let before = vary.len();
    for name in names {
        if !vary.contains(name) {
            vary.push(name.clone());
        }
    }
    if vary.len() != before {
        let joined = vary
            .iter()
            .map(HeaderName::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(value) = HeaderValue::from_str(&joined) {
            headers.insert(header::VARY, value);
        }
    }
}

/// The header names a response varies on; `None` for `Vary: *` or an unreadable `Vary`.
pub(crate) fn vary_names(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for value in headers.get_all(header::VARY) {
        let value = value.to_str().ok()?;
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" {
                return None;
            }
            let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn if_none_match_compares_weakly_and_wins_over_if_modified_since() {
        let response = headers(&[
            ("etag", "\"v1\""),
            ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]);
        assert!(conditional_matches(
            &headers(&[("if-none-match", "W/\"v1\"")]),
            &response
        ));
        assert!(conditional_matches(
            &headers(&[("if-none-match", "\"x\", \"v1\"")]),
            &response
        ));
        assert!(!conditional_matches(
            &headers(&[
                ("if-none-match", "\"v2\""),
                ("if-modified-since", "Mon, 06 Nov 2000 08:49:37 GMT")
            ]),
            &response
        ));
        assert!(conditional_matches(
            &headers(&[("if-modified-since", "Mon, 06 Nov 2000 08:49:37 GMT")]),
            &response
        ));
        assert!(!conditional_matches(
            &headers(&[("if-modified-since", "Tue, 06 Nov 1990 08:49:37 GMT")]),
            &response
        ));
    }

    #[test]
    fn vary_star_or_garbage_is_not_a_list() {
        assert_eq!(
            vary_names(&headers(&[("vary", "Accept, accept-language")]))
                .unwrap()
                .len(),
            2
        );
        assert!(vary_names(&headers(&[("vary", "*")])).is_none());
        assert!(vary_names(&headers(&[("vary", "a b")])).is_none());
    }

    #[test]
    fn directives_are_found_case_insensitively_with_values() {
        let map = headers(&[
            ("cache-control", "public, Max-Age=\"60\""),
            ("cache-control", "stale-while-revalidate=5"),
        ]);
        assert_eq!(directive(&map, "max-age"), Some(Some(60)));
        assert_eq!(directive(&map, "public"), Some(None));
        assert_eq!(directive(&map, "stale-while-revalidate"), Some(Some(5)));
        assert_eq!(directive(&map, "no-store"), None);
    }
}
