//! The connection to NATS and the invalidation stream: created when missing with limits
//! retention (age and count from [`BusConfig`]), file storage and a two-minute duplicate window,
//! so a publish retried with the same message id within it is stored once.

use crate::{BusConfig, BusError};
use async_nats::jetstream::{self, stream};
use std::time::Duration;

/// JetStream's duplicate window for the stream: a retry or replay within it is dropped.
pub(crate) const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A connection to NATS with the invalidation stream in place.
#[derive(Clone, Debug)]
pub struct Bus {
    pub(crate) config: BusConfig,
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
}

impl Bus {
    /// Connects (failing after 5 s if NATS does not answer) and creates the stream when
    /// missing. Later disconnections are retried forever in the background.
    pub async fn connect(config: BusConfig) -> Result<Bus, BusError> {
        config.validate()?;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .name(format!("lethe {}", config.node_id))
            .connect(config.url.as_str())
            .await
            .map_err(|e| BusError::connect(format!("cannot reach NATS at {}: {e}", config.url)))?;
        let js = jetstream::new(client.clone());
        let bus = Bus { config, client, js };
        bus.ensure_stream().await?;
        Ok(bus)
    }

    /// The NATS connection, for requests between members beside the stream (the cluster's
    /// dependency watches).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// This member's configuration.
    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    pub(crate) fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.config.stream.clone(),
            subjects: vec![format!("{}.>", self.config.subject_prefix)],
            max_age: self.config.max_age,
            max_messages: self.config.max_messages,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        }
    }

    /// The stream, created when missing (a stream deleted under running members is recreated
    /// by the first that notices; the others see a gap and flush).
    pub(crate) async fn ensure_stream(&self) -> Result<stream::Stream, BusError> {
        self.js
            .get_or_create_stream(self.stream_config())
            .await
            .map_err(|e| {
                BusError::jetstream(format!(
                    "cannot open the JetStream stream {}: {e} (is nats-server running with -js?)",
                    self.config.stream
                ))
            })
    }
}
