//! The `lethe` binary: `lethe serve` runs the Redis-protocol server (and, with `--http-port`,
//! the HTTP admin API) until SIGINT or SIGTERM.

use clap::{Parser, Subcommand};
use lethe_server::config::{self, Config, Overrides};
use lethe_server::db::Db;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// Lethe: a cache whose point is invalidation, speaking the Redis protocol.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Serve clients over RESP2/RESP3 until interrupted (SIGINT or SIGTERM).
    ///
    /// Settings come from the defaults, then the configuration file, then the environment and
    /// flags. Logs go to standard error; set LETHE_LOG (e.g. `debug`) for more than startup and
    /// shutdown.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "LETHE_BIND")]
    bind: Option<String>,
    /// TCP port [default: 6380; 6379 is left to Redis].
    #[arg(long, env = "LETHE_PORT")]
    port: Option<u16>,
    /// Keyspace budget in bytes of keys and values [default: 1073741824].
    #[arg(long, env = "LETHE_MAX_MEMORY")]
    max_memory: Option<u64>,
    /// Port of the HTTP admin API (/metrics, /healthz, /invalidate, /v1/keys/KEY) on the same
    /// address [default: off].
    #[arg(long, env = "LETHE_HTTP_PORT")]
    http_port: Option<u16>,
    /// TOML configuration file with `bind`, `port`, `max-memory` and `http-port`.
    #[arg(long, env = "LETHE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LETHE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // Reporting a failed log write goes to stderr too, and panics when stderr is a closed
        // pipe: a server must outlive the process that was reading its logs.
        .log_internal_errors(false)
        .init();
    match cli.command {
        Commands::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let mut cfg = Config::default();
    if let Some(path) = &args.config {
        match config::load(path) {
            Ok(file) => cfg = cfg.apply(file),
            Err(e) => {
                tracing::error!(error = %e, "cannot use the configuration file");
                return ExitCode::FAILURE;
            }
        }
    }
    let cfg = cfg.apply(Overrides {
        bind: args.bind,
        port: args.port,
        max_memory: args.max_memory,
        http_port: args.http_port,
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind((cfg.bind.as_str(), cfg.port)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(bind = %cfg.bind, port = cfg.port, error = %e, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        let addr = listener
            .local_addr()
            .map_or_else(|_| format!("{}:{}", cfg.bind, cfg.port), |a| a.to_string());
        let http = match cfg.http_port {
            None => None,
            Some(port) => match tokio::net::TcpListener::bind((cfg.bind.as_str(), port)).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::error!(bind = %cfg.bind, port, error = %e, "cannot listen for HTTP");
                    return ExitCode::FAILURE;
                }
            },
        };
        let shutdown = shutdown_signal();
        tracing::info!(%addr, max_memory = cfg.max_memory, "lethe listening");
        if let Some(l) = &http {
            let http_addr = l
                .local_addr()
                .map_or_else(|_| format!("{}:?", cfg.bind), |a| a.to_string());
            tracing::info!(addr = %http_addr, "HTTP admin API listening");
        }
        let db = Arc::new(Db::new(cfg.max_memory));
        lethe_server::run_with_http(listener, http, db, shutdown).await;
        tracing::info!("lethe stopped");
        ExitCode::SUCCESS
    })
}

/// A future completing on SIGINT or SIGTERM. The handlers are installed by this call, not on
/// first poll, so a signal sent right after the "listening" line is already ours (otherwise it
/// would kill the process with the default action instead of shutting down gracefully).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &'static str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for {name}");
                None
            }
        };
        let mut int = install(SignalKind::interrupt(), "SIGINT");
        let mut term = install(SignalKind::terminate(), "SIGTERM");
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(int.take()) => tracing::info!("SIGINT: shutting down"),
                _ = wait(term.take()) => tracing::info!("SIGTERM: shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C: shutting down");
        }
    }
}
