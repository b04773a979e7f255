//! SASL PLAIN (RFC 4616, as Kafka's `PlainSaslServer`): one message
//! `[authzid] NUL authcid NUL passwd`, checked against the users of the
//! JAAS configuration.

use std::collections::HashMap;

use subtle::ConstantTimeEq;

use crate::AuthError;

/// Checks a PLAIN message against `users` (name → password); the user
/// name on success.
pub fn authenticate(token: &[u8], users: &HashMap<String, String>) -> Result<String, AuthError> {
    let text = std::str::from_utf8(token)
        .map_err(|_| AuthError::Sasl("Authentication failed: the PLAIN message is not UTF-8".into()))?;
    let mut parts = text.split('\u{0}');
    let (Some(authzid), Some(username), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Sasl("Invalid SASL/PLAIN response: expected 3 tokens".into()));
    };
    if username.is_empty() {
        return Err(AuthError::Sasl("Authentication failed: username not specified".into()));
    }
    if password.is_empty() {
        return Err(AuthError::Sasl("Authentication failed: password not specified".into()));
    }
    let known = users
        .get(username)
        .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(password.as_bytes())));
    if !known {
        return Err(AuthError::Sasl(
            "Authentication failed: Invalid username or password".into(),
        ));
    }
    if !authzid.is_empty() && authzid != username {
        return Err(AuthError::Sasl(
            "Authentication failed: Client requested an authorization id that is different from username".into(),
        ));
    }
    Ok(username.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_users() {
        let users: HashMap<String, String> = [("alice".to_string(), "alice-secret".to_string())].into();
        assert_eq!(authenticate(b"\0alice\0alice-secret", &users).unwrap(), "alice");
        assert_eq!(authenticate(b"alice\0alice\0alice-secret", &users).unwrap(), "alice");
        for bad in [
            &b"\0alice\0wrong"[..],
            b"\0bob\0alice-secret",
            b"\0alice",
            b"bob\0alice\0alice-secret",
            b"\0\0x",
        ] {
            assert!(authenticate(bad, &users).is_err(), "{bad:?}");
        }
    }
}
