//! What the layer reads from a request before looking anything up: whether the request may use
//! the cache at all (method, hostile or unsupported headers, credentials, `no-store`), and the
//! request as the cache policy sees it.

use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Uri};
use http_cache_semantics::RequestLike;

/// Request headers above this total size bypass the cache.
pub(crate) const MAX_REQUEST_HEADER_BYTES: usize = 64 * 1024;

/// Why a request's headers make it bypass the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bypass {
    /// Unreadable, oversized or duplicated caching headers.
    Hostile,
    /// Range requests and preconditions the cache does not evaluate.
    Unsupported,
}

/// Whether a method is unsafe (RFC 9110 §9.2.1): its success invalidates the target URI.
pub(crate) fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether the request carries credentials.
pub(crate) fn has_credentials(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION) || headers.contains_key(header::COOKIE)
}

/// The credential headers a per-user key hashes.
pub(crate) static CREDENTIALS: [&HeaderName; 2] = [&header::AUTHORIZATION, &header::COOKIE];

/// Checks the headers the cache interprets: each must be visible ASCII, `Cache-Control` and
/// `Host` may appear once, `Connection` may name only hop-by-hop headers, and the whole header
/// block must be of a sane size. Anything else bypasses.
pub(crate) fn check_headers(headers: &HeaderMap) -> Result<(), Bypass> {
    let mut total = 0usize;
    let mut cache_control_lines = 0;
    let mut host_lines = 0;
    // One pass over the headers.
    for (name, value) in headers {
        total += name.as_str().len() + value.len() + 4;
        if name == header::CACHE_CONTROL {
            cache_control_lines += 1;
        }
        if name == header::HOST {
            host_lines += 1;
        }
        // A proxy downstream of the cache drops what `Connection` names: a request naming an
        // end-to-end header there reaches the origin without it, so its response could be
        // stored for requests that have it (poisoning). Only hop-by-hop names are accepted.
        if name == header::CONNECTION {
            let names_end_to_end = value.to_str().map_or(true, |v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .any(|n| !crate::respond::is_hop_by_hop(n))
            });
            if names_end_to_end {
                return Err(Bypass::Hostile);
            }
        }
        let interpreted = name == header::CACHE_CONTROL
            || name == header::PRAGMA
            || name == header::IF_NONE_MATCH
            || name == header::IF_MODIFIED_SINCE
            || name == header::HOST;
        if interpreted && value.to_str().is_err() {
            return Err(Bypass::Hostile);
        }
        if name == header::RANGE
            || name == header::IF_RANGE
            || name == header::IF_MATCH
            || name == header::IF_UNMODIFIED_SINCE
        {
            return Err(Bypass::Unsupported);
        }
    }
    if total > MAX_REQUEST_HEADER_BYTES || cache_control_lines > 1 || host_lines > 1 {
        return Err(Bypass::Hostile);
    }
    Ok(())
}

/// Whether the request's `Cache-Control` (or `Pragma`) holds `directive`.
pub(crate) fn request_directive(headers: &HeaderMap, directive: &str) -> bool {
    let in_cache_control = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let name = part.split('=').next().unwrap_or(part).trim();
            name.eq_ignore_ascii_case(directive)
        });
    in_cache_control
        || (directive == "no-cache"
            && !headers.contains_key(header::CACHE_CONTROL)
            && headers
                .get_all(header::PRAGMA)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("no-cache")))
}

/// The request as the cache policy sees it: the normalized URI (so that reordered or ignored
/// query parameters still match), `GET` for `HEAD` (served from the `GET` entry), and the
/// request's own headers.
pub(crate) struct PolicyRequest<'a> {
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
}

impl RequestLike for PolicyRequest<'_> {
    fn uri(&self) -> Uri {
        self.uri.clone()
    }

    fn is_same_uri(&self, other: &Uri) -> bool {
        self.uri == other
    }

    fn method(&self) -> &Method {
        &Method::GET
    }

    fn headers(&self) -> &HeaderMap {
        self.headers
    }
}

/// The request headers as the cache policy sees them: without credentials (a per-user entry
/// is found by a key holding their hash, and is evaluated as a private cache, so the policy
/// never needs them, and they are never stored) and without the client's own validators (a
/// revalidation carries only the stored response's; the client's are answered by the cache).
pub(crate) fn policy_view(headers: &HeaderMap) -> HeaderMap {
    let mut view = headers.clone();
    for name in [
        header::AUTHORIZATION,
        header::COOKIE,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
    ] {
        view.remove(name);
    }
    view
}

/// The request parts stored with a response: what the policy reads (`Host`, `Cache-Control`,
/// `Pragma`) and the headers the response varies on, from the policy's view (so never
/// credentials). Other headers are not kept.
pub(crate) fn policy_parts(
    uri: &Uri,
    headers: &HeaderMap,
    vary: &[HeaderName],
) -> http::request::Parts {
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = Method::GET;
    parts.uri = uri.clone();
    let kept = [header::HOST, header::CACHE_CONTROL, header::PRAGMA];
    for name in kept.iter().chain(vary) {
        for value in headers.get_all(name) {
            parts.headers.append(name.clone(), value.clone());
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_and_unsupported_headers_are_told_apart() {
        let mut headers = HeaderMap::new();
        assert_eq!(check_headers(&headers), Ok(()));
        headers.append(header::CACHE_CONTROL, "max-age=0".parse().unwrap());
        headers.append(header::CACHE_CONTROL, "no-cache".parse().unwrap());
        assert_eq!(check_headers(&headers), Err(Bypass::Hostile));

        let mut headers = HeaderMap::new();
        headers.insert(
            header::CACHE_CONTROL,
            http::HeaderValue::from_bytes(b"max-age=\xff").unwrap(),
        );
        assert_eq!(check_headers(&headers), Err(Bypass::Hostile));

        let mut headers = HeaderMap::new();
        headers.insert(
            "x-big",
            "a".repeat(MAX_REQUEST_HEADER_BYTES).parse().unwrap(),
        );
        assert_eq!(check_headers(&headers), Err(Bypass::Hostile));

        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, "bytes=0-1".parse().unwrap());
        assert_eq!(check_headers(&headers), Err(Bypass::Unsupported));

        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        assert_eq!(check_headers(&headers), Ok(()));
        headers.insert(header::CONNECTION, "close, host".parse().unwrap());
        assert_eq!(check_headers(&headers), Err(Bypass::Hostile));

        let mut headers = HeaderMap::new();
        headers.append(header::HOST, "a.example".parse().unwrap());
        headers.append(header::HOST, "b.example".parse().unwrap());
        assert_eq!(check_headers(&headers), Err(Bypass::Hostile));
    }

    #[test]
    fn pragma_no_cache_counts_only_without_cache_control() {
        let mut headers = HeaderMap::new();
        headers.insert(header::PRAGMA, "no-cache".parse().unwrap());
        assert!(request_directive(&headers, "no-cache"));
        headers.insert(header::CACHE_CONTROL, "max-age=5".parse().unwrap());
        assert!(!request_directive(&headers, "no-cache"));
    }
}
