//! One writer per data directory. `serve` holds an exclusive `flock` on
//! `<data dir>/livestore-sync.lock` for its whole life; CLI commands that write take the same
//! lock for theirs. Two servers on one directory (or a CLI `reset` under a running server)
//! would each cache heads the other moves, and a second process sharing SQLite's `-shm`
//! mapping is the usual way a storage fault reaches a running server. The lock is released by
//! the kernel when the process dies, so a crash never leaves a stale lock behind.

use anyhow::{anyhow, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "livestore-sync.lock";

/// Held while it lives.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

/// Who holds the lock: the pid and role written by the holder.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    let text = text.trim();
    if text.is_empty() {
        "another process".into()
    } else {
        text.to_string()
    }
}

impl DataDirLock {
    /// Take the data directory's lock for `role` (`serve`, `import`, …), or say who has it.
    pub fn acquire(data_dir: &Path, role: &str) -> Result<DataDirLock> {
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        // SAFETY: flock on a file descriptor this function owns; no memory is shared.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(anyhow!("the data directory {} is in use by {}", data_dir.display(), holder(&mut file)));
            }
            return Err(anyhow!(err).context(format!("locking {}", path.display())));
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "livestore-sync {role} (pid {})", std::process::id())?;
        file.flush()?;
        Ok(DataDirLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::DataDirLock;

    #[test]
    fn a_second_holder_is_refused_and_told_who_has_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDirLock::acquire(dir.path(), "serve").expect("first");
        let second = DataDirLock::acquire(dir.path(), "import").expect_err("second");
        let message = format!("{second:#}");
        assert!(message.contains("in use by livestore-sync serve (pid"), "{message}");
        drop(first);
        DataDirLock::acquire(dir.path(), "import").expect("free again");
    }
}
