//! The CLI's view of a run: a progress bar per epoch and a line per finished epoch, on stderr
//! (epoch lines on stdout unless the command prints JSON there).

use indicatif::{ProgressBar, ProgressStyle};

use crate::events::{Event, Observer};
use crate::history::EpochRecord;
use crate::model::{Network, Plan};

/// Steps between redraws of the progress message.
const PROGRESS_EVERY: u64 = 16;

/// Progress bars and epoch lines.
pub struct Bars {
    bar: Option<ProgressBar>,
    json: bool,
    examples: usize,
}

impl Bars {
    /// Epoch lines on stdout, or on stderr when stdout is for JSON.
    pub fn new(json: bool) -> Self {
        Bars {
            bar: None,
            json,
            examples: 0,
        }
    }

    /// Training examples this process has seen.
    pub fn examples(&self) -> usize {
        self.examples
    }

    fn line(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
}

impl Bars {
    /// The run directory and the technique plan.
    fn started(
        &self,
        dir: &std::path::Path,
        resumed: bool,
        net: &Network,
        plan: &Plan,
        measured: bool,
        step: u64,
    ) {
        if resumed {
            eprintln!("resuming {} at step {step}", dir.display());
        } else {
            eprintln!("run directory: {}", dir.display());
        }
        eprintln!(
            "instruction set of the direct kernels: {}",
            kernels::Isa::active().name()
        );
        let how = if measured {
            "fastest measured per layer and pass"
        } else {
            "as asked"
        };
        eprintln!("techniques ({how}):");
        for (i, layer) in net.layers.iter().enumerate() {
            eprintln!(
                "  {:>2} {:<8} forward {:<12} backward {}",
                i + 1,
                layer.name(),
                plan.forward[i].name(),
                plan.backward[i].name()
            );
        }
        eprintln!("     softmax  {}", plan.softmax.name());
    }

    /// A bar for the epoch, at the step it resumes from.
    fn epoch_started(&mut self, epoch: usize, epochs: usize, step_in_epoch: usize, steps: usize) {
        let bar = ProgressBar::new(steps as u64);
        // A fixed template: it parses.
        let style = ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg}")
            .expect("valid template");
        bar.set_style(style);
        bar.set_prefix(format!("{epoch}/{epochs}"));
        bar.set_position(step_in_epoch as u64);
        self.bar = Some(bar);
    }

    /// The bar advanced; its message redrawn every few steps (a formatted string each time).
    fn step(&mut self, examples: usize, running: (f64, f64, f64)) {
        self.examples += examples;
        let Some(bar) = &self.bar else {
            return;
        };
        bar.inc(1);
        if bar.position() % PROGRESS_EVERY == 0 {
            bar.set_message(format!(
                "loss {:.3}  acc {:.1}%  {:.0} ex/s",
                running.0,
                100.0 * running.1,
                running.2
            ));
        }
    }

    /// The epoch's line.
    fn epoch_ended(&mut self, r: &EpochRecord, epochs: usize) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.line(&format!(
            "epoch {}/{epochs}: loss {:.4}, train accuracy {:.1}%, {}, {:.1} s ({:.0} examples/s)",
            r.epoch,
            r.train_loss,
            100.0 * r.train_accuracy,
            r.held_out(),
            r.seconds,
            r.examples_per_second
        ));
    }
}

impl Observer for Bars {
    fn event(&mut self, event: &Event) {
        match event {
            Event::Started {
                dir,
                resumed,
                net,
                plan,
                measured,
                step,
                ..
            } => {
                self.started(dir, *resumed, net, plan, *measured, *step);
            }
            Event::EpochStarted {
                epoch,
                epochs,
                step_in_epoch,
                steps_per_epoch,
            } => {
                self.epoch_started(*epoch, *epochs, *step_in_epoch, *steps_per_epoch);
            }
            Event::Step { record, running } => self.step(record.examples, *running),
            Event::EpochEnded { record, epochs, .. } => self.epoch_ended(record, *epochs),
            Event::Saved { .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.abandon();
                }
            }
            Event::Warning(text) => eprintln!("warning: {text}"),
        }
    }
}
