//! What the report reads: criterion's medians, the PyTorch peer's JSON, the numpy peer's JSON
//! (the seed's techniques timed on this machine), the machine, and the seed's own numpy figures.

use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use kernels::Technique;
use serde::Deserialize;
use study::{
    Case, FMA_GROUP, ISA_BATCH, PEAK_GROUP, Pass, SEED_NETWORK, group, isa_function, isa_group,
};

/// The fields of criterion's `benchmark.json` that identify a benchmark.
#[derive(Deserialize)]
struct BenchmarkId {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
    /// `{"Elements": n}` where the benchmark declared elements (the peaks declare their
    /// floating-point operations), another form or none otherwise.
    throughput: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// Median times in nanoseconds, by (group, function, value).
pub struct Timings {
    medians: HashMap<(String, String, String), f64>,
    /// Elements per iteration, for benchmarks that declare them.
    elements: HashMap<(String, String, String), f64>,
    /// Whether the benchmarks ran in quick mode (`STUDY_QUICK=1`; the renderer's `--quick`).
    pub quick: bool,
    /// When the newest benchmark was written.
    pub measured: SystemTime,
}

impl Timings {
    /// Reads every `new/benchmark.json` and its `estimates.json` under `dir`.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let mut timings = Timings {
            medians: HashMap::new(),
            elements: HashMap::new(),
            quick: false,
            measured: SystemTime::UNIX_EPOCH,
        };
        timings
            .walk(dir)
            .map_err(|e| format!("cannot read criterion results in {}: {e}", dir.display()))?;
        if timings.medians.is_empty() {
            return Err(format!(
                "no criterion results in {}: run `cargo bench -p study` first",
                dir.display()
            ));
        }
        Ok(timings)
    }

    fn walk(&mut self, dir: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                self.walk(&path)?;
            } else if path.file_name().is_some_and(|n| n == "benchmark.json")
                && path
                    .parent()
                    .and_then(Path::file_name)
                    .is_some_and(|n| n == "new")
            {
                let read = |p: &Path| std::fs::read_to_string(p);
                let invalid = |e: serde_json::Error| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                };
                let id: BenchmarkId = serde_json::from_str(&read(&path)?).map_err(invalid)?;
                let estimates_path = path.with_file_name("estimates.json");
                let estimates: Estimates =
                    serde_json::from_str(&read(&estimates_path)?).map_err(invalid)?;
                let key = (
                    id.group_id,
                    id.function_id.unwrap_or_default(),
                    id.value_str.unwrap_or_default(),
                );
                let elements = id
                    .throughput
                    .as_ref()
                    .and_then(|t| t.get("Elements")?.as_f64());
                if let Some(n) = elements {
                    self.elements.insert(key.clone(), n);
                }
                self.medians.insert(key, estimates.median.point_estimate);
                if let Ok(modified) = path.metadata()?.modified() {
                    self.measured = self.measured.max(modified);
                }
            }
        }
        Ok(())
    }

    /// Median time in nanoseconds of one benchmark, if it ran.
    pub fn get(&self, group: &str, function: &str, value: impl ToString) -> Option<f64> {
        self.medians
            .get(&(group.to_string(), function.to_string(), value.to_string()))
            .copied()
    }

    /// A layer pass with technique `t` at `batch`, in nanoseconds.
    pub fn layer(&self, case: &Case, pass: Pass, t: Technique, batch: usize) -> Option<f64> {
        self.get(&group(case.name, pass), t.name(), batch)
    }

    /// The fastest technique of a layer pass at `batch`, with its time.
    pub fn fastest(&self, case: &Case, pass: Pass, batch: usize) -> Option<(Technique, f64)> {
        Technique::ALL
            .into_iter()
            .filter_map(|t| Some((t, self.layer(case, pass, t, batch)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// A layer pass with technique `t` forced to level `isa`, at [`ISA_BATCH`], in nanoseconds.
    pub fn at_isa(&self, case: &Case, pass: Pass, t: Technique, isa: kernels::Isa) -> Option<f64> {
        self.get(
            &isa_group(case.name, pass),
            &isa_function(t, isa),
            ISA_BATCH,
        )
    }

    /// The FMA peak of level `isa` on `threads` threads, GFLOP/s.
    pub fn fma_gflops(&self, isa: kernels::Isa, threads: usize) -> Option<f64> {
        let key = (
            FMA_GROUP.to_string(),
            isa.name().to_string(),
            threads.to_string(),
        );
        Some(*self.elements.get(&key)? / self.medians.get(&key)?)
    }

    /// A whole-trainer case's time per [`study::TRAINER_EXAMPLES`] examples in nanoseconds, with
    /// the examples it trained per iteration (criterion's recorded throughput; fewer than
    /// [`study::TRAINER_EXAMPLES`] means the time is scaled).
    pub fn trainer(&self, case: &study::TrainerCase) -> Option<(f64, usize)> {
        let key = (
            study::TRAINER_GROUP.to_string(),
            case.id(),
            case.batch.to_string(),
        );
        let examples = *self.elements.get(&key)?;
        let ns = self.medians.get(&key)?;
        Some((
            ns * study::TRAINER_EXAMPLES as f64 / examples,
            examples as usize,
        ))
    }

    /// sgemm GFLOP/s on `threads` threads.
    pub fn peak_gflops(&self, threads: usize) -> Option<f64> {
        let n = study::PEAK_SIDE as f64;
        Some(2.0 * n * n * n / self.get(PEAK_GROUP, "threads", threads)?)
    }
}

/// The PyTorch peer's medians (`scripts/torch_layers.py`).
#[derive(Deserialize)]
pub struct TorchPeer {
    /// The torch version.
    pub torch: String,
    /// Threads it ran on.
    pub threads: usize,
    /// CPU it ran on.
    pub cpu: String,
    /// Group → batch → median ns.
    pub median_ns: HashMap<String, HashMap<String, f64>>,
}

impl TorchPeer {
    /// Reads the peer's JSON, or `None` when the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, String> {
        load_peer(path)
    }

    /// A layer pass at `batch`, in nanoseconds.
    pub fn layer(&self, case: &Case, pass: Pass, batch: usize) -> Option<f64> {
        self.median_ns
            .get(&group(case.name, pass))?
            .get(&batch.to_string())
            .copied()
    }
}

/// The seed's numpy techniques timed on this machine (`scripts/numpy_layers.py`): techniques
/// 1–3 under the Rust names of the same idea, and the seed's `np.einsum` under `im2col`.
#[derive(Deserialize)]
pub struct NumpyPeer {
    /// CPU it ran on.
    pub cpu: String,
    /// Python version.
    pub python: String,
    /// numpy version.
    pub numpy: String,
    /// BLAS threads numpy was limited to.
    pub threads: usize,
    /// Whether `--quick` (fewer repeats, fewer trainer examples) produced it.
    pub quick: bool,
    /// What the seed's code needed to run, one line per fix.
    #[serde(default)]
    pub fixes: Vec<String>,
    /// Group → batch → technique → median ns (absent or null: the seed has no such technique).
    pub median_ns: HashMap<String, HashMap<String, HashMap<String, Option<f64>>>>,
    /// Group → batch → technique → timed repeats.
    #[serde(default)]
    pub samples: HashMap<String, HashMap<String, HashMap<String, Option<u64>>>>,
    /// The seed's whole trainer.
    pub trainer: Option<NumpyTrainer>,
}

/// The seed's whole trainer in numpy, each technique on every layer.
#[derive(Deserialize)]
pub struct NumpyTrainer {
    /// Examples per step.
    pub batch: usize,
    /// Examples trained.
    pub examples: usize,
    /// Technique → seconds for `examples` (scaled up where fewer were trained in time).
    pub seconds: HashMap<String, Option<f64>>,
    /// Technique → examples actually trained (the slowest stop at a time cap).
    #[serde(default)]
    pub examples_run: HashMap<String, Option<usize>>,
}

impl NumpyPeer {
    /// Reads the peer's JSON, or `None` when the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, String> {
        load_peer(path)
    }

    /// Technique `t` on a layer pass at `batch`, in nanoseconds.
    pub fn layer(&self, case: &Case, pass: Pass, t: Technique, batch: usize) -> Option<f64> {
        *self
            .median_ns
            .get(&group(case.name, pass))?
            .get(&batch.to_string())?
            .get(t.name())?
    }

    /// How many times that cell was timed.
    pub fn repeats(&self, case: &Case, pass: Pass, t: Technique, batch: usize) -> Option<u64> {
        *self
            .samples
            .get(&group(case.name, pass))?
            .get(&batch.to_string())?
            .get(t.name())?
    }

    /// The fastest numpy technique of a layer pass at `batch`, with its time.
    pub fn fastest(&self, case: &Case, pass: Pass, batch: usize) -> Option<(Technique, f64)> {
        Technique::ALL
            .into_iter()
            .filter_map(|t| Some((t, self.layer(case, pass, t, batch)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The whole trainer's seconds per 1000 examples with technique `t`, and how many examples
    /// were trained to measure it (scaled when fewer than 1000).
    pub fn trainer_per_thousand(&self, t: Technique) -> Option<(f64, usize)> {
        let trainer = self.trainer.as_ref()?;
        let seconds = (*trainer.seconds.get(t.name())?)?;
        let run = trainer
            .examples_run
            .get(t.name())
            .copied()
            .flatten()
            .unwrap_or(trainer.examples);
        Some((seconds * 1000.0 / trainer.examples as f64, run))
    }
}

/// A peer's JSON file parsed, or `None` when the file does not exist.
fn load_peer<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Where the figures were measured.
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical cores.
    pub cores: usize,
    /// `rustc --version`.
    pub rustc: String,
    /// Date of the newest benchmark, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// The instruction-set level of the direct kernels, as the benchmarks chose it
    /// (`KERNELS_ISA`, else the best this CPU supports): run the renderer with the same
    /// environment as the benchmarks.
    pub isa: String,
}

impl Machine {
    /// Reads this machine's CPU, cores and compiler.
    pub fn describe(timings: &Timings) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                let field = |name: &str| {
                    info.lines()
                        .find(|l| l.starts_with(name))
                        .and_then(|l| l.split_once(':'))
                        .map(|(_, v)| v.trim().to_string())
                };
                let model = field("model name")?;
                Some(match (field("cpu family"), field("model")) {
                    (Some(family), Some(number)) => {
                        format!("{model} (family {family}, model {number})")
                    }
                    _ => model,
                })
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map_or("rustc (version unknown)".into(), |s| s.trim().to_string());
        let days = timings
            .measured
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400);
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            rustc,
            date: civil_date(days as i64),
            isa: kernels::Isa::active().name().into(),
        }
    }
}

/// `YYYY-MM-DD` of a day count since 1970-01-01 (Howard Hinnant's civil-from-days).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The seed's numpy timings in seconds (`seed-presentation-fr.txt`, part III.1), techniques
/// 1–4 in order; `None` where the seed timed fewer techniques. The seed ran each technique N
/// times over shapes it does not state, so only ratios between techniques compare.
pub struct SeedFigures {
    /// `fc`, `conv` or `pool`.
    pub layer: &'static str,
    /// Forward or backward.
    pub pass: Pass,
    /// Unbatched (false) or batched (true).
    pub batched: bool,
    /// Seconds per technique.
    pub seconds: [Option<f64>; 4],
}

const fn seed(
    layer: &'static str,
    pass: Pass,
    batched: bool,
    seconds: [Option<f64>; 4],
) -> SeedFigures {
    SeedFigures {
        layer,
        pass,
        batched,
        seconds,
    }
}

/// Every table the seed printed.
pub const SEED_FIGURES: [SeedFigures; 12] = [
    seed(
        "conv",
        Pass::Forward,
        false,
        [Some(25.805), Some(0.31598), Some(0.24008), Some(0.054496)],
    ),
    seed(
        "conv",
        Pass::Backward,
        false,
        [Some(51.104), Some(0.71468), Some(0.25395), Some(0.21120)],
    ),
    seed(
        "conv",
        Pass::Forward,
        true,
        [Some(1662.26), Some(25.9985), Some(3.42411), Some(3.79932)],
    ),
    seed(
        "conv",
        Pass::Backward,
        true,
        [Some(2393.45), Some(42.1735), Some(9.28613), Some(10.8808)],
    ),
    seed(
        "fc",
        Pass::Forward,
        false,
        [
            Some(0.069868),
            Some(0.032990),
            Some(0.00067965),
            Some(0.00015934),
        ],
    ),
    seed(
        "fc",
        Pass::Backward,
        false,
        [
            Some(0.0044147),
            Some(0.045964),
            Some(0.00092960),
            Some(0.00029791),
        ],
    ),
    seed(
        "fc",
        Pass::Forward,
        true,
        [
            Some(0.47479),
            Some(0.25221),
            Some(0.00095566),
            Some(0.00059582),
        ],
    ),
    seed(
        "fc",
        Pass::Backward,
        true,
        [
            Some(1.07972),
            Some(0.41480),
            Some(0.0036769),
            Some(0.0015284),
        ],
    ),
    seed(
        "pool",
        Pass::Forward,
        false,
        [Some(0.17076), Some(0.016333), None, None],
    ),
    seed(
        "pool",
        Pass::Backward,
        false,
        [Some(0.091755), Some(0.32677), Some(0.028838), None],
    ),
    seed(
        "pool",
        Pass::Forward,
        true,
        [Some(0.52249), Some(0.061667), Some(0.019400), None],
    ),
    seed(
        "pool",
        Pass::Backward,
        true,
        [Some(0.44999), Some(0.13950), Some(0.049497), None],
    ),
];

/// The seed's speed-up of technique `fast` over technique `slow` (indices 0–3) in one of its
/// tables.
pub fn seed_speedup(
    layer: &str,
    pass: Pass,
    batched: bool,
    slow: usize,
    fast: usize,
) -> Option<f64> {
    let fig = SEED_FIGURES
        .iter()
        .find(|f| f.layer == layer && f.pass == pass && f.batched == batched)?;
    Some(fig.seconds[slow]? / fig.seconds[fast]?)
}

/// The seed network's layers of one kind (`conv`, `pool`, `fc`, …).
pub fn cases_of_kind(kind: &str) -> impl Iterator<Item = &'static Case> + '_ {
    SEED_NETWORK.iter().filter(move |c| c.layer.kind() == kind)
}
