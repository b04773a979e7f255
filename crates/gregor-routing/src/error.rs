//! The one place where gregor's errors become Kafka error codes.

use gregor_log::producer_state::ProducerError;
use gregor_log::LogError;
use kafka_protocol::error::ResponseError;

/// The Kafka error code for a log error, as clients expect to retry on it.
pub fn code_for(error: &LogError) -> i16 {
    let kafka = match error {
        LogError::CorruptBatch { .. } => ResponseError::CorruptMessage,
        LogError::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::InvalidAppend(_) | LogError::OffsetsOutOfOrder { .. } => ResponseError::InvalidRecord,
        LogError::MissingKey { .. } => ResponseError::InvalidRecord,
        LogError::Producer(ProducerError::InvalidEpoch { .. }) => ResponseError::InvalidProducerEpoch,
        LogError::Producer(ProducerError::OutOfOrderSequence { .. }) => ResponseError::OutOfOrderSequenceNumber,
        LogError::Producer(ProducerError::UnknownProducer { .. }) => ResponseError::UnknownProducerId,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::Offline(_) => ResponseError::KafkaStorageError,
        LogError::Io { .. } => ResponseError::KafkaStorageError,
        LogError::Partition(_) => ResponseError::UnknownTopicOrPartition,
        LogError::InvalidConfig(_) => ResponseError::InvalidConfig,
        _ => ResponseError::UnknownServerError,
    };
    kafka.code()
}
