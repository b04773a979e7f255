//! TLS settings as Kafka names them (`ssl.keystore.*`, `ssl.key.password`,
//! `ssl.truststore.*`, `ssl.client.auth`) made into rustls configurations,
//! from PEM files or PEM text in the properties.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use crate::AuthError;

/// `ssl.client.auth`: whether a TLS client presents a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No certificate asked for (Kafka's default).
    #[default]
    None,
    /// Asked for; a client without one is anonymous.
    Requested,
    /// Required: a client without a trusted one fails the handshake.
    Required,
}

impl std::str::FromStr for ClientAuth {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "requested" => Ok(Self::Requested),
            "required" => Ok(Self::Required),
            other => Err(AuthError::Config(format!(
                "ssl.client.auth {other:?}: expected none, requested or required"
            ))),
        }
    }
}

/// A listener's TLS settings (PEM only, as `ssl.keystore.type=PEM`).
#[derive(Clone, Default)]
pub struct TlsSettings {
    /// `ssl.keystore.location`: the certificate chain and private key.
    pub keystore: Option<PathBuf>,
    /// `ssl.keystore.certificate.chain`: the certificate chain as PEM text
    /// (with `keystore_key`, instead of a keystore file).
    pub keystore_certificate_chain: Option<String>,
    /// `ssl.keystore.key`: the private key as PEM text.
    pub keystore_key: Option<String>,
    /// `ssl.key.password`: the password of an encrypted PKCS#8 private key
    /// in the keystore (Kafka's rules: see [`server_config`]).
    pub key_password: Option<String>,
    /// `ssl.truststore.location`: CA certificates.
    pub truststore: Option<PathBuf>,
    /// `ssl.truststore.certificates`: CA certificates as PEM text.
    pub truststore_certificates: Option<String>,
    /// `ssl.client.auth`.
    pub client_auth: ClientAuth,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "[hidden]");
        f.debug_struct("TlsSettings")
            .field("keystore", &self.keystore)
            .field("keystore_certificate_chain", &self.keystore_certificate_chain.is_some())
            .field("keystore_key", &hidden(&self.keystore_key))
            .field("key_password", &hidden(&self.key_password))
            .field("truststore", &self.truststore)
            .field("truststore_certificates", &self.truststore_certificates.is_some())
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

fn config_error(message: &str) -> AuthError {
    AuthError::Config(message.to_string())
}

impl TlsSettings {
    /// Where the keystore's certificate chain and private key are, by
    /// Kafka's rules: `ssl.keystore.location`, or `ssl.keystore.key` with
    /// `ssl.keystore.certificate.chain` (not both ways, not one half);
    /// `None` without a keystore.
    pub fn keystore_sources(&self) -> Result<Option<(PemSource<'_>, PemSource<'_>)>, AuthError> {
        match (&self.keystore_key, &self.keystore_certificate_chain, &self.keystore) {
            (Some(_), _, Some(_)) => Err(config_error(
                "both ssl.keystore.location and ssl.keystore.key are set: give one",
            )),
            (Some(key), Some(chain), None) => Ok(Some((
                PemSource::Inline("ssl.keystore.certificate.chain", chain),
                PemSource::Inline("ssl.keystore.key", key),
            ))),
            (Some(_), None, None) => Err(config_error(
                "ssl.keystore.key is set, but ssl.keystore.certificate.chain is not",
            )),
            (None, Some(_), _) => Err(config_error(
                "ssl.keystore.certificate.chain is set, but ssl.keystore.key is not",
            )),
            (None, None, Some(path)) => Ok(Some((PemSource::File(path), PemSource::File(path)))),
            (None, None, None) => Ok(None),
        }
    }

    /// Where the truststore's CA certificates are: `ssl.truststore.location`
    /// or `ssl.truststore.certificates` (not both); `None` without one.
    pub fn truststore_source(&self) -> Result<Option<PemSource<'_>>, AuthError> {
        match (&self.truststore_certificates, &self.truststore) {
            (Some(_), Some(_)) => Err(config_error(
                "both ssl.truststore.location and ssl.truststore.certificates are set: give one",
            )),
            (Some(certs), None) => Ok(Some(PemSource::Inline("ssl.truststore.certificates", certs))),
            (None, Some(path)) => Ok(Some(PemSource::File(path))),
            (None, None) => Ok(None),
        }
    }

    /// The keystore as a TLS client's own certificate (a broker towards
    /// the others); `None` without a keystore.
    pub fn client_identity(&self) -> Result<Option<ClientIdentity<'_>>, AuthError> {
        Ok(self.keystore_sources()?.map(|(chain, key)| ClientIdentity {
            certificate_chain: chain,
            private_key: key,
            key_password: self.key_password.as_deref(),
        }))
    }
}

/// PEM text: a file's, or a property's value.
#[derive(Clone, Copy)]
pub enum PemSource<'a> {
    /// A PEM file (`ssl.keystore.location`, `ssl.truststore.location`, …).
    File(&'a Path),
    /// The value of the property named (`ssl.keystore.key`, …).
    Inline(&'static str, &'a str),
}

impl PemSource<'_> {
    /// The PEM text.
    fn text(&self) -> Result<String, AuthError> {
        match self {
            Self::File(path) => {
                std::fs::read_to_string(path).map_err(|e| AuthError::Config(format!("reading {}: {e}", path.display())))
            }
            Self::Inline(_, pem) => Ok(pem.to_string()),
        }
    }

    /// How errors name it: the file, or the property.
    fn origin(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Inline(property, _) => (*property).to_string(),
        }
    }

    fn same_file(&self, other: &PemSource<'_>) -> bool {
        match (self, other) {
            (PemSource::File(a), PemSource::File(b)) => a == b,
            _ => false,
        }
    }
}

/// A TLS client's own certificate, for listeners that ask for one (mTLS):
/// its certificate chain and private key (the same file twice for a PEM
/// keystore) and `ssl.key.password` for an encrypted key.
#[derive(Clone, Copy)]
pub struct ClientIdentity<'a> {
    /// The certificate chain, PEM.
    pub certificate_chain: PemSource<'a>,
    /// The private key, PEM.
    pub private_key: PemSource<'a>,
    /// The password of an encrypted private key.
    pub key_password: Option<&'a str>,
}

/// A certificate chain and its private key, checked by the keystore's
/// rules (the file read once when both are in it).
fn certified_key(
    chain: PemSource<'_>,
    key: PemSource<'_>,
    password: Option<&str>,
) -> Result<(Vec<CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>), AuthError> {
    let key_pem = key.text()?;
    // The key first: its errors say more than a certificate's.
    let private_key = crate::pem_store::private_key(&key_pem, &key.origin(), password)?;
    let chain_pem = if chain.same_file(&key) { key_pem } else { chain.text()? };
    let certificates = crate::pem_store::certificates(&chain_pem, &chain.origin())?;
    Ok((certificates, private_key))
}

/// Where a certified key's errors point: the keystore, or both properties.
fn certified_key_origin(chain: PemSource<'_>, key: PemSource<'_>) -> String {
    if chain.same_file(&key) {
        key.origin()
    } else {
        format!("{} and {}", chain.origin(), key.origin())
    }
}

/// The CA certificates of a PEM truststore.
fn roots(source: PemSource<'_>) -> Result<RootCertStore, AuthError> {
    let origin = source.origin();
    let mut roots = RootCertStore::empty();
    for cert in crate::pem_store::certificates(&source.text()?, &origin)? {
        roots
            .add(cert)
            .map_err(|e| AuthError::Config(format!("a CA certificate in {origin}: {e}")))?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls server configuration of a TLS listener. The keystore holds
/// the certificate chain and one private key; as Kafka's PEM keystore,
/// with `ssl.key.password` the key must be an encrypted PKCS#8 key
/// (`BEGIN ENCRYPTED PRIVATE KEY`, PBES2) the password decrypts, without
/// it an unencrypted one. Anything else is a configuration error naming
/// the file (or property).
pub fn server_config(settings: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, AuthError> {
    let (chain_source, key_source) = settings.keystore_sources()?.ok_or_else(|| {
        config_error(
            "a TLS listener needs ssl.keystore.location (or ssl.keystore.key with ssl.keystore.certificate.chain), PEM",
        )
    })?;
    let (chain, key) = certified_key(chain_source, key_source, settings.key_password.as_deref())?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| AuthError::Config(e.to_string()))?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let truststore = settings.truststore_source()?.ok_or_else(|| {
                config_error(
                    "ssl.client.auth requested/required needs ssl.truststore.location (or ssl.truststore.certificates)",
                )
            })?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(truststore)?), provider());
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| AuthError::Config(format!("the client certificate verifier: {e}")))?,
            )
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        AuthError::Config(format!(
            "the certificate and key in {}: {e}",
            certified_key_origin(chain_source, key_source)
        ))
    })?;
    // Kernel TLS takes the session's keys from rustls after the handshake.
    config.enable_secret_extraction = true;
    Ok(Arc::new(config))
}

/// The rustls client configuration towards a TLS listener: the servers
/// are checked against `truststore` (PEM CAs); `identity`, when given, is
/// the client's own certificate for mTLS (its key read by the keystore's
/// rules, see [`server_config`]).
pub fn client_config(
    truststore: PemSource<'_>,
    identity: Option<ClientIdentity<'_>>,
) -> Result<Arc<rustls::ClientConfig>, AuthError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| AuthError::Config(e.to_string()))?
        .with_root_certificates(roots(truststore)?);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let (chain, key) = certified_key(identity.certificate_chain, identity.private_key, identity.key_password)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                AuthError::Config(format!(
                    "the client certificate and key in {}: {e}",
                    certified_key_origin(identity.certificate_chain, identity.private_key)
                ))
            })?
        }
    };
    Ok(Arc::new(config))
}

/// A TLS listener's server configuration, made again from its files when
/// they change (a renewed certificate or CA needs no restart). The files'
/// modification times are looked at, at most once a second, when a
/// connection arrives.
pub struct ReloadingServerConfig {
    settings: TlsSettings,
    state: std::sync::Mutex<ReloadState>,
}

struct ReloadState {
    config: Arc<rustls::ServerConfig>,
    stamps: Vec<Option<std::time::SystemTime>>,
    checked: std::time::Instant,
}

/// How often the files are looked at, at most.
const RELOAD_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl ReloadingServerConfig {
    /// Reads the files now (an error if they are wrong).
    pub fn new(settings: TlsSettings) -> Result<Self, AuthError> {
        let config = server_config(&settings)?;
        let stamps = stamps(&settings);
        Ok(Self {
            settings,
            state: std::sync::Mutex::new(ReloadState {
                config,
                stamps,
                checked: std::time::Instant::now(),
            }),
        })
    }

    /// The configuration for a new connection: made again if a file
    /// changed. A change that does not load keeps the previous one and
    /// gives its error (the caller reports it; it is tried again once the
    /// files change anew).
    pub fn current(&self) -> (Arc<rustls::ServerConfig>, Option<AuthError>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() < RELOAD_CHECK {
            return (state.config.clone(), None);
        }
        state.checked = std::time::Instant::now();
        let now = stamps(&self.settings);
        if now == state.stamps {
            return (state.config.clone(), None);
        }
        state.stamps = now;
        match server_config(&self.settings) {
            Ok(config) => {
                state.config = config;
                (state.config.clone(), None)
            }
            Err(e) => (state.config.clone(), Some(e)),
        }
    }
}

/// The modification times of the keystore and truststore.
fn stamps(settings: &TlsSettings) -> Vec<Option<std::time::SystemTime>> {
    [settings.keystore.as_deref(), settings.truststore.as_deref()]
        .into_iter()
        .map(|p| p.and_then(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()))
        .collect()
}

#[cfg(test)]
mod tests;
