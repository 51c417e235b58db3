//! What the cache stores per key, and how it is laid out in lower tiers.
//!
//! A key holds either a response or, for a response that carries `Vary`, a *variant index*:
//! the header names it varies on and a generation. Each variant then lives under its own
//! secondary key (the primary key, the generation and a hash of the request's values of those
//! headers), so variants never overwrite each other, and replacing or deleting the index (a new
//! generation) makes every old variant unreachable at once.
//!
//! Lower tiers hold [`HttpCodec`]'s encoding: the request and response parts the cache policy
//! is made from, and the body. Decoding rebuilds the policy, and refuses bytes that do not
//! decode or do not form valid HTTP parts (the cache counts that and treats it as a miss).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_cache_semantics::{CacheOptions, CachePolicy};
use serde::{Deserialize, Serialize};
use strata::{Codec, CodecError};

/// One stored value of the HTTP cache: a response or a variant index. Opaque; cheap to clone.
#[derive(Clone, Debug)]
pub struct CachedResponse(pub(crate) Arc<Entry>);

// Always behind an Arc and built once per write: boxing the response would only add a hop.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Entry {
    Response(StoredResponse),
    Variants(Variants),
}

/// A response and the policy that says when it may be reused.
#[derive(Debug)]
pub(crate) struct StoredResponse {
    pub(crate) policy: CachePolicy,
    /// The request as the policy saw it: the normalized URI, `GET` for `HEAD`, and only the
    /// headers the policy reads (`Host`, `Cache-Control`, `Pragma`) plus those named in `Vary`,
    /// never credentials.
    pub(crate) request: http::request::Parts,
    pub(crate) status: StatusCode,
    /// The headers served (hop-by-hop ones removed).
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) response_time: SystemTime,
    /// When it stops being fresh (its response time plus its remaining freshness then).
    pub(crate) fresh_until: SystemTime,
    /// Its age when it was received (the policy's `Age`, read once).
    pub(crate) initial_age: Duration,
    /// Evaluated as a private (per-user) cache.
    pub(crate) per_user: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variants {
    pub(crate) vary: Vec<HeaderName>,
    pub(crate) generation: u64,
}

/// The options every policy is made with (a private cache for per-user entries).
pub(crate) fn policy_options(per_user: bool) -> CacheOptions {
    CacheOptions {
        shared: !per_user,
        ..CacheOptions::default()
    }
}

impl StoredResponse {
    /// Builds the policy for a response received at `response_time`.
    pub(crate) fn new(
        request: http::request::Parts,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        response_time: SystemTime,
        per_user: bool,
    ) -> StoredResponse {
        let response = response_parts(status, &policy_headers(&headers));
        let policy =
            CachePolicy::new_options(&request, &response, response_time, policy_options(per_user));
        // A huge max-age must not overflow the clock: cap at "never stale" in practice.
        let fresh_until = response_time
            .checked_add(policy.time_to_live(response_time))
            .unwrap_or_else(far_future);
        let initial_age = policy.age(response_time);
        StoredResponse {
            policy,
            request,
            status,
            headers,
            body,
            response_time,
            fresh_until,
            initial_age,
            per_user,
        }
    }

    /// Its age at `now` (what the policy's `age` says, without parsing `Age` again).
    pub(crate) fn age(&self, now: SystemTime) -> Duration {
        self.initial_age
            .saturating_add(now.duration_since(self.response_time).unwrap_or_default())
    }

    /// How long it has been stale at `now` (zero while fresh).
    pub(crate) fn stale_for(&self, now: SystemTime) -> Duration {
        now.duration_since(self.fresh_until).unwrap_or_default()
    }
}

/// The response headers as the policy reads them: `Cache-Control` directive names lower-cased
/// (they are case-insensitive; the policy compares them as written), and an `Age` that is not
/// one non-negative integer (a list, a second line, a sign, a fraction, parameters) replaced by
/// 2^31 seconds, so that such a response counts as stale (RFC 9111 §5.1); so is one past 2^31.
fn policy_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    let cache_control: Vec<HeaderValue> = headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .map(|value| match value.to_str() {
            Ok(text) => {
                let lowered = text
                    .split(',')
                    .map(|part| match part.split_once('=') {
                        Some((name, arg)) => format!("{}={arg}", name.to_ascii_lowercase()),
                        None => part.to_ascii_lowercase(),
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                HeaderValue::from_str(&lowered).unwrap_or_else(|_| value.clone())
            }
            Err(_) => value.clone(),
        })
        .collect();
    if !cache_control.is_empty() {
        out.remove(http::header::CACHE_CONTROL);
        for value in cache_control {
            out.append(http::header::CACHE_CONTROL, value);
        }
    }
    // RFC 9111 §1.2.2: an age past 2^31 seconds is 2^31 (and the policy's arithmetic must not
    // overflow on one near u64::MAX).
    const MAX_AGE_SECS: u64 = 1 << 31;
    let ages: Vec<&HeaderValue> = headers.get_all(http::header::AGE).iter().collect();
    let valid_age = match ages.as_slice() {
        [] => true,
        [one] => {
            !one.is_empty()
                && one.as_bytes().iter().all(u8::is_ascii_digit)
                && one
                    .to_str()
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|age| age <= MAX_AGE_SECS)
        }
        _ => false,
    };
    if !valid_age {
        out.insert(http::header::AGE, HeaderValue::from_static("2147483648"));
    }
    out
}

/// A time no entry reaches (about 2^40 seconds after the epoch).
fn far_future() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 40)
}

/// Response parts with `status` and `headers` (for the policy).
pub(crate) fn response_parts(status: StatusCode, headers: &HeaderMap) -> http::response::Parts {
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.headers = headers.clone();
    parts
}

/// The codec of the HTTP cache's values (postcard over [`Wire`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct HttpCodec;

/// Format version: a change of layout bumps it, and old entries read as misses.
const WIRE_VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
enum Wire {
    Response {
        version: u8,
        per_user: bool,
        response_time_ms: u64,
        method: String,
        uri: String,
        request_headers: Vec<(String, serde_bytes::ByteBuf)>,
        status: u16,
        headers: Vec<(String, serde_bytes::ByteBuf)>,
        body: serde_bytes::ByteBuf,
    },
    Variants {
        version: u8,
        vary: Vec<String>,
        generation: u64,
    },
}

fn wire_headers(headers: &HeaderMap) -> Vec<(String, serde_bytes::ByteBuf)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                serde_bytes::ByteBuf::from(value.as_bytes().to_vec()),
            )
        })
        .collect()
}

fn parse_headers(wire: Vec<(String, serde_bytes::ByteBuf)>) -> Result<HeaderMap, CodecError> {
    let mut headers = HeaderMap::with_capacity(wire.len());
    for (name, value) in wire {
        let name = HeaderName::from_bytes(name.as_bytes())?;
        let value = HeaderValue::from_bytes(&value)?;
        headers.append(name, value);
    }
    Ok(headers)
}

impl Codec<CachedResponse> for HttpCodec {
    fn encode(&self, value: &CachedResponse) -> Result<Bytes, CodecError> {
        let wire = match &*value.0 {
            Entry::Response(stored) => Wire::Response {
                version: WIRE_VERSION,
                per_user: stored.per_user,
                response_time_ms: stored
                    .response_time
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                method: stored.request.method.as_str().to_owned(),
                uri: stored.request.uri.to_string(),
                request_headers: wire_headers(&stored.request.headers),
                status: stored.status.as_u16(),
                headers: wire_headers(&stored.headers),
                body: serde_bytes::ByteBuf::from(stored.body.to_vec()),
            },
            Entry::Variants(variants) => Wire::Variants {
                version: WIRE_VERSION,
                vary: variants
                    .vary
                    .iter()
                    .map(|n| n.as_str().to_owned())
                    .collect(),
                generation: variants.generation,
            },
        };
        Ok(Bytes::from(postcard::to_stdvec(&wire)?))
    }

    fn decode(&self, bytes: Bytes) -> Result<CachedResponse, CodecError> {
        let entry = match postcard::from_bytes::<Wire>(&bytes)? {
            Wire::Response {
                version,
                per_user,
                response_time_ms,
                method,
                uri,
                request_headers,
                status,
                headers,
                body,
            } => {
                check_version(version)?;
                let (mut request, ()) = http::Request::new(()).into_parts();
                request.method = Method::from_bytes(method.as_bytes())?;
                request.uri = uri.parse::<Uri>()?;
                request.headers = parse_headers(request_headers)?;
                let response_time = SystemTime::UNIX_EPOCH
                    .checked_add(Duration::from_millis(response_time_ms))
                    .ok_or("response time out of range")?;
                Entry::Response(StoredResponse::new(
                    request,
                    StatusCode::from_u16(status)?,
                    parse_headers(headers)?,
                    Bytes::from(body.into_vec()),
                    response_time,
                    per_user,
                ))
            }
            Wire::Variants {
                version,
                vary,
                generation,
            } => {
                check_version(version)?;
                let vary = vary
                    .iter()
                    .map(|name| HeaderName::from_bytes(name.as_bytes()))
                    .collect::<Result<_, _>>()?;
                Entry::Variants(Variants { vary, generation })
            }
        };
        Ok(CachedResponse(Arc::new(entry)))
    }
}

fn check_version(version: u8) -> Result<(), CodecError> {
    if version == WIRE_VERSION {
        Ok(())
    } else {
        Err(
            format!("stored HTTP entry has format {version}, this build reads {WIRE_VERSION}")
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CachedResponse {
        let (mut request, ()) = http::Request::new(()).into_parts();
        request.uri = "/a?b=1".parse().unwrap();
        request
            .headers
            .insert("host", "example.com".parse().unwrap());
        let mut headers = HeaderMap::new();
        headers.insert("cache-control", "max-age=60".parse().unwrap());
        headers.append("link", "<a>".parse().unwrap());
        headers.append("link", "<b>".parse().unwrap());
        CachedResponse(Arc::new(Entry::Response(StoredResponse::new(
            request,
            StatusCode::OK,
            headers,
            Bytes::from_static(b"hello"),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            false,
        ))))
    }

    #[test]
    fn a_response_round_trips_with_repeated_headers() {
        let bytes = HttpCodec.encode(&sample()).unwrap();
        let back = HttpCodec.decode(bytes).unwrap();
        let Entry::Response(stored) = &*back.0 else {
            panic!("not a response")
        };
        assert_eq!(stored.body, Bytes::from_static(b"hello"));
        assert_eq!(stored.headers.get_all("link").iter().count(), 2);
        assert_eq!(stored.request.uri, "/a?b=1");
        assert_eq!(
            stored.response_time,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert!(stored.policy.is_storable());
    }

    #[test]
    fn corrupt_or_truncated_bytes_are_errors_not_panics() {
        let bytes = HttpCodec.encode(&sample()).unwrap();
        for cut in 0..bytes.len() {
            let _ = HttpCodec.decode(bytes.slice(..cut));
        }
        let mut flipped = bytes.to_vec();
        for i in 0..flipped.len() {
            flipped[i] ^= 0x5a;
            let _ = HttpCodec.decode(Bytes::from(flipped.clone()));
            flipped[i] ^= 0x5a;
        }
        assert!(HttpCodec
            .decode(Bytes::from_static(b"\xff\xff\xff"))
            .is_err());
    }
}
