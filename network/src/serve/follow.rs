//! Following a run that another process trains (or trained): its directory is read, never
//! written and never locked, once a second; what the newest checkpoint adds to the history, and
//! the steps its trainer journaled since (every 1/32 epoch), go to the page as updates. The
//! browsers still get pushes: only the server looks at files.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use crate::history::StepRecord;
use crate::store::Checkpoint;

use super::hub::{Hub, Update};

/// How often the directory is looked at.
const POLL: Duration = Duration::from_secs(1);

/// What the page has of a followed run.
#[derive(Clone, Copy)]
struct Seen {
    /// The step of the newest checkpoint read.
    checkpoint: u64,
    /// The newest step sent (a journaled step can be newer than the checkpoint).
    step: u64,
    /// The byte of `steps.jsonl` after the last journaled step read: the next read starts
    /// there, so a long journal (a step per line at batch 1) is not read again each second.
    journal: u64,
    /// Epochs sent.
    epochs: usize,
}

/// Follows served run `index`, whose view holds the history up to `known` (the step and the
/// number of epochs of its checkpoint), until the hub closes.
pub(crate) fn start(
    hub: Arc<Hub>,
    index: usize,
    known: (u64, usize),
    updates: Sender<Update>,
) -> crate::Result<()> {
    let mut seen = Seen {
        checkpoint: known.0,
        step: known.0,
        epochs: known.1,
        journal: 0,
    };
    super::spawn("page follower", move || {
        let run = &hub.runs[index];
        while !hub.closing() {
            std::thread::sleep(POLL);
            let Ok(checkpoint) = Checkpoint::latest(&run.dir) else {
                continue;
            };
            let Some(sent) = news(&checkpoint, &run.dir, index, &mut seen) else {
                continue;
            };
            if sent.into_iter().any(|u| updates.send(u).is_err()) {
                return;
            }
        }
    })
    .map(drop)
}

/// The updates that `checkpoint` and the journal past it hold for the page beyond `seen`,
/// which they advance; `None` when its history cannot be read yet (a save in progress).
fn news(
    checkpoint: &Checkpoint,
    dir: &std::path::Path,
    index: usize,
    seen: &mut Seen,
) -> Option<Vec<Update>> {
    let mut sent = Vec::new();
    let mut steps: Vec<StepRecord> = Vec::new();
    let mut speed = None;
    if checkpoint.state.progress.step != seen.checkpoint {
        let history = checkpoint.history(dir).ok()?;
        steps.extend(history.steps.iter().filter(|s| s.step > seen.step));
        speed = history.epochs.last().map(|e| e.examples_per_second);
        sent.extend(
            (history.epochs.iter().skip(seen.epochs)).map(|&record| Update::Epoch {
                run: index,
                record,
                confusion: None,
            }),
        );
        sent.push(Update::Saved { run: index });
        seen.checkpoint = checkpoint.state.progress.step;
        seen.epochs = history.epochs.len();
    }
    let newest = steps.last().map_or(seen.step, |s| s.step);
    let journal = checkpoint
        .journal_from(dir, seen.journal)
        .or_else(|| checkpoint.journal_from(dir, 0));
    let (journaled, end) = journal.unwrap_or_default();
    seen.journal = end;
    steps.extend(journaled.into_iter().filter(|s| s.step > newest));
    if let Some(last) = steps.last() {
        seen.step = last.step;
    }
    if !steps.is_empty() || speed.is_some() {
        sent.insert(
            0,
            Update::Steps {
                run: index,
                records: steps,
                speed,
            },
        );
    }
    Some(sent)
}
