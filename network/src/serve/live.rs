//! The observer that feeds the page from the training thread: each event becomes a small record
//! sent down a channel, so that the training never waits for the page.

use std::sync::mpsc::Sender;

use crate::events::{Event, Observer};

use super::hub::Update;

/// Sends a run's events to the page's pump (see [`super::Server::observer`]).
pub struct LiveObserver {
    run: usize,
    updates: Sender<Update>,
}

impl LiveObserver {
    pub(crate) fn new(run: usize, updates: Sender<Update>) -> Self {
        LiveObserver { run, updates }
    }

    /// Tells the page that training ended, with the outcome's name (`finished`, `stopped`,
    /// `step-limit`).
    pub fn ended(&self, outcome: &'static str) {
        let _ = self.updates.send(Update::Ended {
            run: self.run,
            outcome,
        });
    }
}

impl Observer for LiveObserver {
    fn event(&mut self, event: &Event) {
        let run = self.run;
        let update = match event {
            Event::Started { step, .. } => Update::Started { run, step: *step },
            Event::Step { record, running } => Update::Steps {
                run,
                records: vec![**record],
                speed: Some(running.2),
            },
            Event::EpochEnded {
                record, confusion, ..
            } => Update::Epoch {
                run,
                record: **record,
                confusion: confusion.map(<[Vec<u32>]>::to_vec),
            },
            Event::Saved { .. } => Update::Saved { run },
            Event::EpochStarted { .. } | Event::Warning(_) => return,
        };
        // A page that is gone costs nothing: the send fails and training goes on.
        let _ = self.updates.send(update);
    }
}
