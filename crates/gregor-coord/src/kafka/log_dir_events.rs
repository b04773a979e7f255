//! `/log_dir_event_notification/log_dir_event_<seq>`: a broker telling
//! the controller that one of its log directories went offline (Kafka's
//! `KafkaZkClient.propagateLogDirEvent`, JSON
//! `{"version":1,"broker":<id>,"event":1}`). The controller then asks that
//! broker, with LeaderAndIsr, which of its replicas are still online.

use serde::{Deserialize, Serialize};

use super::{from_json, to_json, KafkaMetadata};
use crate::error::{CoordError, Result};
use crate::types::CreateMode;

/// `/log_dir_event_notification`
pub const LOG_DIR_EVENT_NOTIFICATION: &str = "/log_dir_event_notification";

/// Kafka's event code for a log directory that failed.
pub const LOG_DIR_FAILURE_EVENT: i32 = 1;

/// A notification's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDirEvent {
    /// Format version (1).
    pub version: i32,
    /// The broker whose log directory failed.
    pub broker: i32,
    /// The event ([`LOG_DIR_FAILURE_EVENT`]).
    pub event: i32,
}

impl KafkaMetadata<'_> {
    /// Tells the controller that a log directory of `broker` failed.
    pub async fn propagate_log_dir_event(&self, broker: i32) -> Result<()> {
        let event = LogDirEvent {
            version: 1,
            broker,
            event: LOG_DIR_FAILURE_EVENT,
        };
        self.coord.create_all(LOG_DIR_EVENT_NOTIFICATION).await?;
        self.coord
            .create(
                &format!("{LOG_DIR_EVENT_NOTIFICATION}/log_dir_event_"),
                &to_json(&event),
                CreateMode::PersistentSequential,
            )
            .await?;
        Ok(())
    }

    /// Takes the pending log directory events (reading and deleting them):
    /// the brokers they name, in order, each once.
    pub async fn take_log_dir_events(&self) -> Result<Vec<i32>> {
        let mut brokers = Vec::new();
        let mut children = self.coord.children(LOG_DIR_EVENT_NOTIFICATION).await?;
        children.sort();
        for child in children {
            let path = format!("{LOG_DIR_EVENT_NOTIFICATION}/{child}");
            match self.coord.get(&path).await {
                Ok((data, _)) => {
                    match from_json::<LogDirEvent>(&path, &data) {
                        Ok(e) if !brokers.contains(&e.broker) => brokers.push(e.broker),
                        Ok(_) => {}
                        Err(e) => tracing::warn!("ignoring {path}: {e}"),
                    }
                    match self.coord.delete(&path, None).await {
                        Ok(()) | Err(CoordError::NoNode(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(CoordError::NoNode(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(brokers)
    }
}
