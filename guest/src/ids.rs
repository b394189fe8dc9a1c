//! Backend ids: 21-character nanoids, like `@livestore/sync-cf`'s `nanoid()`.

use crate::host::Host;

const ALPHABET: &[u8; 64] = b"useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";

/// A new backend id from the host's randomness.
pub fn new_backend_id(host: &mut dyn Host) -> String {
    let mut bytes = [0u8; 21];
    host.random_bytes(&mut bytes);
    bytes.iter().map(|b| ALPHABET[(b & 63) as usize] as char).collect()
}

#[cfg(test)]
mod tests {
    use crate::mem_host::MemHost;

    #[test]
    fn ids_are_21_url_safe_chars_and_differ() {
        let mut host = MemHost::default();
        let a = super::new_backend_id(&mut host);
        let b = super::new_backend_id(&mut host);
        assert_eq!(a.len(), 21);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'));
        assert_ne!(a, b);
    }
}
