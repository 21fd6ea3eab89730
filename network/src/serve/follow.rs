//! Following a run that another process trains (or trained): its directory is read, never
//! written and never locked, once a second; what the newest checkpoint adds to the history goes
//! to the page as updates. The browsers still get pushes: only the server looks at files.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use crate::store::Checkpoint;

use super::hub::{Hub, Update};

/// How often the directory is looked at.
const POLL: Duration = Duration::from_secs(1);

/// Follows served run `index`, whose view holds the history up to `known` (the step and the
/// number of epochs), until the hub closes.
pub(crate) fn start(
    hub: Arc<Hub>,
    index: usize,
    mut known: (u64, usize),
    updates: Sender<Update>,
) -> crate::Result<()> {
    super::spawn("page follower", move || {
        let run = &hub.runs[index];
        while !hub.closing() {
            std::thread::sleep(POLL);
            let Ok(checkpoint) = Checkpoint::latest(&run.dir) else {
                continue;
            };
            let step = checkpoint.state.progress.step;
            if step == known.0 {
                continue;
            }
            let Ok(history) = checkpoint.history(&run.dir) else {
                continue;
            };
            let records: Vec<_> = history
                .steps
                .iter()
                .filter(|s| s.step > known.0)
                .copied()
                .collect();
            let speed = history.epochs.last().map(|e| e.examples_per_second);
            let mut sent = vec![Update::Steps {
                run: index,
                records,
                speed,
            }];
            sent.extend(
                history
                    .epochs
                    .iter()
                    .skip(known.1)
                    .map(|&record| Update::Epoch {
                        run: index,
                        record,
                        confusion: None,
                    }),
            );
            sent.push(Update::Saved { run: index });
            if sent.into_iter().any(|u| updates.send(u).is_err()) {
                return;
            }
            known = (step, history.epochs.len());
        }
    })
    .map(drop)
}
