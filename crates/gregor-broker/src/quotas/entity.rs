//! Who a quota applies to: a user, a client id, or a user's client id,
//! each named or the default; and their names in Kafka's coordination
//! paths (`users/<sanitized user>/clients/<sanitized client id>`, the
//! default being `<default>`).

use std::fmt;

/// `<default>`: the default entity's name in paths.
pub const DEFAULT_NAME: &str = "<default>";
/// The entity type of users.
pub const USER: &str = "user";
/// The entity type of client ids.
pub const CLIENT_ID: &str = "client-id";
/// The user name of every connection without authentication (the name
/// of `User:ANONYMOUS`); an authenticated one is charged to its own.
pub const ANONYMOUS: &str = "ANONYMOUS";

/// One part of an entity: a named user or client id, or the default one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntityName {
    /// The default (a null name on the wire).
    Default,
    /// This name (not sanitized).
    Named(String),
}

impl EntityName {
    /// From the wire: a null name is the default.
    pub fn from_wire(name: Option<&str>) -> Self {
        match name {
            None => Self::Default,
            Some(n) => Self::Named(n.to_string()),
        }
    }

    /// To the wire: the default is null.
    pub fn to_wire(&self) -> Option<&str> {
        match self {
            Self::Default => None,
            Self::Named(n) => Some(n),
        }
    }

    fn to_path(&self) -> String {
        match self {
            Self::Default => DEFAULT_NAME.to_string(),
            Self::Named(n) => sanitize(n),
        }
    }

    fn from_path(part: &str) -> Option<Self> {
        if part == DEFAULT_NAME {
            Some(Self::Default)
        } else {
            desanitize(part).map(Self::Named)
        }
    }
}

/// A quota entity: a user, a client id, or both.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuotaEntity {
    /// The user part.
    pub user: Option<EntityName>,
    /// The client id part.
    pub client_id: Option<EntityName>,
}

impl QuotaEntity {
    /// The entity's path under `/config` (also a change notification's
    /// `entity_path`): `users/<u>`, `clients/<c>` or `users/<u>/clients/<c>`.
    /// `None` for an entity with neither part.
    pub fn path(&self) -> Option<String> {
        match (&self.user, &self.client_id) {
            (Some(u), Some(c)) => Some(format!("users/{}/clients/{}", u.to_path(), c.to_path())),
            (Some(u), None) => Some(format!("users/{}", u.to_path())),
            (None, Some(c)) => Some(format!("clients/{}", c.to_path())),
            (None, None) => None,
        }
    }

    /// The entity of a path under `/config` (see [`QuotaEntity::path`]).
    pub fn from_path(path: &str) -> Option<Self> {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["users", u] => Some(Self {
                user: Some(EntityName::from_path(u)?),
                client_id: None,
            }),
            ["clients", c] => Some(Self {
                user: None,
                client_id: Some(EntityName::from_path(c)?),
            }),
            ["users", u, "clients", c] => Some(Self {
                user: Some(EntityName::from_path(u)?),
                client_id: Some(EntityName::from_path(c)?),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path().as_deref().unwrap_or("(none)"))
    }
}

/// Kafka's `Sanitizer.sanitize`: URL-encoding (UTF-8) where a space is
/// `%20` and `*` is `%2A`; letters, digits, `.`, `-` and `_` stay.
pub fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The inverse of [`sanitize`] (also reads `+` as a space, as Kafka's
/// URL decoding does); `None` for a malformed escape or invalid UTF-8.
pub fn desanitize(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn named(n: &str) -> Option<EntityName> {
        Some(EntityName::Named(n.into()))
    }

    #[test]
    fn paths_are_kafkas() {
        let e = QuotaEntity {
            user: named("CN=alice, O=x"),
            client_id: Some(EntityName::Default),
        };
        assert_eq!(e.path().unwrap(), "users/CN%3Dalice%2C%20O%3Dx/clients/<default>");
        assert_eq!(QuotaEntity::from_path(&e.path().unwrap()), Some(e));
        let c = QuotaEntity {
            user: None,
            client_id: named("my*client"),
        };
        assert_eq!(c.path().unwrap(), "clients/my%2Aclient");
        assert_eq!(QuotaEntity::from_path("topics/t"), None);
        assert_eq!(QuotaEntity::from_path("users/%zz"), None);
    }

    proptest! {
        #[test]
        fn sanitize_round_trips(name in ".*") {
            let s = sanitize(&name);
            prop_assert!(!s.contains('/'));
            prop_assert_eq!(desanitize(&s), Some(name));
        }
    }
}
