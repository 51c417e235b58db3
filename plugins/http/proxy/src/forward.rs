//! [`Forward`]: the service at the bottom of the proxy, sending each request to the origin.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use strata_http::strip_hop_by_hop;

use crate::config::ProxyError;

/// Sends requests to one origin over pooled HTTP/1.1 connections, keeping the client's `Host`
/// and path; an unreachable origin or one that does not answer within the timeout gets a
/// `502` / `504` marked [`strata_http::Disconnected`] (so the cache may serve stale instead).
#[derive(Clone)]
pub struct Forward {
    client: Client<HttpConnector, Body>,
    scheme: Scheme,
    authority: Authority,
    timeout: Duration,
}

impl Forward {
    /// A forwarder to `upstream` (`http://host[:port]`).
    pub fn new(upstream: &str, timeout: Duration) -> Result<Forward, ProxyError> {
        let bad = || ProxyError::Upstream(upstream.to_owned());
        let uri: Uri = upstream.parse().map_err(|_| bad())?;
        if uri.scheme() != Some(&Scheme::HTTP) || uri.path().len() > 1 || uri.query().is_some() {
            return Err(bad());
        }
        let authority = uri.authority().cloned().ok_or_else(bad)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Forward {
            client,
            scheme: Scheme::HTTP,
            authority,
            timeout,
        })
    }

    async fn forward(self, request: Request<Body>) -> Response<Body> {
        let (mut parts, body) = request.into_parts();
        let mut target = http::uri::Parts::default();
        target.scheme = Some(self.scheme.clone());
        target.authority = Some(self.authority.clone());
        target.path_and_query = parts.uri.path_and_query().cloned();
        parts.uri = match Uri::from_parts(target) {
            Ok(uri) => uri,
            Err(_) => return plain(StatusCode::BAD_REQUEST),
        };
        strip_hop_by_hop(&mut parts.headers);
        let request = Request::from_parts(parts, body);
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Ok(Ok(response)) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Body::new(body))
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "upstream request failed");
                disconnected(StatusCode::BAD_GATEWAY)
            }
            Err(_) => disconnected(StatusCode::GATEWAY_TIMEOUT),
        }
    }
}

/// A response standing for an unreachable origin, marked so that the cache may serve stale.
fn disconnected(status: StatusCode) -> Response<Body> {
    let mut response = plain(status);
    response.extensions_mut().insert(strata_http::Disconnected);
    response
}

fn plain(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::from(Bytes::from_static(b"")));
    *response.status_mut() = status;
    response
}

impl tower::Service<Request<Body>> for Forward {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let forward = self.clone();
        Box::pin(async move { Ok(forward.forward(request).await) })
    }
}
