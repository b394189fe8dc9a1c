//! The one storage fault that cannot be turned into an error: SQLite maps its WAL index (the
//! `-shm` file) into memory, and when a page of it cannot be backed (a full tmpfs, a file
//! truncated by another process) the kernel stops the process with SIGBUS. That fault cannot
//! be confined to one store, so the process ends, but it says why instead of vanishing. Acknowledged
//! events are committed to the WAL before their ack and survive it (as they survive `kill -9`);
//! the data directory's lock (`data_lock.rs`) keeps other livestore-sync processes away from the
//! mapping, the usual cause.

const MESSAGE: &[u8] = b"livestore-sync: fatal SIGBUS: a memory-mapped storage file (SQLite's -shm \
wal index) could not be read or written: the disk or tmpfs holding the data directory is full, or \
another process truncated the file. Acknowledged events are safe in the WAL. Free space, make sure \
only this server uses the data directory, then restart.\n";

extern "C" fn on_sigbus(signal: libc::c_int) {
    // SAFETY: write(2), signal(2) and raise(3) are async-signal-safe; MESSAGE is static.
    unsafe {
        libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// Install the SIGBUS report. Call first thing in `main`, before wasmtime installs its own
/// handlers: wasmtime passes faults outside WebAssembly code on to the handler it found.
pub fn install() {
    // SAFETY: installs a handler that only calls async-signal-safe functions.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}
