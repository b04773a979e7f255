//! The consume ceiling: a minimal Kafka peer that serves one partition's
//! record batches from memory and does nothing else — no log, no index, no
//! pipeline: ApiVersions, Metadata, ListOffsets and Fetch, each answered on
//! the connection's own thread. What a client reads from it is the most
//! that client reads from any broker on this machine.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gregor::log::batch::BatchIter;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// One partition's batches in memory.
struct Partition {
    topic: String,
    records: Bytes,
    /// (base offset, position) of every batch.
    batches: Vec<(u64, usize)>,
    end: i64,
}

impl Partition {
    /// Whole batches from the one holding `offset`, at most `max` bytes
    /// but at least one batch; empty at the end.
    fn read(&self, offset: u64, max: usize) -> Bytes {
        if offset as i64 >= self.end {
            return Bytes::new();
        }
        let position = |i: usize| self.batches.get(i).map_or(self.records.len(), |&(_, p)| p);
        let first = self
            .batches
            .partition_point(|&(base, _)| base <= offset)
            .saturating_sub(1);
        let start = position(first);
        let mut last = first + 1;
        while last < self.batches.len() && position(last + 1) - start <= max {
            last += 1;
        }
        self.records.slice(start..position(last))
    }
}

/// Serves `records` (whole batches, as a segment file holds them) as
/// partition 0 of `topic` until the process ends; returns its address.
pub fn start(topic: &str, records: Vec<u8>) -> SocketAddr {
    let records = Bytes::from(records);
    let mut batches = Vec::new();
    let mut end = 0;
    for item in BatchIter::new(&records) {
        let Ok((at, header)) = item else { break };
        batches.push((header.base_offset, at));
        end = header.next_offset() as i64;
    }
    let partition = Arc::new(Partition {
        topic: topic.to_string(),
        records,
        batches,
        end,
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let partition = partition.clone();
            std::thread::spawn(move || match serve(stream, addr, &partition) {
                Err(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => eprintln!("ram broker: {e}"),
                _ => {}
            });
        }
    });
    addr
}

fn serve(mut stream: TcpStream, addr: SocketAddr, partition: &Partition) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut size = [0u8; 4];
    let mut out = BytesMut::new();
    loop {
        stream.read_exact(&mut size)?;
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        stream.read_exact(&mut body)?;
        let mut body = Bytes::from(body);
        let key = ApiKey::try_from(i16::from_be_bytes([body[0], body[1]])).map_err(|_| invalid("api key"))?;
        let version = i16::from_be_bytes([body[2], body[3]]);
        let header =
            RequestHeader::decode(&mut body, key.request_header_version(version)).map_err(|_| invalid("header"))?;
        let (response_version, encoded) = respond(key, version, body, addr, partition)?;
        out.clear();
        out.extend_from_slice(&[0; 4]);
        let mut response_header = ResponseHeader::default();
        response_header.correlation_id = header.correlation_id;
        response_header
            .encode(&mut out, key.response_header_version(response_version))
            .map_err(|_| invalid("response header"))?;
        out.extend_from_slice(&encoded);
        let len = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        stream.write_all(&out)?;
    }
}

fn respond(
    key: ApiKey,
    version: i16,
    mut body: Bytes,
    addr: SocketAddr,
    partition: &Partition,
) -> std::io::Result<(i16, BytesMut)> {
    let mut out = BytesMut::new();
    let encode_err = |_| invalid("encoding");
    match key {
        ApiKey::ApiVersions => {
            // Answered at v0 when the client asks for more than v3, as Kafka does.
            let v = version.min(3);
            let mut response = ApiVersionsResponse::default();
            // Produce is listed (never served): librdkafka enables record
            // batch v2 only for brokers that list Produce v3+ and Fetch v4+.
            for (api, min, max) in [
                (ApiKey::Produce, 3, 9),
                (ApiKey::ApiVersions, 0, 3),
                (ApiKey::Metadata, 0, 9),
                (ApiKey::ListOffsets, 1, 5),
                (ApiKey::Fetch, 4, 11),
            ] {
                let mut entry = ApiVersion::default();
                entry.api_key = api as i16;
                entry.min_version = min;
                entry.max_version = max;
                response.api_keys.push(entry);
            }
            response.error_code = if version > 3 { 35 } else { 0 };
            let v = if version > 3 { 0 } else { v };
            response.encode(&mut out, v).map_err(encode_err)?;
            Ok((v, out))
        }
        ApiKey::Metadata => {
            let mut broker = MetadataResponseBroker::default();
            broker.node_id = BrokerId(0);
            broker.host = StrBytes::from_string(addr.ip().to_string());
            broker.port = i32::from(addr.port());
            let mut p = MetadataResponsePartition::default();
            p.leader_id = BrokerId(0);
            p.replica_nodes = vec![BrokerId(0)];
            p.isr_nodes = vec![BrokerId(0)];
            let mut topic = MetadataResponseTopic::default();
            topic.name = Some(TopicName(StrBytes::from_string(partition.topic.clone())));
            topic.partitions = vec![p];
            let mut response = MetadataResponse::default();
            response.brokers = vec![broker];
            response.controller_id = BrokerId(0);
            response.topics = vec![topic];
            response.encode(&mut out, version).map_err(encode_err)?;
            Ok((version, out))
        }
        ApiKey::ListOffsets => {
            let request = ListOffsetsRequest::decode(&mut body, version).map_err(|_| invalid("ListOffsets"))?;
            let mut response = ListOffsetsResponse::default();
            for t in request.topics {
                let mut topic = ListOffsetsTopicResponse::default();
                topic.name = t.name;
                for p in t.partitions {
                    let mut answer = ListOffsetsPartitionResponse::default();
                    answer.partition_index = p.partition_index;
                    answer.offset = if p.timestamp == -2 { 0 } else { partition.end };
                    answer.timestamp = -1;
                    topic.partitions.push(answer);
                }
                response.topics.push(topic);
            }
            response.encode(&mut out, version).map_err(encode_err)?;
            Ok((version, out))
        }
        ApiKey::Fetch => {
            let request = FetchRequest::decode(&mut body, version).map_err(|_| invalid("Fetch"))?;
            let mut response = FetchResponse::default();
            for t in request.topics {
                let mut topic = FetchableTopicResponse::default();
                topic.topic = t.topic;
                for p in t.partitions {
                    let mut data = PartitionData::default();
                    data.partition_index = p.partition;
                    data.high_watermark = partition.end;
                    data.last_stable_offset = partition.end;
                    data.log_start_offset = 0;
                    let records = partition.read(p.fetch_offset.max(0) as u64, p.partition_max_bytes.max(0) as usize);
                    data.records = Some(records);
                    topic.partitions.push(data);
                }
                response.responses.push(topic);
            }
            response.encode(&mut out, version).map_err(encode_err)?;
            Ok((version, out))
        }
        _ => Err(invalid("an API the RAM broker does not serve")),
    }
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}
