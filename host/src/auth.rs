//! The connection-time token check (what `@livestore/sync-cf`'s docs do in `validatePayload`).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Compare a presented token with the configured one in constant time (digests first, so
/// neither the content nor the length leaks through timing).
pub fn token_matches(presented: Option<&str>, expected: &str) -> bool {
    let Some(presented) = presented else {
        return false;
    };
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_exact_token_matches() {
        assert!(super::token_matches(Some("secret"), "secret"));
        assert!(!super::token_matches(Some("secret "), "secret"));
        assert!(!super::token_matches(Some(""), "secret"));
        assert!(!super::token_matches(None, "secret"));
    }
}
