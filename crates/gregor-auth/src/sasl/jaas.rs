//! The part of a JAAS login configuration Kafka's SASL/PLAIN and SCRAM
//! modules read: `<LoginModule class> required key="value" … ;` — PLAIN's
//! users (`user_<name>="<password>"`) and the broker's own `username` and
//! `password` towards other brokers.

use std::collections::HashMap;

use crate::AuthError;

/// One login module entry's options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JaasConfig {
    /// The login module's class name.
    pub login_module: String,
    /// Its options, in order of appearance.
    pub options: Vec<(String, String)>,
}

impl JaasConfig {
    /// Parses `Module required k="v" k2=v2;` (one entry; `required`,
    /// `requisite`, `sufficient` or `optional`).
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        let bad = |why: &str| AuthError::Config(format!("sasl.jaas.config: {why}"));
        let text = text.trim();
        let text = text
            .strip_suffix(';')
            .ok_or_else(|| bad("the entry must end with ';'"))?;
        let mut chars = text.char_indices().peekable();
        let mut tokens: Vec<String> = Vec::new();
        // Splits on whitespace and '=', keeping quoted strings whole.
        let mut current = String::new();
        while let Some((_, c)) = chars.next() {
            match c {
                '"' => {
                    let mut quoted = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '\\')) => {
                                if let Some((_, e)) = chars.next() {
                                    quoted.push(e);
                                }
                            }
                            Some((_, '"')) => break,
                            Some((_, c)) => quoted.push(c),
                            None => return Err(bad("an unterminated quoted value")),
                        }
                    }
                    current.push_str(&quoted);
                    tokens.push(std::mem::take(&mut current));
                }
                '=' => {
                    if !current.is_empty() {
                        tokens.push(std::mem::take(&mut current));
                    }
                    tokens.push("=".into());
                }
                c if c.is_whitespace() => {
                    if !current.is_empty() {
                        tokens.push(std::mem::take(&mut current));
                    }
                }
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            tokens.push(current);
        }
        let mut tokens = tokens.into_iter();
        let login_module = tokens.next().ok_or_else(|| bad("no login module"))?;
        match tokens.next().as_deref() {
            Some("required" | "requisite" | "sufficient" | "optional") => {}
            _ => return Err(bad("the login module must be followed by a control flag (required)")),
        }
        let rest: Vec<String> = tokens.collect();
        let mut options = Vec::new();
        let mut i = 0;
        while i < rest.len() {
            match (rest.get(i), rest.get(i + 1), rest.get(i + 2)) {
                (Some(k), Some(eq), Some(v)) if eq == "=" && k != "=" => {
                    options.push((k.clone(), v.clone()));
                    i += 3;
                }
                _ => return Err(bad(&format!("expected key=\"value\" near {:?}", rest[i]))),
            }
        }
        Ok(Self { login_module, options })
    }

    /// An option's value.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// PLAIN's users: every `user_<name>="<password>"`.
    pub fn plain_users(&self) -> HashMap<String, String> {
        self.options
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_jaas_lines() {
        let c = JaasConfig::parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="admin-secret"
               user_admin="admin-secret" user_alice="a \"quoted\" pw";"#,
        )
        .unwrap();
        assert_eq!(c.option("username"), Some("admin"));
        let users = c.plain_users();
        assert_eq!(users["alice"], "a \"quoted\" pw");
        assert_eq!(users.len(), 2);
        assert!(JaasConfig::parse("Module required user_a=\"x\"").is_err());
        assert!(JaasConfig::parse("Module user_a=\"x\";").is_err());
        assert!(JaasConfig::parse("Module required user_a;").is_err());
    }
}
