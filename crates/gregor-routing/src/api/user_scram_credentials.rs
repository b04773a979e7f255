//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554):
//! SCRAM credentials in `/config/users/<user>`, with Kafka's checks and
//! errors. Clients salt the password themselves; the broker derives the
//! stored and server keys.

use std::collections::{BTreeMap, BTreeSet};

use gregor_auth::sasl::credential::{MAX_ITERATIONS, MIN_ITERATIONS};
use gregor_auth::sasl::{ScramCredential, ScramMechanism};
use gregor_broker::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};

use super::str_bytes;

fn infos(credentials: Vec<(ScramMechanism, i32)>) -> Vec<CredentialInfo> {
    credentials
        .into_iter()
        .map(|(m, iterations)| {
            let mut info = CredentialInfo::default();
            info.mechanism = m.type_id();
            info.iterations = iterations;
            info
        })
        .collect()
}

/// Answers DescribeUserScramCredentials: every user with credentials when
/// none is named.
pub fn describe(broker: &Broker, request: DescribeUserScramCredentialsRequest) -> DescribeUserScramCredentialsResponse {
    let credentials = broker.scram_credentials();
    let mut response = DescribeUserScramCredentialsResponse::default();
    let named: Vec<String> = request
        .users
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    if named.is_empty() {
        response.results = credentials
            .describe_all()
            .into_iter()
            .map(|(user, c)| {
                let mut r = DescribeUserScramCredentialsResult::default();
                r.user = str_bytes(&user);
                r.credential_infos = infos(c);
                r
            })
            .collect();
        return response;
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for user in &named {
        *counts.entry(user).or_default() += 1;
    }
    for (user, count) in counts {
        let mut r = DescribeUserScramCredentialsResult::default();
        r.user = str_bytes(user);
        if count > 1 {
            r.error_code = ResponseError::DuplicateResource.code();
            r.error_message = Some(str_bytes(&format!(
                "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
            )));
        } else {
            match credentials.describe(user) {
                Ok(c) => r.credential_infos = infos(c),
                Err(refused) => {
                    r.error_code = refused.code;
                    r.error_message = Some(str_bytes(&format!("{}: {user}", refused.message)));
                }
            }
        }
        response.results.push(r);
    }
    response
}

/// One alteration: a user, a mechanism, the new credential (none: delete).
type Alteration = (String, i8, Option<(i32, Vec<u8>, Vec<u8>)>);

/// Answers AlterUserScramCredentials: one result per user named.
pub fn alter(broker: &Broker, request: AlterUserScramCredentialsRequest) -> AlterUserScramCredentialsResponse {
    let mut alterations: Vec<Alteration> = Vec::new();
    for d in request.deletions {
        alterations.push((d.name.to_string(), d.mechanism, None));
    }
    for u in request.upsertions {
        alterations.push((
            u.name.to_string(),
            u.mechanism,
            Some((u.iterations, u.salt.to_vec(), u.salted_password.to_vec())),
        ));
    }
    let mut seen = BTreeSet::new();
    let duplicated: BTreeSet<String> = alterations
        .iter()
        .filter(|(user, m, _)| !seen.insert((user.clone(), *m)))
        .map(|(user, _, _)| user.clone())
        .collect();
    let mut outcome: BTreeMap<String, Option<(ResponseError, String)>> = BTreeMap::new();
    for (user, mechanism, change) in alterations {
        if matches!(outcome.get(&user), Some(Some(_))) {
            continue;
        }
        let result = check_and_apply(broker, &user, mechanism, change, duplicated.contains(&user));
        outcome.insert(user, result.err());
    }
    let mut response = AlterUserScramCredentialsResponse::default();
    response.results = outcome
        .into_iter()
        .map(|(user, error)| {
            let mut r = AlterUserScramCredentialsResult::default();
            r.user = str_bytes(&user);
            if let Some((code, message)) = error {
                r.error_code = code.code();
                r.error_message = Some(str_bytes(&message));
            }
            r
        })
        .collect();
    response
}

fn check_and_apply(
    broker: &Broker,
    user: &str,
    mechanism: i8,
    change: Option<(i32, Vec<u8>, Vec<u8>)>,
    duplicated: bool,
) -> Result<(), (ResponseError, String)> {
    if user.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Username must not be empty".into(),
        ));
    }
    if duplicated {
        return Err((
            ResponseError::DuplicateResource,
            "A user credential cannot be altered twice in the same request".into(),
        ));
    }
    let mechanism = ScramMechanism::from_type_id(mechanism).ok_or_else(|| {
        (
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism".into(),
        )
    })?;
    let credential = match change {
        None => None,
        Some((iterations, salt, salted)) => {
            if iterations < MIN_ITERATIONS {
                return Err((ResponseError::UnacceptableCredential, "Too few iterations".into()));
            }
            if iterations > MAX_ITERATIONS {
                return Err((ResponseError::UnacceptableCredential, "Too many iterations".into()));
            }
            if salt.is_empty() || salted.is_empty() {
                return Err((
                    ResponseError::UnacceptableCredential,
                    "A credential needs a salt and a salted password".into(),
                ));
            }
            Some(ScramCredential::from_salted_password(
                mechanism, &salt, &salted, iterations,
            ))
        }
    };
    broker
        .scram_credentials()
        .alter(user, mechanism, credential)
        .map_err(|refused| {
            (
                ResponseError::try_from_code(refused.code).unwrap_or(ResponseError::UnknownServerError),
                refused.message,
            )
        })
}
