//! The store-id rule, the same on every surface (LiveStore WebSocket and HTTP, simple protocol,
//! admin API, CLI): any non-empty UTF-8 string of at most [`MAX_STORE_ID_BYTES`] bytes, as
//! `@livestore/sync-cf` accepts any string. Ids never become SQL text: they are bound as
//! parameters, and the event-log table name derived from one is claimed one-to-one in
//! `storage.rs`. Operators who want a stricter rule set `--store-id-pattern`.

use std::fmt;

/// The longest accepted store id, in UTF-8 bytes.
pub const MAX_STORE_ID_BYTES: usize = 1024;

/// Why a store id was refused; every variant is a client error (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreIdError {
    Missing,
    Empty,
    TooLong {
        bytes: usize,
    },
    NotUtf8,
    /// The operator's `--store-id-pattern` does not match.
    Pattern {
        store_id: String,
        pattern: String,
    },
}

impl fmt::Display for StoreIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreIdError::Missing => write!(f, "Missing storeId query parameter"),
            StoreIdError::Empty => write!(f, "invalid storeId: it is empty"),
            StoreIdError::TooLong { bytes } => {
                write!(f, "invalid storeId: {bytes} bytes of UTF-8, at most {MAX_STORE_ID_BYTES} are allowed")
            }
            StoreIdError::NotUtf8 => write!(f, "invalid storeId: not valid UTF-8 once percent-decoded"),
            StoreIdError::Pattern { store_id, pattern } => {
                write!(f, "invalid storeId {store_id:?}: this server only accepts ids matching {pattern}")
            }
        }
    }
}

impl std::error::Error for StoreIdError {}

/// Any non-empty string of at most [`MAX_STORE_ID_BYTES`] bytes.
pub fn validate_store_id(store_id: &str) -> Result<(), StoreIdError> {
    if store_id.is_empty() {
        return Err(StoreIdError::Empty);
    }
    if store_id.len() > MAX_STORE_ID_BYTES {
        return Err(StoreIdError::TooLong { bytes: store_id.len() });
    }
    Ok(())
}

/// The operator's stricter rule (`--store-id-pattern`), checked when a client connects.
#[derive(Debug, Clone)]
pub struct StoreIdPattern(regex::Regex);

impl StoreIdPattern {
    pub fn new(pattern: &str) -> Result<StoreIdPattern, regex::Error> {
        regex::Regex::new(pattern).map(StoreIdPattern)
    }

    pub fn check(&self, store_id: &str) -> Result<(), StoreIdError> {
        if self.0.is_match(store_id) {
            Ok(())
        } else {
            Err(StoreIdError::Pattern { store_id: store_id.to_string(), pattern: self.0.as_str().to_string() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_non_empty_id_up_to_the_bound() {
        let long = "é".repeat(MAX_STORE_ID_BYTES / 2);
        for ok in [
            "demo-store_1",
            "a b (c)",
            "user:42",
            "team/abc",
            "ada@example.com",
            "100%",
            "Zoë 東京 😀",
            "x\"; DROP TABLE context_7; --",
            "line\nbreak",
            &long,
        ] {
            assert_eq!(validate_store_id(ok), Ok(()), "{ok:?}");
        }
        assert_eq!(validate_store_id(""), Err(StoreIdError::Empty));
        let too_long = format!("{long}a");
        assert_eq!(validate_store_id(&too_long), Err(StoreIdError::TooLong { bytes: MAX_STORE_ID_BYTES + 1 }));
    }

    #[test]
    fn a_pattern_narrows_the_rule() {
        let p = StoreIdPattern::new("^[a-zA-Z0-9_-]+$").unwrap();
        assert!(p.check("demo-1").is_ok());
        let refused = p.check("a b").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "invalid storeId \"a b\": this server only accepts ids matching ^[a-zA-Z0-9_-]+$"
        );
    }
}
