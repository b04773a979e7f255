//! The broker's coordination: the embedded store (default, kept in a hidden
//! `.coordination` directory of the first log dir), a shared embedded store
//! or a ZooKeeper ensemble (`zookeeper.connect`), Kafka's layout in either,
//! the broker's registration, and partition states in Kafka's JSON.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gregor_coord::kafka::{BrokerRegistration, KafkaMetadata, PartitionState, RegisteredEndpoint};
use gregor_coord::{
    CoordError, CoordSecret, Coordinator, EmbeddedCoordinator, EmbeddedStore, RemoteCoordinator, RenewingCoordinator,
    SessionFactory, ZooKeeperAuth, ZooKeeperCoordinator,
};
use gregor_replication::LeaderAndIsr;

/// The ZooKeeper credentials and ACL mode of a configuration: the digest
/// file's `user:password` (trailing whitespace dropped).
pub fn zookeeper_auth(set_acl: bool, digest_file: Option<&Path>) -> anyhow::Result<ZooKeeperAuth> {
    let digest = match digest_file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("zookeeper.auth.digest.file: reading {}", file.display()))?;
            let digest = text.trim_end().to_string();
            anyhow::ensure!(
                digest
                    .split_once(':')
                    .is_some_and(|(user, password)| !user.is_empty() && !password.is_empty()),
                "zookeeper.auth.digest.file {}: expected user:password",
                file.display()
            );
            Some(digest)
        }
        None => None,
    };
    anyhow::ensure!(
        !set_acl || digest.is_some(),
        "zookeeper.set.acl is true but zookeeper.auth.digest.file is unset: the broker has no ZooKeeper identity to own its znodes"
    );
    Ok(ZooKeeperAuth { digest, set_acl })
}

/// Directory of the embedded store inside the first log dir.
pub const EMBEDDED_DIR: &str = ".coordination";

/// Connects to ZooKeeper at `zookeeper` (authenticated by `zookeeper_auth`),
/// the shared embedded store at
/// `shared` (proving the secret in `secret_file`, if given), or opens the embedded store under `log_dir`, then creates
/// Kafka's paths. The coordinator opens a new session (the same way) when
/// its session expires; [`RenewingCoordinator::sessions`] says when.
pub async fn connect(
    zookeeper: Option<&str>,
    zookeeper_auth: ZooKeeperAuth,
    shared: Option<&str>,
    secret_file: Option<&Path>,
    log_dir: &Path,
    session_timeout: Duration,
) -> anyhow::Result<Arc<RenewingCoordinator>> {
    let secret = match (secret_file, shared) {
        (Some(file), Some(_)) => Some(CoordSecret::from_file(file).context("coordination.auth.secret.file")?),
        (Some(_), None) => anyhow::bail!("coordination.auth.secret.file is set without coordination.connect"),
        (None, _) => None,
    };
    let factory: SessionFactory = match (zookeeper, shared) {
        (Some(hosts), _) => {
            let hosts = hosts.to_string();
            Arc::new(move || {
                let (hosts, auth) = (hosts.clone(), zookeeper_auth.clone());
                Box::pin(async move {
                    let session: Arc<dyn Coordinator> =
                        Arc::new(ZooKeeperCoordinator::connect_with_auth(&hosts, session_timeout, &auth).await?);
                    Ok(session)
                })
            })
        }
        (None, Some(address)) => {
            let address = address.to_string();
            Arc::new(move || {
                let (address, secret) = (address.clone(), secret.clone());
                Box::pin(async move {
                    let session: Arc<dyn Coordinator> = Arc::new(
                        RemoteCoordinator::connect_with_secret(address.as_str(), session_timeout, secret).await?,
                    );
                    Ok(session)
                })
            })
        }
        (None, None) => {
            let dir = log_dir.join(EMBEDDED_DIR);
            let store = EmbeddedStore::open(&dir)
                .with_context(|| format!("opening the embedded coordination store in {}", dir.display()))?;
            Arc::new(move || {
                let session: Arc<dyn Coordinator> = Arc::new(EmbeddedCoordinator::connect(&store, session_timeout));
                Box::pin(std::future::ready(Ok(session)))
            })
        }
    };
    let coordinator = RenewingCoordinator::open(factory)
        .await
        .with_context(|| match (zookeeper, shared) {
            (Some(hosts), _) => format!("connecting to ZooKeeper at {hosts}"),
            (None, Some(address)) => format!("connecting to the coordination service at {address}"),
            (None, None) => "opening a session on the embedded coordination store".to_string(),
        })?;
    KafkaMetadata::new(&coordinator)
        .ensure_layout()
        .await
        .context("creating the coordination layout")?;
    Ok(Arc::new(coordinator))
}

/// Registers this broker (`/brokers/ids/<id>`, ephemeral) and returns its
/// broker epoch. A registration still held by another session — this
/// broker's previous run after a crash, whose session lives until it times
/// out — is waited for up to `wait` (then it is another live broker with
/// the same id, and registering fails).
pub async fn register(
    coordinator: &dyn Coordinator,
    id: i32,
    endpoints: &[RegisteredEndpoint],
    rack: Option<String>,
    wait: Duration,
) -> anyhow::Result<i64> {
    let meta = KafkaMetadata::new(coordinator);
    let registration = BrokerRegistration::with_endpoints(endpoints, rack);
    let deadline = tokio::time::Instant::now() + wait;
    let mut waited = false;
    loop {
        match meta.register_broker(id, &registration).await {
            Err(CoordError::NodeExists(_)) if tokio::time::Instant::now() < deadline => {
                if !waited {
                    tracing::info!(
                        broker = id,
                        "the id is still registered by an earlier session (this broker's previous run?): \
                         waiting up to {wait:?} for that session to expire"
                    );
                    waited = true;
                }
                tokio::time::sleep(REGISTRATION_RETRY).await;
            }
            registered => return registered.with_context(|| format!("registering broker {id}")),
        }
    }
}

/// How often a registration held by an earlier session is tried again.
const REGISTRATION_RETRY: Duration = Duration::from_millis(200);

/// A partition's leadership in the JSON Kafka keeps at
/// `/brokers/topics/<t>/partitions/<p>/state`.
pub(crate) fn to_recorded(state: &LeaderAndIsr) -> PartitionState {
    PartitionState {
        controller_epoch: state.controller_epoch,
        leader: state.leader,
        version: 1,
        leader_epoch: state.leader_epoch,
        isr: state.isr.clone(),
    }
}

/// The leadership a partition state node holds.
pub(crate) fn from_recorded(state: &PartitionState) -> LeaderAndIsr {
    LeaderAndIsr {
        leader: state.leader,
        leader_epoch: state.leader_epoch,
        isr: state.isr.clone(),
        controller_epoch: state.controller_epoch,
    }
}
