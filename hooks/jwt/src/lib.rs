//! Connections must present an HS256 JWT signed with `LIVESTORE_SECRET`
//! (`--hook-var LIVESTORE_SECRET`), in the payload's `authToken` or an `Authorization: Bearer`
//! header. `exp` is required and checked; when the token has a `storeId` claim it must name
//! the store being opened.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use presented_token::presented_token;
use serde::Deserialize;

#[derive(Deserialize)]
struct Claims {
    #[serde(rename = "storeId", default)]
    store_id: Option<String>,
}

pub fn check(
    secret: Option<&str>,
    store_id: &str,
    payload_json: Option<&str>,
    headers: &[(String, String)],
) -> Result<(), String> {
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return Err("jwt hook: no secret configured (--hook-var LIVESTORE_SECRET)".to_string());
    };
    let Some(token) = presented_token(payload_json, headers) else {
        return Err("Missing auth token: send a JWT as payload.authToken or Authorization: Bearer".to_string());
    };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp"]);
    validation.leeway = 5;
    let data = decode::<Claims>(&token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
        .map_err(|e| format!("Invalid auth token: {e}"))?;
    match data.claims.store_id {
        Some(claimed) if claimed != store_id => {
            Err(format!("Invalid auth token: issued for store {claimed:?}, not {store_id:?}"))
        }
        _ => Ok(()),
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "payload-validator", path: "../../wit/hooks" });

    struct Hook;

    impl exports::livestore::hooks::validate_payload::Guest for Hook {
        fn validate_payload(
            store_id: String,
            payload_json: Option<String>,
            headers: Vec<(String, String)>,
        ) -> Result<(), String> {
            let secret = livestore::hooks::config::get("LIVESTORE_SECRET");
            super::check(secret.as_deref(), &store_id, payload_json.as_deref(), &headers)
        }
    }

    export!(Hook);
}

#[cfg(test)]
mod tests {
    use super::check;
    use jsonwebtoken::{encode, EncodingKey, Header};

    fn token(secret: &str, claims: serde_json::Value) -> String {
        encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes())).expect("sign")
    }

    fn payload(t: &str) -> String {
        serde_json::json!({ "authToken": t }).to_string()
    }

    #[test]
    fn signature_expiry_and_store_claim_are_checked() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
        let s = Some("s3cret");
        let good = token("s3cret", serde_json::json!({ "exp": now + 60, "storeId": "a" }));
        assert_eq!(check(s, "a", Some(&payload(&good)), &[]), Ok(()));
        assert!(check(s, "b", Some(&payload(&good)), &[]).unwrap_err().contains("issued for store"));
        let any_store = token("s3cret", serde_json::json!({ "exp": now + 60 }));
        assert_eq!(check(s, "b", Some(&payload(&any_store)), &[]), Ok(()));
        let expired = token("s3cret", serde_json::json!({ "exp": now - 3600 }));
        assert!(check(s, "a", Some(&payload(&expired)), &[]).unwrap_err().contains("Invalid"));
        let forged = token("other", serde_json::json!({ "exp": now + 60 }));
        assert!(check(s, "a", Some(&payload(&forged)), &[]).unwrap_err().contains("Invalid"));
        let no_exp = token("s3cret", serde_json::json!({ "sub": "x" }));
        assert!(check(s, "a", Some(&payload(&no_exp)), &[]).is_err());
        let bearer = vec![("authorization".to_string(), format!("Bearer {good}"))];
        assert_eq!(check(s, "a", None, &bearer), Ok(()));
    }
}
