//! `network`: train, evaluate and test the seed's CIFAR-10 network.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};
use network::commands::{self, DataArgs, TrainArgs};
use network::model::Init;
use network::optim::Schedule;
use network::train::TrainConfig;

/// The default data directory, relative to the workspace root.
const DEFAULT_DATA: &str = "data/cifar-10-batches-bin";

#[derive(Parser)]
#[command(
    name = "network",
    about = "Train, evaluate and test the seed's CIFAR-10 convolutional network",
    long_about = "Train, evaluate and test the seed's CIFAR-10 convolutional network.\n\n\
        With no subcommand it trains (see `network train --help`). Data: the CIFAR-10 binary files \
        in --data (default data/cifar-10-batches-bin at the workspace root; scripts/fetch_cifar10.sh \
        downloads them); where that default directory is absent, a small embedded sample.",
    args_conflicts_with_subcommands = true,
    allow_negative_numbers = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainFlags,
    /// Instruction set of the direct kernels: avx512, avx2 or portable (default: KERNELS_ISA,
    /// else the best this CPU supports).
    #[arg(long, global = true, value_name = "LEVEL")]
    isa: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Train the network (the default), saving a checkpoint in --out after every epoch.
    Train(TrainFlags),
    /// Test accuracy, per-class accuracy and the confusion matrix of a trained model; draws the
    /// matrix as a picture too.
    Eval {
        #[command(flatten)]
        model: ModelFlags,
        /// Where to draw the confusion matrix (default: confusion.png beside the model).
        #[arg(long, value_name = "FILE.png")]
        confusion: Option<PathBuf>,
    },
    /// The seed's per-example table: each test image's label beside the output for every class.
    Test {
        #[command(flatten)]
        model: ModelFlags,
        /// First test image.
        #[arg(long, default_value_t = 0)]
        start: usize,
        /// How many test images.
        #[arg(long, default_value_t = 10)]
        count: usize,
    },
    /// Training and inference speed (examples/s) at several batch sizes and thread counts, beside
    /// the sgemm peak; with --peer, the ratios to the PyTorch peer's figures.
    Bench {
        /// Batch sizes.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 5, 32, 128])]
        batches: Vec<usize>,
        /// Thread counts.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 2])]
        threads: Vec<usize>,
        /// Timed runs per figure (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Least seconds of one timed run.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        /// Kernel technique, or auto.
        #[arg(long, default_value = "auto")]
        technique: String,
        /// Write the figures as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Instead of the whole-trainer figures: each layer's time in one worker at this batch.
        #[arg(long, value_name = "BATCH")]
        profile: Option<usize>,
        /// The PyTorch peer's figures (scripts/torch_peer.py --json): print the ratios.
        #[arg(long, value_name = "FILE")]
        peer: Option<PathBuf>,
        /// Write the markdown report here (needs --peer).
        #[arg(long, value_name = "FILE.md")]
        report: Option<PathBuf>,
        /// A finished full-data training run: the report states its epoch time and memory.
        #[arg(long, value_name = "RUN")]
        run: Option<PathBuf>,
    },
    /// Draw the training curves of one run, or of several on one chart to compare them.
    Plot {
        /// Run directories.
        #[arg(required = true, value_name = "RUN")]
        runs: Vec<PathBuf>,
        /// The picture (default: curves.png in the run for one run, compare.png for several).
        #[arg(long, value_name = "FILE.png")]
        out: Option<PathBuf>,
    },
    /// What the network looks at: for each image, its occlusion map and its responsibility map.
    Visualize {
        #[command(flatten)]
        model: ModelFlags,
        /// Test-set images, by index.
        #[arg(long = "index", value_name = "N", num_args = 1..)]
        indices: Vec<usize>,
        /// Your own 32×32 images (PNG).
        #[arg(long = "image", value_name = "FILE.png", num_args = 1..)]
        images: Vec<PathBuf>,
        /// For --image: the class whose evidence to map (default: the predicted class).
        #[arg(long)]
        class: Option<String>,
        /// Side of the occluding square, in pixels.
        #[arg(long, default_value_t = 8)]
        patch: usize,
        /// Step between positions of the occluding square, in pixels.
        #[arg(long, default_value_t = 2)]
        stride: usize,
        /// Directory of the pictures (default: maps/ beside the model).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Args)]
struct DataFlag {
    /// Directory of the CIFAR-10 binary files (data_batch_1.bin … data_batch_5.bin, test_batch.bin).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

impl DataFlag {
    fn resolve(&self) -> DataArgs {
        match &self.data {
            Some(dir) => DataArgs {
                dir: dir.clone(),
                is_default: false,
            },
            None => DataArgs {
                dir: workspace_root().join(DEFAULT_DATA),
                is_default: true,
            },
        }
    }
}

fn workspace_root() -> PathBuf {
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir).to_path_buf()
}

#[derive(Args)]
struct TrainFlags {
    #[command(flatten)]
    data: DataFlag,
    /// Architecture: a JSON layer list (the seed network if absent).
    #[arg(long, value_name = "FILE")]
    arch: Option<PathBuf>,
    /// Passes over the training set.
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    /// Examples per optimiser step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Learning rate α.
    #[arg(long, default_value_t = 0.02)]
    lr: f32,
    /// Momentum η.
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,
    /// Weight decay ε (on weights, not biases).
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f32,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = Schedule::Cosine)]
    schedule: Schedule,
    /// Seed of every random draw: initialisation, order, augmentation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Kernel technique: naive, per-output, axis-reduce, im2col, direct, or auto (the fastest per layer
    /// and pass, measured at start-up).
    #[arg(long, default_value = "auto")]
    technique: String,
    /// Train without random flips and shifts.
    #[arg(long)]
    no_augment: bool,
    /// Weight initialisation.
    #[arg(long, value_enum, default_value_t = Init::He)]
    init_scheme: Init,
    /// Run directory for checkpoints and history (default: runs/1, runs/2, … the first that
    /// does not exist, at the workspace root). A fresh run never writes into an existing run.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in this directory where it stopped (its own settings are used).
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Start from these weights (a safetensors file with PyTorch's state_dict names).
    #[arg(long, value_name = "FILE")]
    init: Option<PathBuf>,
    /// Stop after this many optimiser steps in all (a checkpoint is saved).
    #[arg(long)]
    max_steps: Option<u64>,
}

#[derive(Args)]
struct ModelFlags {
    /// A run directory, or a model.safetensors file (then give --arch if it is not the seed's).
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// Architecture of a bare safetensors file.
    #[arg(long, value_name = "FILE")]
    arch: Option<PathBuf>,
    #[command(flatten)]
    data: DataFlag,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn run(cli: Cli) -> network::Result<()> {
    network::bench::select_isa(cli.isa.as_deref())?;
    match cli.command {
        None => train(cli.train),
        Some(Command::Train(flags)) => train(flags),
        Some(Command::Eval {
            model: m,
            confusion,
        }) => commands::eval(
            &m.model,
            m.arch.as_deref(),
            &m.data.resolve(),
            m.threads.unwrap_or_else(cores),
            m.json,
            confusion.as_deref(),
        ),
        Some(Command::Bench {
            batches,
            threads,
            runs,
            seconds,
            technique,
            json,
            profile,
            peer,
            report,
            run,
        }) => commands::bench(
            &network::bench::BenchConfig {
                batches,
                threads,
                runs,
                seconds,
                technique,
            },
            &commands::BenchOutputs {
                json: json.as_deref(),
                peer: peer.as_deref(),
                report: report.as_deref(),
                run: run.as_deref(),
            },
            profile,
        ),
        Some(Command::Plot { runs, out }) => commands::plot(&runs, out.as_deref()).map(drop),
        Some(Command::Visualize {
            model: m,
            indices,
            images,
            class,
            patch,
            stride,
            out,
        }) => commands::visualize(&commands::VisualizeArgs {
            model: m.model,
            arch: m.arch,
            data: m.data.resolve(),
            indices,
            images,
            class,
            patch,
            stride,
            out,
            threads: m.threads.unwrap_or_else(cores),
        })
        .map(drop),
        Some(Command::Test {
            model: m,
            start,
            count,
        }) => commands::test(
            &m.model,
            m.arch.as_deref(),
            &m.data.resolve(),
            m.threads.unwrap_or_else(cores),
            start,
            count,
            m.json,
        ),
    }
}

fn train(f: TrainFlags) -> network::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // Ctrl-C: finish the current step, save, say how to resume; a second Ctrl-C quits at once.
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step…");
    });
    let config = TrainConfig {
        epochs: f.epochs,
        batch_size: f.batch_size,
        lr: f.lr,
        momentum: f.momentum,
        weight_decay: f.weight_decay,
        schedule: f.schedule,
        seed: f.seed,
        threads: f.threads.unwrap_or_else(cores),
        technique: f.technique,
        augment: !f.no_augment,
        init: f.init_scheme,
    };
    let args = TrainArgs {
        data: f.data.resolve(),
        config,
        arch: f.arch,
        out: f.out.unwrap_or_else(next_run_dir),
        resume: f.resume,
        init_from: f.init,
        max_steps: f.max_steps,
    };
    commands::train(args, stop).map(drop)
}

/// `runs/N` at the workspace root, for the first N from 1 that does not exist.
fn next_run_dir() -> PathBuf {
    let runs = workspace_root().join("runs");
    (1..)
        .map(|n| runs.join(n.to_string()))
        .find(|p| !p.exists())
        .expect("some number is free")
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
