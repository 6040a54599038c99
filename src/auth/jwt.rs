//! Optional JWT bearer credentials (`[auth.jwt]`): HS256 with a shared secret, or RS256 /
//! ES256 with a public key in PEM. `exp` is required and enforced (with `leeway_secs`);
//! `iss` and `aud` are checked when configured. The role comes from the `role_claim`
//! claim (default `role`), the optional project list from `projects_claim` (default
//! `projects`, an array of UUID strings), the name from `sub`.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::collections::BTreeSet;
use uuid::Uuid;

use super::{unauthorized, JwtSettings, Principal, Role};
use crate::error::{ApiError, Code};

pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    role_claim: String,
    projects_claim: String,
}

/// Three base64url parts separated by dots (API tokens never contain a dot).
pub fn looks_like_jwt(s: &str) -> bool {
    s.split('.').count() == 3
}

impl JwtVerifier {
    /// `None` when JWT is off (`algorithm = ""`); an error names what is wrong.
    pub fn from_settings(s: &JwtSettings) -> Result<Option<JwtVerifier>, String> {
        let alg = match s.algorithm.trim().to_ascii_uppercase().as_str() {
            "" => return Ok(None),
            "HS256" => Algorithm::HS256,
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other => return Err(format!("algorithm: must be \"\", HS256, RS256 or ES256, got '{other}'")),
        };
        let key = if alg == Algorithm::HS256 {
            if s.secret.expose().len() < 32 {
                return Err("secret: HS256 needs a secret of at least 32 bytes".into());
            }
            DecodingKey::from_secret(s.secret.expose().as_bytes())
        } else {
            let pem = match (s.public_key_pem.trim(), s.public_key_file.trim()) {
                ("", "") => return Err("public_key_pem or public_key_file: required for RS256/ES256".into()),
                ("", file) => std::fs::read(file).map_err(|e| format!("public_key_file: cannot read {file}: {e}"))?,
                (pem, _) => pem.as_bytes().to_vec(),
            };
            let parsed =
                if alg == Algorithm::RS256 { DecodingKey::from_rsa_pem(&pem) } else { DecodingKey::from_ec_pem(&pem) };
            parsed.map_err(|e| format!("public key: not a valid {alg:?} public key in PEM: {e}"))?
        };
        let mut validation = Validation::new(alg);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        validation.leeway = s.leeway_secs;
        if !s.issuer.trim().is_empty() {
            validation.set_issuer(&[s.issuer.trim()]);
        }
        if s.audience.trim().is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[s.audience.trim()]);
        }
        if s.role_claim.trim().is_empty() {
            return Err("role_claim: must not be empty".into());
        }
        Ok(Some(JwtVerifier {
            key,
            validation,
            role_claim: s.role_claim.trim().to_owned(),
            projects_claim: s.projects_claim.trim().to_owned(),
        }))
    }

    /// The principal of a valid JWT, or 401 with the reason.
    pub fn verify(&self, jwt: &str) -> Result<Principal, ApiError> {
        use jsonwebtoken::errors::ErrorKind;
        let data =
            decode::<serde_json::Map<String, Value>>(jwt, &self.key, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => unauthorized(Code::TokenExpired, "the JWT has expired"),
                ErrorKind::InvalidSignature => unauthorized(Code::InvalidToken, "the JWT signature is not valid"),
                ErrorKind::MissingRequiredClaim(c) => {
                    unauthorized(Code::InvalidToken, format!("the JWT has no '{c}' claim"))
                }
                _ => unauthorized(Code::InvalidToken, format!("the JWT is not valid: {e}")),
            })?;
        let claims = data.claims;
        let role = claims
            .get(&self.role_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| unauthorized(Code::InvalidToken, format!("the JWT has no '{}' claim", self.role_claim)))
            .and_then(|r| {
                Role::parse(r).map_err(|e| unauthorized(Code::InvalidToken, format!("JWT '{}': {e}", self.role_claim)))
            })?;
        let projects = match claims.get(&self.projects_claim) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut set = BTreeSet::new();
                for item in items {
                    let id = item.as_str().and_then(|s| Uuid::parse_str(s).ok()).ok_or_else(|| {
                        unauthorized(
                            Code::InvalidToken,
                            format!("JWT '{}' must list project UUIDs", self.projects_claim),
                        )
                    })?;
                    set.insert(id);
                }
                // An empty list would mean "no project": refuse rather than guess.
                if set.is_empty() {
                    return Err(unauthorized(Code::InvalidToken, format!("JWT '{}' is empty", self.projects_claim)));
                }
                Some(set)
            }
            Some(_) => {
                return Err(unauthorized(Code::InvalidToken, format!("JWT '{}' must be an array", self.projects_claim)))
            }
        };
        let name = claims.get("sub").and_then(Value::as_str).unwrap_or("jwt").to_owned();
        Ok(Principal { name: format!("jwt:{name}"), role, projects })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gns3_central_actors::secret::Secret;
    use jsonwebtoken::{encode, EncodingKey, Header};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn settings() -> JwtSettings {
        JwtSettings {
            algorithm: "HS256".into(),
            secret: Secret::new(SECRET),
            public_key_pem: String::new(),
            public_key_file: String::new(),
            issuer: String::new(),
            audience: String::new(),
            role_claim: "role".into(),
            projects_claim: "projects".into(),
            leeway_secs: 0,
        }
    }

    fn sign(claims: Value, secret: &str) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn verifies_role_projects_and_expiry() {
        let v = JwtVerifier::from_settings(&settings()).unwrap().unwrap();
        let p = Uuid::new_v4();
        let ok = sign(serde_json::json!({"sub":"ci","role":"operator","projects":[p],"exp": now()+60}), SECRET);
        let pr = v.verify(&ok).unwrap();
        assert_eq!((pr.role, pr.name.as_str()), (Role::Operator, "jwt:ci"));
        assert!(pr.allows_project(&p) && !pr.allows_project(&Uuid::new_v4()));
        let expired = sign(serde_json::json!({"role":"admin","exp": now()-120}), SECRET);
        assert_eq!(v.verify(&expired).unwrap_err().code, "token_expired");
        let no_exp = sign(serde_json::json!({"role":"admin"}), SECRET);
        assert!(v.verify(&no_exp).unwrap_err().message.contains("exp"));
        let forged = sign(serde_json::json!({"role":"admin","exp": now()+60}), "another-secret-another-secret-xx");
        assert_eq!(v.verify(&forged).unwrap_err().code, "invalid_token");
        let bad_role = sign(serde_json::json!({"role":"root","exp": now()+60}), SECRET);
        assert!(v.verify(&bad_role).is_err());
    }

    /// A P-256 key pair made for this test only (`openssl ecparam -name prime256v1`).
    const ES256_PRIVATE: &str = concat!(
        "-----BEGIN PRIVATE KEY-----\n",
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgq1BKpnFarKMt8Qus\n",
        "LHffsAriIClp74QL+m8nd4RnU7mhRANCAATB6UPcR0180iLkh4Bl3R70e1xvM5iq\n",
        "qLkLRTZz4QHV038HKe9EPvLFuxyKmvI5PPXwzMNx0XmVQ5RVbYeoaRP2\n",
        "-----END PRIVATE KEY-----\n",
    );
    const ES256_PUBLIC: &str = concat!(
        "-----BEGIN PUBLIC KEY-----\n",
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEwelD3EdNfNIi5IeAZd0e9HtcbzOY\n",
        "qqi5C0U2c+EB1dN/BynvRD7yxbscipryOTz18MzDcdF5lUOUVW2HqGkT9g==\n",
        "-----END PUBLIC KEY-----\n",
    );

    #[test]
    fn es256_checks_the_issuer_and_audience_when_set() {
        let mut s = settings();
        s.algorithm = "ES256".into();
        s.public_key_pem = ES256_PUBLIC.into();
        s.issuer = "idp".into();
        s.audience = "gns3-central".into();
        let v = JwtVerifier::from_settings(&s).unwrap().unwrap();
        let key = EncodingKey::from_ec_pem(ES256_PRIVATE.as_bytes()).unwrap();
        let sign = |claims: Value| encode(&Header::new(Algorithm::ES256), &claims, &key).unwrap();
        let ok = sign(serde_json::json!({"role":"viewer","iss":"idp","aud":"gns3-central","exp": now()+60}));
        assert_eq!(v.verify(&ok).unwrap().role, Role::Viewer);
        let other_iss = sign(serde_json::json!({"role":"viewer","iss":"x","aud":"gns3-central","exp": now()+60}));
        assert!(v.verify(&other_iss).is_err());
        let other_aud = sign(serde_json::json!({"role":"viewer","iss":"idp","aud":"x","exp": now()+60}));
        assert!(v.verify(&other_aud).is_err());
        // An HS256 token made with the public key as secret (the classic confusion) fails.
        let hs = jwt_hs(serde_json::json!({"role":"admin","iss":"idp","aud":"gns3-central","exp": now()+60}));
        assert!(v.verify(&hs).is_err());
    }

    fn jwt_hs(claims: Value) -> String {
        let key = EncodingKey::from_secret(ES256_PUBLIC.as_bytes());
        encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    }

    #[test]
    fn bad_settings_are_explained() {
        let mut s = settings();
        s.secret = Secret::new("short");
        assert!(JwtVerifier::from_settings(&s).err().unwrap().contains("32 bytes"));
        s.algorithm = "RS256".into();
        s.public_key_pem = "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----".into();
        assert!(JwtVerifier::from_settings(&s).err().unwrap().contains("PEM"));
        s.algorithm = "none".into();
        assert!(JwtVerifier::from_settings(&s).err().unwrap().contains("HS256"));
    }
}
