//! Producer ids for idempotent producers: unique in the cluster, drawn
//! from blocks this broker claims in the catalog.

use std::ops::RangeInclusive;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::catalog::{CatalogError, ClusterCatalog};

/// Hands out producer ids from this broker's current block.
pub struct ProducerIds {
    catalog: Arc<dyn ClusterCatalog>,
    block: Mutex<Option<RangeInclusive<i64>>>,
}

impl ProducerIds {
    /// Ids from blocks claimed in `catalog`.
    pub fn new(catalog: Arc<dyn ClusterCatalog>) -> Self {
        Self {
            catalog,
            block: Mutex::new(None),
        }
    }

    /// A producer id not handed out before, by any broker: the next of
    /// this broker's block, or the first of a new block when it runs out.
    /// Blocks on the catalog then.
    pub fn next(&self) -> Result<i64, CatalogError> {
        let mut block = self.block.lock();
        loop {
            if let Some(id) = block.as_mut().and_then(Iterator::next) {
                return Ok(id);
            }
            *block = Some(self.catalog.allocate_producer_ids()?);
        }
    }
}
