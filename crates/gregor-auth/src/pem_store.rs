//! PEM keystores and truststores (`ssl.keystore.type=PEM`), read as Kafka
//! 3.9's `DefaultSslEngineFactory.PemStore` reads them, from a file or a
//! property's value (`ssl.keystore.key`, …).
//!
//! The blocks are found leniently, as Kafka's `PemParser` finds them:
//! text around them, any line width, CRLF, even a value whose lines a
//! properties file joined. A keystore holds exactly one private key; with
//! `ssl.key.password` it must be an encrypted PKCS#8 key (`-----BEGIN
//! ENCRYPTED PRIVATE KEY-----`), which the password decrypts; without one
//! it must not be encrypted (PKCS#8, and as before also PKCS#1 and SEC1).
//! An unencrypted key given a password is refused, as Kafka refuses it.
//!
//! Decryption is the RustCrypto `pkcs8` crate's (PBES2: PBKDF2 with
//! HMAC-SHA1/SHA-2 or scrypt, then AES-CBC — what `openssl pkcs8 -topk8
//! -v2 aes-256-cbc`, OpenSSL 3's default and Python cryptography's
//! `BestAvailableEncryption` write).

use base64::Engine;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};

use crate::AuthError;

/// The PEM label of an encrypted PKCS#8 key.
const ENCRYPTED: &str = "ENCRYPTED PRIVATE KEY";

/// How to encrypt a key so gregor (and Kafka) read it.
const HOW_TO_ENCRYPT: &str = "openssl pkcs8 -topk8 -v2 aes-256-cbc";

/// One `-----BEGIN <label>-----` … `-----END <label>-----` block.
struct PemBlock<'a> {
    label: &'a str,
    /// What stands between the boundaries.
    inner: &'a str,
}

impl PemBlock<'_> {
    /// The DER bytes the block's base64 holds.
    fn der(&self, origin: &str) -> Result<Vec<u8>, AuthError> {
        let base64: String = self.inner.split_whitespace().collect();
        base64::engine::general_purpose::STANDARD
            .decode(base64.as_bytes())
            .map_err(|e| AuthError::Config(format!("{origin}: the {} is not valid base64: {e}", self.label)))
    }
}

/// The PEM blocks of `pem`, in order; an error for a block that does not end.
fn pem_blocks<'a>(pem: &'a str, origin: &str) -> Result<Vec<PemBlock<'a>>, AuthError> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut at = 0;
    while let Some(found) = pem[at..].find(BEGIN) {
        let label_start = at + found + BEGIN.len();
        let label_len = pem[label_start..]
            .find("-----")
            .ok_or_else(|| AuthError::Config(format!("{origin}: a PEM block that does not end")))?;
        let label = pem[label_start..label_start + label_len].trim();
        let inner_start = label_start + label_len + "-----".len();
        let end_marker = format!("-----END {label}-----");
        let inner_len = pem[inner_start..].find(&end_marker).ok_or_else(|| {
            AuthError::Config(format!(
                "{origin}: the PEM block \"BEGIN {label}\" has no \"END {label}\" line"
            ))
        })?;
        blocks.push(PemBlock {
            label,
            inner: &pem[inner_start..inner_start + inner_len],
        });
        at = inner_start + inner_len + end_marker.len();
    }
    Ok(blocks)
}

/// The certificates in `pem` (`origin` names it in errors), in order; at
/// least one.
pub(crate) fn certificates(pem: &str, origin: &str) -> Result<Vec<CertificateDer<'static>>, AuthError> {
    let certs = pem_blocks(pem, origin)?
        .iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| b.der(origin).map(CertificateDer::from))
        .collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(AuthError::Config(format!("no PEM certificate in {origin}")));
    }
    Ok(certs)
}

/// The private key in `pem` (a keystore's text; `origin` names it in
/// errors), decrypted with `password` when it is encrypted.
pub(crate) fn private_key(
    pem: &str,
    origin: &str,
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, AuthError> {
    let blocks = pem_blocks(pem, origin)?;
    let mut keys = blocks.iter().filter(|b| b.label.ends_with("PRIVATE KEY"));
    let key = keys
        .next()
        .ok_or_else(|| AuthError::Config(format!("no private key in {origin}")))?;
    let more = keys.count();
    if more > 0 {
        return Err(AuthError::Config(format!(
            "{origin}: expected one private key, found {}",
            more + 1
        )));
    }
    if key.label == ENCRYPTED {
        return match password {
            Some(password) => decrypt(key, origin, password),
            None => Err(AuthError::Config(format!(
                "the private key in {origin} is encrypted (BEGIN {ENCRYPTED}): set ssl.key.password"
            ))),
        };
    }
    if key.inner.contains("Proc-Type:") {
        // OpenSSL's traditional encryption (`openssl rsa -aes256`): not
        // PKCS#8, which Kafka does not read either.
        return Err(AuthError::Config(format!(
            "the private key in {origin} is encrypted the traditional OpenSSL way (Proc-Type, DEK-Info), \
             which Kafka does not read either: make it an encrypted PKCS#8 key with `{HOW_TO_ENCRYPT}`"
        )));
    }
    if password.is_some() {
        return Err(AuthError::Config(format!(
            "ssl.key.password is set, but the private key in {origin} is not encrypted (BEGIN {}); \
             Kafka refuses this too: remove ssl.key.password, or encrypt the key with `{HOW_TO_ENCRYPT}`",
            key.label
        )));
    }
    let der = key.der(origin)?;
    match key.label {
        "PRIVATE KEY" => Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))),
        "RSA PRIVATE KEY" => Ok(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der))),
        "EC PRIVATE KEY" => Ok(PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der))),
        other => Err(AuthError::Config(format!(
            "{origin}: a {other} is not a key gregor reads (PKCS#8, PKCS#1 RSA or SEC1 EC, PEM)"
        ))),
    }
}

/// The PKCS#8 key an `ENCRYPTED PRIVATE KEY` block holds.
fn decrypt(block: &PemBlock<'_>, origin: &str, password: &str) -> Result<PrivateKeyDer<'static>, AuthError> {
    let der = block.der(origin)?;
    let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice()).map_err(|e| {
        AuthError::Config(format!(
            "the encrypted private key in {origin} is not one gregor can decrypt ({e}): gregor reads \
             PBES2 keys (PBKDF2 or scrypt, AES-CBC); re-encrypt it with `{HOW_TO_ENCRYPT}`"
        ))
    })?;
    let decrypted = match encrypted.decrypt(password.as_bytes()) {
        Ok(decrypted) => decrypted,
        Err(pkcs8::Error::EncryptedPrivateKey(
            e @ (pkcs8::pkcs5::Error::UnsupportedAlgorithm { .. }
            | pkcs8::pkcs5::Error::AlgorithmParametersInvalid { .. }
            | pkcs8::pkcs5::Error::NoPbes1CryptSupport),
        )) => {
            return Err(AuthError::Config(format!(
                "the encrypted private key in {origin} uses an encryption gregor does not decrypt ({e}): \
                 gregor reads PBES2 keys (PBKDF2 or scrypt, AES-CBC); re-encrypt it with `{HOW_TO_ENCRYPT}`"
            )))
        }
        Err(_) => return Err(wrong_password(origin)),
    };
    // A wrong password almost always fails the padding check above; the
    // rare one that passes it leaves bytes that are not a PKCS#8 key.
    pkcs8::PrivateKeyInfo::try_from(decrypted.as_bytes()).map_err(|_| wrong_password(origin))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        decrypted.as_bytes().to_vec(),
    )))
}

fn wrong_password(origin: &str) -> AuthError {
    AuthError::Config(format!(
        "ssl.key.password does not decrypt the private key in {origin} (a wrong password?)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    /// Made with the openssl CLI (see testdata/README.md).
    const PLAIN: &str = include_str!("../testdata/key.pem");
    const PASSWORD: &str = "key-password-1";

    /// The key as rustls's own PEM parser reads it.
    fn plain_der() -> Vec<u8> {
        PrivateKeyDer::from_pem_slice(PLAIN.as_bytes())
            .unwrap()
            .secret_der()
            .to_vec()
    }

    #[test]
    fn openssl_encrypted_keys_decrypt_to_the_same_key() {
        for (name, pem) in [
            ("pbkdf2-aes256", include_str!("../testdata/key-pbkdf2-aes256.pem")),
            ("scrypt", include_str!("../testdata/key-scrypt.pem")),
            ("sha1prf-aes128", include_str!("../testdata/key-sha1prf-aes128.pem")),
        ] {
            let key = private_key(pem, name, Some(PASSWORD)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(matches!(key, PrivateKeyDer::Pkcs8(_)), "{name}");
            assert_eq!(key.secret_der(), plain_der().as_slice(), "{name}");
        }
    }

    #[test]
    fn a_wrong_password_is_a_config_error_naming_the_file() {
        let pem = include_str!("../testdata/key-pbkdf2-aes256.pem");
        for wrong in ["key-password-2", "", "KEY-PASSWORD-1"] {
            let e = private_key(pem, "/etc/kafka/broker.pem", Some(wrong)).unwrap_err();
            assert_eq!(
                e.to_string(),
                "security configuration: ssl.key.password does not decrypt the private key in \
                 /etc/kafka/broker.pem (a wrong password?)"
            );
        }
    }

    #[test]
    fn an_encrypted_key_without_a_password_asks_for_one() {
        let pem = include_str!("../testdata/key-scrypt.pem");
        let e = private_key(pem, "/etc/kafka/broker.pem", None).unwrap_err().to_string();
        assert!(e.contains("/etc/kafka/broker.pem is encrypted"), "{e}");
        assert!(e.contains("set ssl.key.password"), "{e}");
    }

    #[test]
    fn an_unencrypted_key_with_a_password_is_refused_as_kafka_does() {
        let e = private_key(PLAIN, "/etc/kafka/broker.pem", Some(PASSWORD))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ssl.key.password is set, but the private key in /etc/kafka/broker.pem is not encrypted"),
            "{e}"
        );
    }

    #[test]
    fn unsupported_encryptions_are_named() {
        // PKCS#12's PBE-SHA1-3DES (Kafka's own test key) and OpenSSL's
        // traditional PEM encryption.
        let e = private_key(
            include_str!("../testdata/key-pbe-sha1-3des.pem"),
            "k.pem",
            Some(PASSWORD),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("not one gregor can decrypt") || e.contains("does not decrypt ("),
            "{e}"
        );
        assert!(e.contains(HOW_TO_ENCRYPT), "{e}");
        let e = private_key(include_str!("../testdata/key-traditional.pem"), "k.pem", Some(PASSWORD))
            .unwrap_err()
            .to_string();
        assert!(e.contains("traditional OpenSSL way"), "{e}");
    }

    #[test]
    fn blocks_are_found_among_other_text_and_line_endings() {
        let cert = include_str!("../testdata/cert.pem");
        let encrypted = include_str!("../testdata/key-pbkdf2-aes256.pem");
        // Kafka's test cases: text before the blocks, CRLF, blank lines,
        // and one long base64 line.
        let one_line: String = encrypted
            .lines()
            .map(|l| {
                if l.starts_with("-----") {
                    format!("\n{l}\n")
                } else {
                    l.to_string()
                }
            })
            .collect();
        let expected_cert: Vec<_> = CertificateDer::pem_slice_iter(cert.as_bytes())
            .map(Result::unwrap)
            .collect();
        assert_eq!(expected_cert.len(), 1);
        assert_eq!(certificates(cert, "cert.pem").unwrap(), expected_cert);
        for keystore in [
            format!("Bag Attributes\n    friendlyName: server\n{cert}Key Attributes: <No Attributes>\n{encrypted}"),
            format!("\n\n{cert}\n\n{encrypted}\n\n").replace('\n', "\r\n"),
            format!("{cert}{one_line}"),
            // A property's value whose lines a properties file joined.
            format!("{cert}{encrypted}").lines().collect::<String>(),
        ] {
            let key = private_key(&keystore, "ks.pem", Some(PASSWORD)).unwrap();
            assert_eq!(key.secret_der(), plain_der().as_slice());
            assert_eq!(certificates(&keystore, "ks.pem").unwrap(), expected_cert);
        }
        // The unencrypted key too, and a chain of two certificates.
        let joined = format!("{cert}{PLAIN}").lines().collect::<String>();
        assert_eq!(
            private_key(&joined, "v", None).unwrap().secret_der(),
            plain_der().as_slice()
        );
        assert_eq!(certificates(&format!("{cert}{cert}"), "v").unwrap().len(), 2);
        let e = certificates(PLAIN, "key.pem").unwrap_err().to_string();
        assert!(e.contains("no PEM certificate in key.pem"), "{e}");
    }

    #[test]
    fn one_key_exactly() {
        let e = private_key("", "ks.pem", None).unwrap_err().to_string();
        assert!(e.contains("no private key in ks.pem"), "{e}");
        let two = format!("{PLAIN}{PLAIN}");
        let e = private_key(&two, "ks.pem", None).unwrap_err().to_string();
        assert!(e.contains("expected one private key, found 2"), "{e}");
        let cut = &PLAIN[..PLAIN.len() - 20];
        assert!(private_key(cut, "ks.pem", None).is_err());
    }
}
