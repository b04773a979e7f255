//! SCRAM credentials through the admin client (KIP-554, what
//! `kafka-configs --alter --add-config 'SCRAM-SHA-512=[password=…]'`
//! does): the password is salted here, only the salted form is sent.

use gregor_auth::sasl::ScramMechanism;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::admin::{check, Admin};
use crate::ClientError;

/// One user's credentials: (mechanism, iterations) each.
pub type UserCredentials = (String, Vec<(ScramMechanism, i32)>);

impl Admin {
    /// Sets `user`'s password for `mechanism` with `iterations` (Kafka
    /// accepts 4096 to 16384).
    pub async fn set_scram_password(
        &mut self,
        user: &str,
        mechanism: ScramMechanism,
        password: &str,
        iterations: i32,
    ) -> Result<(), ClientError> {
        let salt: [u8; 32] = gregor_auth::sasl::credential::random_salt();
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations.max(1) as u32);
        let mut upsertion = ScramCredentialUpsertion::default();
        upsertion.name = StrBytes::from_string(user.to_string());
        upsertion.mechanism = mechanism.type_id();
        upsertion.iterations = iterations;
        upsertion.salt = salt.to_vec().into();
        upsertion.salted_password = salted.into();
        let mut request = AlterUserScramCredentialsRequest::default();
        request.upsertions = vec![upsertion];
        let response = self.connection.send(request, 0).await?;
        for r in &response.results {
            check(r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// Deletes `user`'s credential for `mechanism`.
    pub async fn delete_scram_credential(&mut self, user: &str, mechanism: ScramMechanism) -> Result<(), ClientError> {
        let mut deletion = ScramCredentialDeletion::default();
        deletion.name = StrBytes::from_string(user.to_string());
        deletion.mechanism = mechanism.type_id();
        let mut request = AlterUserScramCredentialsRequest::default();
        request.deletions = vec![deletion];
        let response = self.connection.send(request, 0).await?;
        for r in &response.results {
            check(r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// The users with SCRAM credentials (`users` empty: every one).
    pub async fn describe_scram_credentials(&mut self, users: &[String]) -> Result<Vec<UserCredentials>, ClientError> {
        let mut request = DescribeUserScramCredentialsRequest::default();
        request.users = (!users.is_empty()).then(|| {
            users
                .iter()
                .map(|u| {
                    let mut name = UserName::default();
                    name.name = StrBytes::from_string(u.clone());
                    name
                })
                .collect()
        });
        let response = self.connection.send(request, 0).await?;
        check(response.error_code, response.error_message.as_ref())?;
        let mut out = Vec::new();
        for r in response.results {
            check(r.error_code, r.error_message.as_ref())?;
            let credentials = r
                .credential_infos
                .iter()
                .filter_map(|c| Some((ScramMechanism::from_type_id(c.mechanism)?, c.iterations)))
                .collect();
            out.push((r.user.to_string(), credentials));
        }
        Ok(out)
    }
}
