//! Signed-token auth: JWT with HS256 (`jsonwebtoken`). A token names the scenes it
//! opens (one scene, or every scene whose name starts with a prefix), the access
//! (`read` or `write`) and an expiry (`exp`, seconds since the Unix epoch; required).
//!
//! Invariant: with auth configured, a connection or HTTP read is allowed only with a
//! token whose signature verifies with the server's secret, that has not expired, and
//! whose scene claim covers the scene; a `read` token never writes.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The server's auth settings.
#[derive(Clone)]
pub struct AuthConfig {
    secret: Vec<u8>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig").finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// Tokens are signed with `secret` (HS256).
    pub fn new(secret: impl Into<Vec<u8>>) -> AuthConfig {
        AuthConfig {
            secret: secret.into(),
        }
    }
}

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Join, sync and read state; `crdt` frames get `error … read_only`.
    Read,
    /// Everything.
    Write,
}

/// A token's claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The one scene it opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene: Option<String>,
    /// Or: every scene whose name starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Read or write.
    pub access: Access,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Who it was issued to (informational; logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

impl Claims {
    /// True when the claims open `scene`.
    pub fn covers(&self, scene: &str) -> bool {
        self.scene.as_deref() == Some(scene)
            || self.prefix.as_deref().is_some_and(|p| scene.starts_with(p))
    }
}

/// Signs `claims` with `secret` (HS256): what an application server hands its users.
///
/// # Errors
/// The encoder's error (it does not fail for these claims in practice).
///
/// # Examples
/// ```
/// use vuer_rtc::server::{Access, Claims, make_token};
/// let claims = Claims { scene: Some("demo".into()), prefix: None, access: Access::Write, exp: 4_000_000_000, sub: None };
/// let token = make_token(b"secret", &claims).unwrap();
/// assert_eq!(token.split('.').count(), 3);
/// ```
pub fn make_token(secret: &[u8], claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
}

/// Why a request was refused (the HTTP status is 401 for all but `Forbidden`, 403).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum AuthError {
    #[error("a token is required (`?token=` or `Authorization: Bearer`)")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the token does not open scene {0:?}")]
    Forbidden(String),
}

impl AuthConfig {
    /// Checks `token` for `scene`; returns the access it grants.
    pub(crate) fn check(&self, token: Option<&str>, scene: &str) -> Result<Access, AuthError> {
        let token = token.ok_or(AuthError::Missing)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(&self.secret),
            &validation,
        )
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
        if !data.claims.covers(scene) {
            return Err(AuthError::Forbidden(scene.to_owned()));
        }
        Ok(data.claims.access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scene: Option<&str>, prefix: Option<&str>, access: Access, exp: u64) -> Claims {
        Claims {
            scene: scene.map(Into::into),
            prefix: prefix.map(Into::into),
            access,
            exp,
            sub: None,
        }
    }

    const LATER: u64 = 4_000_000_000;

    #[test]
    fn tokens_open_their_scenes_only() {
        let auth = AuthConfig::new("s3cret");
        let t = make_token(b"s3cret", &claims(Some("demo"), None, Access::Read, LATER)).unwrap();
        assert_eq!(auth.check(Some(&t), "demo"), Ok(Access::Read));
        assert!(matches!(
            auth.check(Some(&t), "demo2"),
            Err(AuthError::Forbidden(_))
        ));
        let p = make_token(
            b"s3cret",
            &claims(None, Some("team-"), Access::Write, LATER),
        )
        .unwrap();
        assert_eq!(auth.check(Some(&p), "team-a"), Ok(Access::Write));
        assert!(auth.check(Some(&p), "other").is_err());
    }

    #[test]
    fn bad_tokens_are_refused() {
        let auth = AuthConfig::new("s3cret");
        assert_eq!(auth.check(None, "demo"), Err(AuthError::Missing));
        let wrong =
            make_token(b"other", &claims(Some("demo"), None, Access::Write, LATER)).unwrap();
        assert!(matches!(
            auth.check(Some(&wrong), "demo"),
            Err(AuthError::Invalid(_))
        ));
        let expired = make_token(b"s3cret", &claims(Some("demo"), None, Access::Write, 1)).unwrap();
        assert!(matches!(
            auth.check(Some(&expired), "demo"),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            auth.check(Some("not.a.jwt"), "demo"),
            Err(AuthError::Invalid(_))
        ));
    }
}
