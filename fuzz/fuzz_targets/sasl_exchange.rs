//! Arbitrary bytes as a SASL client's messages: the SCRAM parsers, and the
//! server's exchange (PLAIN and both SCRAMs, a known user) driven through
//! tokens split at 0xFF bytes — an answer or an error, never a panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use gregor_auth::sasl::scram::{parse_client_final, parse_client_first};
use gregor_auth::sasl::{CredentialCache, Mechanism, SaslExchange, SaslServerConfig, ScramCredential, ScramMechanism};
use libfuzzer_sys::fuzz_target;

/// Made once: the server side itself never runs PBKDF2.
fn config() -> Arc<SaslServerConfig> {
    static CONFIG: OnceLock<Arc<SaslServerConfig>> = OnceLock::new();
    CONFIG.get_or_init(made).clone()
}

fn made() -> Arc<SaslServerConfig> {
    let cache = CredentialCache::new();
    for m in ScramMechanism::ALL {
        cache.set_user("user", [(m, ScramCredential::generate(m, "pencil", 4096))].into());
    }
    Arc::new(SaslServerConfig {
        mechanisms: vec![
            Mechanism::Plain,
            Mechanism::Scram(ScramMechanism::Sha256),
            Mechanism::Scram(ScramMechanism::Sha512),
        ],
        plain_users: [("user".to_string(), "pencil".to_string())].into(),
        scram: Arc::new(cache),
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_client_first(data);
    let _ = parse_client_final(data);
    let Some((&choice, rest)) = data.split_first() else { return };
    let name = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"][usize::from(choice % 3)];
    let Ok(mut exchange) = SaslExchange::start(config(), name) else { return };
    for token in rest.split(|&b| b == 0xFF) {
        if exchange.step(token).is_err() {
            break;
        }
    }
});
