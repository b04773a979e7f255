//! One TCP connection to a Kafka broker: requests out, responses in order.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::security::{ClientSecurity, Stream};

/// Responses larger than this are refused (a broken peer).
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Why a call failed. After any error the connection should be dropped.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, writing or reading failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The request could not be encoded, or the response decoded.
    #[error("protocol: {0}")]
    Protocol(String),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// The broker refused the request with a Kafka error.
    #[error("{error}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Broker {
        /// The Kafka error's name (`TopicAlreadyExists`, …).
        error: String,
        /// The broker's message, if any.
        message: String,
    },
}

impl ClientError {
    /// The error a Kafka error code stands for, with what was being done.
    pub fn from_code(code: i16, message: impl Into<String>) -> Self {
        let error = kafka_protocol::error::ResponseError::try_from_code(code)
            .map_or_else(|| format!("error code {code}"), |e| format!("{e:?}"));
        ClientError::Broker {
            error,
            message: message.into(),
        }
    }
}

/// Where to connect: a host and a port (from `"host:port"`, `(host,
/// port)` or a socket address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(pub String, pub u16);

impl From<&str> for Address {
    fn from(s: &str) -> Self {
        match s.rsplit_once(':') {
            Some((host, port)) => Address(
                host.trim_start_matches('[').trim_end_matches(']').to_string(),
                port.parse().unwrap_or(0),
            ),
            None => Address(s.to_string(), 0),
        }
    }
}

impl From<&String> for Address {
    fn from(s: &String) -> Self {
        Address::from(s.as_str())
    }
}

impl From<String> for Address {
    fn from(s: String) -> Self {
        Address::from(s.as_str())
    }
}

impl From<(&str, u16)> for Address {
    fn from((host, port): (&str, u16)) -> Self {
        Address(host.to_string(), port)
    }
}

impl From<std::net::SocketAddr> for Address {
    fn from(addr: std::net::SocketAddr) -> Self {
        Address(addr.ip().to_string(), addr.port())
    }
}

/// A connection to one broker. Calls are sequential: each waits for its
/// response, as a Kafka connection answers in request order.
pub struct Connection {
    stream: Stream,
    client_id: StrBytes,
    next_correlation: i32,
    timeout: Duration,
}

impl Connection {
    /// Connects to `addr` (`host:port`, or a `(host, port)` pair), naming
    /// itself `client_id`, with the process's default security (plaintext
    /// unless a tool installed its `--command-config`).
    pub async fn connect(addr: impl Into<Address>, client_id: &str) -> Result<Self, ClientError> {
        Self::connect_with(addr, client_id, &crate::security::default_security()).await
    }

    /// Connects to `addr` with `security`: TLS (the broker's certificate
    /// checked for the host name) and SASL authentication before it
    /// returns.
    pub async fn connect_with(
        addr: impl Into<Address>,
        client_id: &str,
        security: &ClientSecurity,
    ) -> Result<Self, ClientError> {
        let Address(host, port) = addr.into();
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let stream = tokio::time::timeout(Duration::from_secs(30), Stream::establish(tcp, &host, security))
            .await
            .map_err(|_| ClientError::Timeout)??;
        let mut connection = Self {
            stream,
            client_id: StrBytes::from_string(client_id.to_string()),
            next_correlation: 0,
            timeout: Duration::from_secs(30),
        };
        if let Some(sasl) = &security.sasl {
            connection.authenticate(sasl).await?;
        }
        Ok(connection)
    }

    /// SaslHandshake v1, then SaslAuthenticate v1 until the exchange ends.
    async fn authenticate(&mut self, credentials: &crate::security::SaslCredentials) -> Result<(), ClientError> {
        let mut client =
            gregor_auth::sasl::SaslClient::new(credentials.mechanism, &credentials.username, &credentials.password);
        let mut handshake = SaslHandshakeRequest::default();
        handshake.mechanism = StrBytes::from_static_str(client.mechanism_name());
        let answer = self.send(handshake, 1).await?;
        if answer.error_code != 0 {
            let offered: Vec<String> = answer.mechanisms.iter().map(|m| m.to_string()).collect();
            return Err(ClientError::from_code(
                answer.error_code,
                format!(
                    "SASL mechanism {} (the broker offers {})",
                    client.mechanism_name(),
                    offered.join(", ")
                ),
            ));
        }
        let mut token = client.first_token();
        loop {
            let mut request = SaslAuthenticateRequest::default();
            request.auth_bytes = Bytes::from(token);
            let answer = self.send(request, 1).await?;
            if answer.error_code != 0 {
                return Err(ClientError::from_code(
                    answer.error_code,
                    answer.error_message.map(|m| m.to_string()).unwrap_or_default(),
                ));
            }
            match client
                .respond(&answer.auth_bytes)
                .map_err(|e| ClientError::from_code(58, e.to_string()))?
            {
                Some(next) => token = next,
                None => return Ok(()),
            }
        }
    }

    /// Sets how long a call waits for its response (30 s by default).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Sends `request` at `version` and decodes its response.
    pub async fn send<R: Request>(&mut self, request: R, version: i16) -> Result<R::Response, ClientError> {
        let mut body = self
            .call(R::KEY, version, R::header_version(version), |out| {
                request.encode(out, version).map_err(|e| e.to_string())
            })
            .await?;
        let response_header = R::Response::header_version(version);
        ResponseHeader::decode(&mut body, response_header).map_err(|e| ClientError::Protocol(e.to_string()))?;
        R::Response::decode(&mut body, version).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Sends `request` at `version` and does not wait: for requests the
    /// broker answers with nothing (Produce with `acks=0`).
    pub async fn send_no_response<R: Request>(&mut self, request: R, version: i16) -> Result<(), ClientError> {
        let frame = self.frame(R::KEY, version, R::header_version(version), |out| {
            request.encode(out, version).map_err(|e| e.to_string())
        })?;
        self.stream.write_all(&frame.1).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Sends a request whose body `encode` writes (for message types from
    /// another codec version) and returns the response bytes, header
    /// included (its correlation id already checked).
    pub async fn call(
        &mut self,
        api_key: i16,
        api_version: i16,
        header_version: i16,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), String>,
    ) -> Result<Bytes, ClientError> {
        let (correlation_id, frame) = self.frame(api_key, api_version, header_version, encode)?;
        let exchange = async {
            self.stream.write_all(&frame).await?;
            self.stream.flush().await?;
            let size = self.stream.read_i32().await?;
            let size = usize::try_from(size)
                .ok()
                .filter(|&s| (4..=MAX_RESPONSE_BYTES).contains(&s))
                .ok_or_else(|| ClientError::Protocol(format!("response size {size}")))?;
            let mut body = vec![0u8; size];
            self.stream.read_exact(&mut body).await?;
            Ok::<_, ClientError>(Bytes::from(body))
        };
        let body = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout)??;
        let got = (&body[..4]).get_i32();
        if got != correlation_id {
            return Err(ClientError::Protocol(format!(
                "response for request {got}, expected {correlation_id}"
            )));
        }
        Ok(body)
    }

    /// A size-prefixed request frame and its correlation id.
    fn frame(
        &mut self,
        api_key: i16,
        api_version: i16,
        header_version: i16,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), String>,
    ) -> Result<(i32, BytesMut), ClientError> {
        let correlation_id = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let mut header = RequestHeader::default();
        header.request_api_key = api_key;
        header.request_api_version = api_version;
        header.correlation_id = correlation_id;
        header.client_id = Some(self.client_id.clone());
        let mut frame = BytesMut::with_capacity(256);
        frame.put_i32(0);
        header
            .encode(&mut frame, header_version)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        encode(&mut frame).map_err(ClientError::Protocol)?;
        let size = i32::try_from(frame.len() - 4).map_err(|_| ClientError::Protocol("request too large".into()))?;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        Ok((correlation_id, frame))
    }
}
