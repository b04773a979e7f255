//! An mTLS client's principal, as Kafka's `DefaultKafkaPrincipalBuilder`
//! makes it: `User:` + the certificate subject in the X.500 string form
//! Java prints (RFC 2253: most specific first, `CN=client,O=gregor`),
//! passed through `ssl.principal.mapping.rules`.

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::AuthError;

/// The subject of a DER certificate as Java's `X500Principal.getName()`
/// writes it (RFC 2253).
pub fn certificate_subject(der: &[u8]) -> Result<String, AuthError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| AuthError::Certificate(format!("unreadable certificate: {e}")))?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter() {
        let mut parts = Vec::new();
        for attr in rdn.iter() {
            let oid = attr.attr_type();
            let name = short_name(&oid.to_id_string());
            let value = match (name, attr.as_str()) {
                (Some(n), Ok(v)) => format!("{n}={}", escape(v)),
                // Unknown types or non-string values: dotted OID and the
                // value's DER in hex, as RFC 2253 prescribes.
                _ => format!("{}=#{}", oid.to_id_string(), hex(attr.attr_value().as_bytes())),
            };
            parts.push(value);
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

/// RFC 2253's keywords (those Java's RFC 2253 form uses).
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 2253 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i + 1 == value.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One `RULE:pattern/replacement/[LU]` of `ssl.principal.mapping.rules`,
/// or `DEFAULT` (the subject unchanged).
#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        pattern: regex::Regex,
        replacement: String,
        case: Option<char>,
    },
}

/// `ssl.principal.mapping.rules`: the first rule whose pattern matches the
/// whole subject gives the principal name; no match keeps the subject.
#[derive(Debug, Clone)]
pub struct SslPrincipalMapper {
    rules: Vec<Rule>,
}

impl Default for SslPrincipalMapper {
    fn default() -> Self {
        Self {
            rules: vec![Rule::Default],
        }
    }
}

impl SslPrincipalMapper {
    /// Parses Kafka's rules: `DEFAULT` and `RULE:pattern/replacement/`,
    /// optionally followed by `L` (lower case) or `U` (upper case),
    /// separated by commas or new lines.
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
                continue;
            }
            let body = rest
                .strip_prefix("RULE:")
                .ok_or_else(|| AuthError::Config(format!("invalid ssl.principal.mapping.rules near {rest:?}")))?;
            let (pattern, after) = split_unescaped(body, '/')
                .ok_or_else(|| AuthError::Config(format!("a rule without its replacement: {rest:?}")))?;
            let (replacement, after) = split_unescaped(after, '/')
                .ok_or_else(|| AuthError::Config(format!("a rule without its closing '/': {rest:?}")))?;
            let (case, after) = match after.chars().next() {
                Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                _ => (None, after),
            };
            let pattern = regex::Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| AuthError::Config(format!("ssl.principal.mapping.rules pattern {pattern:?}: {e}")))?;
            rules.push(Rule::Replace {
                pattern,
                replacement: java_replacement(replacement),
                case,
            });
            rest = after;
        }
        if rules.is_empty() {
            return Err(AuthError::Config("ssl.principal.mapping.rules is empty".into()));
        }
        Ok(Self { rules })
    }

    /// The principal name of certificate subject `subject`.
    pub fn name_of(&self, subject: &str) -> String {
        for rule in &self.rules {
            match rule {
                Rule::Default => return subject.to_string(),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    if pattern.is_match(subject) {
                        let name = pattern.replace(subject, replacement.as_str()).into_owned();
                        return match case {
                            Some('L') => name.to_lowercase(),
                            Some('U') => name.to_uppercase(),
                            _ => name,
                        };
                    }
                }
            }
        }
        subject.to_string()
    }
}

/// Splits at the first `sep` not preceded by a backslash.
fn split_unescaped(text: &str, sep: char) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == sep && !escaped => return Some((&text[..i], &text[i + 1..])),
            _ => escaped = false,
        }
    }
    None
}

/// Java's `$1` group references in the regex crate's form (`${1}`).
fn java_replacement(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            if digits.is_empty() {
                out.push_str("$$");
            } else {
                out.push_str(&format!("${{{digits}}}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_subject_in_java_order() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "gregor");
        dn.push(rcgen::DnType::CommonName, "client, one");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(certificate_subject(cert.der()).unwrap(), "CN=client\\, one,O=gregor");
        assert!(certificate_subject(b"not a certificate").is_err());
    }

    #[test]
    fn kafka_mapping_rules() {
        let rules = SslPrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?)$/$1@$2/L,DEFAULT",
        )
        .unwrap();
        assert_eq!(rules.name_of("CN=kafka-svc,OU=ServiceUsers,O=x"), "kafka-svc");
        assert_eq!(rules.name_of("CN=Duke,OU=JavaSoft,O=Sun"), "duke@javasoft");
        assert_eq!(rules.name_of("CN=other"), "CN=other");
        let upper = SslPrincipalMapper::parse("RULE:^CN=([a-z]+)$/$1/U").unwrap();
        assert_eq!(upper.name_of("CN=abc"), "ABC");
        assert_eq!(SslPrincipalMapper::default().name_of("CN=a,O=b"), "CN=a,O=b");
        assert!(SslPrincipalMapper::parse("RULE:(/x").is_err());
        assert!(SslPrincipalMapper::parse("NONSENSE").is_err());
    }
}
