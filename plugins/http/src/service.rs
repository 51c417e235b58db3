//! The tower `Layer` and `Service`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::CacheBody;
use crate::cache::HttpCache;
use crate::flow::{handle, try_hit, Upstream};

/// A tower [`Layer`] that caches the wrapped service's responses in an [`HttpCache`]; made by
/// [`HttpCache::layer`].
///
/// Works with any service taking `http::Request<B>` (where `B: Default`, as axum's and
/// `http_body_util`'s bodies are; the cache builds `GET`s for revalidation with an empty body)
/// and answering `http::Response<R>` with `R: Body<Data = Bytes>`; the response body becomes
/// [`CacheBody<R>`]. Needs a Tokio runtime (`stale-while-revalidate` refreshes in a task).
#[derive(Clone)]
pub struct CacheLayer {
    cache: HttpCache,
}

impl CacheLayer {
    pub(crate) fn new(cache: HttpCache) -> Self {
        CacheLayer { cache }
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> CacheService<S> {
        CacheService {
            inner,
            cache: self.cache.clone(),
        }
    }
}

/// The service made by [`CacheLayer`].
#[derive(Clone)]
pub struct CacheService<S> {
    inner: S,
    cache: HttpCache,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for CacheService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Upstream<ReqB, ResB>,
    ReqB: Default + Send + 'static,
    ResB: Body<Data = Bytes, Error: Send> + Send + 'static,
{
    type Response = Response<CacheBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        // A fresh L1 hit is answered here, without making the request's future.
        if let Some(response) = try_hit(&self.cache, &request) {
            return ResponseFuture {
                kind: FutureKind::Ready {
                    result: Some(Ok(response)),
                },
            };
        }
        // The service that was polled ready serves this call; a clone takes its place.
        let clone = self.inner.clone();
        let upstream = std::mem::replace(&mut self.inner, clone);
        ResponseFuture {
            kind: FutureKind::Pending {
                future: Box::pin(handle(self.cache.clone(), upstream, request)),
            },
        }
    }
}

type BoxedResponse<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

/// The future of [`CacheService`]: ready at once for a fresh L1 hit, else the cache's work.
pub struct ResponseFuture<R, E> {
    kind: FutureKind<R, E>,
}

enum FutureKind<R, E> {
    Ready { result: Option<Result<R, E>> },
    Pending { future: BoxedResponse<R, E> },
}

// Neither variant is structurally pinned: the result is moved out, the future is boxed.
impl<R, E> Unpin for ResponseFuture<R, E> {}

impl<R, E> Future for ResponseFuture<R, E> {
    type Output = Result<R, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<R, E>> {
        match &mut self.kind {
            FutureKind::Ready { result } => match result.take() {
                Some(result) => Poll::Ready(result),
                None => panic!("ResponseFuture polled after it completed"),
            },
            FutureKind::Pending { future } => future.as_mut().poll(cx),
        }
    }
}

/// A marker an upstream service puts in the extensions of a response it made up because the
/// origin could not be reached (a refused connection, a timeout): the cache then treats the
/// response as a disconnection and may serve a stale entry instead (RFC 9111 §4.2.4), unless
/// the entry says `must-revalidate`, `proxy-revalidate`, `no-cache` or `s-maxage`, or the
/// request says `no-cache`, `max-age` or `min-fresh`. A service error (`Err`) counts the same.
#[derive(Debug, Clone, Copy, Default)]
pub struct Disconnected;
