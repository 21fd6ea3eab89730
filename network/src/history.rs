//! Loss and accuracy per step and per epoch. On disk the history is two append-only JSON-lines
//! files, `steps.jsonl` and `epochs.jsonl`: a save appends what happened since the last one, so
//! saving after epoch 150 writes what saving after epoch 1 wrote. Each checkpoint records how
//! many bytes of each file belong to it; lines past that (written by a save that a crash cut
//! short) are not part of the run and are cut off when it resumes.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Loss and accuracy of one optimiser step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Global step, from 1.
    pub step: u64,
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean loss over the batch.
    pub loss: f32,
    /// Fraction of the batch classified right.
    pub accuracy: f32,
    /// Examples in the batch.
    pub examples: usize,
}

/// One epoch's summary.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f32,
    /// Training accuracy (on augmented images, as they were seen).
    pub train_accuracy: f32,
    /// Accuracy on the held-out training images after the epoch (with the image and its
    /// mirror; with every test-time view after the last), if any are held out.
    #[serde(default)]
    pub validation_accuracy: Option<f32>,
    /// Test accuracy after the epoch: after the last only, unless asked for every epoch.
    pub test_accuracy: Option<f32>,
    /// Wall time of the epoch's training steps.
    pub seconds: f64,
    /// Training examples per second.
    pub examples_per_second: f64,
    /// Peak resident memory of the process so far, in MB (Linux; absent elsewhere).
    #[serde(default)]
    pub peak_rss_mb: Option<f64>,
}

impl EpochRecord {
    /// The accuracies measured after the epoch, for a line of text: validation, test, both
    /// or neither.
    pub fn held_out(&self) -> String {
        let parts: Vec<String> = [
            ("validation", self.validation_accuracy),
            ("test", self.test_accuracy),
        ]
        .iter()
        .filter_map(|(what, a)| a.map(|a| format!("{what} accuracy {:.2}%", 100.0 * a)))
        .collect();
        match parts.is_empty() {
            true => "no held-out accuracy".into(),
            false => parts.join(", "),
        }
    }
}

/// The process's peak resident memory so far, in MB, from `/proc/self/status` (`VmHWM`).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Loss and accuracy per step and per epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Every step.
    pub steps: Vec<StepRecord>,
    /// Every completed epoch.
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// Mean loss and accuracy over the steps of `epoch` (from 1), weighted by batch size, so
    /// that an epoch interrupted and resumed is summarised as if it had run in one go.
    pub fn epoch_means(&self, epoch: usize) -> (f32, f32) {
        let (mut loss, mut right, mut n) = (0.0f64, 0.0f64, 0usize);
        for s in self.steps.iter().rev().take_while(|s| s.epoch >= epoch) {
            if s.epoch == epoch {
                loss += f64::from(s.loss) * s.examples as f64;
                right += f64::from(s.accuracy) * s.examples as f64;
                n += s.examples;
            }
        }
        let n = n.max(1) as f64;
        ((loss / n) as f32, (right / n) as f32)
    }
}

/// Records as JSON lines, one per record.
pub fn encode_lines<T: Serialize>(records: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 96);
    for r in records {
        // A record of numbers always serialises.
        serde_json::to_writer(&mut out, r).expect("records serialise");
        out.push(b'\n');
    }
    out
}

/// The records of the first `len` bytes of a JSON-lines file (`name` for errors): every line
/// there must be whole and valid, since a checkpoint counted them.
pub fn decode_lines<T: DeserializeOwned>(bytes: &[u8], len: u64, name: &str) -> Result<Vec<T>> {
    let Some(part) = usize::try_from(len).ok().and_then(|l| bytes.get(..l)) else {
        return Err(Error::Checkpoint(format!(
            "{name} holds {} bytes, but the checkpoint counts {len}: the history was cut",
            bytes.len()
        )));
    };
    if !part.is_empty() && part.last() != Some(&b'\n') {
        return Err(Error::Checkpoint(format!(
            "{name}: the checkpoint's {len} bytes end inside a line"
        )));
    }
    part.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_slice(line).map_err(|e| {
                Error::Checkpoint(format!("{name}: line {} is not a record: {e}", i + 1))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: u64, epoch: usize) -> StepRecord {
        StepRecord {
            step,
            epoch,
            loss: step as f32,
            accuracy: 0.5,
            examples: 2,
        }
    }

    #[test]
    fn lines_round_trip_and_a_torn_tail_past_the_count_is_ignored() {
        let records = [step(1, 1), step(2, 1), step(3, 2)];
        let mut bytes = encode_lines(&records);
        let len = bytes.len() as u64;
        bytes.extend_from_slice(b"{\"step\": 4, \"ep");
        let back: Vec<StepRecord> = decode_lines(&bytes, len, "steps.jsonl").unwrap();
        assert_eq!(back, records);
        assert!(decode_lines::<StepRecord>(&bytes, len + 3, "s").is_err());
        assert!(decode_lines::<StepRecord>(&bytes, len + 1000, "s").is_err());
        assert!(decode_lines::<StepRecord>(b"{}\n", 3, "s").is_err());
        assert_eq!(decode_lines::<StepRecord>(b"", 0, "s").unwrap(), vec![]);
    }

    #[test]
    fn epoch_means_weigh_by_examples() {
        let h = History {
            steps: vec![step(1, 1), step(2, 2), step(3, 2)],
            epochs: vec![],
        };
        assert_eq!(h.epoch_means(2), (2.5, 0.5));
        assert_eq!(h.epoch_means(1), (1.0, 0.5));
    }
}
