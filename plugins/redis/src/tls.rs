//! TLS trust: the root certificate a `rediss://` tier trusts instead of the platform's roots
//! (feature `tls`).

use redis::cluster::ClusterClientBuilder;
use redis::{Client, IntoConnectionInfo, RedisResult};

/// A client for `info`, trusting `root_cert` (PEM) when given.
pub(crate) fn client(
    info: impl IntoConnectionInfo,
    root_cert: Option<&[u8]>,
) -> RedisResult<Client> {
    match root_cert {
        #[cfg(feature = "tls")]
        Some(pem) => Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        ),
        #[cfg(not(feature = "tls"))]
        Some(_) => Err(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "a TLS root certificate needs strata-redis's `tls` feature",
        ))),
        None => Client::open(info),
    }
}

/// A cluster builder trusting `root_cert` (PEM) when given.
pub(crate) fn cluster(
    builder: ClusterClientBuilder,
    root_cert: Option<&[u8]>,
) -> ClusterClientBuilder {
    match root_cert {
        #[cfg(feature = "tls")]
        Some(pem) => builder.certs(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.to_vec()),
        }),
        _ => builder,
    }
}
