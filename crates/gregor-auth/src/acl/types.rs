//! Kafka's ACL vocabulary (`org.apache.kafka.common.acl` and
//! `common.resource`): resource types, pattern types, operations,
//! permission types — with Kafka's wire codes and names — and the
//! resource patterns, entries and bindings built from them.

use std::fmt;

use crate::KafkaPrincipal;

/// The resource name that matches every name of its type (LITERAL `*`).
pub const WILDCARD_RESOURCE: &str = "*";
/// The host that matches every client address.
pub const WILDCARD_HOST: &str = "*";
/// The one name of the CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// Turns `TRANSACTIONAL_ID` into `TransactionalId` (Kafka's
/// `SecurityUtils.toPascalCase`).
fn pascal_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut capital = true;
    for c in name.chars() {
        if c == '_' {
            capital = true;
        } else if capital {
            out.extend(c.to_uppercase());
            capital = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

macro_rules! kafka_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal, $upper:literal;)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL_VALUES: &'static [$name] = &[$($name::$variant,)*];

            /// The wire code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code,)* }
            }

            /// The value of a wire code (`None`: a code this broker does not know,
            /// Kafka's UNKNOWN).
            pub fn from_code(code: i8) -> Option<Self> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// Kafka's enum name (`TRANSACTIONAL_ID`).
            pub fn upper_name(self) -> &'static str {
                match self { $($name::$variant => $upper,)* }
            }

            /// Kafka's display name (`TransactionalId`), as stored in coordination.
            pub fn name(self) -> String {
                pascal_case(self.upper_name())
            }

            /// Parses Kafka's display or enum name (`TransactionalId`,
            /// `TRANSACTIONAL_ID`), case-insensitively, with or without `_`
            /// (`transactional-id` too).
            pub fn parse(s: &str) -> Option<Self> {
                let key: String = s.chars().filter(|c| *c != '_' && *c != '-').collect::<String>().to_ascii_uppercase();
                Self::ALL_VALUES.iter().copied().find(|v| v.upper_name().replace('_', "") == key)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.name())
            }
        }
    };
}

kafka_enum!(
    /// What kind of thing an ACL protects (Kafka's `ResourceType`).
    ResourceType {
        /// In a filter: any type.
        Any = 1, "ANY";
        /// A topic.
        Topic = 2, "TOPIC";
        /// A consumer group.
        Group = 3, "GROUP";
        /// The cluster as a whole (named `kafka-cluster`).
        Cluster = 4, "CLUSTER";
        /// A transactional id.
        TransactionalId = 5, "TRANSACTIONAL_ID";
        /// A delegation token.
        DelegationToken = 6, "DELEGATION_TOKEN";
        /// A user principal.
        User = 7, "USER";
    }
);

kafka_enum!(
    /// How a pattern's name matches resource names (Kafka's `PatternType`).
    PatternType {
        /// In a filter: any pattern type, names compared exactly.
        Any = 1, "ANY";
        /// In a filter: every pattern that would match the name.
        Match = 2, "MATCH";
        /// The exact name (or `*`, every name).
        Literal = 3, "LITERAL";
        /// Every name that starts with it.
        Prefixed = 4, "PREFIXED";
    }
);

kafka_enum!(
    /// What an ACL lets a principal do (Kafka's `AclOperation`).
    AclOperation {
        /// In a filter: any operation.
        Any = 1, "ANY";
        /// Every operation.
        All = 2, "ALL";
        /// Read (consume, join a group).
        Read = 3, "READ";
        /// Write (produce).
        Write = 4, "WRITE";
        /// Create (topics).
        Create = 5, "CREATE";
        /// Delete (topics, records, groups).
        Delete = 6, "DELETE";
        /// Alter (partitions, ACLs).
        Alter = 7, "ALTER";
        /// Describe (metadata, offsets).
        Describe = 8, "DESCRIBE";
        /// What brokers and the controller do to each other.
        ClusterAction = 9, "CLUSTER_ACTION";
        /// Describe configs.
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        /// Alter configs.
        AlterConfigs = 11, "ALTER_CONFIGS";
        /// Produce idempotently.
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        /// Create delegation tokens.
        CreateTokens = 13, "CREATE_TOKENS";
        /// Describe delegation tokens.
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
);

kafka_enum!(
    /// Whether an ACL allows or denies (Kafka's `AclPermissionType`).
    AclPermissionType {
        /// In a filter: either.
        Any = 1, "ANY";
        /// Denies; wins over any Allow.
        Deny = 2, "DENY";
        /// Allows.
        Allow = 3, "ALLOW";
    }
);

impl ResourceType {
    /// The operations an ACL on a resource of this type can name (Kafka's
    /// `AclEntry.supportedOperations`); none for `Any`.
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            Self::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            Self::Group => &[Read, Describe, Delete],
            Self::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            Self::TransactionalId => &[Describe, Write],
            Self::DelegationToken => &[Describe],
            Self::User => &[CreateTokens, DescribeTokens],
            Self::Any => &[],
        }
    }
}

/// Kafka's `Utils.to32BitField` of operations: bit `code` set for each
/// (the `authorized_operations` fields of Metadata, DescribeGroups and
/// DescribeCluster).
pub fn operations_bit_set(operations: impl IntoIterator<Item = AclOperation>) -> i32 {
    operations.into_iter().fold(0i32, |bits, op| {
        bits | 1i32.wrapping_shl(u32::from(op.code().unsigned_abs()))
    })
}

impl AclOperation {
    /// The operations whose Allow also allows this one (Kafka's implied
    /// operations): Describe is allowed by Read, Write, Delete or Alter;
    /// DescribeConfigs by AlterConfigs. `All` allows everything.
    pub fn allowed_by(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            Describe => &[Describe, Read, Write, Delete, Alter],
            DescribeConfigs => &[DescribeConfigs, AlterConfigs],
            Read => &[Read],
            Write => &[Write],
            Create => &[Create],
            Delete => &[Delete],
            Alter => &[Alter],
            ClusterAction => &[ClusterAction],
            AlterConfigs => &[AlterConfigs],
            IdempotentWrite => &[IdempotentWrite],
            CreateTokens => &[CreateTokens],
            DescribeTokens => &[DescribeTokens],
            All => &[All],
            Any => &[],
        }
    }
}

/// Resources an ACL names: a type, a name and how the name matches
/// (Kafka's `ResourcePattern`; type and pattern type are specific).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    /// The resource type (not `Any`).
    pub resource_type: ResourceType,
    /// The name, the prefix, or `*`.
    pub name: String,
    /// LITERAL or PREFIXED.
    pub pattern_type: PatternType,
}

impl ResourcePattern {
    /// A LITERAL pattern.
    pub fn literal(resource_type: ResourceType, name: impl Into<String>) -> Self {
        Self {
            resource_type,
            name: name.into(),
            pattern_type: PatternType::Literal,
        }
    }

    /// A PREFIXED pattern.
    pub fn prefixed(resource_type: ResourceType, name: impl Into<String>) -> Self {
        Self {
            resource_type,
            name: name.into(),
            pattern_type: PatternType::Prefixed,
        }
    }

    /// Whether this pattern covers the resource `name` of its type: the
    /// same name, `*` (LITERAL), or a prefix of it (PREFIXED).
    pub fn covers(&self, name: &str) -> bool {
        match self.pattern_type {
            PatternType::Literal => self.name == name || self.name == WILDCARD_RESOURCE,
            PatternType::Prefixed => name.starts_with(&self.name),
            PatternType::Any | PatternType::Match => false,
        }
    }

    /// Whether type and pattern type are specific (a binding may hold it).
    pub fn is_specific(&self) -> bool {
        self.resource_type != ResourceType::Any
            && matches!(self.pattern_type, PatternType::Literal | PatternType::Prefixed)
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ResourcePattern(resourceType={}, name={}, patternType={})",
            self.resource_type.upper_name(),
            self.name,
            self.pattern_type.upper_name()
        )
    }
}

/// Who may or may not do what from where (Kafka's `AccessControlEntry`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessControlEntry {
    /// `User:alice`, or `User:*` for every principal.
    pub principal: KafkaPrincipal,
    /// A client IP address, or `*`.
    pub host: String,
    /// The operation (not `Any`).
    pub operation: AclOperation,
    /// Allow or Deny.
    pub permission: AclPermissionType,
}

impl AccessControlEntry {
    /// Whether this entry names `principal` connecting from `host` for
    /// `operation` (or All), with `permission`.
    pub fn applies(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        operation: AclOperation,
        permission: AclPermissionType,
    ) -> bool {
        self.permission == permission
            && (self.principal == *principal || self.principal == wildcard_principal())
            && (self.operation == operation || self.operation == AclOperation::All)
            && (self.host == host || self.host == WILDCARD_HOST)
    }
}

/// `User:*`: an entry for every principal.
pub fn wildcard_principal() -> KafkaPrincipal {
    KafkaPrincipal::user("*")
}

/// An entry on a pattern (Kafka's `AclBinding`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// What it protects.
    pub pattern: ResourcePattern,
    /// Who may (not) do what.
    pub entry: AccessControlEntry,
}

/// Which patterns a filter selects (Kafka's `ResourcePatternFilter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePatternFilter {
    /// A type, or `Any`.
    pub resource_type: ResourceType,
    /// A name, or `None` for any.
    pub name: Option<String>,
    /// LITERAL, PREFIXED, ANY (names compared exactly) or MATCH (every
    /// pattern that covers the name).
    pub pattern_type: PatternType,
}

impl ResourcePatternFilter {
    /// Whether `pattern` passes (Kafka's `ResourcePatternFilter.matches`).
    pub fn matches(&self, pattern: &ResourcePattern) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != pattern.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != pattern.pattern_type
        {
            return false;
        }
        let Some(name) = &self.name else { return true };
        if self.pattern_type == PatternType::Any || self.pattern_type == pattern.pattern_type {
            return *name == pattern.name;
        }
        // MATCH: every pattern that would cover the name.
        pattern.covers(name)
    }

    /// The one pattern this filter can match, when it names a specific
    /// type, a name and LITERAL or PREFIXED (Kafka's `matchesAtMostOne`).
    pub fn exact_pattern(&self) -> Option<ResourcePattern> {
        let pattern = ResourcePattern {
            resource_type: self.resource_type,
            name: self.name.clone()?,
            pattern_type: self.pattern_type,
        };
        pattern.is_specific().then_some(pattern)
    }
}

/// Which entries a filter selects (Kafka's `AccessControlEntryFilter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessControlEntryFilter {
    /// A principal (`User:alice`), or `None` for any.
    pub principal: Option<String>,
    /// A host, or `None` for any.
    pub host: Option<String>,
    /// An operation, or `Any`.
    pub operation: AclOperation,
    /// A permission, or `Any`.
    pub permission: AclPermissionType,
}

impl AccessControlEntryFilter {
    /// Whether `entry` passes: each given field equal (no wildcard
    /// expansion, as Kafka).
    pub fn matches(&self, entry: &AccessControlEntry) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| *p == entry.principal.to_string())
            && self.host.as_ref().is_none_or(|h| *h == entry.host)
            && (self.operation == AclOperation::Any || self.operation == entry.operation)
            && (self.permission == AclPermissionType::Any || self.permission == entry.permission)
    }
}

/// A pattern filter and an entry filter (Kafka's `AclBindingFilter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    /// Which patterns.
    pub pattern: ResourcePatternFilter,
    /// Which entries.
    pub entry: AccessControlEntryFilter,
}

impl AclBindingFilter {
    /// Whether a binding passes both filters.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.pattern.matches(&binding.pattern) && self.entry.matches(&binding.entry)
    }

    /// Every binding.
    pub fn any() -> Self {
        Self {
            pattern: ResourcePatternFilter {
                resource_type: ResourceType::Any,
                name: None,
                pattern_type: PatternType::Any,
            },
            entry: AccessControlEntryFilter {
                principal: None,
                host: None,
                operation: AclOperation::Any,
                permission: AclPermissionType::Any,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kafkas() {
        assert_eq!(ResourceType::TransactionalId.name(), "TransactionalId");
        assert_eq!(AclOperation::DescribeConfigs.name(), "DescribeConfigs");
        assert_eq!(AclPermissionType::Allow.name(), "Allow");
        assert_eq!(
            ResourceType::parse("TRANSACTIONAL_ID"),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(
            ResourceType::parse("TransactionalId"),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(
            AclOperation::parse("idempotent-write"),
            Some(AclOperation::IdempotentWrite)
        );
        assert_eq!(PatternType::parse("prefixed"), Some(PatternType::Prefixed));
        assert_eq!(ResourceType::parse("Broker"), None);
        assert_eq!(AclOperation::from_code(12), Some(AclOperation::IdempotentWrite));
        assert_eq!(AclOperation::from_code(0), None);
    }

    #[test]
    fn match_filters_find_every_pattern_covering_the_name() {
        let filter = ResourcePatternFilter {
            resource_type: ResourceType::Topic,
            name: Some("orders-eu".into()),
            pattern_type: PatternType::Match,
        };
        assert!(filter.matches(&ResourcePattern::literal(ResourceType::Topic, "orders-eu")));
        assert!(filter.matches(&ResourcePattern::literal(ResourceType::Topic, "*")));
        assert!(filter.matches(&ResourcePattern::prefixed(ResourceType::Topic, "orders")));
        assert!(!filter.matches(&ResourcePattern::prefixed(ResourceType::Topic, "ordersx")));
        assert!(!filter.matches(&ResourcePattern::literal(ResourceType::Group, "orders-eu")));
        let any = ResourcePatternFilter {
            pattern_type: PatternType::Any,
            ..filter
        };
        assert!(!any.matches(&ResourcePattern::literal(ResourceType::Topic, "*")));
        assert!(any.matches(&ResourcePattern::prefixed(ResourceType::Topic, "orders-eu")));
    }
}
