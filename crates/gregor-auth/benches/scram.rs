//! The broker's side of one SASL authentication (issue 16: "SCRAM
//! authentications per second on one core").
//!
//! `cargo bench -p gregor-auth --bench scram` (results: docs/PERFORMANCE.md).
//!
//! What a SASL listener runs per connection once SaslHandshake named the
//! mechanism — [`SaslExchange::start`], then `step` for each client token
//! until the user is authenticated — timed alone, one thread:
//!
//! - `broker/SCRAM-SHA-256`, `broker/SCRAM-SHA-512`: client-first →
//!   server-first (credential lookup, server nonce) → client-final (proof
//!   checked against the stored key) → server-final (server signature),
//!   credentials at 4096 iterations (Kafka's default for `kafka-configs`).
//!   The broker keeps only the salted keys, so it runs no PBKDF2; the
//!   client's work (its PBKDF2 — done once here, outside the loop, as a
//!   client that caches its salted password — and its proof and the check
//!   of the server's signature per exchange) is left out of the timing
//!   with `iter_custom`;
//! - `broker/PLAIN`: the one PLAIN message checked against the JAAS users;
//! - `client/SCRAM-SHA-*`: for scale, the client's whole side of one
//!   exchange with gregor's own SASL client, which salts the password
//!   (4096 PBKDF2 rounds) on every exchange as Kafka's clients do.
//!
//! Each iteration is one authentication: criterion's `elem/s` is
//! authentications per second on one core.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gregor_auth::sasl::{
    CredentialCache, Mechanism, SaslClient, SaslExchange, SaslServerConfig, ScramCredential, ScramMechanism, Step,
};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Kafka's default iterations for `kafka-configs --add-config SCRAM-…`.
const ITERATIONS: i32 = 4096;
const USER: &str = "bench-user";
const PASSWORD: &str = "bench-password";

fn hmac(m: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match m {
        ScramMechanism::Sha256 => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        ScramMechanism::Sha512 => {
            let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key).unwrap();
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(m: ScramMechanism, data: &[u8]) -> Vec<u8> {
    match m {
        ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
        ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
    }
}

/// A SCRAM client whose salted password is already known (computed once,
/// outside the timed part): per exchange it only builds its messages.
struct PrecomputedClient {
    mechanism: ScramMechanism,
    client_key: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl PrecomputedClient {
    fn new(mechanism: ScramMechanism, credential: &ScramCredential) -> Self {
        let salted = mechanism.salted_password(PASSWORD.as_bytes(), &credential.salt, ITERATIONS as u32);
        let client_key = hmac(mechanism, &salted, b"Client Key");
        Self {
            mechanism,
            stored_key: hash(mechanism, &client_key),
            server_key: hmac(mechanism, &salted, b"Server Key"),
            client_key,
        }
    }

    /// client-first, with a fresh nonce: (the message, its bare part).
    fn first(&self) -> (Vec<u8>, String) {
        let nonce: [u8; 24] = rand::random();
        let bare = format!("n={USER},r={}", B64.encode(nonce));
        (format!("n,,{bare}").into_bytes(), bare)
    }

    /// client-final for `server_first`, and the server-final expected.
    fn last(&self, bare: &str, server_first: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let server_first = std::str::from_utf8(server_first).unwrap();
        let combined = server_first.split(',').find_map(|f| f.strip_prefix("r=")).unwrap();
        let without_proof = format!("c=biws,r={combined}");
        let auth = format!("{bare},{server_first},{without_proof}");
        let signature = hmac(self.mechanism, &self.stored_key, auth.as_bytes());
        let proof: Vec<u8> = self.client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        let verifier = hmac(self.mechanism, &self.server_key, auth.as_bytes());
        (
            format!("{without_proof},p={}", B64.encode(proof)).into_bytes(),
            format!("v={}", B64.encode(verifier)).into_bytes(),
        )
    }
}

/// A listener's SASL settings: PLAIN and both SCRAMs, the bench user among
/// 1,000 SCRAM users.
fn config() -> Arc<SaslServerConfig> {
    let cache = CredentialCache::new();
    // Other users' credentials: only their presence matters (a lookup in a
    // map of realistic size), so they share one derivation per mechanism.
    let others: HashMap<ScramMechanism, ScramCredential> = ScramMechanism::ALL
        .into_iter()
        .map(|m| (m, ScramCredential::generate(m, "other", ITERATIONS)))
        .collect();
    for i in 0..999 {
        cache.set_user(&format!("user-{i}"), others.clone());
    }
    cache.set_user(
        USER,
        ScramMechanism::ALL
            .into_iter()
            .map(|m| (m, ScramCredential::generate(m, PASSWORD, ITERATIONS)))
            .collect(),
    );
    Arc::new(SaslServerConfig {
        mechanisms: vec![
            Mechanism::Plain,
            Mechanism::Scram(ScramMechanism::Sha256),
            Mechanism::Scram(ScramMechanism::Sha512),
        ],
        plain_users: [(USER.to_string(), PASSWORD.to_string())].into(),
        scram: Arc::new(cache),
    })
}

/// The broker's side of one SCRAM exchange; the client's work is not
/// counted in the returned time.
fn scram_exchange(config: &Arc<SaslServerConfig>, client: &PrecomputedClient) -> Duration {
    let (first, bare) = client.first();
    let started = Instant::now();
    let mut server = SaslExchange::start(config.clone(), client.mechanism.name()).unwrap();
    let Step::Continue(server_first) = server.step(&first).unwrap() else {
        panic!("expected server-first")
    };
    let mut spent = started.elapsed();
    let (last, expected) = client.last(&bare, &server_first);
    let started = Instant::now();
    let done = server.step(&last).unwrap();
    spent += started.elapsed();
    match done {
        Step::Done { response, user } => {
            assert_eq!(response, expected, "the server signature");
            assert_eq!(user, USER);
        }
        Step::Continue(_) => panic!("expected server-final"),
    }
    spent
}

fn broker(c: &mut Criterion) {
    let config = config();
    let mut group = c.benchmark_group("broker");
    group.throughput(Throughput::Elements(1));
    for m in ScramMechanism::ALL {
        let credential = config.scram.get(USER, m).unwrap();
        let client = PrecomputedClient::new(m, &credential);
        group.bench_function(m.name(), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| scram_exchange(&config, &client)).sum())
        });
    }
    let token = format!("\0{USER}\0{PASSWORD}").into_bytes();
    group.bench_function("PLAIN", |b| {
        b.iter(|| {
            let mut server = SaslExchange::start(config.clone(), "PLAIN").unwrap();
            match server.step(black_box(&token)).unwrap() {
                Step::Done { user, .. } => user,
                Step::Continue(_) => panic!("PLAIN is one step"),
            }
        })
    });
    group.finish();
}

fn client(c: &mut Criterion) {
    let config = config();
    let mut group = c.benchmark_group("client");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for m in ScramMechanism::ALL {
        // The broker's side is run too (it must answer), but not timed.
        group.bench_function(m.name(), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let mut server = SaslExchange::start(config.clone(), m.name()).unwrap();
                    let started = Instant::now();
                    let mut client = SaslClient::new(Mechanism::Scram(m), USER, PASSWORD);
                    let first = client.first_token();
                    spent += started.elapsed();
                    let Step::Continue(server_first) = server.step(&first).unwrap() else {
                        panic!("expected server-first")
                    };
                    let started = Instant::now();
                    let last = client.respond(&server_first).unwrap().unwrap();
                    spent += started.elapsed();
                    let Step::Done { response, .. } = server.step(&last).unwrap() else {
                        panic!("expected server-final")
                    };
                    let started = Instant::now();
                    assert_eq!(client.respond(&response).unwrap(), None);
                    spent += started.elapsed();
                }
                spent
            })
        });
    }
    group.finish();
}

criterion_group!(benches, broker, client);
criterion_main!(benches);
