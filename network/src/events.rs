//! What a run reports as it goes: the CLI's progress bars and any later dashboard subscribe to
//! the same events through [`Observer`].

use std::path::Path;

use crate::history::{EpochRecord, StepRecord};
use crate::model::{Network, Plan};

/// One thing that happened in a run.
#[derive(Debug)]
pub enum Event<'a> {
    /// Training starts (or resumes) at `step`.
    Started {
        /// The run directory.
        dir: &'a Path,
        /// Whether it continues an earlier process's work.
        resumed: bool,
        /// The network.
        net: &'a Network,
        /// The techniques per layer and pass.
        plan: &'a Plan,
        /// Whether the plan was measured (`auto`) rather than asked for.
        measured: bool,
        /// Optimiser steps already taken.
        step: u64,
        /// Steps in one epoch.
        steps_per_epoch: usize,
    },
    /// An epoch starts (or resumes at `step_in_epoch`).
    EpochStarted {
        /// From 1.
        epoch: usize,
        /// Epochs of the run.
        epochs: usize,
        /// Steps of it already taken.
        step_in_epoch: usize,
        /// Steps in it.
        steps_per_epoch: usize,
    },
    /// One optimiser step is done.
    Step {
        /// Its record.
        record: &'a StepRecord,
        /// Mean loss, accuracy and examples/s of the epoch so far (this process's part).
        running: (f64, f64, f64),
    },
    /// An epoch is done and evaluated.
    EpochEnded {
        /// Its record.
        record: &'a EpochRecord,
        /// The confusion matrix, `[true][predicted]` counts, of the held-out images measured
        /// after it: the validation images, else the test set; none if neither was.
        confusion: Option<&'a [Vec<u32>]>,
        /// Epochs of the run.
        epochs: usize,
    },
    /// A checkpoint is complete.
    Saved {
        /// The step it holds.
        step: u64,
        /// Bytes written: tensors and new history lines (the few-kilobyte `state.json` aside).
        bytes: u64,
        /// How long the save took.
        seconds: f64,
    },
    /// Something went wrong that does not stop training (a picture not drawn).
    Warning(String),
}

/// Receives a run's events.
pub trait Observer {
    /// Called for every event, on the training thread: keep it short.
    fn event(&mut self, event: &Event);
}

/// Ignores every event.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&mut self, _: &Event) {}
}

/// Both observers, one after the other: the CLI's progress bars and the page.
pub struct Tee<'a>(pub &'a mut dyn Observer, pub &'a mut dyn Observer);

impl Observer for Tee<'_> {
    fn event(&mut self, event: &Event) {
        self.0.event(event);
        self.1.event(event);
    }
}
