//! The layer's response body: bytes from the cache, the upstream body as it is, or an upstream
//! body whose head was buffered while deciding whether it fits the cache.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;

pin_project! {
    /// The body of a response that went through the cache layer.
    #[project = CacheBodyProj]
    pub struct CacheBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Full { data: Option<Bytes> },
        Upstream { #[pin] body: B },
        Prefixed {
            prefix: Option<Bytes>,
            // Boxed: rare, and a HeaderMap inline would make every response body larger.
            trailers: Option<Box<HeaderMap>>,
            rest: Pin<Box<B>>,
        },
    }
}

impl<B> CacheBody<B> {
    /// A body of `data`.
    pub(crate) fn full(data: Bytes) -> Self {
        CacheBody {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// No body.
    pub(crate) fn empty() -> Self {
        CacheBody {
            kind: Kind::Full { data: None },
        }
    }

    /// The upstream body, untouched.
    pub(crate) fn upstream(body: B) -> Self {
        CacheBody {
            kind: Kind::Upstream { body },
        }
    }
}

impl<B> Body for CacheBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Upstream { body } => body.poll_frame(cx),
            KindProj::Prefixed {
                prefix,
                trailers,
                rest,
            } => {
                if let Some(data) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                if let Some(trailers) = trailers.take() {
                    return Poll::Ready(Some(Ok(Frame::trailers(*trailers))));
                }
                rest.as_mut().poll_frame(cx)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full { data } => data.is_none(),
            Kind::Upstream { body } => body.is_end_stream(),
            Kind::Prefixed {
                prefix,
                trailers,
                rest,
            } => prefix.is_none() && trailers.is_none() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Upstream { body } => body.size_hint(),
            Kind::Prefixed { prefix, rest, .. } => {
                let head = prefix.as_ref().map_or(0, |d| d.len() as u64);
                let rest = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(head));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(head));
                }
                hint
            }
        }
    }
}

/// An upstream body read up to the cache's size cap.
pub(crate) enum Buffered<B> {
    /// All of it, within the cap and without trailers: cacheable.
    Whole(Bytes),
    /// Too large, or with trailers: what was read and the rest, to be streamed uncached.
    Partial(CacheBody<B>),
}

/// Reads `body` until its end or until it exceeds `cap` bytes (or sends trailers).
pub(crate) async fn buffer_up_to<B>(body: B, cap: usize) -> Result<Buffered<B>, B::Error>
where
    B: Body<Data = Bytes>,
{
    if body.size_hint().lower() > cap as u64 {
        return Ok(Buffered::Partial(CacheBody::upstream(body)));
    }
    let mut body = Box::pin(body);
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    loop {
        let Some(frame) = body.frame().await else {
            return Ok(Buffered::Whole(concat(chunks, total)));
        };
        let frame = frame?;
        match frame.into_data() {
            Ok(data) => {
                total = total.saturating_add(data.len());
                chunks.push(data);
                if total > cap {
                    return Ok(Buffered::Partial(prefixed(
                        concat(chunks, total),
                        None,
                        body,
                    )));
                }
            }
            Err(frame) => {
                let trailers = frame.into_trailers().ok();
                return Ok(Buffered::Partial(prefixed(
                    concat(chunks, total),
                    trailers,
                    body,
                )));
            }
        }
    }
}

fn prefixed<B>(prefix: Bytes, trailers: Option<HeaderMap>, rest: Pin<Box<B>>) -> CacheBody<B> {
    CacheBody {
        kind: Kind::Prefixed {
            prefix: (!prefix.is_empty()).then_some(prefix),
            trailers: trailers.map(Box::new),
            rest,
        },
    }
}

fn concat(mut chunks: Vec<Bytes>, total: usize) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut out = Vec::with_capacity(total);
    for chunk in &chunks {
        out.extend_from_slice(chunk);
    }
    Bytes::from(out)
}
