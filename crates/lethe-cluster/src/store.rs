//! The cluster's shared state in NATS JetStream key-value buckets.
//!
//! - The map bucket (`LETHE_CLUSTER`) holds one key, `slots`: the [`SlotMap`] as JSON. It is
//!   only ever changed by compare-and-set on the key's revision ([`ClusterStore::update`]):
//!   JetStream accepts a write only if the key's last revision is the one the writer read, so
//!   of two writers racing from the same map exactly one wins and the other re-reads and
//!   re-decides. The bucket keeps a short history for inspection (`nats kv history`).
//! - The nodes bucket (`LETHE_NODES`) holds one key per node, its [`Heartbeat`]. nats-server
//!   2.9 has no per-key TTL, so the bucket's max age *is* the heartbeat TTL: a node that stops
//!   writing its key has it removed by the server one TTL after its last write. A node that
//!   leaves cleanly deletes its key at once.

use crate::{ClusterConfig, ClusterError, ClusterErrorKind, SlotMap};
use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The key of the slot map in the map bucket.
pub const MAP_KEY: &str = "slots";

/// How many times [`ClusterStore::update`] re-reads and retries after losing a race (or not
/// knowing whether its write landed) before giving up with [`ClusterErrorKind::Contention`].
const UPDATE_ATTEMPTS: u32 = 64;

/// What a node writes in its heartbeat: where it serves and when it started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The host clients connect to.
    pub host: String,
    /// The RESP port clients connect to.
    pub port: u16,
    /// When the node process started, in milliseconds since the Unix epoch (a changed value
    /// means it restarted).
    pub started: u64,
}

impl Heartbeat {
    /// A heartbeat for `host:port` started now.
    pub fn now(host: impl Into<String>, port: u16) -> Heartbeat {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Heartbeat {
            host: host.into(),
            port,
            started,
        }
    }
}

/// The outcome of [`ClusterStore::update`].
#[derive(Clone, Debug)]
pub struct Updated<T> {
    /// The map now stored (the new one when written, else the current one).
    pub map: SlotMap,
    /// Its revision in the map bucket.
    pub revision: u64,
    /// Whether this call wrote a new map (false when the change left the map as it was).
    pub written: bool,
    /// How many times the change was computed (more than 1 after lost races).
    pub attempts: u32,
    /// What the change returned on the map it was last applied to.
    pub value: T,
}

/// The cluster's buckets, opened (created when missing).
#[derive(Clone)]
pub struct ClusterStore {
    config: ClusterConfig,
    js: jetstream::Context,
    map: kv::Store,
    nodes: kv::Store,
    heartbeat_ttl: Duration,
}

impl fmt::Debug for ClusterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterStore")
            .field("config", &self.config)
            .field("heartbeat_ttl", &self.heartbeat_ttl)
            .finish_non_exhaustive()
    }
}

fn js_err(what: &str, e: impl fmt::Display) -> ClusterError {
    ClusterError::jetstream(format!("{what}: {e}"))
}

impl ClusterStore {
    /// Connects to NATS at `url` (failing after 5 s if it does not answer; later
    /// disconnections are retried forever in the background) and opens the buckets.
    pub async fn connect(url: &str, config: ClusterConfig) -> Result<ClusterStore, ClusterError> {
        config.validate()?;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .name("lethe cluster")
            .connect(url)
            .await
            .map_err(|e| {
                ClusterError::new(
                    ClusterErrorKind::Connect,
                    format!("cannot reach NATS at {url}: {e}"),
                )
            })?;
        ClusterStore::open(client, config).await
    }

    /// Opens the map and nodes buckets on `client`, creating them when missing (the nodes
    /// bucket with `config.heartbeat_ttl` as its max age; an existing one keeps its own).
    pub async fn open(
        client: async_nats::Client,
        config: ClusterConfig,
    ) -> Result<ClusterStore, ClusterError> {
        config.validate()?;
        let js = jetstream::new(client);
        let map = open_bucket(
            &js,
            bucket_stream_config(
                &config.map_bucket,
                "Lethe cluster slot map",
                16,
                Duration::ZERO,
            ),
        )
        .await?;
        let nodes = open_bucket(&js, nodes_bucket_config(&config, config.heartbeat_ttl)).await?;
        let status = nodes
            .status()
            .await
            .map_err(|e| js_err("cannot read the nodes bucket's settings", e))?;
        let heartbeat_ttl = status.max_age();
        if heartbeat_ttl.is_zero() {
            return Err(ClusterError::config(format!(
                "the nodes bucket {0} has no max age, so heartbeats would never expire; \
                 delete it (`nats kv del {0}`) and it is made again with one",
                config.nodes_bucket
            )));
        }
        if heartbeat_ttl != config.heartbeat_ttl {
            tracing::info!(
                bucket = %config.nodes_bucket,
                configured = ?config.heartbeat_ttl,
                in_use = ?heartbeat_ttl,
                "the cluster's heartbeat TTL is the nodes bucket's max age"
            );
        }
        Ok(ClusterStore {
            config,
            js,
            map,
            nodes,
            heartbeat_ttl,
        })
    }

    /// The configuration this store was opened with.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The heartbeat TTL in force: the nodes bucket's max age.
    pub fn heartbeat_ttl(&self) -> Duration {
        self.heartbeat_ttl
    }

    /// Changes the heartbeat TTL for the whole cluster (the nodes bucket's max age). Running
    /// members keep the interval they started with until restarted, so lower it with care.
    pub async fn set_heartbeat_ttl(&mut self, ttl: Duration) -> Result<(), ClusterError> {
        let mut probe = self.config.clone();
        probe.heartbeat_ttl = ttl;
        probe.validate()?;
        self.js
            .update_stream(nodes_bucket_config(&self.config, ttl))
            .await
            .map_err(|e| js_err("cannot change the heartbeat TTL", e))?;
        self.nodes = self
            .js
            .get_key_value(self.config.nodes_bucket.as_str())
            .await
            .map_err(|e| js_err("cannot reopen the nodes bucket", e))?;
        self.heartbeat_ttl = ttl;
        Ok(())
    }

    /// The stored map and its revision, or `None` when there is none.
    pub async fn load(&self) -> Result<Option<(SlotMap, u64)>, ClusterError> {
        let entry = self
            .map
            .entry(MAP_KEY)
            .await
            .map_err(|e| js_err("cannot read the slot map", e))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                Ok(Some((SlotMap::from_json(&e.value)?, e.revision)))
            }
            _ => Ok(None),
        }
    }

    /// Stores `map` as the cluster's map. Refuses ([`ClusterErrorKind::MapExists`]) when one
    /// exists, unless `force`: then it replaces it, its epoch raised above the old one so every
    /// node takes it as newer. Returns the map stored and its revision.
    pub async fn create(
        &self,
        mut map: SlotMap,
        force: bool,
    ) -> Result<(SlotMap, u64), ClusterError> {
        let exists = |old: &SlotMap| {
            ClusterError::new(
                ClusterErrorKind::MapExists,
                format!(
                    "a slot map exists already (epoch {}, {} nodes); replace it with --force",
                    old.epoch(),
                    old.nodes().len()
                ),
            )
        };
        match self.load().await? {
            None => {
                let json = Bytes::from(map.to_json());
                match self.map.create(MAP_KEY, json).await {
                    Ok(rev) => Ok((map, rev)),
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                        // Another creator won between our read and our write.
                        match self.load().await? {
                            Some((old, _)) if !force => Err(exists(&old)),
                            _ => Box::pin(self.create(map, force)).await,
                        }
                    }
                    Err(e) => Err(js_err("cannot store the slot map", e)),
                }
            }
            Some((old, _)) if !force => Err(exists(&old)),
            Some(_) => {
                let out = self
                    .update(move |current| {
                        map.raise_epoch_above(current.epoch());
                        *current = map.clone();
                        Ok(())
                    })
                    .await?;
                Ok((out.map, out.revision))
            }
        }
    }

    /// Changes the map by compare-and-set: reads it, applies `change` to a copy, and writes
    /// the copy only if the map was not changed meanwhile; otherwise starts over from the map
    /// now stored (so `change` may run several times and must decide from what it is given).
    /// A change that leaves the map as it was writes nothing. A change that returns an error
    /// stops the update with that error. Fails with [`ClusterErrorKind::NoMap`] when there is
    /// no map.
    pub async fn update<T, F>(&self, mut change: F) -> Result<Updated<T>, ClusterError>
    where
        F: FnMut(&mut SlotMap) -> Result<T, ClusterError>,
    {
        // After a write whose outcome is unknown (timed out), the map we tried to write.
        let mut maybe_written: Option<SlotMap> = None;
        for attempt in 1..=UPDATE_ATTEMPTS {
            let Some((current, revision)) = self.load().await? else {
                return Err(ClusterError::new(
                    ClusterErrorKind::NoMap,
                    "there is no slot map yet: create one with `lethe cluster create`".into(),
                ));
            };
            if let Some(tried) = maybe_written.take() {
                if tried == current {
                    // Our unacknowledged write landed; computing again would find nothing to do
                    // and report "not written".
                    let value = change(&mut current.clone())?;
                    return Ok(Updated {
                        map: current,
                        revision,
                        written: true,
                        attempts: attempt,
                        value,
                    });
                }
            }
            let mut next = current.clone();
            let value = change(&mut next)?;
            if next == current {
                return Ok(Updated {
                    map: current,
                    revision,
                    written: false,
                    attempts: attempt,
                    value,
                });
            }
            next.raise_epoch_above(current.epoch());
            match self
                .map
                .update(MAP_KEY, Bytes::from(next.to_json()), revision)
                .await
            {
                Ok(revision) => {
                    return Ok(Updated {
                        map: next,
                        revision,
                        written: true,
                        attempts: attempt,
                        value,
                    });
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    tracing::debug!(attempt, "slot map changed meanwhile: retrying");
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::TimedOut => {
                    tracing::debug!(attempt, "slot map write not acknowledged: checking");
                    maybe_written = Some(next);
                }
                Err(e) => return Err(js_err("cannot write the slot map", e)),
            }
            // Spread retrying writers apart so one of them gets through.
            let jitter = fastrand::u64(0..(5 * u64::from(attempt.min(10))));
            tokio::time::sleep(Duration::from_millis(1 + jitter)).await;
        }
        Err(ClusterError::new(
            ClusterErrorKind::Contention,
            format!("the slot map kept changing: gave up after {UPDATE_ATTEMPTS} attempts"),
        ))
    }

    /// The stored map now and then every change to it, with revisions. Deletions of the map
    /// are skipped; an unreadable stored map is an error item (the watch goes on).
    pub async fn watch(&self) -> Result<MapWatch, ClusterError> {
        let watch = self
            .map
            .watch_with_history(MAP_KEY)
            .await
            .map_err(|e| js_err("cannot watch the slot map", e))?;
        let stream = watch.filter_map(|item| async move {
            match item {
                Err(e) => Some(Err(js_err("slot map watch failed", e))),
                Ok(e) if e.operation == kv::Operation::Put => Some(
                    SlotMap::from_json(&e.value)
                        .map(|m| (m, e.revision))
                        .map_err(ClusterError::from),
                ),
                Ok(_) => None,
            }
        });
        Ok(MapWatch(Box::pin(stream)))
    }

    /// Writes node `name`'s heartbeat; it lives for the heartbeat TTL.
    pub async fn beat(&self, name: &str, heartbeat: &Heartbeat) -> Result<u64, ClusterError> {
        let json = serde_json::to_vec(heartbeat).unwrap_or_default();
        self.nodes
            .put(name, json.into())
            .await
            .map_err(|e| js_err("cannot write the heartbeat", e))
    }

    /// Node `name`'s live heartbeat, or `None` when it aged out, was deleted or never was.
    pub async fn heartbeat(&self, name: &str) -> Result<Option<Heartbeat>, ClusterError> {
        let entry = self
            .nodes
            .entry(name)
            .await
            .map_err(|e| js_err("cannot read a heartbeat", e))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .and_then(|e| serde_json::from_slice(&e.value).ok()))
    }

    /// Every node with a live heartbeat, by name.
    pub async fn live_nodes(&self) -> Result<Vec<(String, Heartbeat)>, ClusterError> {
        let names: Vec<String> = self
            .nodes
            .keys()
            .await
            .map_err(|e| js_err("cannot list the heartbeats", e))?
            .try_collect()
            .await
            .map_err(|e| js_err("cannot list the heartbeats", e))?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            // A key may age out between the listing and the read.
            if let Some(h) = self.heartbeat(&name).await? {
                out.push((name, h));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Deletes node `name`'s heartbeat, so the others see it gone at once.
    pub async fn remove_heartbeat(&self, name: &str) -> Result<(), ClusterError> {
        self.nodes
            .delete(name)
            .await
            .map_err(|e| js_err("cannot delete the heartbeat", e))
    }
}

fn nodes_bucket_config(config: &ClusterConfig, ttl: Duration) -> stream::Config {
    bucket_stream_config(
        &config.nodes_bucket,
        "Lethe cluster heartbeats (max age = heartbeat TTL)",
        1,
        ttl,
    )
}

/// The stream behind a key-value bucket, as the client library would make it. The library's
/// own bucket creation first asks for the account's limits in a form nats-server 2.9 does not
/// answer in, so the stream is created directly (same subjects and settings).
fn bucket_stream_config(
    bucket: &str,
    description: &str,
    history: i64,
    max_age: Duration,
) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(description.into()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: history,
        max_age,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    }
}

/// The bucket, its stream created when missing (by this opener or, at the same moment, by
/// another: `get_or_create_stream` takes either).
async fn open_bucket(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<kv::Store, ClusterError> {
    let bucket = config.name.trim_start_matches("KV_").to_owned();
    let open = |e: &dyn fmt::Display| {
        js_err(
            &format!(
                "cannot open the key-value bucket {bucket} (is nats-server running with -js?)"
            ),
            e,
        )
    };
    if js.get_key_value(bucket.as_str()).await.is_err() {
        js.get_or_create_stream(config)
            .await
            .map_err(|e| open(&e))?;
    }
    js.get_key_value(bucket.as_str())
        .await
        .map_err(|e| open(&e))
}

/// The slot map as stored, then every change ([`ClusterStore::watch`]).
pub struct MapWatch(Pin<Box<dyn Stream<Item = MapItem> + Send>>);

/// One item of a [`MapWatch`]: a map and its revision, or why it could not be read.
pub type MapItem = Result<(SlotMap, u64), ClusterError>;

impl fmt::Debug for MapWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MapWatch")
    }
}

impl Stream for MapWatch {
    type Item = MapItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx)
    }
}
