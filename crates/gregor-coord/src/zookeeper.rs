//! The ZooKeeper backend, over the `zookeeper-client` crate.
//!
//! With [`ZooKeeperAuth`] the session authenticates with ZooKeeper's
//! `digest` scheme (`addAuthInfo`, `user:password`) and, with `set_acl`
//! (Kafka's `zookeeper.set.acl=true`), creates its znodes with Kafka 3.9's
//! `ZkData.defaultAcls`: all permissions for the creating identity
//! (ZooKeeper's `auth` scheme), read for anyone — except below
//! `/config/users`, `/config/brokers` and `/delegation_token`, which no one
//! else may read, and `/consumers`, left open as Kafka leaves it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::watch;
use zookeeper_client as zk;

use crate::coordinator::Coordinator;
use crate::error::{CoordError, Result};
use crate::types::{CreateMode, Op, OpResult, SessionState, Stat, Watch, WatchEvent, WatchEventKind};

/// How a session authenticates to ZooKeeper and protects its znodes.
#[derive(Clone, Default)]
pub struct ZooKeeperAuth {
    /// `user:password` for ZooKeeper's `digest` scheme.
    pub digest: Option<String>,
    /// Create znodes writable by this identity only (Kafka's
    /// `zookeeper.set.acl`); needs `digest`.
    pub set_acl: bool,
}

impl std::fmt::Debug for ZooKeeperAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZooKeeperAuth")
            .field("digest", &self.digest.as_ref().map(|_| ".."))
            .field("set_acl", &self.set_acl)
            .finish()
    }
}

/// Kafka's secure ACL: everything for the creator, read for anyone.
static CREATOR_ALL_WORLD_READ: [zk::Acl; 2] = [
    zk::Acl::new_const(zk::Permission::ALL, "auth", ""),
    zk::Acl::new_const(zk::Permission::READ, "world", "anyone"),
];

/// The paths Kafka keeps unreadable to others (`ZkData.SensitiveRootPaths`).
const SENSITIVE_ROOTS: [&str; 3] = ["/config/users", "/config/brokers", "/delegation_token"];

/// The ACL of a znode created at `path` (Kafka's `ZkData.defaultAcls`).
pub(crate) fn acls_for(path: &str, secure: bool) -> zk::Acls<'static> {
    if !secure || path == "/consumers" {
        zk::Acls::anyone_all()
    } else if SENSITIVE_ROOTS.iter().any(|root| path.starts_with(root)) {
        zk::Acls::creator_all()
    } else {
        zk::Acls::new(&CREATOR_ALL_WORLD_READ)
    }
}

/// A session with a real ZooKeeper ensemble.
pub struct ZooKeeperCoordinator {
    client: Mutex<Option<zk::Client>>,
    session: i64,
    state_tx: Arc<watch::Sender<SessionState>>,
    state: watch::Receiver<SessionState>,
    request_timeout: Duration,
    detached: bool,
    /// Znodes are created with Kafka's secure ACLs.
    secure: bool,
}

impl ZooKeeperCoordinator {
    /// Connects to `hosts` (`host:port[,host:port…][/chroot]`). Closing or
    /// dropping it closes the session at once.
    pub async fn connect(hosts: &str, session_timeout: Duration) -> Result<Self> {
        Self::connect_with(hosts, session_timeout, false, &ZooKeeperAuth::default()).await
    }

    /// Like [`ZooKeeperCoordinator::connect`], authenticated by `auth`
    /// (and creating znodes with Kafka's secure ACLs when it says so).
    pub async fn connect_with_auth(hosts: &str, session_timeout: Duration, auth: &ZooKeeperAuth) -> Result<Self> {
        Self::connect_with(hosts, session_timeout, false, auth).await
    }

    /// Like [`ZooKeeperCoordinator::connect`], but the session outlives this
    /// handle: [`ZooKeeperCoordinator::abandon`] (or dropping it) leaves the
    /// session to expire on the server after its timeout, exactly as when a
    /// broker process dies. Tests use it to make sessions expire for real.
    pub async fn connect_detached(hosts: &str, session_timeout: Duration) -> Result<Self> {
        Self::connect_with(hosts, session_timeout, true, &ZooKeeperAuth::default()).await
    }

    async fn connect_with(
        hosts: &str,
        session_timeout: Duration,
        detached: bool,
        auth: &ZooKeeperAuth,
    ) -> Result<Self> {
        if auth.set_acl && auth.digest.is_none() {
            return Err(CoordError::AuthFailed(
                "zookeeper.set.acl is true but no ZooKeeper credentials are given".into(),
            ));
        }
        let mut connector = zk::Client::connector()
            .with_session_timeout(session_timeout)
            .with_connection_timeout(Duration::from_secs(10));
        if let Some(digest) = &auth.digest {
            connector = connector.with_auth("digest", digest.as_bytes());
        }
        if detached {
            connector = connector.with_detached();
        }
        let client = connector.connect(hosts).await.map_err(|e| map_error(e, hosts))?;
        let session = client.session_id().0;
        let (tx, state) = watch::channel(SessionState::Connected);
        let state_tx = Arc::new(tx);
        let task_tx = state_tx.clone();
        let mut states = client.state_watcher();
        tokio::spawn(async move {
            loop {
                let next = states.changed().await;
                let mapped = match next {
                    zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => SessionState::Connected,
                    zk::SessionState::Disconnected => SessionState::Disconnected,
                    zk::SessionState::Closed => SessionState::Closed,
                    _ => SessionState::Expired,
                };
                task_tx.send_replace(mapped);
                if next.is_terminated() || task_tx.receiver_count() == 0 {
                    return;
                }
            }
        });
        Ok(Self {
            client: Mutex::new(Some(client)),
            session,
            state_tx,
            state,
            request_timeout: session_timeout.max(Duration::from_secs(10)),
            detached,
            secure: auth.set_acl,
        })
    }

    /// The underlying client (for what the trait does not cover).
    pub fn client(&self) -> Result<zk::Client> {
        self.client.lock().clone().ok_or(CoordError::SessionExpired)
    }

    /// Runs a request, failing with `ConnectionLoss` when no answer comes
    /// within the request timeout (a reconnecting client would otherwise
    /// wait without bound).
    async fn call<T>(
        &self,
        what: &str,
        path: &str,
        request: impl std::future::Future<Output = Result<T, zk::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.request_timeout, request).await {
            Ok(result) => result.map_err(|e| map_error(e, path)),
            Err(_) => Err(CoordError::ConnectionLoss(format!(
                "no answer to {what} {path} within {:?}",
                self.request_timeout
            ))),
        }
    }

    /// Lets go of the session without closing it: this handle is done, and
    /// the session expires on the server unless another client resumes it.
    /// (For a handle made by `connect`, dropping the client closes it.)
    pub fn abandon(&self) {
        drop(self.client.lock().take());
        self.state_tx.send_replace(SessionState::Closed);
    }
}

fn map_error(e: zk::Error, path: &str) -> CoordError {
    let path = path.to_string();
    match e {
        zk::Error::NodeExists => CoordError::NodeExists(path),
        zk::Error::NoNode => CoordError::NoNode(path),
        zk::Error::BadVersion => CoordError::BadVersion(path),
        zk::Error::NotEmpty => CoordError::NotEmpty(path),
        zk::Error::NoChildrenForEphemerals => CoordError::NoChildrenForEphemerals(path),
        zk::Error::BadArguments(_) => CoordError::InvalidPath(path),
        zk::Error::SessionExpired | zk::Error::ClientClosed => CoordError::SessionExpired,
        zk::Error::ConnectionLoss | zk::Error::Timeout | zk::Error::NoHosts => {
            CoordError::ConnectionLoss(e.to_string())
        }
        zk::Error::NoAuth | zk::Error::AuthFailed | zk::Error::InvalidAcl => {
            CoordError::AuthFailed(format!("ZooKeeper: {e} ({path})"))
        }
        other => CoordError::Other(other.to_string()),
    }
}

fn map_stat(s: &zk::Stat) -> Stat {
    Stat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        version: s.version,
        cversion: s.cversion,
        ephemeral_owner: s.ephemeral_owner,
        data_length: s.data_length,
        num_children: s.num_children,
    }
}

fn zk_mode(mode: CreateMode) -> zk::CreateMode {
    match mode {
        CreateMode::Persistent => zk::CreateMode::Persistent,
        CreateMode::Ephemeral => zk::CreateMode::Ephemeral,
        CreateMode::PersistentSequential => zk::CreateMode::PersistentSequential,
        CreateMode::EphemeralSequential => zk::CreateMode::EphemeralSequential,
    }
}

fn watch_of(watcher: zk::OneshotWatcher) -> Watch {
    Watch::new(async move {
        let event = watcher.changed().await;
        let kind = match event.event_type {
            zk::EventType::NodeCreated => WatchEventKind::NodeCreated,
            zk::EventType::NodeDeleted => WatchEventKind::NodeDeleted,
            zk::EventType::NodeDataChanged => WatchEventKind::NodeDataChanged,
            zk::EventType::NodeChildrenChanged => WatchEventKind::NodeChildrenChanged,
            zk::EventType::Session => return Err(CoordError::SessionExpired),
        };
        Ok(WatchEvent { kind, path: event.path })
    })
}

#[async_trait]
impl Coordinator for ZooKeeperCoordinator {
    fn session_id(&self) -> i64 {
        self.session
    }

    fn session_state(&self) -> watch::Receiver<SessionState> {
        self.state.clone()
    }

    async fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String> {
        let client = self.client()?;
        let options = zk_mode(mode).with_acls(acls_for(path, self.secure));
        let (_, sequence) = self.call("create", path, client.create(path, data, &options)).await?;
        Ok(if mode.is_sequential() {
            format!("{path}{sequence}")
        } else {
            path.to_string()
        })
    }

    async fn get(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        let (data, stat) = self.call("get", path, self.client()?.get_data(path)).await?;
        Ok((data, map_stat(&stat)))
    }

    async fn get_and_watch(&self, path: &str) -> Result<(Vec<u8>, Stat, Watch)> {
        let (data, stat, watcher) = self.call("get", path, self.client()?.get_and_watch_data(path)).await?;
        Ok((data, map_stat(&stat), watch_of(watcher)))
    }

    async fn set(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        let stat = self
            .call("set", path, self.client()?.set_data(path, data, version))
            .await?;
        Ok(map_stat(&stat))
    }

    async fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        self.call("delete", path, self.client()?.delete(path, version)).await
    }

    async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        let stat = self.call("exists", path, self.client()?.check_stat(path)).await?;
        Ok(stat.as_ref().map(map_stat))
    }

    async fn exists_and_watch(&self, path: &str) -> Result<(Option<Stat>, Watch)> {
        let (stat, watcher) = self
            .call("exists", path, self.client()?.check_and_watch_stat(path))
            .await?;
        Ok((stat.as_ref().map(map_stat), watch_of(watcher)))
    }

    async fn children(&self, path: &str) -> Result<Vec<String>> {
        let client = self.client()?;
        let mut children = self.call("children", path, client.list_children(path)).await?;
        children.sort();
        Ok(children)
    }

    async fn children_and_watch(&self, path: &str) -> Result<(Vec<String>, Watch)> {
        let client = self.client()?;
        let (mut children, watcher) = self
            .call("children", path, client.list_and_watch_children(path))
            .await?;
        children.sort();
        Ok((children, watch_of(watcher)))
    }

    async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        let client = self.client()?;
        let mut writer = client.new_multi_writer();
        let path_of = |op: &Op| match op {
            Op::Create { path, .. } | Op::Set { path, .. } | Op::Delete { path, .. } | Op::Check { path, .. } => {
                path.clone()
            }
        };
        for op in &ops {
            let added = match op {
                Op::Create { path, data, mode } => {
                    writer.add_create(path, data, &zk_mode(*mode).with_acls(acls_for(path, self.secure)))
                }
                Op::Set { path, data, version } => writer.add_set_data(path, data, *version),
                Op::Delete { path, version } => writer.add_delete(path, *version),
                Op::Check { path, version } => writer.add_check_version(path, *version),
            };
            added.map_err(|e| map_error(e, &path_of(op)))?;
        }
        let commit = tokio::time::timeout(self.request_timeout, writer.commit())
            .await
            .map_err(|_| {
                CoordError::ConnectionLoss(format!("no answer to a transaction within {:?}", self.request_timeout))
            })?;
        let results = commit.map_err(|e| match e {
            zk::MultiWriteError::OperationFailed { index, source } => CoordError::TransactionFailed {
                index,
                source: Box::new(map_error(source, &ops.get(index).map(path_of).unwrap_or_default())),
            },
            zk::MultiWriteError::RequestFailed { source } => map_error(source, "multi"),
        })?;
        results
            .into_iter()
            .map(|r| match r {
                zk::MultiWriteResult::Check => Ok(OpResult::Checked),
                zk::MultiWriteResult::Delete => Ok(OpResult::Deleted),
                zk::MultiWriteResult::Create { path, .. } => Ok(OpResult::Created(path)),
                zk::MultiWriteResult::SetData { stat } => Ok(OpResult::Set(map_stat(&stat))),
                other => Err(CoordError::Other(format!("unexpected transaction result {other:?}"))),
            })
            .collect()
    }

    async fn close(&self) -> Result<()> {
        // Dropping the last handle of a (not detached) client closes its
        // session in the background; wait until that is done, so that our
        // ephemeral nodes are gone when close returns.
        let watcher = self
            .client
            .lock()
            .as_ref()
            .filter(|_| !self.detached)
            .map(zk::Client::state_watcher);
        self.abandon();
        if let Some(mut watcher) = watcher {
            let closed = async {
                while !watcher.state().is_terminated() {
                    watcher.changed().await;
                }
            };
            let _ = tokio::time::timeout(self.request_timeout, closed).await;
        }
        Ok(())
    }
}
