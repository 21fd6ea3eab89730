//! What the page knows of each served run, and the browsers listening: updates from the runs
//! (through one channel) change a run's view and go out to every browser as server-sent events.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::data::{CLASSES, Dataset, RECORD_BYTES, SAMPLE_TEST_FILE, TEST_FILE};
use crate::history::{EpochRecord, StepRecord};
use crate::infer::Model;
use crate::store::Settings;

use super::Served;
use super::view::View;

/// How often pending steps go out to the browsers.
const FLUSH: Duration = Duration::from_millis(250);
/// Events a browser may fall behind by before it is dropped (it reconnects and starts over).
const BACKLOG: usize = 512;
/// Test images per class in the gallery.
const GALLERY_PER_CLASS: usize = 2;

impl Update {
    /// The run it happened to.
    fn run(&self) -> usize {
        match self {
            Update::Started { run, .. }
            | Update::Steps { run, .. }
            | Update::Epoch { run, .. }
            | Update::Saved { run, .. }
            | Update::Ended { run, .. }
            | Update::Analysed { run, .. }
            | Update::Failed { run, .. } => *run,
        }
    }
}

/// Something that happened to served run `run`.
#[derive(Debug)]
pub(crate) enum Update {
    /// Training starts (or resumes) at `step`.
    Started { run: usize, step: u64 },
    /// Steps taken, with the examples/s of this process's epoch so far (live runs).
    Steps {
        run: usize,
        records: Vec<StepRecord>,
        speed: Option<f64>,
    },
    /// An epoch is done; the confusion matrix when known.
    Epoch {
        run: usize,
        record: EpochRecord,
        confusion: Option<Vec<Vec<u32>>>,
    },
    /// A checkpoint is complete.
    Saved { run: usize },
    /// Training ended (`finished`, `stopped` or `step-limit`).
    Ended { run: usize, outcome: &'static str },
    /// The analyst loaded the checkpoint at `step`: the gallery's predictions.
    Analysed {
        run: usize,
        step: u64,
        gallery: Value,
        confusion: Option<Vec<Vec<u32>>>,
    },
    /// The analyst could not load a checkpoint.
    Failed { run: usize, why: String },
}

/// A served run.
pub(crate) struct Watched {
    /// Its name in URLs: the directory's name, made unique.
    pub key: String,
    /// The run directory.
    pub dir: PathBuf,
    /// What it is.
    pub settings: Settings,
    /// Trained by this process.
    pub live: bool,
    /// Its test images.
    pub test: Option<Dataset>,
    /// The gallery's test images.
    pub gallery: Vec<usize>,
    /// The newest checkpoint's model, for the gallery, clicks and uploads.
    pub model: Mutex<Option<Model>>,
    /// Optimiser steps in one epoch.
    pub steps_per_epoch: usize,
    view: Mutex<View>,
}

impl Watched {
    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The model, if the analyst has loaded one.
    pub fn model(&self) -> MutexGuard<'_, Option<Model>> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The step of the newest model the analyst loaded.
    pub fn model_step(&self) -> Option<u64> {
        self.view().model_step
    }
}

/// The served runs and the browsers listening.
pub(crate) struct Hub {
    /// Every served run, in the order given.
    pub runs: Vec<Watched>,
    clients: Mutex<Vec<SyncSender<Arc<str>>>>,
    analyst: mpsc::Sender<usize>,
    closing: AtomicBool,
}

/// Training examples of a run, from its data's fingerprints: every file but the test set's.
fn train_len(settings: &Settings) -> usize {
    let bytes: u64 = (settings.data.files.iter())
        .filter(|f| f.name != TEST_FILE && f.name != SAMPLE_TEST_FILE)
        .map(|f| f.bytes)
        .sum();
    (bytes / RECORD_BYTES as u64) as usize
}

/// The first [`GALLERY_PER_CLASS`] test images of each class, in index order.
fn gallery_of(test: Option<&Dataset>) -> Vec<usize> {
    let Some(test) = test else { return Vec::new() };
    let mut taken = [0usize; CLASSES.len()];
    (0..test.len())
        .filter(|&i| {
            let c = usize::from(test.labels[i]).min(CLASSES.len() - 1);
            taken[c] += 1;
            taken[c] <= GALLERY_PER_CLASS
        })
        .collect()
}

/// URL keys: each directory's name, reduced to letters, digits, `.`, `_` and `-`, numbered
/// when two are the same.
fn keys(dirs: &[&PathBuf]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for dir in dirs {
        let name: String = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
            .collect();
        let base = match name.trim_matches('.') {
            "" => "run".to_string(),
            n => n.to_string(),
        };
        let mut key = base.clone();
        let mut n = 2;
        while keys.contains(&key) {
            key = format!("{base}-{n}");
            n += 1;
        }
        keys.push(key);
    }
    keys
}

impl Hub {
    /// The hub of `runs`; `analyst` takes the index of a run whose newest checkpoint to load.
    pub fn new(runs: Vec<Served>, analyst: mpsc::Sender<usize>) -> Self {
        let keys = keys(&runs.iter().map(|r| &r.dir).collect::<Vec<_>>());
        let runs = runs
            .into_iter()
            .zip(keys)
            .map(|(run, key)| watched(run, key))
            .collect();
        Hub {
            runs,
            clients: Mutex::new(Vec::new()),
            analyst,
            closing: AtomicBool::new(false),
        }
    }

    /// Tells the threads to end and drops every browser's stream.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.clients().clear();
    }

    /// Whether the server is closing.
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// The run with URL key `key`.
    pub fn find(&self, key: &str) -> Option<(usize, &Watched)> {
        self.runs.iter().enumerate().find(|(_, r)| r.key == key)
    }

    /// Asks the analyst to load run `index`'s newest checkpoint.
    pub fn analyse(&self, index: usize) {
        let _ = self.analyst.send(index);
    }

    fn clients(&self) -> MutexGuard<'_, Vec<SyncSender<Arc<str>>>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new browser: the snapshot of every run first, then every event after it.
    pub fn subscribe(&self) -> Receiver<Arc<str>> {
        let (tx, rx) = mpsc::sync_channel(BACKLOG);
        let mut clients = self.clients();
        // Under the clients' lock no update can slip between the snapshot and the stream.
        let _ = tx.try_send(sse("snapshot", &self.snapshot()));
        clients.push(tx);
        rx
    }

    /// Every run as the page first draws it.
    pub fn snapshot(&self) -> Value {
        let runs: Vec<Value> = self.runs.iter().map(|r| r.view().summary(r)).collect();
        json!({ "runs": runs, "classes": CLASSES })
    }

    /// Sends an event to every browser; one that has fallen [`BACKLOG`] events behind, or
    /// left, is dropped.
    fn broadcast(clients: &mut Vec<SyncSender<Arc<str>>>, name: &str, data: &Value) {
        let message = sse(name, data);
        clients.retain(|c| match c.try_send(message.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        });
    }

    /// Applies `update` to its run and tells the browsers; a new checkpoint goes to the
    /// analyst.
    fn apply(&self, update: Update) {
        let mut clients = self.clients();
        let index = update.run();
        let Some(run) = self.runs.get(index) else {
            return;
        };
        let saved = matches!(update, Update::Saved { .. });
        let event = run.view().apply(run, update);
        if let Some((name, data)) = event {
            Self::broadcast(&mut clients, name, &data);
        }
        if saved {
            self.analyse(index);
        }
    }

    /// Sends out the loss curve's new points, and each run's status.
    fn flush(&self) {
        let mut clients = self.clients();
        for (index, run) in self.runs.iter().enumerate() {
            let mut view = run.view();
            let points = view.take_points(run.steps_per_epoch);
            if points.is_empty() {
                continue;
            }
            let status = view.status(run);
            drop(view);
            let data = json!({ "run": index, "points": points, "status": status });
            Self::broadcast(&mut clients, "points", &data);
        }
    }

    /// Keeps the streams of idle browsers alive (and finds those that left).
    pub fn ping(&self) {
        let mut clients = self.clients();
        let ping: Arc<str> = Arc::from(": ping\n\n");
        clients.retain(|c| c.try_send(ping.clone()).is_ok());
    }
}

/// The watched run of `run` under `key`.
fn watched(run: Served, key: String) -> Watched {
    let steps_per_epoch = train_len(&run.settings)
        .div_ceil(run.settings.config.batch_size)
        .max(1);
    let view = View::new(run.history, run.live, steps_per_epoch);
    Watched {
        key,
        dir: run.dir,
        gallery: gallery_of(run.test.as_ref()),
        settings: run.settings,
        live: run.live,
        test: run.test,
        model: Mutex::new(None),
        steps_per_epoch,
        view: Mutex::new(view),
    }
}

/// One server-sent event.
fn sse(name: &str, data: &Value) -> Arc<str> {
    Arc::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// Runs the pump: applies updates as they come, flushes points every [`FLUSH`], pings idle
/// browsers; ends when every sender of updates is gone.
pub(crate) fn start_pump(hub: Arc<Hub>, updates: Receiver<Update>) -> crate::Result<()> {
    super::spawn("page pump", move || {
        let (mut flushed, mut pinged) = (Instant::now(), Instant::now());
        loop {
            match updates.recv_timeout(FLUSH) {
                Ok(update) => hub.apply(update),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if hub.closing() {
                return;
            }
            if flushed.elapsed() >= FLUSH {
                hub.flush();
                flushed = Instant::now();
            }
            if pinged.elapsed() >= Duration::from_secs(15) {
                hub.ping();
                pinged = Instant::now();
            }
        }
    })
    .map(drop)
}
