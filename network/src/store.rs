//! The run directory, and the contract that keeps it whole:
//!
//! - `lock`: held (an exclusive file lock) by the one process that trains the run, for its
//!   whole life; it names that process. A second process is refused.
//! - `gen-<step>/`: one generation per save, each complete in itself — `model.safetensors`
//!   (the weights evaluated: with `--ema`, their average), `optimizer.safetensors` (momentum
//!   terms; with `--ema`, the trained weights too) and `state.json` (settings, progress, and
//!   how many bytes of the history belong to it). A generation is written under a temporary
//!   name, synced, and renamed into place whole; it is never written again.
//! - `latest`: the pointer, naming the newest complete generation. Replacing it (write, fsync,
//!   rename, fsync of the directory) is the instant a save takes effect. The generation before
//!   it is kept, the older ones removed.
//! - `model.safetensors`: a hard link to the newest generation's model, switched by a rename
//!   just before the pointer: the stable path PyTorch users load, always a complete model.
//! - `steps.jsonl`, `epochs.jsonl`: the history, appended by each save before the pointer moves.
//!   Between saves the trainer also appends the new steps' lines to `steps.jsonl`, unsynced (the
//!   journal, [`RunDir::journal_steps`]): they lie past the bytes the checkpoint counts, so no
//!   history includes them; a page following the run from another process shows them
//!   ([`Checkpoint::journal`]), and the next save, or a resume, cuts them first.
//!
//! A kill at any instant therefore leaves the pointer on a complete generation, which `eval`
//! loads and `--resume` continues; what a cut-short save wrote is ignored and cleaned up.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::arch::LayerSpec;
use crate::batch::Normalizer;
use crate::config::TrainConfig;
use crate::data::DataSource;
use crate::disk::{Disk, temp_beside};
use crate::error::{Error, Result};
use crate::history::{EpochRecord, History, StepRecord, decode_lines};
use crate::tensors::TensorInfo;
use crate::train::PlanNames;

/// The lock file.
pub const LOCK: &str = "lock";
/// The pointer to the newest complete generation.
pub const LATEST: &str = "latest";
/// A generation's weights, and the stable path of the newest.
pub const MODEL: &str = "model.safetensors";
/// A generation's momentum terms (with an average of the weights, the trained weights too).
pub const OPTIMIZER: &str = "optimizer.safetensors";
/// A generation's settings and progress.
pub const STATE: &str = "state.json";
/// The per-step history.
pub const STEPS: &str = "steps.jsonl";
/// The per-epoch history.
pub const EPOCHS: &str = "epochs.jsonl";
/// The version of this layout, in every `state.json`.
pub const FORMAT: u32 = 2;

const GENERATION: &str = "gen-";
/// Largest journal read past a checkpoint: an epoch of batch-1 steps is about 5 MB.
pub const MAX_JOURNAL_BYTES: u64 = 64 << 20;
/// Largest `state.json` read (a layer list and a few numbers are a few kilobytes).
const MAX_STATE_BYTES: u64 = 16 << 20;

/// What a run is: fixed when it is created.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The layer list.
    pub arch: Vec<LayerSpec>,
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Input normalisation.
    pub normalizer: Normalizer,
    /// The techniques in use.
    pub plan: PlanNames,
    /// What it trains on.
    pub data: DataSource,
}

/// How far a run has got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// The epoch in progress (0-based): all before it are complete.
    pub epoch: usize,
    /// Steps of that epoch already taken (0 at an epoch boundary).
    pub step_in_epoch: usize,
    /// Optimiser steps taken in all.
    pub step: u64,
    /// Bytes of `steps.jsonl` that belong to this generation.
    pub steps_bytes: u64,
    /// Bytes of `epochs.jsonl` that belong to this generation.
    pub epochs_bytes: u64,
}

/// A generation's `state.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The layout's version, [`FORMAT`].
    pub format: u32,
    /// The run's identity, also in its tensor files' metadata.
    pub run: String,
    /// What the run is.
    pub settings: Settings,
    /// How far it has got.
    pub progress: Progress,
}

/// A complete generation, as read.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Its `state.json`.
    pub state: State,
    /// Its weights.
    pub model: PathBuf,
    /// Its momentum terms (with an average of the weights, the trained weights too).
    pub optimizer: PathBuf,
}

impl Checkpoint {
    /// The newest complete generation of the run in `run`.
    pub fn latest(run: &Path) -> Result<Checkpoint> {
        // A save that lands between reading the pointer and reading the generation can remove
        // the generation before the one it writes; the pointer then names a newer one.
        match Self::read_latest(run) {
            Err(Error::Checkpoint(_)) if run.join(LATEST).is_file() => Self::read_latest(run),
            other => other,
        }
    }

    fn read_latest(run: &Path) -> Result<Checkpoint> {
        let name = read_pointer(run)?;
        let dir = run.join(&name);
        let path = dir.join(STATE);
        let bytes = crate::data::read_checked(&path, MAX_STATE_BYTES)
            .map_err(|e| Error::Checkpoint(e.to_string()))?;
        let state: State = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Checkpoint(format!("{} is not a valid state file: {e}", path.display()))
        })?;
        if state.format != FORMAT {
            return Err(Error::Checkpoint(format!(
                "{}: format {} is not this version's {FORMAT}",
                path.display(),
                state.format
            )));
        }
        if name != generation_name(state.progress.step) {
            return Err(Error::Checkpoint(format!(
                "{}: step {} does not match its generation {name}",
                path.display(),
                state.progress.step
            )));
        }
        state
            .settings
            .normalizer
            .check(&path.display().to_string())?;
        // Settings edited by hand are refused here, before any reader divides by them.
        state
            .settings
            .config
            .validate()
            .map_err(|e| Error::Checkpoint(format!("{}: {e}", path.display())))?;
        Ok(Checkpoint {
            model: dir.join(MODEL),
            optimizer: dir.join(OPTIMIZER),
            state,
        })
    }

    /// Checks that a tensor file's metadata says it belongs to this generation.
    pub fn check_tensors(&self, info: Option<&TensorInfo>, path: &Path) -> Result<()> {
        let (run, step) = (&self.state.run, self.state.progress.step);
        match info {
            Some(i) if i.run.as_ref() == Some(run) && i.step == step => Ok(()),
            found => Err(Error::Checkpoint(format!(
                "{} is from {}, not from run {run} at step {step}: it belongs to another checkpoint",
                path.display(),
                found.map_or("no known run".into(), |i| format!(
                    "run {} at step {}",
                    i.run.as_deref().unwrap_or("(none)"),
                    i.step
                )),
            ))),
        }
    }

    /// The steps that the run journaled past this checkpoint, at most [`MAX_JOURNAL_BYTES`]:
    /// whole lines up to the first that is not a step (a kill can tear the last; a save or a
    /// resume can cut the file at any moment). Empty when there are none or the file cannot be
    /// read: the journal is news for a page, never history.
    pub fn journal(&self, run: &Path) -> Vec<StepRecord> {
        let start = self.state.progress.steps_bytes;
        self.journal_from(run, start)
            .map(|(steps, _)| steps)
            .unwrap_or_default()
    }

    /// The steps journaled from byte `from` of `steps.jsonl` on (a follower's last read ended
    /// there; clamped to the checkpoint's end), as [`Checkpoint::journal`], with the
    /// byte after the last step read. `None` when `from` lies past the checkpoint's end and is
    /// no longer the start of a step: the journal was cut since (a save, a resume, an error)
    /// and must be read again from the checkpoint's end.
    pub fn journal_from(&self, run: &Path, from: u64) -> Option<(Vec<StepRecord>, u64)> {
        let start = self.state.progress.steps_bytes;
        let from = from.max(start);
        let mut bytes = Vec::new();
        let read = File::open(run.join(STEPS)).and_then(|mut f| {
            let len = f.metadata()?.len();
            f.seek(SeekFrom::Start(from.min(len)))?;
            f.take(MAX_JOURNAL_BYTES).read_to_end(&mut bytes)?;
            Ok(len)
        });
        let len = match read {
            Ok(len) => len,
            Err(_) => return Some((Vec::new(), start)),
        };
        let lines = bytes
            .split_inclusive(|&b| b == b'\n')
            .take_while(|l| l.ends_with(b"\n"));
        let mut steps = Vec::new();
        let mut end = from;
        for line in lines {
            let Ok(step) = serde_json::from_slice::<StepRecord>(line) else {
                break;
            };
            steps.push(step);
            end += line.len() as u64;
        }
        let lost = len < from || (steps.is_empty() && bytes.contains(&b'\n'));
        if from > start && lost {
            return None;
        }
        Some((steps, end))
    }

    /// The history up to this generation.
    pub fn history(&self, run: &Path) -> Result<History> {
        let p = &self.state.progress;
        let read = |name: &str, len: u64| -> Result<Vec<u8>> {
            let path = run.join(name);
            let mut bytes = Vec::new();
            if len > 0 {
                File::open(&path)
                    .and_then(|f| f.take(len).read_to_end(&mut bytes))
                    .map_err(|e| {
                        Error::Checkpoint(format!("cannot read {}: {e}", path.display()))
                    })?;
            }
            Ok(bytes)
        };
        let steps: Vec<StepRecord> =
            decode_lines(&read(STEPS, p.steps_bytes)?, p.steps_bytes, STEPS)?;
        let epochs: Vec<EpochRecord> =
            decode_lines(&read(EPOCHS, p.epochs_bytes)?, p.epochs_bytes, EPOCHS)?;
        Ok(History { steps, epochs })
    }
}

/// The name of the generation at `step`.
fn generation_name(step: u64) -> String {
    format!("{GENERATION}{step:012}")
}

/// The generation the pointer of `run` names, checked to be a generation's name.
fn read_pointer(run: &Path) -> Result<String> {
    let path = run.join(LATEST);
    if !path.exists() {
        let why = if run.join(STATE).exists() {
            "it was saved by an older version of network, whose checkpoints this one does not read"
        } else if run.is_dir() {
            "it holds no complete checkpoint"
        } else if run.exists() {
            "not a run directory"
        } else {
            "no such directory"
        };
        return Err(Error::Checkpoint(format!("{}: {why}", run.display())));
    }
    let bytes =
        crate::data::read_checked(&path, 64).map_err(|e| Error::Checkpoint(e.to_string()))?;
    let name = String::from_utf8_lossy(&bytes).trim().to_string();
    let digits = name.strip_prefix(GENERATION).unwrap_or("");
    if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Checkpoint(format!(
            "{} does not name a generation: {name:?}",
            path.display()
        )));
    }
    Ok(name)
}

/// Where a new run goes.
#[derive(Clone, Debug)]
pub enum Place {
    /// This directory (created if absent; an existing one must be empty).
    Dir(PathBuf),
    /// The first free `N` (from 1) under this directory.
    Next(PathBuf),
}

/// One save: a generation's files and the history since the last save.
pub struct Snapshot<'a> {
    /// The generation's `state.json` (its history counts include `steps` and `epochs`).
    pub state: &'a State,
    /// `model.safetensors`.
    pub model: &'a [u8],
    /// `optimizer.safetensors`.
    pub optimizer: &'a [u8],
    /// New lines of `steps.jsonl`.
    pub steps: &'a [u8],
    /// New lines of `epochs.jsonl`.
    pub epochs: &'a [u8],
}

/// A run directory claimed by this process: the lock is held until the value is dropped.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    disk: Disk,
    _lock: File,
    /// The generation the pointer names, if any.
    latest: Option<String>,
    /// Whether this process made the directory.
    created: bool,
}

impl RunDir {
    /// Claims a directory for a new run: the lock, and a directory holding no run.
    pub fn create(place: &Place, disk: Disk) -> Result<RunDir> {
        let (path, lock, created) = match place {
            Place::Dir(dir) => {
                refuse_inside_run(dir)?;
                let existed = dir.is_dir();
                if existed {
                    // Checked before the lock is written, so that a refused directory is left
                    // as it was, and again after, against a process that got there first.
                    check_empty(dir)?;
                }
                make_dir(dir, "--out")?;
                let lock = claim(dir, "--out")?;
                check_empty(dir)?;
                (dir.clone(), lock, !existed)
            }
            Place::Next(root) => {
                let (dir, lock) = next_free(root)?;
                (dir, lock, true)
            }
        };
        let run = RunDir {
            path,
            disk,
            _lock: lock,
            latest: None,
            created,
        };
        run.clear_leftovers()?;
        Ok(run)
    }

    /// Claims an existing run to continue it; returns its newest complete generation too.
    pub fn open(path: &Path, disk: Disk) -> Result<(RunDir, Checkpoint)> {
        if !path.is_dir() {
            return Err(Error::Usage(format!(
                "--resume {}: no such directory",
                path.display()
            )));
        }
        // A directory without a pointer is no run: refused before the lock is written.
        read_pointer(path)?;
        let lock = claim(path, "--resume")?;
        let checkpoint = Checkpoint::latest(path)?;
        // The history the checkpoint counts must be there, whole, before anything is cut.
        checkpoint.history(path)?;
        let run = RunDir {
            path: path.to_path_buf(),
            disk,
            _lock: lock,
            latest: Some(generation_name(checkpoint.state.progress.step)),
            created: false,
        };
        // What a cut-short save appended past the checkpoint is not part of the run.
        let p = &checkpoint.state.progress;
        run.disk.truncate(&path.join(STEPS), p.steps_bytes)?;
        run.disk.truncate(&path.join(EPOCHS), p.epochs_bytes)?;
        run.clear_leftovers()?;
        Ok((run, checkpoint))
    }

    /// Removes the directory of a run whose creation failed before its first checkpoint, if
    /// this process made it (an existing empty directory is emptied again instead).
    pub fn abandon(self) {
        if self.latest.is_some() {
            return;
        }
        if self.created {
            let _ = std::fs::remove_dir_all(&self.path);
        } else {
            let _ = self.clear_leftovers();
            let _ = std::fs::remove_file(self.path.join(LOCK));
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Cuts the journal back to the newest checkpoint's history (read from the directory, the
    /// truth whatever a failed save left in memory), so that the directory is as that checkpoint
    /// left it.
    pub fn cut_journal(&self) -> Result<()> {
        let checkpoint = Checkpoint::latest(&self.path)?;
        let len = checkpoint.state.progress.steps_bytes;
        self.disk.truncate(&self.path.join(STEPS), len)
    }

    /// Appends the lines of steps taken since the last save to `steps.jsonl`, unsynced (see
    /// the module's docs): two counted operations.
    pub fn journal_steps(&self, lines: &[u8]) -> Result<()> {
        self.disk.append_unsynced(&self.path.join(STEPS), lines)
    }

    /// Saves a generation and makes it the newest (see the module's docs for the order).
    pub fn save(&mut self, snap: &Snapshot) -> Result<()> {
        let name = generation_name(snap.state.progress.step);
        if self.latest.as_deref() == Some(name.as_str()) {
            return Ok(());
        }
        let (run, disk) = (&self.path, &self.disk);
        let partial = run.join(format!(".{name}.partial"));
        disk.remove_all(&partial)?;
        disk.create_dir(&partial)?;
        disk.write_new(&partial.join(MODEL), snap.model)?;
        disk.write_new(&partial.join(OPTIMIZER), snap.optimizer)?;
        // A state of numbers and names always serialises.
        let state = serde_json::to_vec_pretty(snap.state).expect("the state serialises");
        disk.write_new(&partial.join(STATE), &state)?;
        disk.sync_dir(&partial)?;
        let generation = run.join(&name);
        disk.remove_all(&generation)?;
        disk.rename(&partial, &generation)?;
        disk.sync_dir(run)?;
        let p = &snap.state.progress;
        for (file, lines, total) in [
            (STEPS, snap.steps, p.steps_bytes),
            (EPOCHS, snap.epochs, p.epochs_bytes),
        ] {
            // A save that failed after appending (a full disk) left lines past the last
            // checkpoint: cut them before appending again.
            let path = run.join(file);
            disk.truncate(&path, total - lines.len() as u64)?;
            if !lines.is_empty() {
                disk.append(&path, lines)?;
            }
        }
        // The stable path moves first, so that it always holds a complete model: the pointer's
        // generation's, or (until the pointer moves) this complete one's.
        let stable = run.join(MODEL);
        let tmp = temp_beside(&stable);
        disk.remove_all(&tmp)?;
        disk.link_or_copy(&generation.join(MODEL), &tmp)?;
        disk.rename(&tmp, &stable)?;
        disk.replace(&run.join(LATEST), format!("{name}\n").as_bytes())?;
        let previous = self.latest.replace(name);
        self.prune(previous.as_deref())
    }

    /// Removes every generation but the newest and `keep`.
    fn prune(&self, keep: Option<&str>) -> Result<()> {
        for name in self.names()? {
            let old = name.starts_with(GENERATION)
                && Some(name.as_str()) != self.latest.as_deref()
                && Some(name.as_str()) != keep;
            if old {
                self.disk.remove_all(&self.path.join(&name))?;
            }
        }
        Ok(())
    }

    /// Removes what a cut-short save or creation left: partial generations and temporary files
    /// (and, before the first checkpoint, everything but the lock).
    fn clear_leftovers(&self) -> Result<()> {
        for name in self.names()? {
            let leftover = name.starts_with('.') || (self.latest.is_none() && name != LOCK);
            if leftover {
                self.disk.remove_all(&self.path.join(&name))?;
            }
        }
        Ok(())
    }

    fn names(&self) -> Result<Vec<String>> {
        entries(&self.path)
    }
}

fn entries(dir: &Path) -> Result<Vec<String>> {
    let list = std::fs::read_dir(dir)
        .map_err(|e| Error::Io(format!("cannot list {}: {e}", dir.display())))?;
    list.map(|e| {
        e.map(|e| e.file_name().to_string_lossy().into_owned())
            .map_err(|e| Error::Io(format!("cannot list {}: {e}", dir.display())))
    })
    .collect()
}

/// Refuses a new run inside another run's directory (whose generations are pruned, whose
/// files are its own).
pub fn refuse_inside_run(dir: &Path) -> Result<()> {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    for ancestor in absolute.ancestors().skip(1) {
        if ancestor.join(LATEST).is_file() && ancestor.join(LOCK).is_file() {
            return Err(Error::Usage(format!(
                "--out {} lies inside the run {}: choose a directory outside it",
                dir.display(),
                ancestor.display()
            )));
        }
    }
    Ok(())
}

/// Whether `path` is, or would overwrite, a file that a run directory manages (its lock,
/// pointer, history, stable model, or anything in a generation).
pub fn is_run_file(path: &Path) -> bool {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let is_run = |dir: &Path| dir.join(LATEST).is_file();
    let managed = |name: &str| {
        [LOCK, LATEST, MODEL, STEPS, EPOCHS].contains(&name)
            || name.starts_with(GENERATION)
            || name.starts_with('.')
    };
    let mut child = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    for dir in absolute.ancestors().skip(1) {
        if is_run(dir) && child.as_deref().is_some_and(managed) {
            return true;
        }
        child = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    }
    false
}

/// Makes `dir` and its parents; `flag` names the argument in errors.
fn make_dir(dir: &Path, flag: &str) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{flag} {} is not a directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Io(format!("{flag} {}: cannot create it: {e}", dir.display())))
}

/// A new run may go into a directory that is empty but for what a creation cut short left
/// (the lock, generations, history, the stable model and temporary files, but no pointer).
fn check_empty(dir: &Path) -> Result<()> {
    let names = entries(dir)?;
    if names.iter().any(|n| n == LATEST) {
        if let Some(holder) = holder(dir) {
            return Err(Error::Usage(format!(
                "--out {} is in use by {holder}",
                dir.display()
            )));
        }
        return Err(Error::Usage(format!(
            "--out {0} already holds a run: continue it with --resume {0}, or choose another --out",
            dir.display()
        )));
    }
    // The stable model is ours only where our lock shows that a run was started here.
    let claimed = names.iter().any(|n| n == LOCK);
    let ours = |n: &str| {
        n == LOCK
            || n == STEPS
            || n == EPOCHS
            || (claimed && n == MODEL)
            || n.starts_with(GENERATION)
            || n.starts_with('.')
    };
    if let Some(other) = names.iter().find(|n| !ours(n)) {
        return Err(Error::Usage(format!(
            "--out {} is not empty (it holds {other}): choose a new or empty directory",
            dir.display()
        )));
    }
    Ok(())
}

/// The process holding the lock of `dir`, if one does (the lock is tried, not taken, and
/// nothing is written).
fn holder(dir: &Path) -> Option<String> {
    let mut file = File::open(dir.join(LOCK)).ok()?;
    match file.try_lock() {
        Ok(()) => None,
        Err(_) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let text = text.trim();
            Some(if text.is_empty() {
                "another process".into()
            } else {
                text.to_string()
            })
        }
    }
}

/// Takes the lock of the run directory `dir`, writing this process's id into it.
fn claim(dir: &Path, flag: &str) -> Result<File> {
    let path = dir.join(LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::Io(format!("{flag} {}: cannot write in it: {e}", dir.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::Usage(format!(
                "{flag} {} is in use by {} (it holds {})",
                dir.display(),
                if holder.is_empty() {
                    "another process".to_string()
                } else {
                    holder.to_string()
                },
                path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(Error::Io(format!(
                "{flag} {}: cannot lock {}: {e}",
                dir.display(),
                path.display()
            )));
        }
    }
    let stamp = format!("process {}\n", std::process::id());
    file.set_len(0)
        .and_then(|()| file.write_all(stamp.as_bytes()))
        .map_err(|e| Error::Io(format!("{flag} {}: cannot write in it: {e}", dir.display())))?;
    Ok(file)
}

/// Claims the first free `root/N`, N from 1: `create_dir` either makes a directory nobody else
/// has, or fails, so two processes never pick the same N.
fn next_free(root: &Path) -> Result<(PathBuf, File)> {
    make_dir(root, "the runs directory")?;
    for n in 1..=1_000_000u32 {
        let dir = root.join(n.to_string());
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((dir.clone(), claim(&dir, "--out")?)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::Io(format!("cannot create {}: {e}", dir.display())));
            }
        }
    }
    Err(Error::Usage(format!(
        "{} holds a million runs: choose --out",
        root.display()
    )))
}
