//! The authorizer's rules, example by example and as properties.

use proptest::prelude::*;

use super::*;
use crate::{KafkaPrincipal, Session};

fn session(user: &str, ip: &str) -> Session {
    Session {
        principal: KafkaPrincipal::user(user),
        ..Session::plaintext(Some(ip.parse().unwrap()))
    }
}

fn on(config: AuthorizerConfig) -> Authorizer {
    Authorizer::new(AuthorizerConfig {
        enabled: true,
        ..config
    })
}

fn binding(
    pattern: ResourcePattern,
    principal: &str,
    host: &str,
    op: AclOperation,
    perm: AclPermissionType,
) -> AclBinding {
    AclBinding {
        pattern,
        entry: AccessControlEntry {
            principal: principal.parse().unwrap(),
            host: host.into(),
            operation: op,
            permission: perm,
        },
    }
}

fn add(authorizer: &Authorizer, bindings: Vec<AclBinding>) {
    assert!(authorizer.create_acls(bindings).iter().all(Result::is_ok));
}

use AclOperation::*;
use AclPermissionType::{Allow, Deny};
use ResourceType::{Cluster, Group, Topic};

#[test]
fn off_allows_everything_and_on_with_no_acl_follows_allow_everyone() {
    let alice = session("alice", "10.0.0.1");
    assert!(Authorizer::new(AuthorizerConfig::default()).authorize(&alice, Write, Topic, "t"));
    assert!(!on(AuthorizerConfig::default()).authorize(&alice, Write, Topic, "t"));
    let open = on(AuthorizerConfig {
        allow_everyone_if_no_acl_found: true,
        ..Default::default()
    });
    assert!(open.authorize(&alice, Write, Topic, "t"));
    // Once any ACL covers the resource, only the ACLs decide.
    add(
        &open,
        vec![binding(
            ResourcePattern::literal(Topic, "t"),
            "User:bob",
            "*",
            Read,
            Allow,
        )],
    );
    assert!(!open.authorize(&alice, Write, Topic, "t"));
    assert!(open.authorize(&alice, Write, Topic, "u"));
}

#[test]
fn supported_operations_are_kafkas_bit_sets() {
    use AclOperation::*;
    // Kafka's values: a topic's eight operations, a cluster's seven.
    assert_eq!(
        operations_bit_set(ResourceType::Topic.supported_operations().iter().copied()),
        0b1101_1111_1000
    );
    assert_eq!(
        operations_bit_set(ResourceType::Cluster.supported_operations().iter().copied()),
        (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12)
    );
    assert_eq!(operations_bit_set([Read, Describe]), (1 << 3) | (1 << 8));
    assert_eq!(operations_bit_set([]), 0);
    assert!(ResourceType::Any.supported_operations().is_empty());
}

#[test]
fn implied_operations_allow_but_never_deny() {
    let a = on(AuthorizerConfig::default());
    let alice = session("alice", "10.0.0.1");
    add(
        &a,
        vec![binding(
            ResourcePattern::literal(Topic, "t"),
            "User:alice",
            "*",
            Read,
            Allow,
        )],
    );
    assert!(a.authorize(&alice, Read, Topic, "t"));
    assert!(a.authorize(&alice, Describe, Topic, "t"));
    assert!(!a.authorize(&alice, Write, Topic, "t"));
    add(
        &a,
        vec![binding(
            ResourcePattern::literal(Topic, "t"),
            "User:alice",
            "*",
            AlterConfigs,
            Allow,
        )],
    );
    assert!(a.authorize(&alice, DescribeConfigs, Topic, "t"));
    // A Deny of Write leaves the Describe that Read implies.
    add(
        &a,
        vec![binding(
            ResourcePattern::literal(Topic, "t"),
            "User:alice",
            "*",
            Write,
            Deny,
        )],
    );
    assert!(a.authorize(&alice, Describe, Topic, "t"));
    add(
        &a,
        vec![binding(
            ResourcePattern::literal(Topic, "t"),
            "User:alice",
            "*",
            Describe,
            Deny,
        )],
    );
    assert!(!a.authorize(&alice, Describe, Topic, "t"));
    assert!(a.authorize(&alice, Read, Topic, "t"));
}

#[test]
fn hosts_wildcards_and_super_users() {
    let a = on(AuthorizerConfig {
        super_users: vec![KafkaPrincipal::user("admin")],
        ..Default::default()
    });
    add(
        &a,
        vec![
            binding(ResourcePattern::literal(Group, "*"), "User:*", "10.0.0.1", Read, Allow),
            binding(
                ResourcePattern::literal(Cluster, CLUSTER_NAME),
                "User:alice",
                "*",
                All,
                Deny,
            ),
        ],
    );
    assert!(a.authorize(&session("anyone", "10.0.0.1"), Read, Group, "g"));
    assert!(!a.authorize(&session("anyone", "10.0.0.2"), Read, Group, "g"));
    assert!(!a.authorize(&session("alice", "10.0.0.1"), ClusterAction, Cluster, CLUSTER_NAME));
    assert!(a.authorize(&session("admin", "10.0.0.9"), ClusterAction, Cluster, CLUSTER_NAME));
}

#[test]
fn by_resource_type_follows_kafka() {
    let a = on(AuthorizerConfig::default());
    let alice = session("alice", "10.0.0.1");
    assert!(!a.authorize_by_resource_type(&alice, Write, Topic));
    add(
        &a,
        vec![binding(
            ResourcePattern::prefixed(Topic, "orders"),
            "User:alice",
            "*",
            Write,
            Allow,
        )],
    );
    assert!(a.authorize_by_resource_type(&alice, Write, Topic));
    // A shorter denied prefix dominates the allowed one.
    add(
        &a,
        vec![binding(
            ResourcePattern::prefixed(Topic, "ord"),
            "User:alice",
            "*",
            Write,
            Deny,
        )],
    );
    assert!(!a.authorize_by_resource_type(&alice, Write, Topic));
    add(
        &a,
        vec![binding(
            ResourcePattern::literal(Topic, "x"),
            "User:alice",
            "*",
            Write,
            Allow,
        )],
    );
    assert!(a.authorize_by_resource_type(&alice, Write, Topic));
    add(
        &a,
        vec![binding(ResourcePattern::literal(Topic, "*"), "User:*", "*", All, Deny)],
    );
    assert!(!a.authorize_by_resource_type(&alice, Write, Topic));
}

#[test]
fn create_validates_and_delete_returns_what_it_removed() {
    let a = on(AuthorizerConfig::default());
    let results = a.create_acls(vec![
        binding(ResourcePattern::literal(Cluster, "other"), "User:a", "*", Alter, Allow),
        binding(ResourcePattern::literal(Topic, ""), "User:a", "*", Read, Allow),
        binding(ResourcePattern::literal(Topic, "a/b"), "User:a", "*", Read, Allow),
        binding(ResourcePattern::prefixed(Topic, "ok"), "User:a", "*", Read, Allow),
        binding(ResourcePattern::literal(Topic, "ok"), "User:a", "*", Read, Allow),
    ]);
    assert!(matches!(&results[0], Err(AclError::Invalid(m)) if m.contains("kafka-cluster")));
    assert!(results[1].is_err() && results[2].is_err() && results[3].is_ok() && results[4].is_ok());
    let mut only_prefixed = AclBindingFilter::any();
    only_prefixed.pattern.pattern_type = PatternType::Prefixed;
    assert_eq!(a.acls(&only_prefixed).len(), 1);
    let deleted = a.delete_acls(&[only_prefixed.clone(), AclBindingFilter::any()]);
    assert_eq!(deleted[0].as_ref().unwrap().len(), 1);
    assert_eq!(
        deleted[1].as_ref().unwrap().len(),
        1,
        "each binding is reported by its first filter"
    );
    assert!(a.acls(&AclBindingFilter::any()).is_empty());
}

fn op() -> impl Strategy<Value = AclOperation> {
    prop::sample::select(vec![
        All,
        Read,
        Write,
        Create,
        Delete,
        Alter,
        Describe,
        DescribeConfigs,
        AlterConfigs,
    ])
}

fn any_binding() -> impl Strategy<Value = AclBinding> {
    (
        prop::sample::select(vec!["a", "ab", "abc", "b", "*"]),
        any::<bool>(),
        prop::sample::select(vec!["User:alice", "User:bob", "User:*"]),
        prop::sample::select(vec!["*", "10.0.0.1", "10.0.0.2"]),
        op(),
        any::<bool>(),
    )
        .prop_map(|(name, prefixed, principal, host, op, allow)| {
            let pattern = if prefixed && name != "*" {
                ResourcePattern::prefixed(Topic, name)
            } else {
                ResourcePattern::literal(Topic, name)
            };
            binding(pattern, principal, host, op, if allow { Allow } else { Deny })
        })
}

proptest! {
    #[test]
    fn a_matching_deny_always_wins(acls in prop::collection::vec(any_binding(), 0..12), op in op(), name in prop::sample::select(vec!["a", "abc", "b", "zz"])) {
        let a = on(AuthorizerConfig { allow_everyone_if_no_acl_found: true, ..Default::default() });
        add(&a, acls.clone());
        let alice = session("alice", "10.0.0.1");
        let denied = acls.iter().any(|b| b.pattern.covers(name) && b.entry.applies(&alice.principal, "10.0.0.1", op, Deny));
        if denied {
            prop_assert!(!a.authorize(&alice, op, Topic, name));
        }
        let allowed = !denied && (
            !acls.iter().any(|b| b.pattern.covers(name))
            || op.allowed_by().iter().any(|o| acls.iter().any(|b| b.pattern.covers(name) && b.entry.applies(&alice.principal, "10.0.0.1", *o, Allow))));
        prop_assert_eq!(a.authorize(&alice, op, Topic, name), allowed);
    }

    #[test]
    fn implied_operations_imply_describe(allowing in prop::sample::select(vec![Read, Write, Delete, Alter, All]), name in "[a-c]{1,4}") {
        let a = on(AuthorizerConfig::default());
        add(&a, vec![binding(ResourcePattern::literal(Topic, name.clone()), "User:alice", "*", allowing, Allow)]);
        prop_assert!(a.authorize(&session("alice", "10.0.0.1"), Describe, Topic, &name));
        prop_assert!(!a.authorize(&session("bob", "10.0.0.1"), Describe, Topic, &name));
    }

    #[test]
    fn a_prefix_covers_exactly_the_names_it_starts(prefix in "[a-c]{1,3}", name in "[a-c]{0,5}") {
        let a = on(AuthorizerConfig::default());
        add(&a, vec![binding(ResourcePattern::prefixed(Topic, prefix.clone()), "User:alice", "*", Read, Allow)]);
        prop_assert_eq!(a.authorize(&session("alice", "10.0.0.1"), Read, Topic, &name), name.starts_with(&prefix));
    }

    #[test]
    fn a_super_user_is_never_refused(acls in prop::collection::vec(any_binding(), 0..12), op in op(), name in "[a-c]{1,3}") {
        let a = on(AuthorizerConfig { super_users: vec![KafkaPrincipal::user("alice")], ..Default::default() });
        add(&a, acls);
        prop_assert!(a.authorize(&session("alice", "10.0.0.1"), op, Topic, &name));
        prop_assert!(a.authorize_by_resource_type(&session("alice", "10.0.0.1"), op, Topic));
    }
}
