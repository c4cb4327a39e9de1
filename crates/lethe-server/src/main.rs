//! The `lethe` binary: `lethe serve` runs the Redis-protocol server (and, with `--http-port`,
//! the HTTP admin API) until SIGINT or SIGTERM; `lethe cdc` streams PostgreSQL changes in;
//! `lethe cluster create|status|move` manages a cluster's slot map in NATS.

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use lethe_cdc::{Cdc, CdcConfig, RespTarget, TriggerListener};
use lethe_server::config::{self, Config, Overrides};
use lethe_server::state::ServerState;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// jemalloc: the size classes the keyspace weighs entries by, and less fragmentation than the
/// system allocator under a cache's churn (see `lethe_server::allocator`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    Serve(Box<ServeArgs>),
    /// Stream committed PostgreSQL changes into one or more Lethe servers over RESP, as its own
    /// process (logical replication; see the lethe-cdc crate docs for the settings PostgreSQL
    /// needs). Runs until SIGINT or SIGTERM; restarts resume from the replication slot.
    Cdc(CdcArgs),
    /// Manage a cluster's slot map, held in NATS JetStream (key-value buckets LETHE_CLUSTER
    /// and LETHE_NODES): create it, show it, move slots.
    Cluster(ClusterArgs),
}

#[derive(Debug, clap::Args)]
struct ClusterArgs {
    #[command(subcommand)]
    action: ClusterAction,
}

#[derive(Debug, Subcommand)]
enum ClusterAction {
    /// Create the slot map: the 16384 slots split evenly, in contiguous ranges, over the nodes
    /// in the order given. Refuses when a map exists, unless --force.
    Create(ClusterCreateArgs),
    /// Show the slot map: epoch, each node's address, whether its heartbeat is live, its slot
    /// count and ranges, and the unassigned slots.
    Status(ClusterBusArg),
    /// Give slots to a node of the map (by compare-and-set, so no concurrent change is lost).
    Move(ClusterMoveArgs),
    /// Remove a node that serves no slots from the map (a node failed over for good). A node
    /// still running adds itself back, with no slots.
    Forget(ClusterForgetArgs),
}

#[derive(Debug, clap::Args)]
struct ClusterForgetArgs {
    /// The node's name in the map.
    node: String,
    #[command(flatten)]
    bus: ClusterBusArg,
}

#[derive(Debug, clap::Args)]
struct ClusterBusArg {
    /// The NATS server (JetStream) holding the cluster's state, e.g. nats://127.0.0.1:4222.
    #[arg(long, env = "LETHE_BUS", value_name = "URL")]
    bus: String,
}

#[derive(Debug, clap::Args)]
struct ClusterCreateArgs {
    #[command(flatten)]
    bus: ClusterBusArg,
    /// The nodes, comma-separated: NAME=HOST:PORT, or HOST:PORT (named node-PORT). HOST:PORT
    /// is where clients reach the node; NAME is its --node-id.
    #[arg(long, value_name = "LIST")]
    nodes: String,
    /// Replace an existing map (its epoch is raised past the old one's so every node takes it).
    #[arg(long)]
    force: bool,
    /// Seconds a node's heartbeat lives: a node silent for this long is failed over. Sets it
    /// for the whole cluster [default: kept, or 6 for a new cluster].
    #[arg(long, value_name = "SECONDS")]
    heartbeat_ttl: Option<f64>,
}

#[derive(Debug, clap::Args)]
struct ClusterMoveArgs {
    /// The slots: numbers and inclusive ranges, comma-separated (e.g. 0-100,200).
    slots: String,
    /// The node to give them to (its name in the map).
    #[arg(long, value_name = "NODE")]
    to: String,
    #[command(flatten)]
    bus: ClusterBusArg,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct CdcArgs {
    #[command(subcommand)]
    action: Option<CdcAction>,
    #[command(flatten)]
    run: CdcRunArgs,
}

#[derive(Debug, Subcommand)]
enum CdcAction {
    /// Install (or update) `pg_notify` triggers for the configured rules, for trigger mode
    /// (`lethe cdc --mode triggers`) where logical replication is not allowed.
    InstallTriggers(TriggerArgs),
    /// Remove the triggers and functions `install-triggers` created.
    UninstallTriggers(TriggerArgs),
}

#[derive(Debug, clap::Args)]
struct TriggerArgs {
    /// TOML file with the change-capture settings and `[[table]]` rules.
    #[arg(long, env = "LETHE_CDC_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// Print the SQL instead of running it.
    #[arg(long)]
    print: bool,
}

/// How changes are read from PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum CdcMode {
    /// Logical replication (`pgoutput`): at commit, nothing lost across restarts.
    Replication,
    /// LISTEN to `pg_notify` triggers (`lethe cdc install-triggers`): at most once; every
    /// reconnect flushes the targets, since notifications sent meanwhile are gone.
    Triggers,
}

#[derive(Debug, clap::Args)]
struct CdcRunArgs {
    /// TOML file with the change-capture settings and `[[table]]` rules, at the top level or
    /// under `[cdc]`.
    #[arg(long, env = "LETHE_CDC_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where to apply invalidations: a Lethe server as a redis:// URL, or the invalidation bus
    /// as a nats:// URL (published once to JetStream, reaching every member); repeat (or
    /// separate with commas) for several; a transaction counts as applied once every one
    /// acknowledged it [default: redis://127.0.0.1:6380].
    #[arg(
        long = "target",
        env = "LETHE_CDC_TARGETS",
        value_name = "URL",
        value_delimiter = ','
    )]
    targets: Vec<String>,
    /// How to read changes.
    #[arg(
        long,
        env = "LETHE_CDC_MODE",
        value_enum,
        default_value = "replication"
    )]
    mode: CdcMode,
    /// This publisher's name on the bus (origin of its messages), for nats:// targets.
    #[arg(
        long,
        env = "LETHE_NODE_ID",
        value_name = "NAME",
        default_value = "lethe-cdc"
    )]
    node_id: String,
    /// Check the settings, the database and the rules, then exit.
    #[arg(long)]
    check: bool,
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
    /// Port of the HTTP admin API (/dashboard, /metrics, /healthz, /invalidate, /v1/keys/KEY,
    /// /v1/stats) on the same address [default: off].
    #[arg(long, env = "LETHE_HTTP_PORT")]
    http_port: Option<u16>,
    /// Password clients must give with AUTH (Redis's `requirepass`) [default: none].
    #[arg(
        long,
        env = "LETHE_REQUIREPASS",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    requirepass: Option<String>,
    /// While no password is set, refuse clients not on the loopback interface, with Redis's
    /// DENIED error (yes or no) [default: yes].
    #[arg(long, env = "LETHE_PROTECTED_MODE", value_name = "yes|no",
          value_parser = clap::builder::BoolishValueParser::new())]
    protected_mode: Option<bool>,
    /// Most clients connected at once; more get `-ERR max number of clients reached`
    /// [default: 10000].
    #[arg(long, alias = "maxclients", env = "LETHE_MAX_CLIENTS")]
    max_clients: Option<u64>,
    /// Close clients idle for this many seconds, except pub/sub clients; 0 never
    /// [default: 0].
    #[arg(long, env = "LETHE_TIMEOUT", value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Largest bulk string a request may carry, in bytes (at least 1048576)
    /// [default: 536870912].
    #[arg(long, env = "LETHE_PROTO_MAX_BULK_LEN", value_name = "BYTES")]
    proto_max_bulk_len: Option<u64>,
    /// Output buffer limits, Redis's syntax: `<class> <hard> <soft> <soft-seconds>` repeated,
    /// class normal or pubsub, e.g. "pubsub 32mb 8mb 60" [default: normal 0 0 0 pubsub 32mb
    /// 8mb 60].
    #[arg(long, env = "LETHE_CLIENT_OUTPUT_BUFFER_LIMIT", value_name = "LIMITS")]
    client_output_buffer_limit: Option<String>,
    /// Address of the HTTP admin API; it is separate from --bind so exposing RESP does not
    /// expose purges [default: 127.0.0.1].
    #[arg(long, env = "LETHE_HTTP_BIND")]
    http_bind: Option<String>,
    /// Most HTTP admin connections at once; more get 503 [default: 128].
    #[arg(long, env = "LETHE_HTTP_MAX_CLIENTS")]
    http_max_clients: Option<usize>,
    /// Seconds an HTTP request's headers, then its body, may take to arrive (slower requests
    /// are closed); also how long an idle keep-alive connection stays open [default: 10].
    #[arg(long, env = "LETHE_HTTP_TIMEOUT", value_name = "SECONDS")]
    http_timeout: Option<u64>,
    /// Largest HTTP request body; larger ones get 413 unread [default: 1048576].
    #[arg(long, env = "LETHE_HTTP_MAX_BODY", value_name = "BYTES")]
    http_max_body: Option<usize>,
    /// TLS certificate chain (PEM, leaf first). With --tls-key-file, the RESP and HTTP ports
    /// speak TLS only [default: no TLS].
    #[arg(long, env = "LETHE_TLS_CERT_FILE", value_name = "FILE")]
    tls_cert_file: Option<PathBuf>,
    /// Private key of --tls-cert-file (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "LETHE_TLS_KEY_FILE", value_name = "FILE")]
    tls_key_file: Option<PathBuf>,
    /// On SIGINT/SIGTERM, seconds open connections get to finish before they are closed; a
    /// second signal exits at once [default: 5].
    #[arg(long, env = "LETHE_SHUTDOWN_TIMEOUT", value_name = "SECONDS")]
    shutdown_timeout: Option<u64>,
    /// Records kept per key for LETHE.WHY and GET /v1/keys/KEY/why [default: 16].
    #[arg(long, env = "LETHE_HISTORY_RECORDS", value_name = "N")]
    history_records: Option<usize>,
    /// Bytes the per-key history of LETHE.WHY may hold, apart from --max-memory (16777216
    /// keeps the latest records of about 100,000 keys); 0 keeps none [default: 0].
    #[arg(long, env = "LETHE_HISTORY_MEMORY", value_name = "BYTES")]
    history_memory: Option<u64>,
    /// TOML configuration file with `bind`, `port`, `max-memory`, `http-port` and the limits
    /// (`requirepass`, `protected-mode`, `max-clients`, `timeout`, `proto-max-bulk-len`,
    /// `client-output-buffer-limit`), `http-bind`, `http-max-clients`, `http-timeout`,
    /// `http-max-body`, `tls-cert-file`, `tls-key-file`, `shutdown-timeout`, `history-records`,
    /// `history-memory`, and optionally a
    /// `[cdc]` section.
    #[arg(long, env = "LETHE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Change capture into this server: a TOML file with the PostgreSQL connection and
    /// `[[table]]` rules (as `lethe cdc --config`); replaces a `[cdc]` section of --config.
    /// The server does not start if the database, its settings or the rules are wrong.
    #[arg(long, env = "LETHE_CDC", value_name = "FILE")]
    cdc: Option<PathBuf>,
    /// Join the invalidation bus on this NATS server (JetStream), e.g. nats://127.0.0.1:4222:
    /// invalidations made here reach every other member and theirs reach this server; needs
    /// --node-id. Settings beyond these two go in `[bus]` of --config [default: off].
    #[arg(long, env = "LETHE_BUS", value_name = "URL")]
    bus: Option<String>,
    /// This node's name on the bus (letters, digits, '-', '_'), unique among the members.
    #[arg(long, env = "LETHE_NODE_ID", value_name = "NAME")]
    node_id: Option<String>,
    /// Also publish every key a command writes or deletes (SET, DEL, HSET, ...) as a key
    /// invalidation, for deployments that keep copies of a key on several nodes
    /// [default: off; `publish-writes` in `[bus]`].
    #[arg(long, env = "LETHE_BUS_PUBLISH_WRITES")]
    bus_publish_writes: bool,
    /// Serve as a node of a Redis Cluster whose slot map and heartbeats live in NATS
    /// key-value buckets on the bus's server (`lethe cluster create` makes the map); needs
    /// --bus and --node-id. A node not in the map joins with no slots [default: off].
    #[arg(long, env = "LETHE_CLUSTER")]
    cluster: bool,
    /// The address cluster clients reach this node at, as CLUSTER SLOTS and MOVED give it
    /// [default: the bind address and the port listened on].
    #[arg(long, env = "LETHE_CLUSTER_ANNOUNCE", value_name = "HOST:PORT")]
    cluster_announce: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The cluster tools print their answer; connection chatter would only bury it.
    let default_level = match cli.command {
        Commands::Cluster(_) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LETHE_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // Reporting a failed log write goes to stderr too, and panics when stderr is a closed
        // pipe: a server must outlive the process that was reading its logs.
        .log_internal_errors(false)
        .init();
    match cli.command {
        Commands::Serve(args) => serve(*args),
        Commands::Cdc(args) => cdc(args),
        Commands::Cluster(args) => cluster(args),
    }
}

/// `lethe cluster ...`: errors go to standard error as one plain sentence, exit status 1.
fn cluster(args: ClusterArgs) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(cluster_run(args.action)) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lethe cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn cluster_run(action: ClusterAction) -> Result<String, String> {
    use lethe_cluster::{ClusterConfig, ClusterStore, SlotMap, admin};
    let connect = |bus: &ClusterBusArg| {
        let url = bus.bus.clone();
        async move {
            ClusterStore::connect(&url, ClusterConfig::default())
                .await
                .map_err(|e| e.to_string())
        }
    };
    match action {
        ClusterAction::Create(args) => {
            let nodes = admin::parse_nodes(&args.nodes).map_err(|e| e.to_string())?;
            let map = SlotMap::even(nodes).map_err(|e| e.to_string())?;
            let ttl = match args.heartbeat_ttl {
                Some(s) if s.is_finite() && s > 0.0 => Some(std::time::Duration::from_secs_f64(s)),
                Some(s) => {
                    return Err(format!(
                        "bad --heartbeat-ttl {s}: a positive number of seconds"
                    ));
                }
                None => None,
            };
            let mut store = connect(&args.bus).await?;
            if let Some(ttl) = ttl {
                store
                    .set_heartbeat_ttl(ttl)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let (map, _) = store
                .create(map, args.force)
                .await
                .map_err(|e| e.to_string())?;
            let live = store.live_nodes().await.map_err(|e| e.to_string())?;
            Ok(format!(
                "created the slot map\n{}",
                admin::status_report(&map, &live, store.heartbeat_ttl())
            ))
        }
        ClusterAction::Status(bus) => {
            let store = connect(&bus).await?;
            let Some((map, _)) = store.load().await.map_err(|e| e.to_string())? else {
                return Err(format!(
                    "there is no slot map on {}: create one with `lethe cluster create`",
                    bus.bus
                ));
            };
            let live = store.live_nodes().await.map_err(|e| e.to_string())?;
            Ok(admin::status_report(&map, &live, store.heartbeat_ttl()))
        }
        ClusterAction::Move(args) => {
            let slots = admin::parse_slots(&args.slots).map_err(|e| e.to_string())?;
            let store = connect(&args.bus).await?;
            let to = args.to.as_str();
            let out = store
                .update(|m| {
                    let moving = slots.iter().filter(|&&s| !m.serves(to, s)).count();
                    m.assign(&slots, to)?;
                    Ok(moving)
                })
                .await
                .map_err(|e| e.to_string())?;
            let mut report = format!(
                "moved {} of {} slots to {to} (epoch {})\n",
                out.value,
                slots.len(),
                out.map.epoch()
            );
            if store
                .heartbeat(to)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                report.push_str(&format!(
                    "warning: {to} has no live heartbeat; if it stays silent the cluster's \
                     members will fail its slots over again\n"
                ));
            }
            Ok(report)
        }
        ClusterAction::Forget(args) => {
            let store = connect(&args.bus).await?;
            let name = args.node.as_str();
            let out = store
                .update(|m| Ok(m.remove_node(name)?))
                .await
                .map_err(|e| e.to_string())?;
            let mut report = format!("removed {name} from the map (epoch {})\n", out.map.epoch());
            if store
                .heartbeat(name)
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                report.push_str(&format!(
                    "warning: {name} is still running and will add itself back, with no slots\n"
                ));
            }
            Ok(report)
        }
    }
}

/// The change-capture settings for `lethe serve`: `--cdc FILE`, else a `[cdc]` section of the
/// configuration file, else none.
fn serve_cdc_config(args: &ServeArgs, file_has_cdc: bool) -> Result<Option<CdcConfig>, String> {
    let path = match (&args.cdc, &args.config) {
        (Some(p), _) => p,
        (None, Some(p)) if file_has_cdc => p,
        _ => return Ok(None),
    };
    CdcConfig::from_file(path)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            None
        }
    }
}

fn load_cdc_config(path: &std::path::Path) -> Option<CdcConfig> {
    match CdcConfig::from_file(path) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "invalid change-capture configuration");
            None
        }
    }
}

fn cdc(args: CdcArgs) -> ExitCode {
    match args.action {
        Some(CdcAction::InstallTriggers(t)) => triggers(&t, true),
        Some(CdcAction::UninstallTriggers(t)) => triggers(&t, false),
        None => cdc_run(args.run),
    }
}

fn triggers(args: &TriggerArgs, install: bool) -> ExitCode {
    let Some(config) = load_cdc_config(&args.config) else {
        return ExitCode::FAILURE;
    };
    if args.print {
        let sql = if install {
            lethe_cdc::trigger_sql(&config)
        } else {
            lethe_cdc::uninstall_sql(&config)
        };
        return match sql {
            Ok(sql) => {
                println!("{sql}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot generate the trigger SQL");
                ExitCode::FAILURE
            }
        };
    }
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let done = runtime.block_on(async {
        if install {
            lethe_cdc::install_triggers(&config).await
        } else {
            lethe_cdc::uninstall_triggers(&config).await
        }
    });
    match done {
        Ok(report) => {
            let tables: Vec<String> = report.tables.iter().map(|t| t.to_string()).collect();
            println!(
                "{} triggers on {} (channel {})",
                if install { "installed" } else { "removed" },
                tables.join(", "),
                report.channel
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "triggers not changed");
            ExitCode::FAILURE
        }
    }
}

fn cdc_run(args: CdcRunArgs) -> ExitCode {
    let Some(path) = &args.config else {
        tracing::error!("lethe cdc needs --config FILE (or LETHE_CDC_CONFIG)");
        return ExitCode::FAILURE;
    };
    let Some(config) = load_cdc_config(path) else {
        return ExitCode::FAILURE;
    };
    let targets = if args.targets.is_empty() {
        vec!["redis://127.0.0.1:6380".to_owned()]
    } else {
        args.targets
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let (nats, resp): (Vec<&String>, Vec<&String>) =
            targets.iter().partition(|t| t.starts_with("nats://"));
        let mut sinks: Vec<Box<dyn lethe_cdc::Target>> = Vec::new();
        if !resp.is_empty() {
            match RespTarget::new(resp.iter().map(|s| s.as_str())) {
                Ok(t) => sinks.push(Box::new(t)),
                Err(e) => {
                    tracing::error!(error = %e, "invalid target");
                    return ExitCode::FAILURE;
                }
            }
        }
        for url in nats {
            let config = lethe_bus::BusConfig::new(url.as_str(), args.node_id.as_str());
            match lethe_server::cdc::BusTarget::connect(config).await {
                Ok(t) => sinks.push(Box::new(t)),
                Err(e) => {
                    tracing::error!(error = %e, "cannot publish to the bus");
                    return ExitCode::FAILURE;
                }
            }
        }
        let run = match args.mode {
            CdcMode::Replication => {
                let mut cdc = match Cdc::new(config) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "invalid change-capture configuration");
                        return ExitCode::FAILURE;
                    }
                };
                if let Err(e) = cdc.check().await {
                    tracing::error!(error = %e, "change capture cannot start");
                    return ExitCode::FAILURE;
                }
                if args.check {
                    println!("configuration, database and rules are fine");
                    return ExitCode::SUCCESS;
                }
                println!("lethe cdc streaming into {}", targets.join(", "));
                cdc.run(sinks, shutdown_signal()).await
            }
            CdcMode::Triggers => {
                let listener = match TriggerListener::new(config) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "invalid change-capture configuration");
                        return ExitCode::FAILURE;
                    }
                };
                if args.check {
                    println!("--check applies to replication mode; trigger mode checks at start");
                    return ExitCode::SUCCESS;
                }
                println!(
                    "lethe cdc listening on channel {} into {}",
                    listener.channel(),
                    targets.join(", ")
                );
                listener.run(sinks, shutdown_signal()).await
            }
        };
        match run {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "change capture stopped");
                ExitCode::FAILURE
            }
        }
    })
}

fn serve(args: ServeArgs) -> ExitCode {
    let mut cfg = Config::default();
    let mut file_has_cdc = false;
    let mut bus_section = config::BusSection::default();
    if let Some(path) = &args.config {
        match config::load(path) {
            Ok(file) => {
                file_has_cdc = file.cdc.is_some();
                bus_section = file.bus.clone().unwrap_or_default();
                cfg = cfg.apply(file);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot use the configuration file");
                return ExitCode::FAILURE;
            }
        }
    }
    let cdc_config = match serve_cdc_config(&args, file_has_cdc) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid change-capture configuration");
            return ExitCode::FAILURE;
        }
    };
    let args_publish_writes = args.bus_publish_writes;
    let cluster_mode = args.cluster;
    let cluster_announce = args.cluster_announce.clone();
    let bus_config = match bus_section.to_config(args.bus.clone(), args.node_id.clone()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid bus configuration");
            return ExitCode::FAILURE;
        }
    };
    let cfg = cfg.apply(Overrides {
        bind: args.bind,
        port: args.port,
        max_memory: args.max_memory,
        http_port: args.http_port,
        requirepass: args.requirepass,
        protected_mode: args.protected_mode,
        max_clients: args.max_clients,
        timeout: args.timeout,
        proto_max_bulk_len: args.proto_max_bulk_len,
        client_output_buffer_limit: args.client_output_buffer_limit,
        http_bind: args.http_bind,
        http_max_clients: args.http_max_clients,
        http_timeout: args.http_timeout,
        http_max_body: args.http_max_body,
        tls_cert_file: args.tls_cert_file,
        tls_key_file: args.tls_key_file,
        shutdown_timeout: args.shutdown_timeout,
        history_records: args.history_records,
        history_memory: args.history_memory,
        cdc: None,
        bus: None,
    });
    let settings = cfg
        .limits()
        .and_then(|l| Ok((l, cfg.http_options()?, cfg.tls()?)));
    let (limits, http_options, tls) = match settings {
        Ok((l, h, t)) => (Arc::new(l), h, t),
        Err(e) => {
            tracing::error!(error = %e, "invalid setting");
            return ExitCode::FAILURE;
        }
    };
    // As Redis: raise the descriptor limit for maxclients, or lower maxclients to fit it.
    let reserve = lethe_server::descriptors::RESERVED
        + cfg.http_port.map_or(0, |_| cfg.http_max_clients as u64);
    match lethe_server::descriptors::fit_max_clients(limits.max_clients(), reserve) {
        Ok(fitted) => {
            if fitted.max_clients < limits.max_clients() {
                tracing::warn!(
                    requested = limits.max_clients(),
                    max_clients = fitted.max_clients,
                    descriptor_limit = fitted.soft_after,
                    "the open files limit is too low for maxclients: maxclients lowered; raise \
                     it with ulimit -n"
                );
                limits.set_max_clients(fitted.max_clients);
            } else if fitted.soft_after > fitted.soft_before {
                tracing::info!(
                    from = fitted.soft_before,
                    to = fitted.soft_after,
                    "raised the open files limit for maxclients"
                );
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot serve clients");
            return ExitCode::FAILURE;
        }
    }
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async {
        let db = Arc::new(ServerState::with_history(cfg.max_memory, cfg.history()));
        // The bus is joined before anything is served: from then on every invalidation any
        // member publishes reaches this keyspace.
        if let Some(bus) = &bus_config {
            let publish_writes =
                args_publish_writes || bus_section.publish_writes.unwrap_or(false);
            if let Err(e) = lethe_server::bus::join_with(&db, bus.clone(), publish_writes).await
            {
                tracing::error!(error = %e, "cannot join the invalidation bus");
                return ExitCode::FAILURE;
            }
        }
        // Change capture is checked before listening: a server that would serve stale data
        // because its rules name a missing column should not start.
        let cdc = match cdc_config {
            None => None,
            Some(c) => match lethe_server::cdc::prepare(&db, c).await {
                Ok(cdc) => Some(cdc),
                Err(e) => {
                    tracing::error!(error = %e, "change capture cannot start");
                    return ExitCode::FAILURE;
                }
            },
        };
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
            Some(port) => match tokio::net::TcpListener::bind((cfg.http_bind.as_str(), port)).await
            {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::error!(bind = %cfg.http_bind, port, error = %e, "cannot listen for HTTP");
                    return ExitCode::FAILURE;
                }
            },
        };
        let signal = shutdown_signal();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        tokio::spawn(async move {
            signal.await;
            let _ = stop_tx.send(true);
            // A second signal means now: whatever is still draining is abandoned.
            shutdown_signal().await;
            tracing::warn!("second signal: exiting without waiting for connections");
            std::process::exit(1);
        });
        let shutdown = stopped();
        let capture =
            cdc.map(|cdc| tokio::spawn(lethe_server::cdc::run(cdc, db.clone(), stopped())));
        tracing::info!(%addr, max_memory = cfg.max_memory, "lethe listening");
        let port = listener.local_addr().map_or(cfg.port, |a| a.port());
        // Logs are quiet by default; where to connect is printed whatever the log level.
        println!(
            "lethe {} listening on {addr} (RESP2/RESP3); try: redis-cli -p {port}",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(l) = &http {
            let http_addr = l
                .local_addr()
                .map_or_else(|_| format!("{}:?", cfg.http_bind), |a| a.to_string());
            tracing::info!(addr = %http_addr, "HTTP admin API listening");
            let scheme = if tls.is_some() { "https" } else { "http" };
            println!("HTTP admin API on {scheme}://{http_addr} (/dashboard, /metrics, /healthz, /invalidate)");
        }
        if capture.is_some() {
            println!("change capture from PostgreSQL is streaming into this server");
        }
        if let Some(bus) = &bus_config {
            println!(
                "member {} of the invalidation bus on {} (stream {}, subject {})",
                bus.node_id,
                bus.url,
                bus.stream,
                bus.subject()
            );
        }
        let membership = if cluster_mode {
            let Some(bus) = &bus_config else {
                tracing::error!("--cluster needs the bus: --bus URL and --node-id NAME");
                return ExitCode::FAILURE;
            };
            let announce = cluster_announce.unwrap_or_else(|| {
                let host = if cfg.bind == "0.0.0.0" || cfg.bind == "::" {
                    "127.0.0.1"
                } else {
                    cfg.bind.as_str()
                };
                format!("{host}:{port}")
            });
            match join_cluster(&bus.url, &bus.node_id, &announce).await {
                Ok(m) => {
                    let slots = m.map().borrow().slots_of(&bus.node_id).len();
                    println!(
                        "cluster node {} announced as {announce}, serving {slots} slots",
                        bus.node_id
                    );
                    Some(m)
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot join the cluster");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            None
        };
        let mut server = lethe_server::Server::builder(listener)
            .db(db.clone())
            .limits(limits)
            .shutdown_timeout(std::time::Duration::from_secs(cfg.shutdown_timeout));
        if let Some(l) = http {
            server = server.http(l, http_options);
        }
        if let Some(tls) = tls {
            server = server.tls(tls);
        }
        if let Some(m) = &membership {
            server = server.cluster(lethe_server::cluster::ClusterView::new(
                m.me().name.clone(),
                m.map(),
            ));
        }
        server.build().run(shutdown).await;
        // Leaving says so at once (no wait for the heartbeat to age out).
        if let Some(m) = membership {
            if let Err(e) = m.leave().await {
                tracing::warn!(error = %e, "leaving the cluster");
            }
        }
        if let Some(task) = capture {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "change capture stopped"),
                Err(e) => tracing::error!(error = %e, "change capture failed"),
            }
        }
        tracing::info!("lethe stopped");
        ExitCode::SUCCESS
    })
}

/// Joins the cluster whose state is on the NATS server at `url` as node `name`, reachable at
/// `announce` (`host:port`).
async fn join_cluster(
    url: &str,
    name: &str,
    announce: &str,
) -> Result<lethe_cluster::Membership, String> {
    let (host, port) = announce
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("--cluster-announce {announce:?} is not HOST:PORT"))?;
    let store = lethe_cluster::ClusterStore::connect(url, lethe_cluster::ClusterConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    lethe_cluster::Membership::join(store, lethe_cluster::NodeInfo::new(name, host, port))
        .await
        .map_err(|e| e.to_string())
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
