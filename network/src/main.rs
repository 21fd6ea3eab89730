//! `network`: train, evaluate and test the seed's CIFAR-10 network. This file parses the
//! command line and hands each command to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use network::commands::{self, EvalSet, ModelArgs, TrainArgs, VisualizeArgs};
use network::config::{
    LrScaling, TechniqueChoice, TrainConfig, Validation, cores, parse_bytes, parse_duration,
};
use network::disk::Fault;
use network::model::Init;
use network::optim::Schedule;
use network::run::{NewRun, RunOptions};
use network::serve::ServeOptions;
use network::sizing::TimeBudget;

#[derive(Parser)]
#[command(
    name = "network",
    about = "Train, evaluate and test the seed's CIFAR-10 convolutional network",
    long_about = "Train, evaluate and test the seed's CIFAR-10 convolutional network.\n\n\
        With no subcommand it trains (see `network train --help`). Data: the CIFAR-10 binary files \
        in --data (default: $NETWORK_DATA, else data/cifar-10-batches-bin in the current \
        directory; scripts/fetch_cifar10.sh downloads them); where that default directory is \
        absent, a small embedded sample. New runs go to runs/N in the current directory (or \
        under $NETWORK_RUNS).",
    override_usage = "network [OPTIONS]\n       network [--isa <LEVEL>] <COMMAND>",
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
    /// Train the network (the default), saving a checkpoint in the run directory after every
    /// epoch.
    #[command(allow_negative_numbers = true)]
    Train(TrainFlags),
    /// Test accuracy, per-class accuracy and the confusion matrix of a trained model; draws the
    /// matrix as a picture too.
    #[command(allow_negative_numbers = true)]
    Eval {
        #[command(flatten)]
        model: ModelFlags,
        /// Where to draw the confusion matrix (default: confusion.png beside the model).
        #[arg(long, value_name = "FILE.png")]
        confusion: Option<PathBuf>,
        /// Views of each image averaged: 1 the image, 2 and its mirror, up to 50 with shifted
        /// crops [default: a run's own --tta; 2 for a bare model file].
        #[arg(long, value_parser = whole)]
        tta: Option<usize>,
        /// The images to judge on: the test set, or the validation images a run held out.
        #[arg(long, value_enum, default_value_t = EvalSet::Test)]
        on: EvalSet,
    },
    /// The seed's per-example table: each test image's label beside the output for every class.
    #[command(allow_negative_numbers = true)]
    Test {
        #[command(flatten)]
        model: ModelFlags,
        /// First test image.
        #[arg(long, default_value_t = 0, value_parser = whole)]
        start: usize,
        /// How many test images.
        #[arg(long, default_value_t = 10, value_parser = whole)]
        count: usize,
    },
    /// Training and inference speed (examples/s) at several batch sizes and thread counts, beside
    /// the sgemm peak; with --peer, the ratios to the PyTorch peer's figures.
    #[command(allow_negative_numbers = true)]
    Bench {
        /// Batch sizes, separated by spaces or commas.
        #[arg(long, value_delimiter = ',', num_args = 1.., default_values_t = [1, 5, 32, 128], value_parser = whole)]
        batches: Vec<usize>,
        /// Thread counts, separated by spaces or commas.
        #[arg(long, value_delimiter = ',', num_args = 1.., default_values_t = [1, 2], value_parser = whole)]
        threads: Vec<usize>,
        /// Timed runs per figure (the median is reported).
        #[arg(long, default_value_t = 5, value_parser = whole)]
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
        /// Instead of the whole-trainer figures: each layer's time in one worker at this batch
        /// (a convolution and its activation forward as one fused step).
        #[arg(long, value_name = "BATCH", value_parser = whole)]
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
        /// Refuse sizes that would need more memory than this (e.g. 4G, 512M) [default: half
        /// the machine's memory].
        #[arg(long, value_parser = parse_bytes)]
        memory_budget: Option<u64>,
    },
    /// Train every trial of a space of settings (a JSON file: {"base": {...}, "grid":
    /// {"lr": [0.01, 0.02], ...}, "samples": N}), one after another, each a run directory in
    /// --out; then the table and chart of validation accuracy per trial. Run it again to go on
    /// after an interruption.
    Sweep {
        /// The space's JSON file: TrainConfig field names (as in a run's state.json).
        #[arg(value_name = "SPACE.json")]
        space: PathBuf,
        /// The sweep's directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Directory of the CIFAR-10 binary files.
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Architecture: a JSON layer list (the seed network if absent).
        #[arg(long, value_name = "FILE")]
        arch: Option<PathBuf>,
        /// Print the results as one JSON document on stdout.
        #[arg(long)]
        json: bool,
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
    /// A live page of runs in the browser: curves, progress, predictions, maps and layers of
    /// test images and your own, the confusion matrix, the first layer's filters. Read-only.
    Serve {
        /// Run directories (default: every run under runs/ or $NETWORK_RUNS).
        #[arg(value_name = "RUN_DIR")]
        runs: Vec<PathBuf>,
        #[command(flatten)]
        page: PageFlags,
    },
    /// What the network looks at: for each image, its occlusion map and its responsibility map.
    #[command(allow_negative_numbers = true)]
    Visualize {
        #[command(flatten)]
        model: ModelFlags,
        /// Test-set images, by index.
        #[arg(long = "index", value_name = "N", num_args = 1.., value_parser = whole)]
        indices: Vec<usize>,
        /// Your own 32×32 images (PNG).
        #[arg(long = "image", value_name = "FILE.png", num_args = 1..)]
        images: Vec<PathBuf>,
        /// For --image: the class whose evidence to map (default: the predicted class).
        #[arg(long)]
        class: Option<String>,
        /// Side of the occluding square, in pixels.
        #[arg(long, default_value_t = 8, value_parser = whole)]
        patch: usize,
        /// Step between positions of the occluding square, in pixels.
        #[arg(long, default_value_t = 2, value_parser = whole)]
        stride: usize,
        /// Directory of the pictures (default: maps/ beside the model).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Instead of the maps: every layer's activations and gradients, and the filters
        /// (NAME-layers.png).
        #[arg(long)]
        layers: bool,
    },
}

/// A whole number on the command line: negative values parse, so that the message says what
/// range is allowed rather than that `-1` is an unknown flag.
fn whole(text: &str) -> Result<usize, String> {
    match text.trim().parse::<i128>() {
        Ok(v) if v < 0 => Err(format!("must be zero or more, not {v}")),
        Ok(v) => usize::try_from(v).map_err(|_| format!("{v} is too large")),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// As [`whole`], for a 64-bit count.
fn whole64(text: &str) -> Result<u64, String> {
    whole(text).map(|v| v as u64)
}

/// The hyper-parameter flags are options so that a resumed run can tell which were given: it
/// refuses them rather than ignore them. Their defaults are `TrainConfig::default()`'s.
#[derive(Args)]
struct TrainFlags {
    /// Directory of the CIFAR-10 binary files (data_batch_1.bin … data_batch_5.bin,
    /// test_batch.bin). A resumed run uses the data it recorded; --data must then hold the
    /// same files.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Architecture: a JSON layer list (the seed network if absent).
    #[arg(long, value_name = "FILE")]
    arch: Option<PathBuf>,
    /// Passes over the training set [default: 40].
    #[arg(long, value_parser = whole)]
    epochs: Option<usize>,
    /// Examples per optimiser step [default: 32].
    #[arg(long, value_parser = whole)]
    batch_size: Option<usize>,
    /// Learning rate α [default: 0.02].
    #[arg(long)]
    lr: Option<f32>,
    /// Momentum η [default: 0.9].
    #[arg(long)]
    momentum: Option<f32>,
    /// Weight decay ε, on weights, not biases [default: 0.001].
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Learning-rate schedule [default: cosine].
    #[arg(long, value_enum)]
    schedule: Option<Schedule>,
    /// Seed of every random draw: initialisation, order, augmentation [default: 1].
    #[arg(long, value_parser = whole64)]
    seed: Option<u64>,
    /// Worker threads [default: every core].
    #[arg(long, value_parser = whole)]
    threads: Option<usize>,
    /// Kernel technique: naive, per-output, axis-reduce, im2col, direct, or auto (the fastest
    /// per layer and pass, measured at start-up) [default: auto].
    #[arg(long)]
    technique: Option<TechniqueChoice>,
    /// Train without random flips and shifts.
    #[arg(long)]
    no_augment: bool,
    /// Largest random shift of a training image, in pixels, 0 to 8 [default: 1].
    #[arg(long, value_parser = whole)]
    shift: Option<usize>,
    /// Training images held out (after a fixed shuffle) for validation, or auto: a tenth
    /// [default: auto].
    #[arg(long, value_name = "N|auto")]
    validation: Option<Validation>,
    /// How the rate follows --batch-size: --lr is the rate of a batch of 32 [default: linear].
    #[arg(long, value_enum)]
    lr_scaling: Option<LrScaling>,
    /// Epochs of linear learning-rate warm-up from 0; a fraction is allowed [default: 1].
    #[arg(long)]
    warmup: Option<f32>,
    /// Label smoothing ε in [0, 1) [default: 0.1].
    #[arg(long)]
    label_smoothing: Option<f32>,
    /// Evaluate, and save as the model, an exponential moving average of the weights with this
    /// time constant in epochs (the trained weights are saved beside it, for resuming); 0: none
    /// [default: 0].
    #[arg(long, value_name = "EPOCHS")]
    ema: Option<f32>,
    /// Views of each image averaged by the final evaluation: 1 the image, 2 and its mirror,
    /// up to 50 with shifted crops [default: 10].
    #[arg(long, value_parser = whole)]
    tta: Option<usize>,
    /// Evaluate the test set after every epoch, not only after the last.
    #[arg(long)]
    test_every_epoch: bool,
    /// Choose the epoch count so that the whole command finishes within this wall time
    /// (e.g. 15m, 900s, 1h), from the speed of the first steps; instead of --epochs.
    #[arg(long, value_parser = parse_duration, conflicts_with = "epochs")]
    time_budget: Option<f64>,
    /// Weight initialisation [default: he].
    #[arg(long, value_enum)]
    init_scheme: Option<Init>,
    /// Run directory for checkpoints and history (default: runs/1, runs/2, … the first free,
    /// in the current directory or $NETWORK_RUNS). It must be new or empty.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint, with its own settings.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Start from these weights (a safetensors file with PyTorch's state_dict names).
    #[arg(long, value_name = "FILE")]
    init: Option<PathBuf>,
    /// Stop after this many optimiser steps in all (a checkpoint is saved).
    #[arg(long, value_parser = whole64)]
    max_steps: Option<u64>,
    /// Refuse a run that would need more memory than this (e.g. 4G, 512M) [default: half the
    /// machine's memory].
    #[arg(long, value_parser = parse_bytes)]
    memory_budget: Option<u64>,
    /// Print the summary as one JSON document on stdout (epoch lines go to stderr).
    #[arg(long)]
    json: bool,
    /// Watch the run in the browser: serve the live page (its address goes to stderr), and
    /// keep it up after training until Ctrl-C.
    #[arg(long)]
    serve: bool,
    #[command(flatten)]
    page: PageFlags,
}

/// Where the page listens.
#[derive(Args)]
struct PageFlags {
    /// Port of the page [default: a free one].
    #[arg(long, value_name = "N")]
    port: Option<u16>,
    /// Address of the page [default: 127.0.0.1, this machine only]; another (e.g. 0.0.0.0)
    /// lets other machines read the page.
    #[arg(long, value_name = "ADDR")]
    bind: Option<std::net::IpAddr>,
}

impl PageFlags {
    fn options(&self) -> ServeOptions {
        let d = ServeOptions::default();
        ServeOptions {
            bind: self.bind.unwrap_or(d.bind),
            port: self.port.unwrap_or(d.port),
        }
    }

    /// The first flag given, for "needs --serve".
    fn given(&self) -> Option<&'static str> {
        if self.port.is_some() {
            Some("--port")
        } else if self.bind.is_some() {
            Some("--bind")
        } else {
            None
        }
    }
}

impl TrainFlags {
    /// The settings a resumed run would silently ignore, as flag names.
    fn settings_given(&self) -> Vec<&'static str> {
        [
            ("--arch", self.arch.is_some()),
            ("--epochs", self.epochs.is_some()),
            ("--batch-size", self.batch_size.is_some()),
            ("--lr", self.lr.is_some()),
            ("--momentum", self.momentum.is_some()),
            ("--weight-decay", self.weight_decay.is_some()),
            ("--schedule", self.schedule.is_some()),
            ("--seed", self.seed.is_some()),
            ("--threads", self.threads.is_some()),
            ("--technique", self.technique.is_some()),
            ("--no-augment", self.no_augment),
            ("--shift", self.shift.is_some()),
            ("--validation", self.validation.is_some()),
            ("--lr-scaling", self.lr_scaling.is_some()),
            ("--warmup", self.warmup.is_some()),
            ("--label-smoothing", self.label_smoothing.is_some()),
            ("--ema", self.ema.is_some()),
            ("--tta", self.tta.is_some()),
            ("--test-every-epoch", self.test_every_epoch),
            ("--time-budget", self.time_budget.is_some()),
            ("--init-scheme", self.init_scheme.is_some()),
            ("--out", self.out.is_some()),
            ("--init", self.init.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }

    fn config(&self) -> TrainConfig {
        let d = TrainConfig::default();
        TrainConfig {
            epochs: self.epochs.unwrap_or(d.epochs),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            lr: self.lr.unwrap_or(d.lr),
            momentum: self.momentum.unwrap_or(d.momentum),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            schedule: self.schedule.unwrap_or(d.schedule),
            seed: self.seed.unwrap_or(d.seed),
            threads: self.threads.unwrap_or_else(cores),
            technique: self.technique.unwrap_or(d.technique),
            augment: !self.no_augment,
            init: self.init_scheme.unwrap_or(d.init),
            // Out of range saturates, to be refused by the range check naming --shift.
            shift: self
                .shift
                .map_or(d.shift, |v| u32::try_from(v).unwrap_or(u32::MAX)),
            validation: self.validation.unwrap_or(d.validation),
            lr_scaling: self.lr_scaling.unwrap_or(d.lr_scaling),
            warmup: self.warmup.unwrap_or(d.warmup),
            label_smoothing: self.label_smoothing.unwrap_or(d.label_smoothing),
            tta: self.tta.unwrap_or(d.tta),
            test_every_epoch: self.test_every_epoch,
            time_budget: self.time_budget,
            ema: self.ema.unwrap_or(d.ema),
        }
    }
}

#[derive(Args)]
struct ModelFlags {
    /// A run directory, or a model.safetensors file (then give --arch if it is not the seed's).
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// Architecture of a bare safetensors file.
    #[arg(long, value_name = "FILE")]
    arch: Option<PathBuf>,
    /// Directory of the CIFAR-10 binary files (default: the data a run directory recorded, else
    /// as for training).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Worker threads [default: every core].
    #[arg(long, value_parser = whole)]
    threads: Option<usize>,
    /// Print the figures as one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

impl ModelFlags {
    fn args(self) -> ModelArgs {
        ModelArgs {
            model: self.model,
            arch: self.arch,
            data: self.data,
            threads: self.threads,
            json: self.json,
        }
    }
}

fn run(cli: Cli) -> network::Result<u8> {
    network::config::select_isa(cli.isa.as_deref())?;
    match cli.command {
        None => train(cli.train),
        Some(Command::Train(flags)) => train(flags),
        Some(Command::Eval {
            model,
            confusion,
            tta,
            on,
        }) => commands::eval(&model.args(), confusion.as_deref(), tta, on).map(|()| 0),
        Some(Command::Test {
            model,
            start,
            count,
        }) => commands::test(&model.args(), start, count).map(|()| 0),
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
            memory_budget,
        }) => commands::bench(
            &network::bench::BenchConfig {
                batches,
                threads,
                runs,
                seconds,
                technique,
                memory_budget: memory_budget.unwrap_or_else(network::budget::default_budget),
            },
            &commands::BenchOutputs {
                json: json.as_deref(),
                peer: peer.as_deref(),
                report: report.as_deref(),
                run: run.as_deref(),
            },
            profile,
        )
        .map(|()| 0),
        Some(Command::Plot { runs, out }) => commands::plot(&runs, out.as_deref()).map(|_| 0),
        Some(Command::Sweep {
            space,
            out,
            data,
            arch,
            json,
        }) => sweep(space, out, data, arch, json),
        Some(Command::Serve { runs, page }) => commands::serve(&runs, page.options()).map(|()| 0),
        Some(Command::Visualize {
            model,
            indices,
            images,
            class,
            patch,
            stride,
            out,
            layers,
        }) => commands::visualize(&VisualizeArgs {
            model: model.model,
            arch: model.arch,
            data: model.data,
            indices,
            images,
            class,
            patch,
            stride,
            out,
            layers,
            threads: model.threads,
        })
        .map(|_| 0),
    }
}

/// Ctrl-C: finish the current step, save, say how to resume; a second Ctrl-C quits at once.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(commands::EXIT_INTERRUPTED));
        }
        eprintln!("\nstopping after this step…");
    });
    stop
}

fn sweep(
    space: PathBuf,
    out: PathBuf,
    data: Option<PathBuf>,
    arch: Option<PathBuf>,
    json: bool,
) -> network::Result<u8> {
    let arch = arch.as_deref().map(network::arch::read).transpose()?;
    let stop = stop_on_ctrl_c();
    let args = commands::SweepArgs {
        space,
        out,
        data,
        arch,
        defaults: TrainConfig {
            threads: cores(),
            ..TrainConfig::default()
        },
        options: RunOptions::default(),
        json,
    };
    commands::sweep(&args, &stop)
}

fn train(f: TrainFlags) -> network::Result<u8> {
    if let (Some(dir), [first, ..]) = (&f.resume, &f.settings_given()[..]) {
        return Err(network::Error::Usage(format!(
            "{first} cannot be given with --resume: the run in {} keeps the settings it was created with",
            dir.display()
        )));
    }
    if let (false, Some(flag)) = (f.serve, f.page.given()) {
        return Err(network::Error::Usage(format!(
            "{flag} is for the page: give --serve too"
        )));
    }
    let config = f.config();
    if config.threads > cores() {
        eprintln!(
            "note: --threads {} is more than the {} cores of this machine: the threads will share them",
            config.threads,
            cores()
        );
    }
    let arch = match &f.arch {
        Some(path) => network::arch::read(path)?,
        None => network::arch::seed_network(),
    };
    let options = RunOptions {
        fault: Fault::from_env()?,
        memory_budget: f
            .memory_budget
            .unwrap_or_else(network::budget::default_budget),
    };
    let stop = stop_on_ctrl_c();
    let args = TrainArgs {
        data: f.data,
        new: NewRun {
            arch,
            config,
            init_from: f.init,
            // The clock starts here, before the data is read: the budget is the command's.
            time_budget: f.time_budget.map(|seconds| TimeBudget {
                seconds,
                since: Instant::now(),
            }),
        },
        arch_file: f.arch,
        out: f.out,
        resume: f.resume,
        max_steps: f.max_steps,
        options,
        json: f.json,
        serve: f.serve.then(|| f.page.options()),
    };
    commands::train(args, stop)
}

/// Parses the command line. Train's flags are also top-level flags (no subcommand trains), so
/// one of them given with a subcommand is refused here, as clap's
/// `args_conflicts_with_subcommands` would; that setting is not used because it refuses a
/// global flag (`--isa`) too when it comes before the subcommand.
fn parse() -> Result<Cli, clap::Error> {
    let mut command = Cli::command();
    let matches = command.try_get_matches_from_mut(std::env::args_os())?;
    if let Some((name, _)) = matches.subcommand() {
        let given = |arg: &&clap::Arg| {
            !arg.is_global_set()
                && matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
        };
        let conflict = command.get_arguments().find(given).map(ToString::to_string);
        if let Some(arg) = conflict {
            return Err(command.error(
                ErrorKind::ArgumentConflict,
                format!("the subcommand '{name}' cannot be used with '{arg}'"),
            ));
        }
    }
    Cli::from_arg_matches(&matches)
}

/// Restores SIGPIPE's default action (end the process), which the Rust runtime sets to
/// ignored.
#[cfg(unix)]
fn default_sigpipe() {
    unsafe extern "C" {
        /// signal(2), from the C library the standard library links.
        fn signal(signum: i32, handler: usize) -> usize;
    }
    // SIGPIPE is 13 and SIG_DFL 0 on Linux, the BSDs and macOS.
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: signal(2) with a valid signal and the default disposition; called once, before
    // any thread of this program starts.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

/// SIGPIPE exists only on Unix.
#[cfg(not(unix))]
fn default_sigpipe() {}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout as clap writes them; a bad command line is one line.
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("error: bad arguments");
            eprintln!("{}", first.trim_end());
            return ExitCode::from(2);
        }
    };
    let serves = match &cli.command {
        None => cli.train.serve,
        Some(Command::Train(flags)) => flags.serve,
        Some(Command::Serve { .. }) => true,
        Some(_) => false,
    };
    if !serves {
        // Output piped into a reader that stops early (`network test | head -1`) then ends
        // the process quietly, as Unix tools do, instead of panicking at the next print.
        // The page's server keeps the runtime's ignored SIGPIPE: a browser that leaves must
        // not stop it.
        default_sigpipe();
    }
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
