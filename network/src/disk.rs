//! Durable file operations, every one counted so that a test can stop the process after any
//! of them: a checkpoint's safety is proven by stopping after the k-th write, fsync or rename
//! of a save, for every k, and checking that what is left loads and resumes.
//!
//! A write is two operations (the first half of the bytes, then the rest), so that a stop can
//! also leave a torn file behind, as a kill in the middle of `write` can.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The environment variable that makes the `network` binary stop after the k-th operation of
/// its run directory (a test hook): the process exits at once with [`FAULT_EXIT`].
pub const FAULT_ENV: &str = "NETWORK_FAULT_AFTER";
/// The exit code of a process stopped by [`FAULT_ENV`].
pub const FAULT_EXIT: i32 = 86;

/// What happens at the chosen operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// The process exits at once, as if killed (the CLI's hook).
    Exit,
    /// The operation returns [`Error::Injected`] and nothing more is written (library tests:
    /// the caller drops the run, as a killed process would have).
    Fail,
}

/// Stop after operation `after` (counting from 1) of a run directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The operation after which to stop.
    pub after: u64,
    /// How.
    pub action: FaultAction,
}

impl Fault {
    /// The fault the environment asks for (`NETWORK_FAULT_AFTER=k`), if any.
    pub fn from_env() -> Result<Option<Fault>> {
        let Ok(text) = std::env::var(FAULT_ENV) else {
            return Ok(None);
        };
        let after = text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&k| k > 0)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{FAULT_ENV} must be a whole number from 1, not {text:?}"
                ))
            })?;
        Ok(Some(Fault {
            after,
            action: FaultAction::Exit,
        }))
    }
}

/// The operations on one run directory, counted.
#[derive(Debug, Default)]
pub struct Disk {
    fault: Option<Fault>,
    done: AtomicU64,
}

impl Disk {
    /// Operations that stop at `fault`, if given.
    pub fn new(fault: Option<Fault>) -> Self {
        Disk {
            fault,
            done: AtomicU64::new(0),
        }
    }

    /// Counts one finished operation; stops here if it is the chosen one.
    fn done(&self) -> Result<()> {
        let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        match self.fault {
            Some(f) if f.after == n => match f.action {
                FaultAction::Exit => std::process::exit(FAULT_EXIT),
                FaultAction::Fail => Err(Error::Injected(n)),
            },
            Some(f) if n > f.after && f.action == FaultAction::Fail => Err(Error::Injected(n)),
            _ => Ok(()),
        }
    }

    /// Runs one operation and counts it; an I/O error names `path`.
    fn op<T>(&self, what: &str, path: &Path, f: impl FnOnce() -> std::io::Result<T>) -> Result<T> {
        let value = f().map_err(|e| Error::Io(format!("cannot {what} {}: {e}", path.display())))?;
        self.done()?;
        Ok(value)
    }

    /// Creates `path` (which must not exist) holding `bytes`, synced to disk: three
    /// operations (create with half the bytes, the rest, fsync).
    pub fn write_new(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let half = bytes.len() / 2;
        let mut file = self.op("create", path, || {
            let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
            f.write_all(&bytes[..half])?;
            Ok(f)
        })?;
        self.op("write", path, || file.write_all(&bytes[half..]))?;
        self.op("sync", path, || file.sync_all())
    }

    /// Appends `bytes` to `path` (created if absent), synced: three operations.
    pub fn append(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let file = self.append_halves(path, bytes)?;
        self.op("sync", path, || file.sync_all())
    }

    /// Appends `bytes` to `path` (created if absent) without syncing: two operations. For
    /// lines that no checkpoint counts yet, which a kill may tear or lose and the next save or
    /// resume cuts.
    pub fn append_unsynced(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        self.append_halves(path, bytes).map(drop)
    }

    /// The two halves of an append, as two operations; the open file.
    fn append_halves(&self, path: &Path, bytes: &[u8]) -> Result<File> {
        let half = bytes.len() / 2;
        let mut file = self.op("append to", path, || {
            let mut f = OpenOptions::new().append(true).create(true).open(path)?;
            f.write_all(&bytes[..half])?;
            Ok(f)
        })?;
        self.op("append to", path, || file.write_all(&bytes[half..]))?;
        Ok(file)
    }

    /// Cuts `path` to `len` bytes, synced (a no-op, not counted, when it is that long). A file
    /// shorter than `len` is an error: cutting never lengthens.
    pub fn truncate(&self, path: &Path, len: u64) -> Result<()> {
        let current = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if current == len {
            return Ok(());
        }
        if current < len {
            return Err(Error::Checkpoint(format!(
                "{} holds {current} bytes, fewer than the {len} the checkpoint counts",
                path.display()
            )));
        }
        self.op("truncate", path, || {
            let f = OpenOptions::new().write(true).open(path)?;
            f.set_len(len)?;
            f.sync_all()
        })
    }

    /// Writes `bytes` to `path` through a temporary file beside it, synced, renamed over
    /// `path`, the directory synced: the old file stays whole until the new one is complete.
    pub fn replace(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = temp_beside(path);
        self.remove_all(&tmp)?;
        self.write_new(&tmp, bytes)?;
        self.rename(&tmp, path)?;
        self.sync_dir(parent(path))
    }

    /// Renames `from` to `to` (replacing a file `to`).
    pub fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.op("rename", from, || std::fs::rename(from, to))
    }

    /// A hard link `to` of `from`, or a synced copy where the file system has no hard links.
    pub fn link_or_copy(&self, from: &Path, to: &Path) -> Result<()> {
        self.op("link", to, || match std::fs::hard_link(from, to) {
            Ok(()) => Ok(()),
            Err(_) => {
                std::fs::copy(from, to)?;
                File::open(to)?.sync_all()
            }
        })
    }

    /// Makes the directory `dir` (its parent must exist).
    pub fn create_dir(&self, dir: &Path) -> Result<()> {
        self.op("create", dir, || std::fs::create_dir(dir))
    }

    /// Syncs the directory `dir`, so that the names it holds survive a power loss.
    pub fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.op("sync", dir, || File::open(dir)?.sync_all())
    }

    /// Removes `path` and all below it, if it exists (not counted when it does not).
    pub fn remove_all(&self, path: &Path) -> Result<()> {
        if std::fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        self.op("remove", path, || {
            if std::fs::symlink_metadata(path)?.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            }
        })
    }
}

/// `.NAME.tmp` beside `path`.
pub fn temp_beside(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// The directory holding `path` (`.` for a bare name).
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically, for files outside a run's checkpoints (pictures,
/// reports): a temporary file of a name nobody else uses, created new beside `path`, synced,
/// renamed over it; on failure the temporary file is removed and `path` is as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let tmp = path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()));
    let fail = |e: std::io::Error| Error::Io(format!("cannot write {}: {e}", path.display()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(fail)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}
