//! The node tree of the embedded backend, with ZooKeeper's rules.
//!
//! Every write runs as a transaction over an overlay of the nodes it
//! touches; only a transaction whose every operation succeeded is written
//! back, so `multi` is all-or-nothing by construction. Watches are one-shot
//! channels keyed by path and fired after the commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::error::{CoordError, Result};
use crate::types::{parent_of, validate_path, CreateMode, Op, OpResult, Stat, WatchEvent, WatchEventKind};

/// A node as stored (children are derived from the paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredNode {
    pub data: Vec<u8>,
    pub stat: Stat,
}

/// A persistent change, for the change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Change {
    Put(String, StoredNode),
    Remove(String),
}

type Waiters = HashMap<String, Vec<(i64, oneshot::Sender<WatchEvent>)>>;

/// The tree, its transaction counter and its registered watches. Child
/// names live beside the nodes so that a write never copies a parent's
/// (possibly long) child list.
pub(crate) struct Tree {
    nodes: HashMap<String, StoredNode>,
    children: HashMap<String, BTreeSet<String>>,
    zxid: i64,
    data_watches: Waiters,
    child_watches: Waiters,
}

impl Tree {
    /// A tree holding only the root.
    pub(crate) fn new() -> Self {
        let root = StoredNode {
            data: Vec::new(),
            stat: Stat::default(),
        };
        Self {
            nodes: HashMap::from([("/".to_string(), root)]),
            children: HashMap::new(),
            zxid: 0,
            data_watches: HashMap::new(),
            child_watches: HashMap::new(),
        }
    }

    /// A tree rebuilt from stored nodes (children derived from paths).
    pub(crate) fn from_stored(stored: BTreeMap<String, StoredNode>, zxid: i64) -> Self {
        let mut tree = Self::new();
        tree.zxid = zxid;
        tree.nodes.extend(stored);
        for path in tree.nodes.keys().filter(|p| *p != "/") {
            let name = path.rsplit('/').next().unwrap_or_default().to_string();
            tree.children
                .entry(parent_of(path).to_string())
                .or_default()
                .insert(name);
        }
        for (path, node) in tree.nodes.iter_mut() {
            node.stat.num_children = tree.children.get(path).map_or(0, |c| c.len() as i32);
        }
        tree
    }

    /// Every persistent node (the root included: its child version numbers
    /// sequential nodes), for a snapshot.
    pub(crate) fn persistent_nodes(&self) -> BTreeMap<String, StoredNode> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.stat.ephemeral_owner == 0)
            .map(|(p, n)| (p.clone(), n.clone()))
            .collect()
    }

    pub(crate) fn zxid(&self) -> i64 {
        self.zxid
    }

    /// Paths of the ephemeral nodes `session` owns.
    pub(crate) fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.stat.ephemeral_owner == session)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Drops every watch `session` registered (its receivers then see the
    /// session as ended).
    pub(crate) fn drop_watches_of(&mut self, session: i64) {
        for waiters in [&mut self.data_watches, &mut self.child_watches] {
            for list in waiters.values_mut() {
                list.retain(|(s, _)| *s != session);
            }
            waiters.retain(|_, l| !l.is_empty());
        }
    }

    /// Data and stat of `path`, optionally watching its data.
    pub(crate) fn get(
        &mut self,
        path: &str,
        watch: Option<(i64, oneshot::Sender<WatchEvent>)>,
    ) -> Result<(Vec<u8>, Stat)> {
        validate_path(path)?;
        let node = self
            .nodes
            .get(path)
            .ok_or_else(|| CoordError::NoNode(path.to_string()))?;
        let found = (node.data.clone(), node.stat);
        if let Some(w) = watch {
            self.data_watches.entry(path.to_string()).or_default().push(w);
        }
        Ok(found)
    }

    /// Stat of `path` if it exists; a watch is set either way.
    pub(crate) fn exists(
        &mut self,
        path: &str,
        watch: Option<(i64, oneshot::Sender<WatchEvent>)>,
    ) -> Result<Option<Stat>> {
        validate_path(path)?;
        let stat = self.nodes.get(path).map(|n| n.stat);
        if let Some(w) = watch {
            self.data_watches.entry(path.to_string()).or_default().push(w);
        }
        Ok(stat)
    }

    /// Sorted child names of `path`, optionally watching them.
    pub(crate) fn children(
        &mut self,
        path: &str,
        watch: Option<(i64, oneshot::Sender<WatchEvent>)>,
    ) -> Result<Vec<String>> {
        validate_path(path)?;
        if !self.nodes.contains_key(path) {
            return Err(CoordError::NoNode(path.to_string()));
        }
        let children = self
            .children
            .get(path)
            .map_or_else(Vec::new, |c| c.iter().cloned().collect());
        if let Some(w) = watch {
            self.child_watches.entry(path.to_string()).or_default().push(w);
        }
        Ok(children)
    }

    /// Applies `ops` for `session` all-or-nothing. Returns the results and
    /// the persistent changes to log; watches fire before it returns.
    pub(crate) fn apply(&mut self, session: i64, ops: &[Op]) -> Result<(Vec<OpResult>, Vec<Change>)> {
        let zxid = self.zxid + 1;
        let mut txn = Txn {
            tree: self,
            overlay: BTreeMap::new(),
            child_changes: Vec::new(),
            events: Vec::new(),
            zxid,
        };
        let mut results = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            match txn.apply(session, op) {
                Ok(r) => results.push(r),
                Err(e) if ops.len() == 1 => return Err(e),
                Err(e) => {
                    return Err(CoordError::TransactionFailed {
                        index,
                        source: Box::new(e),
                    })
                }
            }
        }
        let (overlay, child_changes, events) = (txn.overlay, txn.child_changes, txn.events);
        self.zxid = zxid;
        let mut changes = Vec::new();
        for (path, node) in overlay {
            match node {
                Some(node) => {
                    if node.stat.ephemeral_owner == 0 {
                        changes.push(Change::Put(path.clone(), node.clone()));
                    }
                    self.nodes.insert(path, node);
                }
                None => {
                    self.children.remove(&path);
                    if self.nodes.remove(&path).is_some_and(|n| n.stat.ephemeral_owner == 0) {
                        changes.push(Change::Remove(path));
                    }
                }
            }
        }
        for (parent, name, added) in child_changes {
            let set = self.children.entry(parent.clone()).or_default();
            if added {
                set.insert(name);
            } else {
                set.remove(&name);
                if set.is_empty() {
                    self.children.remove(&parent);
                }
            }
        }
        for (kind, path) in events {
            self.fire(kind, &path);
        }
        Ok((results, changes))
    }

    fn fire(&mut self, kind: WatchEventKind, path: &str) {
        let targets: Vec<&mut Waiters> = match kind {
            WatchEventKind::NodeChildrenChanged => vec![&mut self.child_watches],
            WatchEventKind::NodeDeleted => vec![&mut self.data_watches, &mut self.child_watches],
            _ => vec![&mut self.data_watches],
        };
        for waiters in targets {
            for (_, sender) in waiters.remove(path).unwrap_or_default() {
                let _ = sender.send(WatchEvent {
                    kind,
                    path: path.to_string(),
                });
            }
        }
    }
}

/// Pending changes of one transaction.
struct Txn<'a> {
    tree: &'a Tree,
    overlay: BTreeMap<String, Option<StoredNode>>,
    /// (parent, child name, added?) in order.
    child_changes: Vec<(String, String, bool)>,
    events: Vec<(WatchEventKind, String)>,
    zxid: i64,
}

impl Txn<'_> {
    fn node(&self, path: &str) -> Option<&StoredNode> {
        match self.overlay.get(path) {
            Some(n) => n.as_ref(),
            None => self.tree.nodes.get(path),
        }
    }

    fn apply(&mut self, session: i64, op: &Op) -> Result<OpResult> {
        match op {
            Op::Create { path, data, mode } => self.create(session, path, data, *mode).map(OpResult::Created),
            Op::Set { path, data, version } => self.set(path, data, *version).map(OpResult::Set),
            Op::Delete { path, version } => self.delete(path, *version).map(|_| OpResult::Deleted),
            Op::Check { path, version } => {
                validate_path(path)?;
                let node = self.node(path).ok_or_else(|| CoordError::NoNode(path.clone()))?;
                if node.stat.version != *version {
                    return Err(CoordError::BadVersion(path.clone()));
                }
                Ok(OpResult::Checked)
            }
        }
    }

    fn create(&mut self, session: i64, path: &str, data: &[u8], mode: CreateMode) -> Result<String> {
        validate_path(path)?;
        if path == "/" {
            return Err(CoordError::NodeExists(path.to_string()));
        }
        let parent_path = parent_of(path).to_string();
        let mut parent = self
            .node(&parent_path)
            .cloned()
            .ok_or_else(|| CoordError::NoNode(parent_path.clone()))?;
        if parent.stat.ephemeral_owner != 0 {
            return Err(CoordError::NoChildrenForEphemerals(parent_path));
        }
        let path = if mode.is_sequential() {
            format!("{path}{:010}", parent.stat.cversion)
        } else {
            path.to_string()
        };
        if self.node(&path).is_some() {
            return Err(CoordError::NodeExists(path));
        }
        let stat = Stat {
            czxid: self.zxid,
            mzxid: self.zxid,
            ephemeral_owner: if mode.is_ephemeral() { session } else { 0 },
            data_length: data.len() as i32,
            ..Stat::default()
        };
        parent.stat.cversion += 1;
        parent.stat.num_children += 1;
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        self.child_changes.push((parent_path.clone(), name, true));
        self.overlay.insert(parent_path.clone(), Some(parent));
        self.overlay.insert(
            path.clone(),
            Some(StoredNode {
                data: data.to_vec(),
                stat,
            }),
        );
        self.events.push((WatchEventKind::NodeCreated, path.clone()));
        self.events.push((WatchEventKind::NodeChildrenChanged, parent_path));
        Ok(path)
    }

    fn set(&mut self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        validate_path(path)?;
        let mut node = self
            .node(path)
            .cloned()
            .ok_or_else(|| CoordError::NoNode(path.to_string()))?;
        if version.is_some_and(|v| v != -1 && v != node.stat.version) {
            return Err(CoordError::BadVersion(path.to_string()));
        }
        node.data = data.to_vec();
        node.stat.version += 1;
        node.stat.mzxid = self.zxid;
        node.stat.data_length = data.len() as i32;
        let stat = node.stat;
        self.overlay.insert(path.to_string(), Some(node));
        self.events.push((WatchEventKind::NodeDataChanged, path.to_string()));
        Ok(stat)
    }

    fn delete(&mut self, path: &str, version: Option<i32>) -> Result<()> {
        validate_path(path)?;
        if path == "/" {
            return Err(CoordError::InvalidPath(path.to_string()));
        }
        let node = self.node(path).ok_or_else(|| CoordError::NoNode(path.to_string()))?;
        if version.is_some_and(|v| v != -1 && v != node.stat.version) {
            return Err(CoordError::BadVersion(path.to_string()));
        }
        if node.stat.num_children > 0 {
            return Err(CoordError::NotEmpty(path.to_string()));
        }
        let parent_path = parent_of(path).to_string();
        let mut parent = self
            .node(&parent_path)
            .cloned()
            .ok_or_else(|| CoordError::NoNode(parent_path.clone()))?;
        parent.stat.cversion += 1;
        parent.stat.num_children -= 1;
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        self.child_changes.push((parent_path.clone(), name, false));
        self.overlay.insert(parent_path.clone(), Some(parent));
        self.overlay.insert(path.to_string(), None);
        self.events.push((WatchEventKind::NodeDeleted, path.to_string()));
        self.events.push((WatchEventKind::NodeChildrenChanged, parent_path));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(path: &str) -> Op {
        Op::Create {
            path: path.into(),
            data: b"d".to_vec(),
            mode: CreateMode::Persistent,
        }
    }

    #[test]
    fn failed_transactions_change_nothing() {
        let mut tree = Tree::new();
        tree.apply(1, &[create("/a")]).unwrap();
        let err = tree.apply(1, &[create("/b"), create("/a")]).unwrap_err();
        assert!(matches!(err, CoordError::TransactionFailed { index: 1, .. }));
        assert_eq!(tree.exists("/b", None).unwrap(), None);
        assert_eq!(tree.children("/", None).unwrap(), vec!["a".to_string()]);
    }

    #[test]
    fn sequential_names_follow_the_parent_cversion() {
        let mut tree = Tree::new();
        tree.apply(1, &[create("/q")]).unwrap();
        let op = |_| Op::Create {
            path: "/q/item-".into(),
            data: vec![],
            mode: CreateMode::PersistentSequential,
        };
        let (r, _) = tree.apply(1, &[op(0), op(1)]).unwrap();
        assert_eq!(
            r,
            vec![
                OpResult::Created("/q/item-0000000000".into()),
                OpResult::Created("/q/item-0000000001".into())
            ]
        );
    }

    #[test]
    fn rebuilt_tree_has_the_same_children() {
        let mut tree = Tree::new();
        tree.apply(1, &[create("/a"), create("/a/b"), create("/c")]).unwrap();
        let again = Tree::from_stored(tree.persistent_nodes(), tree.zxid());
        let mut again = again;
        assert_eq!(again.children("/a", None).unwrap(), vec!["b".to_string()]);
        assert_eq!(again.get("/a", None).unwrap().1.num_children, 1);
    }

    fn arb_op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let path = prop::sample::select(vec!["/a", "/b", "/a/x", "/a/y", "/b/z"]).prop_map(String::from);
        prop_oneof![
            (path.clone(), any::<bool>()).prop_map(|(path, seq)| Op::Create {
                path,
                data: vec![1],
                mode: if seq {
                    CreateMode::PersistentSequential
                } else {
                    CreateMode::Persistent
                },
            }),
            (path.clone(), proptest::option::of(0i32..3)).prop_map(|(path, version)| Op::Set {
                path,
                data: vec![2],
                version
            }),
            (path.clone(), proptest::option::of(0i32..3)).prop_map(|(path, version)| Op::Delete { path, version }),
            (path, 0i32..3).prop_map(|(path, version)| Op::Check { path, version }),
        ]
    }

    proptest::proptest! {
        /// A transaction is all-or-nothing: when it fails nothing changes;
        /// when it succeeds the tree equals applying its operations one by one.
        #[test]
        fn transactions_are_atomic(
            setup in proptest::collection::vec(arb_op(), 0..12),
            txn in proptest::collection::vec(arb_op(), 1..6),
        ) {
            let mut tree = Tree::new();
            for op in &setup {
                let _ = tree.apply(1, std::slice::from_ref(op));
            }
            let before = tree.persistent_nodes();
            let mut stepwise = Tree::from_stored(before.clone(), tree.zxid());
            match tree.apply(1, &txn) {
                Err(_) => proptest::prop_assert_eq!(tree.persistent_nodes(), before),
                Ok(_) => {
                    for op in &txn {
                        proptest::prop_assert!(stepwise.apply(1, std::slice::from_ref(op)).is_ok());
                    }
                    let strip = |m: BTreeMap<String, StoredNode>| -> Vec<(String, Vec<u8>, i32, i32)> {
                        m.into_iter().map(|(p, n)| (p, n.data, n.stat.version, n.stat.num_children)).collect()
                    };
                    proptest::prop_assert_eq!(strip(tree.persistent_nodes()), strip(stepwise.persistent_nodes()));
                }
            }
        }
    }
}
