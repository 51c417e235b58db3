//! `strata-proxy --listen ADDR --upstream URL [--config FILE] [--redis URL] [--disk PATH]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use strata_proxy::{build_cache, router, serve, ProxyConfig, ProxyError};

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A shared caching reverse proxy (RFC 9111) in front of one HTTP/1.1 origin.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (overrides the config file; default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The origin, http://host:port (overrides the config file).
    #[arg(long)]
    upstream: Option<String>,
    /// A TOML config file (listen, upstream, [cache] tiers, [http] rules).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A Redis tier between L1 and the disk (redis://, rediss://, redis+cluster://); needs a
    /// build with `--features redis`.
    #[arg(long)]
    redis: Option<String>,
    /// The redb file of the disk tier (default strata-proxy.redb).
    #[arg(long)]
    disk: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match start(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("strata-proxy: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn start(args: Args) -> Result<(), ProxyError> {
    let mut config = match &args.config {
        Some(path) => ProxyConfig::from_file(path)?,
        None => ProxyConfig::for_upstream(""),
    };
    if let Some(upstream) = args.upstream {
        config.upstream = Some(upstream);
    }
    if config.upstream.as_deref().is_none_or(str::is_empty) {
        return Err(ProxyError::Upstream(String::new()));
    }
    let mut cache = config.cache_config();
    if let Some(redis) = args.redis {
        cache.redis_url = Some(redis);
    }
    if let Some(disk) = args.disk {
        cache.disk_path = Some(disk);
    }
    config.cache = Some(cache);
    let addr = args
        .listen
        .or(config.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    // Everything that can be wrong with the config fails before the port is taken.
    let cache = build_cache(&config).await?;
    let app = router(&config, &cache)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ProxyError::Listen { addr, source })?;
    eprintln!("strata-proxy: listening on {addr}");
    serve(app, cache, listener, shutdown_signal()).await
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
