//! Mutexes whose data stays usable after a panic.

use std::sync::{Mutex, MutexGuard};

/// A panic while holding the lock leaves plain data behind; keep serving.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
