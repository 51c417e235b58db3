//! Cache keys: method, host, path, the query with its parameters sorted and ignored ones dropped,
//! and a hash of the headers the key includes. Keys are bounded in length and never hold raw
//! header bytes: header values enter a key only through SHA-256, so two users' credentials can
//! only share a key if they are equal.

use http::{HeaderMap, HeaderName, Method, Uri};
use sha2::{Digest, Sha256};

/// Keys longer than this keep a readable head and end in a hash of the whole.
pub const MAX_KEY_LEN: usize = 512;
/// How much of a long key's method, host and path is kept before its hash.
const LONG_KEY_HEAD: usize = 256;
/// Hex digits of SHA-256 kept in keys (128 bits).
const HASH_HEX: usize = 32;

/// What goes into a key besides method and URI.
#[derive(Debug, Clone)]
pub struct KeyOptions {
    /// Prepended to every key (default `http:`), so HTTP entries can share tiers with others.
    pub prefix: String,
    /// Whether the host (URI authority or `Host` header) is part of the key (default true).
    /// Turn it off only in front of a single site.
    pub host: bool,
    /// Query parameters left out of the key; `name*` matches every name starting with `name`.
    pub ignore_query_params: Vec<String>,
    /// Request headers whose values are part of the key (hashed).
    pub headers: Vec<HeaderName>,
    /// Mixed into every hash of header values (keyed headers, credentials, `Vary` values), so
    /// that key names in a shared tier do not allow guessing those values offline. Every
    /// instance sharing the tiers must use the same secret. Empty: plain SHA-256.
    pub secret: Vec<u8>,
}

impl Default for KeyOptions {
    fn default() -> Self {
        KeyOptions {
            prefix: "http:".to_owned(),
            host: true,
            ignore_query_params: Vec::new(),
            headers: Vec::new(),
            secret: Vec::new(),
        }
    }
}

/// Why a request gets no key (it is passed through uncached).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The host is missing characters a host name may not hold.
    #[error("the request's host is not a valid host name")]
    BadHost,
    /// The path is not `/`-rooted (an authority-form or asterisk-form request).
    #[error("the request target has no path")]
    NoPath,
}

/// A request's key and the normalized URI its cache policy compares.
#[derive(Debug, Clone)]
pub struct RequestKey {
    /// The primary key (one per URI and keyed headers; Vary variants hang off it).
    pub key: String,
    /// The key without its header hash: what an invalidation of the URI removes as a prefix.
    pub uri_key_len: usize,
    /// The path and normalized query: the URI as the cache policy compares it.
    pub path_and_query: String,
}

impl RequestKey {
    /// [`path_and_query`](Self::path_and_query) as a URI.
    pub fn uri(&self) -> Uri {
        // Built from a parsed URI's path and its reordered query, so it parses; "/" otherwise.
        self.path_and_query
            .parse()
            .unwrap_or_else(|_| Uri::from_static("/"))
    }
}

/// The key of a request: `{prefix}{GET|method}:{host}{path}[?{sorted query}][#k={hash}]`.
/// `HEAD` shares `GET`'s key (it is served from the `GET` entry). `extra` adds more hashed
/// material (the credentials of a per-user entry).
pub fn request_key(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    options: &KeyOptions,
    extra: &[&HeaderName],
) -> Result<RequestKey, KeyError> {
    let path = uri.path();
    if !path.starts_with('/') {
        return Err(KeyError::NoPath);
    }
    let query = normalized_query(uri.query(), &options.ignore_query_params);
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let mut key = String::with_capacity(options.prefix.len() + path.len() + query.len() + 48);
    key.push_str(&options.prefix);
    key.push_str(method);
    key.push(':');
    if options.host {
        push_host(&mut key, uri, headers)?;
    }
    key.push_str(path);
    if !query.is_empty() {
        key.push('?');
        key.push_str(&query);
    }
    if key.len() > MAX_KEY_LEN {
        key = shorten(&key);
    }
    let uri_key_len = key.len();
    let hashed: Vec<&HeaderName> = options
        .headers
        .iter()
        .chain(extra.iter().copied())
        .collect();
    if !hashed.is_empty() {
        key.push_str("#k=");
        key.push_str(&header_hash(headers, &hashed, &options.secret));
    }
    let path_and_query = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    Ok(RequestKey {
        key,
        uri_key_len,
        path_and_query,
    })
}

/// The query with empty and ignored parameters dropped and the rest sorted.
fn normalized_query(query: Option<&str>, ignored: &[String]) -> String {
    let Some(query) = query else {
        return String::new();
    };
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|param| !param.is_empty())
        .filter(|param| {
            let name = param.split('=').next().unwrap_or(param);
            !ignored.iter().any(|rule| match rule.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == rule,
            })
        })
        .collect();
    params.sort_unstable();
    params.join("&")
}

/// Appends the lower-cased host; refuses one with characters a host may not hold (so a host
/// cannot forge the `?` or `#` that separate a key's parts).
fn push_host(key: &mut String, uri: &Uri, headers: &HeaderMap) -> Result<(), KeyError> {
    let host_header = headers
        .get(http::header::HOST)
        .map(|value| value.to_str().map_err(|_| KeyError::BadHost))
        .transpose()?;
    let host = match (uri.authority(), host_header) {
        // An absolute-form target and a Host that disagree: which one the origin uses is not
        // the cache's to guess.
        (Some(authority), Some(host)) if !authority.as_str().eq_ignore_ascii_case(host) => {
            return Err(KeyError::BadHost)
        }
        (Some(authority), _) => authority.as_str(),
        (None, Some(host)) => host,
        (None, None) => return Ok(()),
    };
    // Userinfo is not part of the origin.
    let host = host.rsplit('@').next().unwrap_or(host);
    let valid = !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        });
    if !valid {
        return Err(KeyError::BadHost);
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        key.push_str(&host.to_ascii_lowercase());
    } else {
        key.push_str(host);
    }
    Ok(())
}

/// A long key: its head (cut at a character boundary), a space and a hash of all of it. No
/// request produces a key holding a space (a request target cannot hold one, a host is
/// checked, the prefix may not hold one), so no request can name a shortened key.
pub(crate) fn shorten(key: &str) -> String {
    let mut cut = LONG_KEY_HEAD;
    while !key.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{} ~{}", &key[..cut], hex_hash(&[key.as_bytes()]))
}

/// SHA-256 over the named headers' values, each length-prefixed so that no two different sets
/// of values hash the same input.
fn header_hash(headers: &HeaderMap, names: &[&HeaderName], secret: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update((secret.len() as u64).to_le_bytes());
    hasher.update(secret);
    for name in names {
        hasher.update(name.as_str().as_bytes());
        hasher.update([0]);
        for value in headers.get_all(*name) {
            hasher.update((value.len() as u64).to_le_bytes());
            hasher.update(value.as_bytes());
        }
        hasher.update([0xff]);
    }
    truncated_hex(&hasher.finalize())
}

/// SHA-256 of `parts` (length-prefixed), as hex.
pub(crate) fn hex_hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    truncated_hex(&hasher.finalize())
}

fn truncated_hex(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(HASH_HEX);
    for byte in digest.iter().take(HASH_HEX / 2) {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(method: Method, uri: &str, headers: &[(&str, &str)], options: &KeyOptions) -> String {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        request_key(&method, &uri.parse().unwrap(), &map, options, &[])
            .unwrap()
            .key
    }

    #[test]
    fn query_parameters_are_sorted_and_ignored_ones_dropped() {
        let options = KeyOptions {
            ignore_query_params: vec!["utm_*".into(), "session".into()],
            ..KeyOptions::default()
        };
        let a = key(
            Method::GET,
            "/p?b=2&a=1&utm_source=x",
            &[("host", "Example.COM")],
            &options,
        );
        let b = key(
            Method::GET,
            "/p?a=1&session=9&b=2",
            &[("host", "example.com")],
            &options,
        );
        assert_eq!(a, "http:GET:example.com/p?a=1&b=2");
        assert_eq!(a, b);
        assert_ne!(
            a,
            key(
                Method::GET,
                "/p?a=1&b=3",
                &[("host", "example.com")],
                &options
            )
        );
    }

    #[test]
    fn head_shares_get_and_other_methods_do_not() {
        let options = KeyOptions::default();
        assert_eq!(
            key(Method::HEAD, "/x", &[], &options),
            key(Method::GET, "/x", &[], &options)
        );
        assert_ne!(
            key(Method::POST, "/x", &[], &options),
            key(Method::GET, "/x", &[], &options)
        );
    }

    #[test]
    fn keyed_headers_are_hashed_never_copied() {
        let options = KeyOptions {
            headers: vec![HeaderName::from_static("x-tenant")],
            ..KeyOptions::default()
        };
        let a = key(Method::GET, "/x", &[("x-tenant", "alice")], &options);
        let b = key(Method::GET, "/x", &[("x-tenant", "bob")], &options);
        assert_ne!(a, b);
        assert!(!a.contains("alice"));
        // Two values in one header differ from one value that holds both.
        let two = key(
            Method::GET,
            "/x",
            &[("x-tenant", "a"), ("x-tenant", "b")],
            &options,
        );
        let one = key(Method::GET, "/x", &[("x-tenant", "ab")], &options);
        assert_ne!(two, one);
    }

    #[test]
    fn long_keys_are_bounded_and_still_distinct() {
        let options = KeyOptions::default();
        let long_a = format!("/{}", "a".repeat(5000));
        let long_b = format!("/{}b", "a".repeat(4999));
        let a = key(Method::GET, &long_a, &[], &options);
        let b = key(Method::GET, &long_b, &[], &options);
        assert!(a.len() <= MAX_KEY_LEN, "{}", a.len());
        assert_ne!(a, b);
        // A shortened key holds a space, which no request target can: asking for the short
        // form's path is not even a valid request, so a long URL's entry cannot be named.
        assert!(a.contains(' '));
        let head = &a["http:GET:".len()..];
        assert!(head.parse::<Uri>().is_err());
    }

    #[test]
    fn a_host_with_separator_characters_gets_no_key() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, "a#k=1".parse().unwrap());
        let uri: Uri = "/x".parse().unwrap();
        let result = request_key(&Method::GET, &uri, &headers, &KeyOptions::default(), &[]);
        assert_eq!(result.unwrap_err(), KeyError::BadHost);
    }
}
