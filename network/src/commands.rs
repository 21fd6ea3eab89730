//! The commands behind the CLI: each takes its parsed arguments, calls the library and prints.
//! Notes (where the data came from, what the run does) go to stderr; results to stdout, as one
//! JSON document with `--json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::batch::tta_views;
use crate::config::{MAX_TTA, TrainConfig, cores, in_range};
use crate::data::{CLASSES, Cifar10, Source};
use crate::error::{Error, Result};
use crate::events::Tee;
use crate::history::peak_rss_mb;
use crate::infer::Model;
use crate::pictures::{self, RunCurves};
use crate::run::{NewRun, Outcome, Run, RunOptions};
use crate::store::{Checkpoint, Place};

mod progress;
mod serve;
mod sweep;
mod visualize;

pub use serve::serve;
pub use sweep::{SweepArgs, sweep};
pub use visualize::{VisualizeArgs, visualize};

/// The confusion matrix's file, beside the model.
pub const CONFUSION_FILE: &str = "confusion.png";
/// The environment variable naming the default data directory.
pub const DATA_ENV: &str = "NETWORK_DATA";
/// The environment variable naming the directory of new runs.
pub const RUNS_ENV: &str = "NETWORK_RUNS";
/// The default data directory, relative to the current directory.
pub const DEFAULT_DATA: &str = "data/cifar-10-batches-bin";
/// Where new runs go by default, relative to the current directory.
pub const DEFAULT_RUNS: &str = "runs";
/// The exit code of a run stopped by Ctrl-C (after saving), as shells report SIGINT.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Where the data is and whether the embedded sample may stand in for it.
#[derive(Clone, Debug)]
pub struct DataArgs {
    /// The directory of CIFAR-10 binary files.
    pub dir: PathBuf,
    /// True when `dir` is the default: then a missing directory falls back to the sample.
    pub is_default: bool,
}

impl DataArgs {
    /// `--data DIR`, or `$NETWORK_DATA`, or the default `data/cifar-10-batches-bin` in the
    /// current directory (which alone may fall back to the embedded sample).
    pub fn resolve(flag: Option<PathBuf>) -> Self {
        match flag {
            Some(dir) => DataArgs {
                dir,
                is_default: false,
            },
            // A directory named by the environment is asked for: no fallback.
            None => match std::env::var_os(DATA_ENV) {
                Some(dir) => DataArgs {
                    dir: dir.into(),
                    is_default: false,
                },
                None => DataArgs {
                    dir: PathBuf::from(DEFAULT_DATA),
                    is_default: true,
                },
            },
        }
    }

    /// Loads the data.
    pub fn load(&self) -> Result<Cifar10> {
        Cifar10::load_or_sample(&self.dir, self.is_default)
    }
}

/// Says on stderr where the data came from, `missing` being the default directory that was
/// looked for (once every input is checked, so that a failed command prints only its error),
/// and how many training images a run holds out (`held`, no longer in `data.train`).
fn note_data(data: &Cifar10, held: usize, missing: Option<&Path>) {
    let train = data.train.len() + held;
    let counts = match held {
        0 => format!("{train} training, {} test images", data.test.len()),
        _ => format!(
            "{train} training images, {held} held out for validation; {} test images",
            data.test.len()
        ),
    };
    match (&data.source, missing) {
        (Source::Sample, Some(dir)) => eprintln!(
            "{} not found: using the embedded sample ({counts}). For the full CIFAR-10, run \
             scripts/fetch_cifar10.sh or pass --data DIR.",
            dir.display(),
        ),
        (Source::Dir(d), _) => eprintln!("data: {} ({counts})", d.display()),
        (Source::Sample, None) => eprintln!("data: the embedded sample ({counts})"),
    }
}

impl DataArgs {
    /// [`note_data`] for data loaded from these arguments.
    fn note(&self, data: &Cifar10, held: usize) {
        note_data(data, held, self.is_default.then_some(self.dir.as_path()));
    }
}

/// What `train` was asked to do.
pub struct TrainArgs {
    /// `--data`, if given.
    pub data: Option<PathBuf>,
    /// The run to create (ignored when resuming).
    pub new: NewRun,
    /// The architecture file it was read from, for messages.
    pub arch_file: Option<PathBuf>,
    /// `--out`: the run directory (default: the next free `runs/N`).
    pub out: Option<PathBuf>,
    /// `--resume`: a run directory to continue.
    pub resume: Option<PathBuf>,
    /// Stop after this many optimiser steps in all.
    pub max_steps: Option<u64>,
    /// Memory budget and test hooks.
    pub options: RunOptions,
    /// Print the summary as JSON.
    pub json: bool,
    /// Serve the live page here while training (and after, until Ctrl-C).
    pub serve: Option<crate::serve::ServeOptions>,
}

/// Trains; returns the process's exit code (130 when stopped by Ctrl-C, after saving).
pub fn train(args: TrainArgs, stop: Arc<AtomicBool>) -> Result<u8> {
    let started = Instant::now();
    let mut run = match &args.resume {
        Some(dir) => {
            let run = Run::resume(dir, args.data.as_deref(), &args.options)?;
            let step = run.state().progress.step;
            if let Some(max) = args.max_steps.filter(|&m| m <= step) {
                return Err(Error::Usage(format!(
                    "--max-steps {max} is not past step {step}, where the run in {} stands",
                    dir.display()
                )));
            }
            note_data(run.data(), run.validation().len(), None);
            run
        }
        None => {
            args.new.check().map_err(|e| match (&e, &args.arch_file) {
                (Error::Arch(why), Some(file)) => Error::Arch(format!("{}: {why}", file.display())),
                _ => e,
            })?;
            let source = DataArgs::resolve(args.data.clone());
            let data = source.load()?;
            let place = match &args.out {
                Some(dir) => Place::Dir(dir.clone()),
                None => Place::Next(runs_root()),
            };
            let init = args.new.init_from.clone();
            let run = Run::create(&place, data, args.new, &args.options)?;
            source.note(run.data(), run.validation().len());
            if let Some(s) = run.sizing() {
                eprintln!(
                    "time budget {:.0} s: {} epochs (a step {:.1} ms, an epoch {:.1} s with its evaluation, the final evaluation {:.1} s, {:.1} s spent before training)",
                    s.budget,
                    s.epochs,
                    1e3 * s.step_seconds,
                    s.epoch_seconds,
                    s.final_seconds,
                    s.spent
                );
            }
            if let Some(path) = init {
                eprintln!("weights from {}", path.display());
            }
            run
        }
    };
    let mut bars = progress::Bars::new(args.json);
    let server = match args.serve {
        Some(options) => Some(serve::start_live(&run, options)?),
        None => None,
    };
    let outcome = match &server {
        Some(server) => {
            let mut page = server.observer(0);
            let outcome = run.fit(args.max_steps, &stop, &mut Tee(&mut bars, &mut page));
            page.ended(outcome.as_ref().map_or("failed", |o| o.name()));
            outcome?
        }
        None => run.fit(args.max_steps, &stop, &mut bars)?,
    };
    let examples = bars.examples();
    let seconds = started.elapsed().as_secs_f64();
    if outcome != Outcome::Finished {
        eprintln!(
            "{} at step {} (epoch {}); checkpoint saved in {}. Resume with:\n  {} train --resume {}",
            if outcome == Outcome::Stopped {
                "interrupted"
            } else {
                "stopped at --max-steps"
            },
            run.state().progress.step,
            run.state().progress.epoch + 1,
            run.dir().display(),
            invoked_as(),
            shell_quote(&run.dir().display().to_string())
        );
    }
    summarise(&run, outcome, seconds, examples, args.json);
    if let Some(server) = server.filter(|_| outcome != Outcome::Stopped) {
        serve::linger(&server, &stop);
    }
    Ok(if outcome == Outcome::Stopped {
        EXIT_INTERRUPTED
    } else {
        0
    })
}

/// The last line of a run, or its JSON document.
fn summarise(run: &Run, outcome: Outcome, seconds: f64, examples: usize, json: bool) {
    let last = run.history().epochs.last();
    let memory = peak_rss_mb();
    if json {
        let doc = serde_json::json!({
            "run": run.dir(),
            "outcome": outcome.name(),
            "epochs": run.state().progress.epoch,
            "step": run.state().progress.step,
            "test_accuracy": last.and_then(|e| e.test_accuracy),
            "validation_accuracy": last.and_then(|e| e.validation_accuracy),
            "seconds": seconds,
            "examples_per_second": examples as f64 / seconds.max(1e-9),
            "peak_rss_mb": memory,
        });
        println!("{doc}");
        return;
    }
    let accuracy = match last {
        Some(e) => format!("{} after {} epochs", e.held_out(), e.epoch),
        None => "no epoch completed yet".to_string(),
    };
    let memory = memory.map_or(String::new(), |mb| format!(", peak memory {mb:.0} MB"));
    println!(
        "done: {accuracy}, {seconds:.1} s of wall time, {:.0} training examples/s{memory}; run in {}",
        examples as f64 / seconds.max(1e-9),
        run.dir().display()
    );
}

/// The directory of new runs: `$NETWORK_RUNS`, else `runs` in the current directory.
fn runs_root() -> PathBuf {
    std::env::var_os(RUNS_ENV).map_or_else(|| PathBuf::from(DEFAULT_RUNS), PathBuf::from)
}

/// The command that runs this binary, as it was invoked (so that a printed hint works when
/// pasted): `cargo run …` builds land in `target/…/network`.
fn invoked_as() -> String {
    let argv0 = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| "network".into());
    shell_quote(&argv0.display().to_string())
}

/// `s` quoted for a POSIX shell where it needs quoting.
fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The data for a model: `--data`, else the data a run directory recorded, else the default.
fn model_data(model: &Path, flag: Option<PathBuf>) -> Result<Cifar10> {
    if flag.is_none() && model.is_dir() {
        let recorded = Checkpoint::latest(model)?.state.settings.data;
        return match &recorded.dir {
            Some(dir) => Cifar10::load_or_sample(dir, false),
            None => Ok(Cifar10::sample()),
        };
    }
    DataArgs::resolve(flag).load()
}

/// Refuses an output path (`flag` names it) that cannot be written, is a directory, is one of
/// the command's inputs, or is a file a run directory manages.
fn check_output(flag: &str, out: &Path, inputs: &[&Path]) -> Result<()> {
    let fail = |why: String| Err(Error::Usage(format!("{flag} {}: {why}", out.display())));
    if out.is_dir() {
        return fail("is a directory; give a file name".into());
    }
    let parent = crate::disk::parent(out);
    if !parent.is_dir() {
        return fail(format!("{} is not a directory", parent.display()));
    }
    if crate::store::is_run_file(out) {
        return fail("is a file of a run directory, which only the run writes".into());
    }
    let canonical = |p: &Path| -> Option<PathBuf> {
        if let Ok(c) = p.canonicalize() {
            return Some(c);
        }
        Some(
            crate::disk::parent(p)
                .canonicalize()
                .ok()?
                .join(p.file_name()?),
        )
    };
    let target = canonical(out);
    if let Some(input) = inputs
        .iter()
        .find(|i| target.is_some() && canonical(i) == target)
    {
        return fail(format!(
            "is also an input of this command ({})",
            input.display()
        ));
    }
    Ok(())
}

/// The files a model was read from: the run's generation or the file itself.
fn model_inputs(model: &Path) -> Vec<PathBuf> {
    if model.is_dir() {
        let mut files = vec![model.join(crate::store::MODEL)];
        if let Ok(c) = Checkpoint::latest(model) {
            files.push(c.model);
        }
        files
    } else {
        vec![model.to_path_buf()]
    }
}

/// Refuses a `--model` that is not there, before anything is derived from its path.
fn model_exists(model: &Path) -> Result<()> {
    if model.exists() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "--model {}: no such run directory or file",
        model.display()
    )))
}

/// The directory a model belongs to: the run directory itself, or the file's directory.
fn model_dir(model: &Path) -> PathBuf {
    if model.is_dir() {
        model.to_path_buf()
    } else {
        crate::disk::parent(model).to_path_buf()
    }
}

/// Where `eval` and `test` find the model.
pub struct ModelArgs {
    /// A run directory or a safetensors file.
    pub model: PathBuf,
    /// The architecture of a bare file.
    pub arch: Option<PathBuf>,
    /// `--data`, if given.
    pub data: Option<PathBuf>,
    /// Worker threads (default: every core).
    pub threads: Option<usize>,
    /// Print JSON.
    pub json: bool,
}

impl ModelArgs {
    fn load(&self) -> Result<(Model, Cifar10)> {
        let threads = self.threads.unwrap_or_else(cores);
        let model = Model::load(&self.model, self.arch.as_deref(), threads)?;
        let data = model_data(&self.model, self.data.clone())?;
        Ok((model, data))
    }
}

/// The images `eval` judges a model on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalSet {
    /// The test set.
    Test,
    /// The training images a run held out (a run directory only).
    Validation,
}

/// The images `run` (a run directory) held out for validation, taken out of `data`.
fn held_out(run: &Path, data: &mut Cifar10) -> Result<crate::data::Dataset> {
    let refuse = |why: String| Error::Usage(format!("--on validation: {why}"));
    if !run.is_dir() {
        return Err(refuse(format!("{} is not a run directory", run.display())));
    }
    let config = Checkpoint::latest(run)?.state.settings.config;
    match config.validation.count(data.train.len()) {
        0 => Err(refuse(format!(
            "the run in {} held no image out",
            run.display()
        ))),
        n => Ok(data.train.hold_out(n)),
    }
}

/// Evaluates on the test set (or a run's validation images), each prediction averaged over
/// `tta` views (default: a run's own, or 2); prints tables, or JSON; draws the confusion matrix into `picture` (default:
/// `confusion.png` beside the model).
pub fn eval(
    args: &ModelArgs,
    picture: Option<&Path>,
    tta: Option<usize>,
    on: EvalSet,
) -> Result<()> {
    if let Some(tta) = tta {
        in_range("--tta", tta, 1, MAX_TTA)?;
    }
    model_exists(&args.model)?;
    // A run is judged as it judged itself.
    let tta = match (tta, args.model.is_dir()) {
        (Some(tta), _) => tta,
        (None, true) => Checkpoint::latest(&args.model)?.state.settings.config.tta,
        (None, false) => 2,
    };
    let picture = picture.map_or_else(
        || model_dir(&args.model).join(CONFUSION_FILE),
        Path::to_path_buf,
    );
    let inputs = model_inputs(&args.model);
    let inputs: Vec<&Path> = inputs
        .iter()
        .map(PathBuf::as_path)
        .chain(args.arch.as_deref())
        .collect();
    check_output("--confusion", &picture, &inputs)?;
    let (mut model, mut data) = args.load()?;
    let (set, name) = match on {
        EvalSet::Test => (std::mem::take(&mut data.test), "test"),
        EvalSet::Validation => (held_out(&args.model, &mut data)?, "validation"),
    };
    note_data(&data, 0, None);
    let e = model.evaluate(&set, &tta_views(tta))?;
    let title = format!(
        "{}: confusion matrix on {} {name} images",
        args.model.display(),
        set.len()
    );
    pictures::draw_confusion(&picture, &e, &CLASSES, &title)?;
    eprintln!("confusion matrix drawn in {}", picture.display());
    if args.json {
        let per_class: serde_json::Map<String, serde_json::Value> = CLASSES
            .iter()
            .zip(e.per_class())
            .map(|(c, a)| (c.to_string(), a.into()))
            .collect();
        let doc = serde_json::json!({ "on": name, "views": tta, "accuracy": e.accuracy, "loss": e.loss, "examples": set.len(), "per_class_accuracy": per_class, "confusion": e.confusion, "classes": CLASSES });
        println!("{doc:#}");
        return Ok(());
    }
    println!(
        "{name} accuracy {:.2}% ({} images, {tta} views each), mean loss {:.4}\n",
        100.0 * e.accuracy,
        set.len(),
        e.loss
    );
    println!("{:<11} accuracy", "class");
    for (c, a) in CLASSES.iter().zip(e.per_class()) {
        println!("{c:<11} {:>7.1}%", 100.0 * a);
    }
    println!("\nconfusion matrix (rows: true class, columns: predicted)");
    print!("{:<11}", "");
    for c in CLASSES {
        print!("{:>6}", &c[..5.min(c.len())]);
    }
    println!();
    for (c, row) in CLASSES.iter().zip(&e.confusion) {
        print!("{c:<11}");
        row.iter().for_each(|v| print!("{v:>6}"));
        println!();
    }
    Ok(())
}

/// The seed's `test`: for each example, the one-hot label beside the output for every class.
pub fn test(args: &ModelArgs, start: usize, count: usize) -> Result<()> {
    if count == 0 {
        return Err(Error::Usage("--count must be at least 1".into()));
    }
    let (mut model, data) = args.load()?;
    let n = data.test.len();
    if start >= n {
        return Err(Error::Usage(format!(
            "--start {start} is past the {n} test images"
        )));
    }
    note_data(&data, 0, None);
    let indices: Vec<usize> = (start..start.saturating_add(count).min(n)).collect();
    let probs = model.probabilities(&data.test, &indices)?;
    if args.json {
        let rows: Vec<serde_json::Value> = indices
            .iter()
            .zip(probs.outer_iter())
            .map(|(&i, p)| serde_json::json!({ "index": i, "label": data.test.labels[i], "output": p.to_vec() }))
            .collect();
        println!(
            "{:#}",
            serde_json::json!({ "classes": CLASSES, "examples": rows })
        );
        return Ok(());
    }
    for (&i, p) in indices.iter().zip(probs.outer_iter()) {
        let label = usize::from(data.test.labels[i]);
        let predicted = crate::infer::argmax_row(&probs.view(), i - start);
        println!(
            "example {i}: {} (predicted {}{})",
            CLASSES[label],
            CLASSES[predicted],
            if predicted == label { "" } else { ", wrong" }
        );
        println!("  {:<11} label  output", "class");
        for (c, name) in CLASSES.iter().enumerate() {
            println!("  {name:<11} {:>5}  {:.4}", u8::from(c == label), p[c]);
        }
    }
    Ok(())
}

/// Draws the training curves of one run or several on one chart; returns the picture's path.
pub fn plot(runs: &[PathBuf], out: Option<&Path>) -> Result<PathBuf> {
    let mut read = Vec::new();
    for dir in runs {
        let checkpoint = Checkpoint::latest(dir)?;
        let history = checkpoint.history(dir)?;
        read.push((
            dir.display().to_string(),
            checkpoint.state.settings.config,
            history,
        ));
    }
    let path = match (out, runs) {
        (Some(p), _) => p.to_path_buf(),
        (None, [one]) => one.join(crate::run::CURVES_FILE),
        (None, _) => PathBuf::from("compare.png"),
    };
    let inputs: Vec<PathBuf> = runs.iter().flat_map(|r| model_inputs(r)).collect();
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    check_output("--out", &path, &inputs)?;
    let curves: Vec<(String, RunCurves)> = read
        .iter()
        .map(|(name, config, history): &(String, TrainConfig, _)| {
            (name.clone(), RunCurves { config, history })
        })
        .collect();
    pictures::draw_curves(&path, &curves)?;
    println!(
        "curves of {} run(s) drawn in {}",
        runs.len(),
        path.display()
    );
    Ok(path)
}

pub use bench::{BenchOutputs, bench};

mod bench;
