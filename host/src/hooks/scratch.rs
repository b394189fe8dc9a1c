//! The hooks' key-value scratch space: per hook and per store, in memory, bounded.

use crate::lock::lock;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_KEY_BYTES: usize = 256;
pub const MAX_VALUE_BYTES: usize = 4096;
pub const MAX_KEYS: usize = 1024;

/// key → (value, expiry) for one hook and store.
type Space = HashMap<String, (Vec<u8>, Option<Instant>)>;

#[derive(Default)]
pub struct Scratch {
    /// (hook, store) → its space
    spaces: Mutex<HashMap<(String, String), Space>>,
}

impl Scratch {
    pub fn get(&self, hook: &str, store: &str, key: &str) -> Option<Vec<u8>> {
        let mut spaces = lock(&self.spaces);
        let space = spaces.get_mut(&(hook.to_string(), store.to_string()))?;
        match space.get(key) {
            Some((_, Some(expiry))) if *expiry <= Instant::now() => {
                space.remove(key);
                None
            }
            Some((value, _)) => Some(value.clone()),
            None => None,
        }
    }

    pub fn set(&self, hook: &str, store: &str, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), String> {
        if key.len() > MAX_KEY_BYTES {
            return Err(format!("scratch keys are at most {MAX_KEY_BYTES} bytes"));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!("scratch values are at most {MAX_VALUE_BYTES} bytes"));
        }
        let mut spaces = lock(&self.spaces);
        let space = spaces.entry((hook.to_string(), store.to_string())).or_default();
        if space.len() >= MAX_KEYS && !space.contains_key(&key) {
            let now = Instant::now();
            space.retain(|_, (_, expiry)| expiry.is_none_or(|e| e > now));
            if space.len() >= MAX_KEYS {
                return Err(format!("scratch space full ({MAX_KEYS} keys per hook and store)"));
            }
        }
        let expiry = ttl_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
        space.insert(key, (value, expiry));
        Ok(())
    }

    pub fn delete(&self, hook: &str, store: &str, key: &str) {
        if let Some(space) = lock(&self.spaces).get_mut(&(hook.to_string(), store.to_string())) {
            space.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_are_per_hook_and_store_and_values_expire() {
        let s = Scratch::default();
        s.set("h", "a", "k".into(), b"1".to_vec(), None).expect("set");
        assert_eq!(s.get("h", "a", "k"), Some(b"1".to_vec()));
        assert_eq!(s.get("h", "b", "k"), None);
        assert_eq!(s.get("other", "a", "k"), None);
        s.set("h", "a", "t".into(), b"2".to_vec(), Some(0)).expect("set");
        assert_eq!(s.get("h", "a", "t"), None);
        assert!(s.set("h", "a", "x".repeat(300), vec![], None).is_err());
        assert!(s.set("h", "a", "v".into(), vec![0; 5000], None).is_err());
        for i in 0..MAX_KEYS - 1 {
            s.set("h", "c", format!("k{i}"), vec![], None).expect("within the bound");
        }
        s.set("h", "c", "last".into(), vec![], None).expect("the 1024th key");
        assert!(s.set("h", "c", "one-more".into(), vec![], None).is_err());
    }
}
