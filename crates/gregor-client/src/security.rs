//! How a client reaches a secured listener: TLS (rustls, PEM files) and
//! SASL (PLAIN, SCRAM-SHA-256/512), set with Kafka's client property names
//! (`security.protocol`, `sasl.mechanism`, `sasl.username`/`sasl.password`
//! or `sasl.jaas.config`, `ssl.ca.location`, `ssl.truststore.location`
//! or `ssl.truststore.certificates`, `ssl.certificate.location` +
//! `ssl.key.location` or `ssl.keystore.location` or `ssl.keystore.key` +
//! `ssl.keystore.certificate.chain`, `ssl.key.password` for an encrypted
//! PKCS#8 key), as Kafka's tools read `--command-config`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use gregor_auth::sasl::{JaasConfig, Mechanism};
use gregor_auth::tls::PemSource;
use gregor_auth::{ClientIdentity, SecurityProtocol, TlsSettings};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::ClientError;

/// The SASL identity a client authenticates with.
#[derive(Debug, Clone)]
pub struct SaslCredentials {
    /// PLAIN or a SCRAM.
    pub mechanism: Mechanism,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

/// A client's security: plaintext by default.
#[derive(Clone, Default)]
pub struct ClientSecurity {
    /// TLS towards the broker (SSL and SASL_SSL).
    pub tls: Option<Arc<gregor_auth::rustls::ClientConfig>>,
    /// SASL after connecting (SASL_PLAINTEXT and SASL_SSL).
    pub sasl: Option<SaslCredentials>,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("tls", &self.tls.is_some())
            .field(
                "sasl",
                &self.sasl.as_ref().map(|s| (s.mechanism.name(), s.username.clone())),
            )
            .finish()
    }
}

fn config_error(message: String) -> ClientError {
    ClientError::Protocol(format!("client security: {message}"))
}

/// Reads a Java-style properties file: `key=value` (or `key: value`)
/// lines, `#` and `!` comments, a trailing `\` continuing a line.
pub fn read_properties(path: &Path) -> Result<BTreeMap<String, String>, ClientError> {
    let text = std::fs::read_to_string(path).map_err(|e| config_error(format!("reading {}: {e}", path.display())))?;
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!')) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            logical.push_str(continued);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let split = entry.find(['=', ':']).unwrap_or(entry.len());
        let (key, value) = entry.split_at(split);
        let value = value.get(1..).unwrap_or("");
        out.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(out)
}

impl ClientSecurity {
    /// The security Kafka's client properties describe.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Self, ClientError> {
        let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let protocol: SecurityProtocol = get("security.protocol")
            .unwrap_or("PLAINTEXT")
            .parse()
            .map_err(config_error)?;
        let mut security = ClientSecurity::default();
        if protocol.uses_tls() {
            for property in ["ssl.truststore.type", "ssl.keystore.type"] {
                if get(property).is_some_and(|t| !t.eq_ignore_ascii_case("PEM")) {
                    return Err(config_error(format!("{property}: only PEM is read")));
                }
            }
            // librdkafka's names (ssl.ca.location, ssl.certificate.location
            // + ssl.key.location) or the Java client's (ssl.truststore.*,
            // ssl.keystore.*, PEM files or PEM text).
            let settings = TlsSettings {
                keystore: get("ssl.keystore.location").map(PathBuf::from),
                keystore_certificate_chain: get("ssl.keystore.certificate.chain").map(str::to_string),
                keystore_key: get("ssl.keystore.key").map(str::to_string),
                key_password: get("ssl.key.password").map(str::to_string),
                truststore: get("ssl.ca.location")
                    .or_else(|| get("ssl.truststore.location"))
                    .map(PathBuf::from),
                truststore_certificates: get("ssl.truststore.certificates").map(str::to_string),
                ..TlsSettings::default()
            };
            let auth_error = |e: gregor_auth::AuthError| config_error(e.to_string());
            let truststore = settings.truststore_source().map_err(auth_error)?.ok_or_else(|| {
                config_error(
                    "TLS needs ssl.ca.location (or ssl.truststore.location or ssl.truststore.certificates, PEM)".into(),
                )
            })?;
            let identity = match (get("ssl.certificate.location"), get("ssl.key.location")) {
                (Some(cert), Some(key)) => Some(ClientIdentity {
                    certificate_chain: PemSource::File(Path::new(cert)),
                    private_key: PemSource::File(Path::new(key)),
                    key_password: settings.key_password.as_deref(),
                }),
                (None, None) => settings.client_identity().map_err(auth_error)?,
                _ => {
                    return Err(config_error(
                        "a client certificate needs both ssl.certificate.location and ssl.key.location".into(),
                    ))
                }
            };
            let config = gregor_auth::tls::client_config(truststore, identity).map_err(auth_error)?;
            security.tls = Some(config);
        }
        if protocol.uses_sasl() {
            let name = get("sasl.mechanism").unwrap_or("GSSAPI").to_ascii_uppercase();
            let mechanism = Mechanism::from_name(&name)
                .ok_or_else(|| config_error(format!("sasl.mechanism {name}: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")))?;
            let (username, password) = match (get("sasl.username"), get("sasl.password"), get("sasl.jaas.config")) {
                (Some(u), Some(p), _) => (u.to_string(), p.to_string()),
                (_, _, Some(jaas)) => {
                    let jaas = JaasConfig::parse(jaas).map_err(|e| config_error(e.to_string()))?;
                    match (jaas.option("username"), jaas.option("password")) {
                        (Some(u), Some(p)) => (u.to_string(), p.to_string()),
                        _ => return Err(config_error("sasl.jaas.config needs username and password".into())),
                    }
                }
                _ => {
                    return Err(config_error(
                        "SASL needs sasl.username and sasl.password (or sasl.jaas.config)".into(),
                    ))
                }
            };
            security.sasl = Some(SaslCredentials {
                mechanism,
                username,
                password,
            });
        }
        Ok(security)
    }
}

/// The security of connections opened without one given
/// ([`crate::Connection::connect`]): a tool's `--command-config`.
static DEFAULT_SECURITY: std::sync::OnceLock<ClientSecurity> = std::sync::OnceLock::new();

/// Makes `security` the default of this process's connections (a tool
/// does this once, from its `--command-config`; brokers never do: they
/// name the inter-broker security on each connection). Later calls are
/// ignored.
pub fn install_default_security(security: ClientSecurity) {
    let _ = DEFAULT_SECURITY.set(security);
}

/// The process's default security (plaintext unless installed).
pub(crate) fn default_security() -> ClientSecurity {
    DEFAULT_SECURITY.get().cloned().unwrap_or_default()
}

/// A client connection's stream: plain TCP or TLS over TCP.
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// Connects `tcp` with TLS when `security` asks for it (the server's
    /// certificate checked for `host`).
    pub(crate) async fn establish(tcp: TcpStream, host: &str, security: &ClientSecurity) -> Result<Self, ClientError> {
        let Some(config) = &security.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let name = gregor_auth::rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| config_error(format!("{host:?} as a TLS server name: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_client_properties() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client.properties");
        std::fs::write(
            &file,
            "# a comment\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n  \
             username=\"bob\" password=\"pw\";\n",
        )
        .unwrap();
        let props = read_properties(&file).unwrap();
        let security = ClientSecurity::from_properties(&props).unwrap();
        let sasl = security.sasl.unwrap();
        assert_eq!((sasl.username.as_str(), sasl.password.as_str()), ("bob", "pw"));
        assert!(security.tls.is_none());
        let mut props = props;
        props.insert("security.protocol".into(), "SSL".into());
        assert!(ClientSecurity::from_properties(&props).is_err(), "TLS without a CA");
        props.insert("security.protocol".into(), "SASL_PLAINTEXT".into());
        props.insert("sasl.mechanism".into(), "GSSAPI".into());
        assert!(ClientSecurity::from_properties(&props).is_err());
    }

    #[test]
    fn an_encrypted_client_key_as_pem_text() {
        // gregor-auth's fixtures: a certificate and its key encrypted with
        // key-password-1 (see its testdata/README.md).
        let cert = include_str!("../../gregor-auth/testdata/cert.pem");
        let key = include_str!("../../gregor-auth/testdata/key-pbkdf2-aes256.pem");
        let mut props: BTreeMap<String, String> = [
            ("security.protocol", "SSL"),
            ("ssl.truststore.certificates", cert),
            ("ssl.keystore.certificate.chain", cert),
            ("ssl.keystore.key", key),
            ("ssl.key.password", "key-password-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(ClientSecurity::from_properties(&props).unwrap().tls.is_some());
        props.insert("ssl.key.password".into(), "wrong".into());
        let e = ClientSecurity::from_properties(&props).unwrap_err().to_string();
        assert!(
            e.contains("does not decrypt the private key in ssl.keystore.key"),
            "{e}"
        );
        props.remove("ssl.key.password");
        let e = ClientSecurity::from_properties(&props).unwrap_err().to_string();
        assert!(e.contains("is encrypted") && e.contains("set ssl.key.password"), "{e}");
    }
}
