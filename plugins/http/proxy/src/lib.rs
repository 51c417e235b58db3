//! `strata-proxy`: a shared caching reverse proxy in front of one HTTP/1.1 origin, built on
//! [`strata_http`]'s layer in strict RFC 9111 mode (no default TTL), on L1 + redb by default
//! and Redis when a URL is configured.
//!
//! The binary is `strata-proxy --listen ADDR --upstream URL [--config FILE]`; this library
//! holds its parts so that tests and other binaries can run it in-process:
//! [`ProxyConfig`] (the TOML file), [`Forward`] (the upstream client) and [`run`].
//!
//! # Consistency
//! The proxy adds nothing to the layer's consistency (see [`strata_http`]): every method is
//! forwarded, unsafe ones invalidate what the layer says, and a shutdown stops accepting
//! connections, lets the open requests finish, then closes the tiers (flushing the disk tier).

mod config;
mod forward;
mod server;

pub use config::{ProxyConfig, ProxyError};
pub use forward::Forward;
pub use server::{build_cache, router, run, serve};
