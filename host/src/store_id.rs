//! Store ids name SQL tables, so they are checked before anything touches storage.

use anyhow::{bail, Result};

pub const MAX_STORE_ID_LEN: usize = 128;

/// `^[A-Za-z0-9_-]{1,128}$`.
pub fn validate_store_id(store_id: &str) -> Result<()> {
    if store_id.is_empty() || store_id.len() > MAX_STORE_ID_LEN {
        bail!("invalid storeId: must be 1 to {MAX_STORE_ID_LEN} characters long");
    }
    if !store_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        bail!("invalid storeId {store_id:?}: only letters, digits, '_' and '-' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn accepts_plain_ids_and_rejects_the_rest() {
        assert!(super::validate_store_id("demo-store_1").is_ok());
        for bad in ["", "a b", "x\"; DROP TABLE context_7; --", "é", &"a".repeat(129)] {
            assert!(super::validate_store_id(bad).is_err(), "{bad:?}");
        }
    }
}
