//! The TLS configurations with encrypted keys, in memory.

use super::*;
use std::path::{Path, PathBuf};

/// Made with the openssl CLI (see testdata/README.md): a self-signed
/// certificate for localhost and its P-256 key, unencrypted and
/// encrypted with PASSWORD.
const CERT: &str = include_str!("../../testdata/cert.pem");
const KEY: &str = include_str!("../../testdata/key.pem");
const ENCRYPTED_KEY: &str = include_str!("../../testdata/key-pbkdf2-aes256.pem");
const PASSWORD: &str = "key-password-1";

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn settings(keystore: &Path, password: Option<&str>) -> TlsSettings {
    TlsSettings {
        keystore: Some(keystore.to_path_buf()),
        key_password: password.map(str::to_string),
        ..TlsSettings::default()
    }
}

/// Drives a TLS handshake between the two configurations in memory.
fn handshake(server: Arc<rustls::ServerConfig>, client: Arc<rustls::ClientConfig>) -> Result<(), rustls::Error> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut client = rustls::ClientConnection::new(client, name)?;
    let mut server = rustls::ServerConnection::new(server)?;
    for _ in 0..10 {
        let mut bytes = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut bytes).unwrap();
        }
        let mut reader = bytes.as_slice();
        while !reader.is_empty() {
            server.read_tls(&mut reader).unwrap();
            server.process_new_packets()?;
        }
        let mut bytes = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut bytes).unwrap();
        }
        let mut reader = bytes.as_slice();
        while !reader.is_empty() {
            client.read_tls(&mut reader).unwrap();
            client.process_new_packets()?;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    panic!("the handshake did not finish");
}

#[test]
fn a_listener_serves_with_an_encrypted_key_and_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let keystore = write(&dir, "broker.pem", &format!("{CERT}{ENCRYPTED_KEY}"));
    let truststore = write(&dir, "ca.pem", CERT);
    let server = server_config(&settings(&keystore, Some(PASSWORD))).unwrap();
    handshake(server, client_config(PemSource::File(&truststore), None).unwrap()).unwrap();
}

#[test]
fn listener_key_errors_name_the_keystore() {
    let dir = tempfile::tempdir().unwrap();
    let keystore = write(&dir, "broker.pem", &format!("{CERT}{ENCRYPTED_KEY}"));
    let shown = keystore.display().to_string();
    let wrong = server_config(&settings(&keystore, Some("not-it")))
        .unwrap_err()
        .to_string();
    assert!(
        wrong.contains(&format!("ssl.key.password does not decrypt the private key in {shown}")),
        "{wrong}"
    );
    let missing = server_config(&settings(&keystore, None)).unwrap_err().to_string();
    assert!(
        missing.contains(&format!("the private key in {shown} is encrypted")),
        "{missing}"
    );
    assert!(missing.contains("set ssl.key.password"), "{missing}");
    let plain = write(&dir, "plain.pem", &format!("{CERT}{KEY}"));
    let refused = server_config(&settings(&plain, Some(PASSWORD)))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("is not encrypted"), "{refused}");
    assert!(refused.contains(&plain.display().to_string()), "{refused}");
    // The unencrypted key without a password still serves.
    server_config(&settings(&plain, None)).unwrap();
}

#[test]
fn a_decrypted_key_must_match_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let keystore = write(&dir, "broker.pem", &format!("{}{ENCRYPTED_KEY}", other.cert.pem()));
    let e = server_config(&settings(&keystore, Some(PASSWORD)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("the certificate and key in"), "{e}");
}

/// A new self-signed certificate with its key encrypted by the `pkcs8`
/// crate (PBKDF2-SHA256, AES-256-CBC) under `password`, as a keystore.
fn encrypted_keystore(password: &str) -> (String, String) {
    use base64::Engine;
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let der = made.key_pair.serialize_der();
    let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &[7u8; 16], &[9u8; 16]).unwrap();
    let encrypted = pkcs8::PrivateKeyInfo::try_from(der.as_slice())
        .unwrap()
        .encrypt_with_params(params, password)
        .unwrap();
    let key = format!(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{}\n-----END ENCRYPTED PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(encrypted.as_bytes())
    );
    let cert = made.cert.pem();
    (cert.clone(), format!("{cert}{key}"))
}

#[test]
fn a_renewed_encrypted_keystore_is_read_with_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let keystore = write(&dir, "broker.pem", &format!("{CERT}{ENCRYPTED_KEY}"));
    let reloading = ReloadingServerConfig::new(settings(&keystore, Some(PASSWORD))).unwrap();
    let (first, _) = reloading.current();
    let (new_cert, renewed) = encrypted_keystore(PASSWORD);
    let renewed_path = write(&dir, "renewed.pem", &renewed);
    std::fs::rename(&renewed_path, &keystore).unwrap();
    // Files are looked at once a second at most: poll.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let config = loop {
        let (config, error) = reloading.current();
        assert!(error.is_none(), "{error:?}");
        if !Arc::ptr_eq(&config, &first) {
            break config;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed keystore was not read"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // The new certificate (and its decrypted key) serve.
    let truststore = write(&dir, "new-ca.pem", &new_cert);
    handshake(config, client_config(PemSource::File(&truststore), None).unwrap()).unwrap();
}

#[test]
fn a_client_presents_a_certificate_with_an_encrypted_key() {
    let dir = tempfile::tempdir().unwrap();
    let keystore = write(&dir, "client.pem", &format!("{CERT}{ENCRYPTED_KEY}"));
    let truststore = write(&dir, "ca.pem", CERT);
    let server = server_config(&TlsSettings {
        keystore: Some(write(&dir, "broker.pem", &format!("{CERT}{KEY}"))),
        truststore: Some(truststore.clone()),
        client_auth: ClientAuth::Required,
        ..TlsSettings::default()
    })
    .unwrap();
    let identity = |password| ClientIdentity {
        certificate_chain: PemSource::File(&keystore),
        private_key: PemSource::File(&keystore),
        key_password: password,
    };
    let client = client_config(PemSource::File(&truststore), Some(identity(Some(PASSWORD)))).unwrap();
    handshake(server.clone(), client).unwrap();
    // Without the client's certificate the server refuses.
    assert!(handshake(server, client_config(PemSource::File(&truststore), None).unwrap()).is_err());
    let e = client_config(PemSource::File(&truststore), Some(identity(Some("wrong"))))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains(&format!("does not decrypt the private key in {}", keystore.display())),
        "{e}"
    );
}

#[test]
fn the_password_is_not_shown_by_debug() {
    let shown = format!("{:?}", settings(Path::new("k.pem"), Some("hunter2")));
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn a_keystore_and_truststore_given_as_pem_text() {
    let inline = TlsSettings {
        keystore_certificate_chain: Some(CERT.to_string()),
        keystore_key: Some(ENCRYPTED_KEY.to_string()),
        key_password: Some(PASSWORD.to_string()),
        truststore_certificates: Some(CERT.to_string()),
        client_auth: ClientAuth::Required,
        ..TlsSettings::default()
    };
    let server = server_config(&inline).unwrap();
    // The same settings make the client side (a broker towards the others).
    let client = client_config(
        inline.truststore_source().unwrap().unwrap(),
        inline.client_identity().unwrap(),
    )
    .unwrap();
    handshake(server, client).unwrap();
    let wrong = TlsSettings {
        key_password: Some("wrong".into()),
        ..inline.clone()
    };
    let e = server_config(&wrong).unwrap_err().to_string();
    assert!(
        e.contains("does not decrypt the private key in ssl.keystore.key"),
        "{e}"
    );
}

#[test]
fn a_keystore_is_given_one_way() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "broker.pem", &format!("{CERT}{KEY}"));
    let cases = [
        (
            TlsSettings {
                keystore: Some(file.clone()),
                keystore_certificate_chain: Some(CERT.into()),
                keystore_key: Some(KEY.into()),
                ..TlsSettings::default()
            },
            "both ssl.keystore.location and ssl.keystore.key are set",
        ),
        (
            TlsSettings {
                keystore_key: Some(KEY.into()),
                ..TlsSettings::default()
            },
            "ssl.keystore.key is set, but ssl.keystore.certificate.chain is not",
        ),
        (
            TlsSettings {
                keystore: Some(file.clone()),
                keystore_certificate_chain: Some(CERT.into()),
                ..TlsSettings::default()
            },
            "ssl.keystore.certificate.chain is set, but ssl.keystore.key is not",
        ),
        (
            TlsSettings {
                keystore: Some(file.clone()),
                truststore: Some(file.clone()),
                truststore_certificates: Some(CERT.into()),
                client_auth: ClientAuth::Required,
                ..TlsSettings::default()
            },
            "both ssl.truststore.location and ssl.truststore.certificates are set",
        ),
    ];
    for (settings, expected) in cases {
        let e = server_config(&settings).unwrap_err().to_string();
        assert!(e.contains(expected), "{e}");
    }
}
