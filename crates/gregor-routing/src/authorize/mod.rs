//! Authorization of requests, as Kafka 3.9's `KafkaApis` checks them: the
//! one place that asks the broker's authorizer on behalf of a frame's
//! session. [`gate`] refuses whole requests (a controller API without
//! ClusterAction, a group API without Read on the group, …) with the
//! API's own error response; [`topics`] takes the topics, partitions,
//! groups or resources a principal may not touch out of a request and
//! puts their error entries into the response (TOPIC_AUTHORIZATION_FAILED
//! per partition, as Kafka), so handlers never see them; [`operations`]
//! fills in the `authorized_operations` bit sets clients ask for. With the
//! authorizer off every check allows, and nothing changes.

pub mod configs;
pub mod gate;
pub mod operations;
pub mod topics;
pub mod transactions;

use gregor_auth::acl::{AclOperation, Authorizer, ResourceType, CLUSTER_NAME};
use gregor_auth::Session;
use gregor_broker::Broker;

/// What the session of one request may do.
pub struct Access<'a> {
    authorizer: &'a Authorizer,
    session: &'a Session,
}

impl<'a> Access<'a> {
    /// The access of `session` on `broker`.
    pub fn new(broker: &'a Broker, session: &'a Session) -> Self {
        Self {
            authorizer: broker.authorizer(),
            session,
        }
    }

    /// Whether ACLs are checked at all.
    pub fn enabled(&self) -> bool {
        self.authorizer.is_enabled()
    }

    /// `operation` on the resource `name` of `resource_type`.
    pub fn allowed(&self, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        self.authorizer.authorize(self.session, operation, resource_type, name)
    }

    /// `operation` on the cluster.
    pub fn cluster(&self, operation: AclOperation) -> bool {
        self.allowed(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// `operation` on topic `name`.
    pub fn topic(&self, operation: AclOperation, name: &str) -> bool {
        self.allowed(operation, ResourceType::Topic, name)
    }

    /// `operation` on group `name`.
    pub fn group(&self, operation: AclOperation, name: &str) -> bool {
        self.allowed(operation, ResourceType::Group, name)
    }

    /// `operation` on transactional id `name`.
    pub fn transactional_id(&self, operation: AclOperation, name: &str) -> bool {
        self.allowed(operation, ResourceType::TransactionalId, name)
    }

    /// `operation` on at least one resource of the type (Kafka's
    /// `authorizeByResourceType`).
    pub fn any_of(&self, operation: AclOperation, resource_type: ResourceType) -> bool {
        self.authorizer
            .authorize_by_resource_type(self.session, operation, resource_type)
    }
}

/// Adds the refused entries to a response.
pub type Merge<R> = Box<dyn FnOnce(&mut R) + Send>;

/// The merge of a request nothing was taken out of.
pub(crate) fn nothing<R>() -> Merge<R> {
    Box::new(|_| {})
}

/// Takes out of `items` those `allowed` refuses; returns them.
pub(crate) fn take_refused<T>(items: &mut Vec<T>, allowed: impl Fn(&T) -> bool) -> Vec<T> {
    let (kept, refused) = items.drain(..).partition(|item| allowed(item));
    *items = kept;
    refused
}
