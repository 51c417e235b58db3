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
use crate::flow::{handle, Upstream};

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
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        // The service that was polled ready serves this call; a clone takes its place.
        let clone = self.inner.clone();
        let upstream = std::mem::replace(&mut self.inner, clone);
        Box::pin(handle(self.cache.clone(), upstream, request))
    }
}

/// A marker an upstream service puts in the extensions of a response it made up because the
/// origin could not be reached (a refused connection, a timeout): the cache then treats the
/// response as a disconnection and may serve a stale entry instead (RFC 9111 §4.2.4), unless
/// the entry says `must-revalidate`, `proxy-revalidate`, `no-cache` or `s-maxage`, or the
/// request says `no-cache`, `max-age` or `min-fresh`. A service error (`Err`) counts the same.
#[derive(Debug, Clone, Copy, Default)]
pub struct Disconnected;
