//! `network bench`: training and inference speed of the whole trainer, examples per second at
//! several batch sizes and thread counts, as medians of several timed runs, beside the
//! machine's sgemm peak; and a per-layer profile of where a step's time goes.

use std::path::Path;
use std::time::Instant;

use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::arch::seed_network;
use crate::batch::{Normalizer, fill_batch};
use crate::budget::Footprint;
use crate::config::{MAX_BATCH, MAX_THREADS, TrainConfig, in_range};
use crate::data::{Cifar10, Dataset};
use crate::error::{Error, Result};
use crate::model::{Init, Layer, Network, Workspace};
use crate::optim::Schedule;
use crate::train::{Trainer, per_worker};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Examples per step.
    pub batches: Vec<usize>,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// Timed runs per measurement; the median is reported.
    pub runs: usize,
    /// Least duration of one timed run, in seconds.
    pub seconds: f64,
    /// `auto` or a technique name.
    pub technique: String,
    /// Bytes the measurements may hold at most (see [`crate::budget`]).
    pub memory_budget: u64,
}

/// One measured configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// `train` or `inference`.
    pub mode: String,
    /// Examples per step.
    pub batch: usize,
    /// Threads.
    pub threads: usize,
    /// Median examples per second over the runs.
    pub examples_per_second: f64,
    /// Every run's examples per second.
    pub runs: Vec<f64>,
    /// Useful FLOPs per second at the median (see [`flops_per_example`]).
    pub gflops: f64,
    /// `gflops` over the measured sgemm peak at the same thread count.
    pub peak_fraction: f64,
    /// `gflops` over the FMA peak of the kernels' level at the same thread count (0 where
    /// not measured, as in the PyTorch peer's file).
    #[serde(default)]
    pub fma_fraction: f64,
}

/// The machine's limit at one instruction-set level: [`kernels::fma_loop`] on every thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FmaPeak {
    /// The level, as [`kernels::Isa::name`].
    pub isa: String,
    /// Threads running the loop at once.
    pub threads: usize,
    /// Median GFLOP/s.
    pub gflops: f64,
}

/// Everything `network bench` measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Who measured: "rust" here, "pytorch" in the peer's file.
    pub implementation: String,
    /// The peer's library version.
    #[serde(default)]
    pub version: Option<String>,
    /// Single-precision GEMM peak, GFLOP/s, per thread count (`[threads, gflops]`).
    pub sgemm_peak: Vec<(usize, f64)>,
    /// The level the direct kernels ran at (ours only).
    #[serde(default)]
    pub isa: Option<String>,
    /// The FMA peak of every level this CPU supports, per thread count (ours only).
    #[serde(default)]
    pub fma_peak: Vec<FmaPeak>,
    /// Forward and backward MFLOP per example.
    pub mflop_per_example: (f64, f64),
    /// The measurements.
    pub measurements: Vec<Measurement>,
}

impl BenchReport {
    /// The measurement of `mode` at `batch` and `threads`, if taken.
    pub fn get(&self, mode: &str, batch: usize, threads: usize) -> Option<&Measurement> {
        self.measurements
            .iter()
            .find(|m| m.mode == mode && m.batch == batch && m.threads == threads)
    }
}

/// Multiply-adds ×2 of one example through `net`: (forward, backward). The backward counts
/// the weight gradients of every layer and the input gradients of every layer but the first
/// (training never needs the gradient of the images). Pooling and activations do no
/// multiply-adds and count nothing.
pub fn flops_per_example(net: &Network) -> (f64, f64) {
    let mut forward = 0.0;
    let mut backward = 0.0;
    for (i, (layer, out)) in net.layers.iter().zip(&net.shapes[1..]).enumerate() {
        let macs = match layer {
            Layer::Conv { w, .. } => (w.len() * out[1] * out[2]) as f64,
            Layer::Fc { w, .. } => w.len() as f64,
            _ => 0.0,
        };
        forward += 2.0 * macs;
        backward += 2.0 * macs * if i == 0 { 1.0 } else { 2.0 };
    }
    (forward, backward)
}

/// `c = a·b` for square `[n, n]` matrices, split by rows over the threads of `pool`, each
/// running a single-threaded matrixmultiply `sgemm`: the machine's GEMM peak.
pub fn sgemm_on_threads(
    pool: &rayon::ThreadPool,
    a: &Array2<f32>,
    b: &Array2<f32>,
    c: &mut Array2<f32>,
) {
    let rows = a.nrows().div_ceil(pool.current_num_threads());
    pool.scope(|s| {
        for (a_rows, c_rows) in a
            .axis_chunks_iter(ndarray::Axis(0), rows)
            .zip(c.axis_chunks_iter_mut(ndarray::Axis(0), rows))
        {
            s.spawn(move |_| {
                kernels::gemm(1.0, a_rows, b.view(), 0.0, c_rows).expect("square matrices")
            });
        }
    });
}

/// Side of the square matrices of the sgemm peak.
const PEAK_SIDE: usize = 1024;

/// The median GFLOP/s of `runs` square sgemms of side [`PEAK_SIDE`] on `threads` threads.
pub fn sgemm_peak(threads: usize, runs: usize) -> Result<f64> {
    let pool = pool(threads)?;
    let n = PEAK_SIDE;
    let a = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 13) as f32 / 13.0);
    let b = a.t().to_owned();
    let mut c = Array2::zeros((n, n));
    sgemm_on_threads(&pool, &a, &b, &mut c);
    let mut rates: Vec<f64> = (0..runs.max(3))
        .map(|_| {
            let start = Instant::now();
            sgemm_on_threads(&pool, &a, &b, &mut c);
            2.0 * (n * n * n) as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    Ok(median(&mut rates))
}

/// Rounds of one FMA-peak run on each thread: about 0.05 s at AVX-512 on a 5 GHz core, and
/// at AVX2 or on the portable lanes of a 3 GHz one.
const FMA_ITERATIONS: usize = 20_000_000;

/// The median GFLOP/s of `runs` runs of [`kernels::fma_loop`] at level `isa`, on each of
/// `threads` threads at once: the limit of the direct kernels at that level.
pub fn fma_peak(isa: kernels::Isa, threads: usize, runs: usize) -> Result<f64> {
    let pool = pool(threads)?;
    let once = || {
        let start = Instant::now();
        let flops: f64 = pool
            .broadcast(|_| kernels::fma_loop(isa, FMA_ITERATIONS))
            .iter()
            .map(|&(flops, sum)| flops + f64::from(sum) * 0.0)
            .sum();
        flops / start.elapsed().as_secs_f64() / 1e9
    };
    once();
    let mut rates: Vec<f64> = (0..runs.max(3)).map(|_| once()).collect();
    Ok(median(&mut rates))
}

fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {threads} threads: {e}")))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The trainer the benchmark times: the seed network, He weights, SGD as the PyTorch peer's
/// (learning rate 0.001, small enough not to diverge at batch 1, momentum 0.9, decay 1e-4), no
/// augmentation.
pub fn bench_trainer(
    batch: usize,
    threads: usize,
    technique: &str,
    data: &Dataset,
) -> Result<Trainer> {
    let net = Network::new(&seed_network(), Init::He, &mut StdRng::seed_from_u64(1))?;
    let config = TrainConfig {
        epochs: 1,
        batch_size: batch,
        lr: 0.001,
        momentum: 0.9,
        weight_decay: 1e-4,
        schedule: Schedule::Constant,
        seed: 1,
        threads,
        technique: technique
            .parse()
            .map_err(|e| Error::Usage(format!("--technique: {e}")))?,
        augment: false,
        init: Init::He,
        ..TrainConfig::default()
    };
    Trainer::new(net, Normalizer::fit(data), config)
}

/// Runs `step` (which handles `batch` examples) for `runs` timed runs of at least `seconds`
/// each, after a warm-up; returns each run's examples per second.
fn time_runs(
    batch: usize,
    runs: usize,
    seconds: f64,
    step: &mut dyn FnMut(usize) -> Result<()>,
) -> Result<Vec<f64>> {
    let mut k = 0;
    let warm = Instant::now();
    while warm.elapsed().as_secs_f64() < seconds.min(0.5) {
        step(k)?;
        k += 1;
    }
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            let mut steps = 0;
            while steps == 0 || start.elapsed().as_secs_f64() < seconds {
                step(k)?;
                k += 1;
                steps += 1;
            }
            Ok((steps * batch) as f64 / start.elapsed().as_secs_f64())
        })
        .collect()
}

/// Most timed runs per figure.
const MAX_RUNS: usize = 1000;

/// Most seconds of one timed run.
const MAX_SECONDS: f64 = 3600.0;

/// Refuses a measurement of the trainer at `batch` examples on `threads` threads (with
/// `profile`, its per-layer profile too) that would need more than `budget` bytes, before
/// anything is allocated: the trainer's workers ([`per_worker`] examples each), and `lists`
/// index lists of a batch each or the profile's own workspace.
fn check_memory(
    batch: usize,
    threads: usize,
    lists: usize,
    profile: bool,
    budget: u64,
) -> Result<()> {
    let spec = seed_network();
    let lists = (lists as u64).saturating_mul(batch as u64 * 8);
    let mut need = Footprint::estimate(&spec, threads, per_worker(batch, threads), lists, false)?;
    if profile {
        let own = Footprint::estimate(&spec, 1, batch, 0, false)?;
        need.activations = need.activations.saturating_add(own.activations);
        need.scratch = need.scratch.saturating_add(own.scratch);
    }
    need.check(
        budget,
        "lower --batches, --threads or --profile, or raise --memory-budget",
    )
}

/// Measures training and inference at every batch size and thread count of `config`, printing
/// each result as it comes.
pub fn run(config: &BenchConfig) -> Result<BenchReport> {
    if config.batches.is_empty() || config.threads.is_empty() {
        return Err(Error::Usage(
            "--batches and --threads need a number each at least".into(),
        ));
    }
    for &b in &config.batches {
        in_range("--batches", b, 1, MAX_BATCH)?;
    }
    for &t in &config.threads {
        in_range("--threads", t, 1, MAX_THREADS)?;
    }
    if !(config.seconds > 0.0 && config.seconds <= MAX_SECONDS) {
        return Err(Error::Usage(format!(
            "--seconds must be above 0 and at most {MAX_SECONDS}, not {}",
            config.seconds
        )));
    }
    in_range("--runs", config.runs, 1, MAX_RUNS)?;
    let data = Cifar10::sample().train;
    for (&batch, &threads) in config
        .batches
        .iter()
        .flat_map(|b| config.threads.iter().map(move |t| (b, t)))
    {
        // A list of each batch's images per image of the data (made before timing, below).
        check_memory(batch, threads, data.len(), false, config.memory_budget)?;
    }
    let net = Network::new(&seed_network(), Init::He, &mut StdRng::seed_from_u64(1))?;
    let (forward, backward) = flops_per_example(&net);
    let mut report = BenchReport {
        implementation: "rust".into(),
        version: None,
        sgemm_peak: Vec::new(),
        isa: Some(kernels::Isa::active().name().into()),
        fma_peak: Vec::new(),
        mflop_per_example: (forward / 1e6, backward / 1e6),
        measurements: Vec::new(),
    };
    let active = kernels::Isa::active();
    println!("direct kernels at {active}");
    for &threads in &config.threads {
        let peak = sgemm_peak(threads, config.runs)?;
        println!("sgemm peak on {threads} thread(s): {peak:.1} GFLOP/s");
        report.sgemm_peak.push((threads, peak));
        let mut fma = 0.0;
        for isa in kernels::Isa::available() {
            let gflops = fma_peak(isa, threads, config.runs)?;
            println!("FMA peak ({isa}) on {threads} thread(s): {gflops:.1} GFLOP/s");
            if isa == active {
                fma = gflops;
            }
            report.fma_peak.push(FmaPeak {
                isa: isa.name().into(),
                threads,
                gflops,
            });
        }
        for &batch in &config.batches {
            let mut trainer = bench_trainer(batch, threads, &config.technique, &data)?;
            // Consecutive images, wrapping round; made before timing so that no step allocates.
            let batches: Vec<Vec<usize>> = (0..data.len())
                .map(|k| {
                    (k * batch..(k + 1) * batch)
                        .map(|i| i % data.len())
                        .collect()
                })
                .collect();
            let train = time_runs(batch, config.runs, config.seconds, &mut |k| {
                let (loss, _) = trainer.step(&data, &batches[k % batches.len()], &[], 1.0)?;
                if loss.is_finite() {
                    Ok(())
                } else {
                    Err(Error::Diverged(format!(
                        "the benchmark's training loss became {loss} at batch {batch}"
                    )))
                }
            })?;
            let infer = time_runs(batch, config.runs, config.seconds, &mut |k| {
                trainer
                    .infer()
                    .augmented_probabilities(&data, &batches[k % batches.len()], &[])?;
                Ok(())
            })?;
            for (mode, runs, flops) in [
                ("train", train, forward + backward),
                ("inference", infer, forward),
            ] {
                let examples_per_second = median(&mut runs.clone());
                let gflops = examples_per_second * flops / 1e9;
                let m = Measurement {
                    mode: mode.into(),
                    batch,
                    threads,
                    examples_per_second,
                    runs,
                    gflops,
                    peak_fraction: gflops / peak,
                    fma_fraction: gflops / fma,
                };
                println!(
                    "{mode:<9} batch {batch:>3}, {threads} thread(s): {:>7.0} examples/s, {:>5.1} GFLOP/s ({:.0}% of the sgemm peak, {:.0}% of the {active} FMA peak)",
                    m.examples_per_second,
                    m.gflops,
                    100.0 * m.peak_fraction,
                    100.0 * m.fma_fraction
                );
                report.measurements.push(m);
            }
        }
    }
    Ok(report)
}

/// Time of each step of the forward pass (a layer, or a convolution with its activation,
/// fused as [`Workspace::forward`] runs them) and of each layer's backward pass in one worker
/// at `batch` examples: the profile of a training step, as rows of (layer, pass, technique,
/// seconds).
pub fn profile(
    batch: usize,
    config: &BenchConfig,
    runs: usize,
) -> Result<Vec<(String, &'static str, String, f64)>> {
    in_range("--profile", batch, 1, MAX_BATCH)?;
    in_range("--runs", runs, 1, MAX_RUNS)?;
    check_memory(batch, 1, 0, true, config.memory_budget)?;
    let technique = &config.technique;
    let data = Cifar10::sample().train;
    let trainer = bench_trainer(batch, 1, technique, &data)?;
    let (net, plan) = (&trainer.net, &trainer.plan);
    let mut ws = Workspace::new(net, batch);
    let indices: Vec<usize> = (0..batch).map(|i| i % data.len()).collect();
    fill_batch(
        &data,
        &indices,
        &[],
        &trainer.normalizer,
        ws.input_mut(batch),
    );
    ws.labels_mut(batch)
        .iter_mut()
        .zip(&indices)
        .for_each(|(l, &i)| *l = usize::from(data.labels[i]));
    let time = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        f()?;
        let mut samples: Vec<f64> = (0..runs.max(5))
            .map(|_| {
                let start = Instant::now();
                f().map(|()| start.elapsed().as_secs_f64())
            })
            .collect::<Result<_>>()?;
        Ok(median(&mut samples))
    };
    let mut rows = Vec::new();
    // The forward pass's own steps: a convolution and its activation as one row.
    let mut i = 0;
    while i < net.layers.len() {
        let mut ran = 1;
        let s = time(&mut || {
            ran = ws.forward_step(net, plan, i, batch)?;
            Ok(())
        })?;
        let names: Vec<_> = net.layers[i..i + ran].iter().map(|l| l.name()).collect();
        rows.push((
            format!("{} {}", i + 1, names.join("+")),
            "forward",
            plan.forward[i].name().to_string(),
            s,
        ));
        i += ran;
    }
    let s = time(&mut || {
        ws.loss(plan, batch)?;
        ws.softmax_backward(plan, batch)
    })?;
    rows.push(("softmax".into(), "both", plan.softmax.name().to_string(), s));
    for i in (0..net.layers.len()).rev() {
        let t = plan.backward[i];
        let s = time(&mut || ws.layer_backward(net, i, t, batch, i > 0))?;
        rows.push((
            format!("{} {}", i + 1, net.layers[i].name()),
            "backward",
            t.name().to_string(),
            s,
        ));
    }
    Ok(rows)
}

/// Writes `report` as JSON.
pub fn save(report: &BenchReport, path: &Path) -> Result<()> {
    let json = serde_json::to_vec_pretty(report).expect("serialisable");
    crate::disk::write_atomic(path, &json)
}

/// Reads a report (ours or the PyTorch peer's).
pub fn load(path: &Path) -> Result<BenchReport> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("{} is not a benchmark report: {e}", path.display())))
}

/// The targets of the comparison at level `isa` (PyTorch limited to the same vector width):
/// (mode, batch, least ratio ours / PyTorch).
pub fn targets(isa: &str) -> &'static [(&'static str, usize, f64)] {
    match isa {
        "avx512" => &[
            ("train", 1, 3.0),
            ("train", 5, 2.0),
            ("train", 32, 1.3),
            ("train", 128, 1.3),
            ("inference", 128, 1.5),
        ],
        "avx2" => &[("train", 5, 2.5), ("train", 32, 2.0), ("train", 128, 2.0)],
        _ => &[],
    }
}

/// The targets of efficiency at level `isa`: (mode, batch, least fraction of the FMA peak).
pub fn fma_targets(isa: &str) -> &'static [(&'static str, usize, f64)] {
    match isa {
        "avx512" => &[
            ("train", 32, 0.65),
            ("train", 128, 0.65),
            ("inference", 128, 0.75),
        ],
        _ => &[],
    }
}

/// `value` against the target of `targets` for `m`'s mode and batch, if any: "≥ t: met".
fn against(
    targets: &[(&str, usize, f64)],
    m: &Measurement,
    value: Option<f64>,
    show: fn(f64) -> String,
) -> String {
    targets
        .iter()
        .find(|(mode, batch, _)| *mode == m.mode && *batch == m.batch)
        .map(|&(_, _, want)| match value {
            Some(v) if v >= want => format!("≥ {}: met", show(want)),
            Some(_) => format!("≥ {}: **not met**", show(want)),
            None => format!("≥ {}", show(want)),
        })
        .unwrap_or_default()
}

/// The machine, as the report states it: CPU model, family and model numbers, AVX-512 or not,
/// cores, and the compiler.
pub fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
    };
    let cpu = match (field("model name"), field("cpu family"), field("model")) {
        (Some(name), Some(family), Some(model)) => {
            let avx512 = field("flags").is_some_and(|f| f.split(' ').any(|x| x == "avx512f"));
            format!(
                "{name} (family {family}, model {model}{})",
                if avx512 { ", AVX-512" } else { "" }
            )
        }
        (Some(name), _, _) => name,
        _ => "unknown CPU".into(),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(
            || "rustc (unknown version)".into(),
            |v| v.trim().to_string(),
        );
    format!(
        "{cpu}, {cores} cores; {rustc}, no target-cpu flag; direct kernels at {} (chosen at run time)",
        kernels::Isa::active()
    )
}

/// A finished training run's figures for the report: its directory, settings and history.
pub struct RunFigures<'a> {
    /// The run directory, as named on the command line.
    pub dir: String,
    /// Its hyper-parameters.
    pub config: &'a crate::config::TrainConfig,
    /// Its history.
    pub history: &'a crate::history::History,
}

/// `reports/TRAINING.md`: both trainers' figures from one run of `scripts/training.sh`, the
/// ratios against the targets, the per-layer profile, and a full training run's epoch time
/// and peak memory.
pub fn markdown(
    ours: &BenchReport,
    peer: &BenchReport,
    config: &BenchConfig,
    profile: &[(String, &'static str, String, f64)],
    profile_batch: usize,
    run: Option<RunFigures>,
) -> String {
    let mut md = String::new();
    let mut line = |s: String| {
        md.push_str(&s);
        md.push('\n');
    };
    let isa = ours.isa.as_deref().unwrap_or("(level not recorded)");
    line(format!("## At {isa}: this trainer beside PyTorch"));
    line(String::new());
    line(format!("- Machine: {}.", machine()));
    line(format!(
        "- PyTorch {} on the CPU, `torch.set_num_threads` = the thread count of each row.",
        peer.version.as_deref().unwrap_or("(version not recorded)")
    ));
    line(format!(
        "- The seed network, SGD (lr 0.001, momentum 0.9, weight decay 1e-4), cross-entropy. \
         Ours: images from the embedded sample, normalised per batch, `--technique {}`; \
         PyTorch: random tensors made once. Training = forward, backward, update; inference = \
         forward and softmax.",
        config.technique
    ));
    line(format!(
        "- Each figure is the median of {} timed runs of at least {} s after a warm-up. \
         {:.2} MFLOP per example forward, {:.2} backward (the images' own gradient is not \
         computed).",
        config.runs, config.seconds, ours.mflop_per_example.0, ours.mflop_per_example.1
    ));
    let peaks = |r: &BenchReport| {
        r.sgemm_peak
            .iter()
            .map(|(t, g)| format!("{g:.0} GFLOP/s on {t} thread(s)"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    line(format!(
        "- sgemm peak (1024³): matrixmultiply {}; PyTorch `torch.mm` {}. A large GEMM's speed, \
         not the core's limit: our convolutions run the direct technique, not sgemm, and can \
         exceed it.",
        peaks(ours),
        peaks(peer)
    ));
    line(format!(
        "- FMA peak (a register-only loop of 12 independent multiply-adds, separate multiply and \
         add chains at the portable level, `kernels::fma_loop`), the core's limit: {}. Ours ran \
         the direct kernels at **{isa}**; the last column is the fraction of that level's FMA \
         peak.",
        ours.fma_peak
            .iter()
            .map(|p| format!(
                "{} {:.0} GFLOP/s on {} thread(s)",
                p.isa, p.gflops, p.threads
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    line(String::new());
    line("### Examples per second".into());
    line(String::new());
    line("| mode | batch | threads | ours | PyTorch | ours / PyTorch | target | ours GFLOP/s | % of sgemm peak | % of FMA peak | target |".into());
    line("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |".into());
    for m in &ours.measurements {
        let theirs = peer.get(&m.mode, m.batch, m.threads);
        let ratio = theirs.map(|t| m.examples_per_second / t.examples_per_second);
        let target = against(targets(isa), m, ratio, |r| format!("{r}×"));
        let fma_target = match m.threads {
            2 => against(fma_targets(isa), m, Some(m.fma_fraction), |f| {
                format!("{:.0}%", 100.0 * f)
            }),
            _ => String::new(),
        };
        line(format!(
            "| {} | {} | {} | {:.0} | {} | {} | {target} | {:.1} | {:.0}% | {:.0}% | {fma_target} |",
            m.mode,
            m.batch,
            m.threads,
            m.examples_per_second,
            theirs.map_or("–".into(), |t| format!("{:.0}", t.examples_per_second)),
            ratio.map_or("–".into(), |r| format!("{r:.2}×")),
            m.gflops,
            100.0 * m.peak_fraction,
            100.0 * m.fma_fraction
        ));
    }
    line(String::new());
    line(format!(
        "### Where a training step's time goes: one worker, {profile_batch} examples"
    ));
    line(String::new());
    line(format!(
        "(The per-worker share of batch {} on 2 threads; medians of repeated calls of each \
         layer's pass, a convolution and its activation forward as one fused call, `network \
         bench --profile {profile_batch}`.)",
        2 * profile_batch
    ));
    line(String::new());
    line("| layer | pass | technique | µs | share |".into());
    line("| --- | --- | --- | ---: | ---: |".into());
    let total: f64 = profile.iter().map(|r| r.3).sum();
    for (layer, pass, technique, seconds) in profile {
        line(format!(
            "| {layer} | {pass} | {technique} | {:.1} | {:.1}% |",
            seconds * 1e6,
            100.0 * seconds / total
        ));
    }
    line(format!("| all | | | {:.1} | 100% |", total * 1e6));
    line(String::new());
    line("### A full CIFAR-10 training run".into());
    line(String::new());
    match run {
        None => line("(No run given: pass `scripts/training.sh RUN_DIR`.)".into()),
        Some(run) => {
            let epochs = &run.history.epochs;
            let seconds: Vec<f64> = epochs.iter().map(|e| e.seconds).collect();
            let mut sorted = seconds.clone();
            let median_epoch = if sorted.is_empty() {
                0.0
            } else {
                median(&mut sorted)
            };
            let rate = epochs.iter().map(|e| e.examples_per_second).sum::<f64>()
                / epochs.len().max(1) as f64;
            let rss = epochs
                .iter()
                .filter_map(|e| e.peak_rss_mb)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            let c = run.config;
            line(format!(
                "`{}`: {} epochs of 50,000 images at batch {} on {} threads (`cargo run -p \
                 network --release -- --data …`, every other flag at its default).",
                run.dir,
                epochs.len(),
                c.batch_size,
                c.threads
            ));
            line(String::new());
            line(format!(
                "- Epoch time (training steps only): median {median_epoch:.1} s, mean \
                 {rate:.0} examples/s."
            ));
            if let Some(last) = epochs.last() {
                line(format!("- After the last epoch: {}.", last.held_out()));
            }
            line(format!(
                "- Peak resident memory of the process (VmHWM): {} (limit 400 MB). The images \
                 stay bytes (50,000 × 3,073 B = 154 MB); batches are normalised as drawn into \
                 preallocated workspaces.",
                rss.map_or("not recorded".into(), |mb| format!("{mb:.0} MB"))
            ));
        }
    }
    md
}
