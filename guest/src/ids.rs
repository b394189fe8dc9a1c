//! Backend ids: 21-character nanoids, like the reference's `nanoid()`.

const ALPHABET: &[u8; 64] = b"useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";

pub fn new_backend_id() -> String {
    let mut bytes = [0u8; 21];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source is a broken host; fall back to the clock so ids still differ.
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (nanos >> ((i * 6) % 120)) as u8;
        }
    }
    bytes.iter().map(|b| ALPHABET[(b & 63) as usize] as char).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_21_url_safe_chars_and_differ() {
        let a = super::new_backend_id();
        let b = super::new_backend_id();
        assert_eq!(a.len(), 21);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'));
        assert_ne!(a, b);
    }
}
