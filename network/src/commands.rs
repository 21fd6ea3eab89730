//! The commands behind the CLI: train, eval, test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::arch::{self, LayerSpec};
use crate::batch::{Augment, Normalizer, draw_augments, epoch_order};
use crate::data::{CLASSES, Cifar10, Source};
use crate::error::{Error, Result};
use crate::model::Network;
use crate::pictures::{self, Map};
use crate::saliency::{occlusion_map, responsibility_map};
use crate::train::{
    EpochRecord, History, PlanNames, State, StepRecord, TrainConfig, Trainer, check_step,
    peak_rss_mb, read_state, total_steps,
};

/// Steps between redraws of the progress message.
const PROGRESS_EVERY: usize = 16;

/// The training curves' file in a run directory.
pub const CURVES_FILE: &str = "curves.png";
/// The confusion matrix's file, beside the model.
pub const CONFUSION_FILE: &str = "confusion.png";

/// Where the data is and whether the embedded sample may stand in for it.
pub struct DataArgs {
    /// The directory of CIFAR-10 binary files.
    pub dir: PathBuf,
    /// True when `dir` is the default: then a missing directory falls back to the sample.
    pub is_default: bool,
}

impl DataArgs {
    /// Loads the data, saying on stdout where it came from.
    pub fn load(&self) -> Result<Cifar10> {
        let data = Cifar10::load_or_sample(&self.dir, self.is_default)?;
        match &data.source {
            Source::Sample => println!(
                "{} not found: using the embedded sample ({} training, {} test images). For the full \
                 CIFAR-10, run scripts/fetch_cifar10.sh or pass --data DIR.",
                self.dir.display(),
                data.train.len(),
                data.test.len()
            ),
            Source::Dir(dir) => println!(
                "data: {} ({} training, {} test images)",
                dir.display(),
                data.train.len(),
                data.test.len()
            ),
        }
        Ok(data)
    }
}

/// What `train` was asked to do.
pub struct TrainArgs {
    /// Data.
    pub data: DataArgs,
    /// Hyper-parameters (ignored when resuming: the run's own are used).
    pub config: TrainConfig,
    /// An architecture file; the seed network if none.
    pub arch: Option<PathBuf>,
    /// The run directory.
    pub out: PathBuf,
    /// A run directory to continue.
    pub resume: Option<PathBuf>,
    /// A safetensors file to start from.
    pub init_from: Option<PathBuf>,
    /// Stop after this many optimiser steps in all.
    pub max_steps: Option<u64>,
}

/// Reads an architecture file, or the seed network.
pub fn read_arch(path: Option<&Path>) -> Result<Vec<LayerSpec>> {
    match path {
        None => Ok(arch::seed_network()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Error::Arch(format!("cannot read {}: {e}", p.display())))?;
            arch::parse(&text, &p.display().to_string())
        }
    }
}

/// Trains, saving a checkpoint after every epoch; returns the final state.
pub fn train(args: TrainArgs, stop: Arc<AtomicBool>) -> Result<State> {
    let data = args.data.load()?;
    let (mut trainer, mut state, out) = match &args.resume {
        Some(dir) => {
            let state = read_state(dir)?;
            let net = Network::new(
                &state.arch,
                state.config.init,
                &mut StdRng::seed_from_u64(state.config.seed),
            )?;
            let plan = state.plan.to_plan(&net)?;
            let mut trainer = Trainer::with_plan(
                net,
                state.normalizer.clone(),
                state.config.clone(),
                Some(plan),
            )?;
            let model = dir.join("model.safetensors");
            check_step(&trainer.load_weights(&model)?, &state, &model)?;
            let optimizer = dir.join("optimizer.safetensors");
            check_step(&trainer.load_momentum(&optimizer)?, &state, &optimizer)?;
            println!(
                "resuming {} at epoch {}, step {}",
                dir.display(),
                state.epoch + 1,
                state.step
            );
            (trainer, state, dir.clone())
        }
        None => {
            args.config.validate()?;
            if args.out.join("state.json").exists() {
                return Err(Error::Usage(format!(
                    "{} already holds a run: continue it with --resume {}, or choose another --out",
                    args.out.display(),
                    args.out.display()
                )));
            }
            let spec = read_arch(args.arch.as_deref())?;
            let net = Network::new(
                &spec,
                args.config.init,
                &mut StdRng::seed_from_u64(args.config.seed),
            )?;
            let normalizer = Normalizer::fit(&data.train);
            let mut trainer = Trainer::new(net, normalizer.clone(), args.config.clone())?;
            if let Some(path) = &args.init_from {
                trainer.load_weights(path)?;
                println!("weights from {}", path.display());
            }
            let state = State {
                arch: spec,
                config: args.config.clone(),
                normalizer,
                epoch: 0,
                step_in_epoch: 0,
                step: 0,
                plan: PlanNames::from(&trainer.plan),
                history: History::default(),
            };
            (trainer, state, args.out.clone())
        }
    };
    if trainer.net.classes() != CLASSES.len() {
        return Err(Error::Arch(format!(
            "the network has {} outputs but CIFAR-10 has {} classes",
            trainer.net.classes(),
            CLASSES.len()
        )));
    }
    print_plan(&trainer);
    state.plan = PlanNames::from(&trainer.plan);
    let config = state.config.clone();
    let train_len = data.train.len();
    let steps_per_epoch = train_len.div_ceil(config.batch_size);
    let horizon = total_steps(&config, train_len);
    let run_start = Instant::now();
    let mut trained = 0usize;
    let mut augment_buf = vec![Augment::default(); config.batch_size];
    'epochs: while state.epoch < config.epochs {
        let order = epoch_order(config.seed, state.epoch as u64, train_len);
        let bar = ProgressBar::new(steps_per_epoch as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg}")
                .expect("valid template"),
        );
        bar.set_prefix(format!("{}/{}", state.epoch + 1, config.epochs));
        bar.set_position(state.step_in_epoch as u64);
        let epoch_start = Instant::now();
        let (mut loss_sum, mut right, mut seen) = (0.0f64, 0usize, 0usize);
        while state.step_in_epoch < steps_per_epoch {
            if stop.load(Ordering::SeqCst) || args.max_steps.is_some_and(|m| state.step >= m) {
                bar.abandon();
                break 'epochs;
            }
            let begin = state.step_in_epoch * config.batch_size;
            let indices = &order[begin..(begin + config.batch_size).min(train_len)];
            let augments = if config.augment {
                let drawn = &mut augment_buf[..indices.len()];
                draw_augments(config.seed, state.step, drawn);
                &*drawn
            } else {
                &[]
            };
            let factor = config.schedule.factor(state.step, horizon);
            let (loss, correct) = trainer.step(&data.train, indices, augments, factor)?;
            if !loss.is_finite() {
                bar.abandon();
                return Err(Error::Diverged(format!(
                    "the loss became {loss} at step {} (epoch {}): training diverged; try a lower --lr than {}. {}",
                    state.step + 1,
                    state.epoch + 1,
                    config.lr,
                    if state.step > 0 && out.join("state.json").exists() {
                        format!("The last good checkpoint in {} is kept.", out.display())
                    } else {
                        "Nothing was saved.".into()
                    }
                )));
            }
            state.step += 1;
            state.step_in_epoch += 1;
            let n = indices.len();
            loss_sum += f64::from(loss) * n as f64;
            right += correct;
            seen += n;
            trained += n;
            state.history.steps.push(StepRecord {
                step: state.step,
                epoch: state.epoch + 1,
                loss,
                accuracy: correct as f32 / n as f32,
                examples: n,
            });
            bar.inc(1);
            // The message is a formatted string: redrawn every few steps, not every step.
            if state.step_in_epoch % PROGRESS_EVERY == 0 {
                bar.set_message(format!(
                    "loss {:.3}  acc {:.1}%  {:.0} ex/s",
                    loss_sum / seen as f64,
                    100.0 * right as f32 / seen as f32,
                    seen as f64 / epoch_start.elapsed().as_secs_f64()
                ));
            }
        }
        bar.finish_and_clear();
        let seconds = epoch_start.elapsed().as_secs_f64();
        let test = trainer.evaluate(&data.test)?;
        let (train_loss, train_accuracy) = state.history.epoch_means(state.epoch + 1);
        let record = EpochRecord {
            epoch: state.epoch + 1,
            train_loss,
            train_accuracy,
            test_accuracy: test.accuracy,
            seconds,
            examples_per_second: seen as f64 / seconds,
            peak_rss_mb: peak_rss_mb(),
        };
        println!(
            "epoch {}/{}: loss {:.4}, train accuracy {:.1}%, test accuracy {:.2}%, {:.1} s ({:.0} examples/s)",
            record.epoch,
            config.epochs,
            record.train_loss,
            100.0 * record.train_accuracy,
            100.0 * record.test_accuracy,
            seconds,
            record.examples_per_second
        );
        state.history.epochs.push(record);
        state.epoch += 1;
        state.step_in_epoch = 0;
        trainer.save(&out, &state)?;
        draw_run_curves(&out, &state);
    }
    let interrupted = state.epoch < config.epochs;
    if interrupted {
        trainer.save(&out, &state)?;
        draw_run_curves(&out, &state);
        let why = if stop.load(Ordering::SeqCst) {
            "interrupted"
        } else {
            "stopped at --max-steps"
        };
        println!(
            "{why} at step {} (epoch {}); checkpoint saved in {}. Resume with:\n  cargo run -p network --release -- train --resume {}",
            state.step,
            state.epoch + 1,
            out.display(),
            out.display()
        );
    }
    let wall = run_start.elapsed().as_secs_f64();
    let accuracy = match state.history.epochs.last() {
        Some(e) => format!(
            "test accuracy {:.2}% after {} epochs",
            100.0 * e.test_accuracy,
            state.history.epochs.len()
        ),
        None => "no epoch completed yet".to_string(),
    };
    let memory = peak_rss_mb().map_or(String::new(), |mb| format!(", peak memory {mb:.0} MB"));
    println!(
        "done: {accuracy}, {:.1} s of wall time, {:.0} training examples/s{memory}; run in {}",
        wall,
        trained as f64 / wall,
        out.display()
    );
    Ok(state)
}

/// Redraws `curves.png` in the run directory. A picture that cannot be drawn is reported and
/// training goes on: the checkpoint, already saved, is what matters.
fn draw_run_curves(out: &Path, state: &State) {
    let path = out.join(CURVES_FILE);
    if let Err(e) = pictures::draw_curves(&path, &[(out.display().to_string(), state)]) {
        eprintln!("warning: {e}");
    }
}

fn print_plan(trainer: &Trainer) {
    println!(
        "techniques ({}):",
        if trainer.config.technique == "auto" {
            "fastest measured per layer and pass"
        } else {
            "as asked"
        }
    );
    for (i, layer) in trainer.net.layers.iter().enumerate() {
        println!(
            "  {:>2} {:<8} forward {:<12} backward {}",
            i + 1,
            layer.name(),
            trainer.plan.forward[i].name(),
            trainer.plan.backward[i].name()
        );
    }
    println!("     softmax  {}", trainer.plan.softmax.name());
}

/// A trained model ready to evaluate: from a run directory, or a safetensors file and an
/// architecture.
pub fn load_model(model: &Path, arch: Option<&Path>, threads: usize) -> Result<Trainer> {
    let (spec, file, normalizer) = if model.is_dir() {
        let state = read_state(model)?;
        (
            state.arch,
            model.join("model.safetensors"),
            Some(state.normalizer),
        )
    } else {
        (read_arch(arch)?, model.to_path_buf(), None)
    };
    if !file.exists() {
        return Err(Error::Checkpoint(format!(
            "{} does not exist",
            file.display()
        )));
    }
    let net = Network::new(&spec, crate::model::Init::He, &mut StdRng::seed_from_u64(0))?;
    let config = TrainConfig {
        epochs: 1,
        batch_size: 100 * threads,
        lr: 0.01,
        momentum: 0.0,
        weight_decay: 0.0,
        schedule: crate::optim::Schedule::Constant,
        seed: 0,
        threads,
        technique: "im2col".into(),
        augment: false,
        init: crate::model::Init::He,
    };
    let placeholder = Normalizer {
        mean: [0.0; 3],
        std: [1.0; 3],
    };
    let mut trainer = Trainer::new(net, placeholder, config)?;
    let info = trainer.load_weights(&file)?;
    trainer.normalizer = match (normalizer, info.and_then(|i| i.normalizer)) {
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => {
            return Err(Error::Checkpoint(format!(
                "{} carries no input normalisation (metadata \"network\"): it was not saved by this trainer",
                file.display()
            )));
        }
    };
    Ok(trainer)
}

/// The directory a model belongs to: the run directory itself, or the file's directory.
fn model_dir(model: &Path) -> PathBuf {
    if model.is_dir() {
        model.to_path_buf()
    } else {
        model
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }
}

/// Evaluates on the test set; prints tables, or JSON; draws the confusion matrix into
/// `picture` (default: `confusion.png` beside the model).
pub fn eval(
    model: &Path,
    arch: Option<&Path>,
    data: &DataArgs,
    threads: usize,
    json: bool,
    picture: Option<&Path>,
) -> Result<()> {
    let mut trainer = load_model(model, arch, threads)?;
    let data = data.load()?;
    let e = trainer.evaluate(&data.test)?;
    let picture = picture.map_or_else(|| model_dir(model).join(CONFUSION_FILE), Path::to_path_buf);
    let title = format!(
        "{}: confusion matrix on {} test images",
        model.display(),
        data.test.len()
    );
    pictures::draw_confusion(&picture, &e, &CLASSES, &title)?;
    if !json {
        println!("confusion matrix drawn in {}", picture.display());
    }
    if json {
        let per_class: serde_json::Map<String, serde_json::Value> = CLASSES
            .iter()
            .zip(e.per_class())
            .map(|(c, a)| (c.to_string(), a.into()))
            .collect();
        let doc = serde_json::json!({ "accuracy": e.accuracy, "loss": e.loss, "examples": data.test.len(), "per_class_accuracy": per_class, "confusion": e.confusion, "classes": CLASSES });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialisable")
        );
        return Ok(());
    }
    println!(
        "test accuracy {:.2}% ({} images), mean loss {:.4}\n",
        100.0 * e.accuracy,
        data.test.len(),
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
        for v in row {
            print!("{v:>6}");
        }
        println!();
    }
    Ok(())
}

/// The seed's `test`: for each example, the one-hot label beside the output for every class.
pub fn test(
    model: &Path,
    arch: Option<&Path>,
    data: &DataArgs,
    threads: usize,
    start: usize,
    count: usize,
    json: bool,
) -> Result<()> {
    let mut trainer = load_model(model, arch, threads)?;
    let data = data.load()?;
    if start >= data.test.len() {
        return Err(Error::Usage(format!(
            "--start {start} is past the {} test images",
            data.test.len()
        )));
    }
    let indices: Vec<usize> = (start..(start + count).min(data.test.len())).collect();
    let probs = trainer.probabilities(&data.test, &indices)?;
    if json {
        let rows: Vec<serde_json::Value> = indices
            .iter()
            .zip(probs.outer_iter())
            .map(|(&i, p)| serde_json::json!({ "index": i, "label": data.test.labels[i], "output": p.to_vec() }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "classes": CLASSES, "examples": rows })
            )
            .expect("serialisable")
        );
        return Ok(());
    }
    for (&i, p) in indices.iter().zip(probs.outer_iter()) {
        let label = usize::from(data.test.labels[i]);
        let predicted = p
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (c, &v)| if v > b.1 { (c, v) } else { b })
            .0;
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

/// Draws the training curves of one run or several on one chart.
pub fn plot(runs: &[PathBuf], out: Option<&Path>) -> Result<PathBuf> {
    let states = runs
        .iter()
        .map(|dir| read_state(dir))
        .collect::<Result<Vec<State>>>()?;
    let labelled: Vec<(String, &State)> = runs
        .iter()
        .zip(&states)
        .map(|(dir, s)| (dir.display().to_string(), s))
        .collect();
    let path = match (out, runs) {
        (Some(p), _) => p.to_path_buf(),
        (None, [one]) => one.join(CURVES_FILE),
        (None, _) => PathBuf::from("compare.png"),
    };
    pictures::draw_curves(&path, &labelled)?;
    println!(
        "curves of {} run(s) drawn in {}",
        runs.len(),
        path.display()
    );
    Ok(path)
}

/// What `visualize` draws maps of.
pub struct VisualizeArgs {
    /// A run directory or a model file.
    pub model: PathBuf,
    /// The architecture of a bare model file.
    pub arch: Option<PathBuf>,
    /// Data, for `indices`.
    pub data: DataArgs,
    /// Test-set images.
    pub indices: Vec<usize>,
    /// The user's own 32×32 PNG images.
    pub images: Vec<PathBuf>,
    /// For `images`: the class whose evidence is mapped (default: the predicted one).
    pub class: Option<String>,
    /// Side of the occluding square.
    pub patch: usize,
    /// Step between occluding squares.
    pub stride: usize,
    /// Output directory (default: `maps/` beside the model).
    pub out: Option<PathBuf>,
    /// Worker threads.
    pub threads: usize,
}

/// One image to map: its bytes `[3, 32, 32]`, its true class if known, a name for the title
/// and a file stem.
struct Subject {
    bytes: ndarray::Array3<u8>,
    truth: Option<usize>,
    name: String,
    stem: String,
}

/// For each image, a PNG with the image, its occlusion map and its responsibility map; returns
/// the files written.
pub fn visualize(args: &VisualizeArgs) -> Result<Vec<PathBuf>> {
    use crate::data::{CHANNELS, IMAGE_BYTES, SIDE};
    if args.indices.is_empty() && args.images.is_empty() {
        return Err(Error::Usage(
            "give test images with --index N or your own with --image FILE.png".into(),
        ));
    }
    let class = match &args.class {
        None => None,
        Some(name) => Some(CLASSES.iter().position(|c| c == name).ok_or_else(|| {
            Error::Usage(format!(
                "--class {name} is not a CIFAR-10 class ({})",
                CLASSES.join(", ")
            ))
        })?),
    };
    let mut trainer = load_model(&args.model, args.arch.as_deref(), args.threads)?;
    if trainer.net.input_shape() != [CHANNELS, SIDE, SIDE] || trainer.net.classes() != CLASSES.len()
    {
        return Err(Error::Arch(format!(
            "visualize needs a network from 3×32×32 images to the 10 CIFAR-10 classes, not {:?} → {}",
            trainer.net.input_shape(),
            trainer.net.classes()
        )));
    }
    let mut subjects = Vec::new();
    if !args.indices.is_empty() {
        let data = args.data.load()?;
        for &i in &args.indices {
            if i >= data.test.len() {
                return Err(Error::Usage(format!(
                    "--index {i} is past the {} test images",
                    data.test.len()
                )));
            }
            subjects.push(Subject {
                bytes: ndarray::Array3::from_shape_vec(
                    (CHANNELS, SIDE, SIDE),
                    data.test.image(i).to_vec(),
                )
                .expect("one image"),
                truth: Some(usize::from(data.test.labels[i])),
                name: format!("test image {i}"),
                stem: format!("test-{i}"),
            });
        }
    }
    for path in &args.images {
        let picture = image::open(path)
            .map_err(|e| Error::Data(format!("{}: cannot read the image: {e}", path.display())))?
            .to_rgb8();
        if picture.dimensions() != (SIDE as u32, SIDE as u32) {
            let (w, h) = picture.dimensions();
            return Err(Error::Data(format!(
                "{} is {w}×{h} pixels; the network takes {SIDE}×{SIDE} images",
                path.display()
            )));
        }
        let bytes = ndarray::Array3::from_shape_fn((CHANNELS, SIDE, SIDE), |(c, r, q)| {
            picture.get_pixel(q as u32, r as u32)[c]
        });
        subjects.push(Subject {
            bytes,
            truth: class,
            name: path.display().to_string(),
            stem: path
                .file_stem()
                .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned()),
        });
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| model_dir(&args.model).join("maps"));
    std::fs::create_dir_all(&out)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", out.display())))?;
    let mut written = Vec::new();
    for subject in subjects {
        let mut input = ndarray::Array3::zeros((CHANNELS, SIDE, SIDE));
        let flat = subject.bytes.as_slice().expect("standard layout");
        debug_assert_eq!(flat.len(), IMAGE_BYTES);
        trainer
            .normalizer
            .fill(flat, false, (0, 0), input.view_mut());
        let probs = trainer.probabilities_of(input.view().insert_axis(ndarray::Axis(0)))?;
        let mut ranked: Vec<usize> = (0..CLASSES.len()).collect();
        ranked.sort_by(|&a, &b| probs[[0, b]].total_cmp(&probs[[0, a]]));
        let target = subject.truth.unwrap_or(ranked[0]);
        let occlusion = occlusion_map(&mut trainer, input.view(), target, args.patch, args.stride)?;
        let responsibility = responsibility_map(&mut trainer, input.view(), target)?;
        // Low probability with the patch in place marks evidence: drawn hot.
        let (low, high) = occlusion.fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
        let occlusion_heat = occlusion.mapv(|p| {
            if high > low {
                (high - p) / (high - low)
            } else {
                0.0
            }
        });
        let top3 = ranked[..3]
            .iter()
            .map(|&c| format!("{} {:.1}%", CLASSES[c], 100.0 * probs[[0, c]]))
            .collect::<Vec<_>>()
            .join(", ");
        let what = match subject.truth {
            Some(t) => format!("true class {}", CLASSES[t]),
            None => format!("maps of the predicted class {}", CLASSES[target]),
        };
        let title = format!("{}, {what} · predicted: {top3}", subject.name);
        let name = CLASSES[target];
        let maps = [
            Map {
                heat: occlusion_heat.view(),
                caption: format!(
                    "occlusion: p({name}) with a {0}×{0} mean-colour patch here",
                    args.patch
                ),
                ends: (format!("p = {high:.2}"), format!("p = {low:.2}")),
            },
            Map {
                heat: responsibility.view(),
                caption: format!("responsibility: |∂ score({name}) / ∂ pixel|"),
                ends: ("0".into(), "max".into()),
            },
        ];
        let path = out.join(format!("{}.png", subject.stem));
        pictures::draw_maps(&path, subject.bytes.view(), &title, &maps)?;
        println!("{title} → {}", path.display());
        written.push(path);
    }
    Ok(written)
}

/// Where `network bench` writes and what it compares with.
pub struct BenchOutputs<'a> {
    /// Our figures as JSON.
    pub json: Option<&'a Path>,
    /// The PyTorch peer's JSON (`scripts/torch_peer.py --json`).
    pub peer: Option<&'a Path>,
    /// The markdown report to write (needs `peer`).
    pub report: Option<&'a Path>,
    /// A finished full-data run whose epoch time and memory the report states.
    pub run: Option<&'a Path>,
}

/// Per-worker batch of the report's profile: batch 32 shared by 2 threads.
const PROFILE_BATCH: usize = 16;

/// `network bench`: the whole-trainer figures, or with `profile` the per-layer profile; with a
/// peer's figures, the ratios, and the report.
pub fn bench(
    config: &crate::bench::BenchConfig,
    out: &BenchOutputs,
    profile: Option<usize>,
) -> Result<()> {
    if let Some(batch) = profile {
        let rows = crate::bench::profile(batch, &config.technique, config.runs)?;
        let total: f64 = rows.iter().map(|r| r.3).sum();
        println!("one worker, batch {batch}: {:.3} ms per step", total * 1e3);
        for (layer, pass, technique, seconds) in rows {
            println!(
                "  {layer:<10} {pass:<8} {technique:<12} {:>9.1} µs {:>5.1}%",
                seconds * 1e6,
                100.0 * seconds / total
            );
        }
        return Ok(());
    }
    // Every input is read before minutes of measuring.
    let peer = out.peer.map(crate::bench::load).transpose()?;
    let run = out.run.map(read_state).transpose()?;
    if out.report.is_some() && peer.is_none() {
        return Err(Error::Usage(
            "--report needs --peer FILE, the PyTorch peer's figures (scripts/torch_peer.py --json FILE)".into(),
        ));
    }
    let ours = crate::bench::run(config)?;
    if let Some(path) = out.json {
        crate::bench::save(&ours, path)?;
    }
    let Some(peer) = peer else {
        return Ok(());
    };
    let rows = crate::bench::profile(PROFILE_BATCH, &config.technique, config.runs.max(15))?;
    let figures = run
        .as_ref()
        .zip(out.run)
        .map(|(state, dir)| crate::bench::RunFigures {
            dir: dir.display().to_string(),
            state,
        });
    let md = crate::bench::markdown(&ours, &peer, config, &rows, PROFILE_BATCH, figures);
    println!("\n{md}");
    if let Some(path) = out.report {
        crate::checkpoint::write_atomic(path, md.as_bytes())?;
        println!("report written to {}", path.display());
    }
    Ok(())
}
