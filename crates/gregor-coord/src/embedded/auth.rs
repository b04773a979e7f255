//! Authentication of a connection to a [`super::CoordServer`] with a
//! shared secret: a mutual challenge–response with HMAC-SHA-256, so that
//! the secret itself never crosses the network and each side learns that
//! the other holds it.
//!
//! ```text
//! client → AuthStart { client nonce }            (32 random bytes)
//! server → AuthChallenge { server nonce,         (32 random bytes)
//!                          HMAC(secret, "gregor-coord server" ‖ cn ‖ sn) }
//! client → AuthProof { HMAC(secret, "gregor-coord client" ‖ cn ‖ sn) }
//! client → Hello | Resume                        (as without authentication)
//! ```
//!
//! Both nonces go into both proofs, so a recorded proof is worthless on
//! another connection; the two labels differ, so the server's proof can't
//! be replayed as a client's. Proofs are checked with the `hmac` crate's
//! constant-time `verify_slice`. What this does not do: encrypt the
//! connection or protect frames after the handshake — someone on the path
//! can still read the metadata or take over an authenticated connection;
//! keep the service on a trusted network (or a tunnel).

use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of each side's nonce.
pub(crate) const NONCE_LEN: usize = 32;

const SERVER_LABEL: &[u8] = b"gregor-coord server";
const CLIENT_LABEL: &[u8] = b"gregor-coord client";

/// Shortest secret accepted: 16 bytes (128 bits) of a random secret.
const MIN_SECRET_LEN: usize = 16;

/// The secret a coordination service and its clients share. Its `Debug`
/// does not show it.
#[derive(Clone)]
pub struct CoordSecret(Arc<[u8]>);

impl std::fmt::Debug for CoordSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoordSecret(..)")
    }
}

impl CoordSecret {
    /// A secret from its bytes; at least 16 of them.
    pub fn new(secret: impl AsRef<[u8]>) -> std::io::Result<Self> {
        let secret = secret.as_ref();
        if secret.len() < MIN_SECRET_LEN {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the coordination secret has {} bytes; it needs at least {MIN_SECRET_LEN}",
                    secret.len()
                ),
            ));
        }
        Ok(Self(secret.into()))
    }

    /// Reads the secret from a file: its contents, less trailing
    /// whitespace (a final newline an editor added is not part of it).
    pub fn from_file(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("reading {}: {e}", path.display())))?;
        let end = bytes
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        Self::new(&bytes[..end]).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    fn mac(&self, label: &[u8], client_nonce: &[u8], server_nonce: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length; new_from_slice cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(label);
        mac.update(client_nonce);
        mac.update(server_nonce);
        mac
    }

    /// The server's proof for this pair of nonces.
    pub(crate) fn server_proof(&self, client_nonce: &[u8], server_nonce: &[u8]) -> Vec<u8> {
        self.mac(SERVER_LABEL, client_nonce, server_nonce)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// The client's proof for this pair of nonces.
    pub(crate) fn client_proof(&self, client_nonce: &[u8], server_nonce: &[u8]) -> Vec<u8> {
        self.mac(CLIENT_LABEL, client_nonce, server_nonce)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Whether `proof` is the server's proof (constant time).
    pub(crate) fn verify_server(&self, client_nonce: &[u8], server_nonce: &[u8], proof: &[u8]) -> bool {
        self.mac(SERVER_LABEL, client_nonce, server_nonce)
            .verify_slice(proof)
            .is_ok()
    }

    /// Whether `proof` is the client's proof (constant time).
    pub(crate) fn verify_client(&self, client_nonce: &[u8], server_nonce: &[u8], proof: &[u8]) -> bool {
        self.mac(CLIENT_LABEL, client_nonce, server_nonce)
            .verify_slice(proof)
            .is_ok()
    }
}

/// A fresh nonce from the operating system's generator.
pub(crate) fn nonce() -> Vec<u8> {
    let bytes: [u8; NONCE_LEN] = rand::random();
    bytes.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> CoordSecret {
        CoordSecret::new(s).unwrap()
    }

    #[test]
    fn the_right_secret_proves_both_ways_a_wrong_one_neither() {
        let (cn, sn) = (nonce(), nonce());
        let ours = secret("correct horse battery staple");
        let theirs = secret("correct horse battery stapl3");
        assert!(ours.verify_client(&cn, &sn, &ours.client_proof(&cn, &sn)));
        assert!(ours.verify_server(&cn, &sn, &ours.server_proof(&cn, &sn)));
        assert!(!ours.verify_client(&cn, &sn, &theirs.client_proof(&cn, &sn)));
        assert!(!ours.verify_server(&cn, &sn, &theirs.server_proof(&cn, &sn)));
    }

    #[test]
    fn a_proof_is_bound_to_its_nonces_and_its_side() {
        let s = secret("0123456789abcdef0123");
        let (cn, sn, other) = (nonce(), nonce(), nonce());
        let proof = s.client_proof(&cn, &sn);
        assert!(!s.verify_client(&cn, &other, &proof), "replayed on another connection");
        assert!(!s.verify_client(&other, &sn, &proof));
        // The server's proof is no client proof (a reflected challenge).
        assert!(!s.verify_client(&cn, &sn, &s.server_proof(&cn, &sn)));
        assert!(!s.verify_client(&cn, &sn, &proof[..16]), "a truncated proof");
    }

    #[test]
    fn a_secret_file_loses_its_final_newline_and_must_not_be_short() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        let from_file = CoordSecret::from_file(&path).unwrap();
        let (cn, sn) = (nonce(), nonce());
        assert!(from_file.verify_client(&cn, &sn, &secret("0123456789abcdef0123").client_proof(&cn, &sn)));
        std::fs::write(&path, "short\n").unwrap();
        let err = CoordSecret::from_file(&path).unwrap_err();
        assert!(err.to_string().contains("at least 16"), "{err}");
        assert!(CoordSecret::from_file(dir.path().join("missing")).is_err());
        assert_eq!(format!("{from_file:?}"), "CoordSecret(..)");
    }
}
