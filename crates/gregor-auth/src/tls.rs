//! TLS settings as Kafka names them (`ssl.keystore.*`, `ssl.truststore.*`,
//! `ssl.client.auth`) made into rustls configurations, from PEM files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
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

/// A listener's TLS settings (PEM files only, as `ssl.keystore.type=PEM`).
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// `ssl.keystore.location`: the certificate chain and private key.
    pub keystore: Option<PathBuf>,
    /// `ssl.key.password`: an encrypted private key's password (refused:
    /// gregor reads unencrypted PEM keys only).
    pub key_password: Option<String>,
    /// `ssl.truststore.location`: CA certificates.
    pub truststore: Option<PathBuf>,
    /// `ssl.client.auth`.
    pub client_auth: ClientAuth,
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, AuthError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| AuthError::Config(format!("reading certificates from {}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| AuthError::Config(format!("reading certificates from {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(AuthError::Config(format!("no PEM certificate in {}", path.display())));
    }
    Ok(certs)
}

/// The CA certificates of a PEM truststore.
pub fn read_roots(path: &Path) -> Result<RootCertStore, AuthError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certificates(path)? {
        roots
            .add(cert)
            .map_err(|e| AuthError::Config(format!("a CA certificate in {}: {e}", path.display())))?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls server configuration of a TLS listener.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, AuthError> {
    let keystore = settings
        .keystore
        .as_deref()
        .ok_or_else(|| AuthError::Config("a TLS listener needs ssl.keystore.location (PEM)".into()))?;
    if settings.key_password.is_some() {
        return Err(AuthError::Config(
            "ssl.key.password: encrypted private keys are not supported; give an unencrypted PEM key".into(),
        ));
    }
    let chain = read_certificates(keystore)?;
    let key = PrivateKeyDer::from_pem_file(keystore)
        .map_err(|e| AuthError::Config(format!("reading the private key from {}: {e}", keystore.display())))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| AuthError::Config(e.to_string()))?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let truststore = settings.truststore.as_deref().ok_or_else(|| {
                AuthError::Config("ssl.client.auth requested/required needs ssl.truststore.location".into())
            })?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(read_roots(truststore)?), provider());
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
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| AuthError::Config(format!("the certificate and key in {}: {e}", keystore.display())))?;
    Ok(Arc::new(config))
}

/// The rustls client configuration towards a TLS listener: the servers
/// are checked against `truststore` (PEM CAs); `identity`, when given,
/// names the PEM files of the client's own certificate chain and private
/// key (the same file twice for a PEM keystore) for mTLS.
pub fn client_config(
    truststore: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, AuthError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| AuthError::Config(e.to_string()))?
        .with_root_certificates(read_roots(truststore)?);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key_file)) => {
            let key = PrivateKeyDer::from_pem_file(key_file)
                .map_err(|e| AuthError::Config(format!("reading the private key from {}: {e}", key_file.display())))?;
            builder
                .with_client_auth_cert(read_certificates(cert)?, key)
                .map_err(|e| AuthError::Config(format!("the client certificate {}: {e}", cert.display())))?
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
