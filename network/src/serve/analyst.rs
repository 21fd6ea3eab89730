//! The analyst: on its own thread, loads a run's newest checkpoint from its directory (a copy of
//! the weights, run on one thread) and works out what the page shows of it — the gallery's
//! predictions, and for a run followed from its directory the confusion matrix.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use serde_json::{Value, json};

use crate::batch::tta_views;
use crate::error::Result;
use crate::infer::Model;
use crate::store::Checkpoint;

use super::hub::{Hub, Update, Watched};

/// Starts the analyst: it takes run indices from `jobs` (several pending ones of a run count
/// once) until the hub closes.
pub(crate) fn start(hub: Arc<Hub>, jobs: Receiver<usize>, updates: Sender<Update>) -> Result<()> {
    super::spawn("page analyst", move || {
        while !hub.closing() {
            let first = match jobs.recv_timeout(Duration::from_millis(500)) {
                Ok(index) => index,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let pending: BTreeSet<usize> = std::iter::once(first).chain(jobs.try_iter()).collect();
            for index in pending {
                let Some(run) = hub.runs.get(index) else {
                    continue;
                };
                let update = match analyse(run, index) {
                    Ok(Some(update)) => update,
                    Ok(None) => continue,
                    Err(e) => Update::Failed {
                        run: index,
                        why: e.to_string(),
                    },
                };
                let _ = updates.send(update);
            }
        }
    })
    .map(drop)
}

/// Loads `run`'s newest checkpoint unless it is the one loaded already; `None` then.
fn analyse(run: &Watched, index: usize) -> Result<Option<Update>> {
    let checkpoint = Checkpoint::latest(&run.dir)?;
    let progress = checkpoint.state.progress;
    if run.model_step() == Some(progress.step) {
        return Ok(None);
    }
    let mut model = Model::load(&run.dir, None, 1)?;
    let gallery = gallery(&mut model, run)?;
    // A run of this process reports its confusion matrix with each epoch; a followed run's
    // is measured here, at epoch boundaries.
    let at_epoch_end = progress.step_in_epoch == 0 && progress.epoch > 0;
    let confusion = match (&run.test, run.live, at_epoch_end) {
        (Some(test), false, true) => Some(model.evaluate(test, &tta_views(2))?.confusion),
        _ => None,
    };
    *run.model() = Some(model);
    Ok(Some(Update::Analysed {
        run: index,
        step: progress.step,
        gallery,
        confusion,
    }))
}

/// The gallery's images with their true class and top three predictions.
fn gallery(model: &mut Model, run: &Watched) -> Result<Value> {
    let Some(test) = &run.test else {
        return Ok(json!([]));
    };
    let probs = model.probabilities(test, &run.gallery)?;
    let items: Vec<Value> = run
        .gallery
        .iter()
        .zip(probs.outer_iter())
        .map(|(&i, p)| {
            let mut ranked: Vec<(usize, f32)> = p.iter().copied().enumerate().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            ranked.truncate(3);
            json!({ "index": i, "label": test.labels[i], "top": ranked })
        })
        .collect();
    Ok(json!(items))
}
