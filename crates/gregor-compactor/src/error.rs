//! Errors of the cleaner.

use gregor_log::LogError;

/// What can stop a cleaning pass. The log is left as it was: a rewrite
/// is swapped in whole or not at all.
#[derive(Debug, thiserror::Error)]
pub enum CompactorError {
    /// The log refused a read, a rewrite or a swap.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Reading a segment file failed.
    #[error("reading segment {base_offset}: {source}")]
    Read {
        /// The segment.
        base_offset: u64,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for the cleaner.
pub type Result<T, E = CompactorError> = std::result::Result<T, E>;
