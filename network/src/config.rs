//! A run's settings: the hyper-parameters saved in `run.json`, the technique choice, and the
//! bounds every number a user gives is checked against before it costs anything.

use std::fmt;
use std::str::FromStr;

use kernels::Technique;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Init;
use crate::optim::Schedule;

/// Most epochs a run may ask for (a million passes over CIFAR-10 is years of work).
pub const MAX_EPOCHS: usize = 1_000_000;
/// Most examples per optimiser step.
pub const MAX_BATCH: usize = 65_536;
/// Most worker threads (each holds a whole workspace).
pub const MAX_THREADS: usize = 1024;

/// Which kernel technique a layer runs: the fastest measured per layer and pass at start-up,
/// or one technique everywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TechniqueChoice {
    /// Time every technique on every layer and pass at the real batch; keep the fastest.
    #[default]
    Auto,
    /// This technique for every layer and pass.
    One(Technique),
}

impl TechniqueChoice {
    /// `auto`, or the technique's name.
    pub fn name(self) -> &'static str {
        match self {
            TechniqueChoice::Auto => "auto",
            TechniqueChoice::One(t) => t.name(),
        }
    }
}

impl fmt::Display for TechniqueChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TechniqueChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "auto" {
            return Ok(TechniqueChoice::Auto);
        }
        s.parse()
            .map(TechniqueChoice::One)
            .map_err(|e: String| format!("{e}, or auto"))
    }
}

impl Serialize for TechniqueChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TechniqueChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Every training hyper-parameter, as saved in `run.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per optimiser step.
    pub batch_size: usize,
    /// Learning rate α.
    pub lr: f32,
    /// Momentum η.
    pub momentum: f32,
    /// Weight decay ε.
    pub weight_decay: f32,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Seed of every random draw.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
    /// The kernel technique per layer and pass.
    pub technique: TechniqueChoice,
    /// Random flips and shifts.
    pub augment: bool,
    /// Weight initialisation.
    pub init: Init,
    /// Training images held out for validation (runs older than the split held none out).
    #[serde(default = "Validation::none")]
    pub validation: Validation,
    /// How the rate follows the batch size (older runs: it did not).
    #[serde(default)]
    pub lr_scaling: LrScaling,
    /// Epochs of linear learning-rate warm-up from 0 (a fraction is allowed).
    #[serde(default)]
    pub warmup: f32,
    /// Label smoothing ε: the target is `1 − ε` on the label and `ε / classes` spread over all.
    #[serde(default)]
    pub label_smoothing: f32,
    /// Largest random shift of an augmented image, in pixels (with `augment`).
    #[serde(default = "default_shift")]
    pub shift: u32,
    /// Views of each test image averaged at the final evaluation: 1 the image, 2 and its
    /// mirror, more adds shifted crops (see [`crate::batch::tta_views`]).
    #[serde(default = "default_tta")]
    pub tta: usize,
    /// Evaluate the test set after every epoch, not only after the last (older runs did).
    #[serde(default = "yes")]
    pub test_every_epoch: bool,
    /// The wall-time budget the epoch count was sized for, in seconds, if one was given.
    #[serde(default)]
    pub time_budget: Option<f64>,
    /// Time constant, in epochs, of an exponential moving average of the weights that is
    /// evaluated and saved as the model (0: none, the trained weights are).
    #[serde(default)]
    pub ema: f32,
}

fn default_shift() -> u32 {
    2
}

fn default_tta() -> usize {
    2
}

fn yes() -> bool {
    true
}

/// Most pixels an augmented image may move.
pub const MAX_SHIFT: u32 = 8;
/// Longest time constant of the weights' average, in epochs: at batch 1 its decay is then
/// `1 − 2·10⁻⁶`, and an update of `(1 − d)·(w − a)` in f32 already drops the differences below
/// a few percent of the weight.
pub const MAX_EMA: f32 = 10.0;
/// The shortest `--time-budget`, in seconds.
pub const MIN_BUDGET: f64 = 10.0;
/// The longest `--time-budget`, in seconds: a week.
pub const MAX_BUDGET: f64 = 7.0 * 86_400.0;
/// Most views of a test image.
pub const MAX_TTA: usize = 50;

/// How many training images are held out (after a fixed shuffle) to choose settings on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    /// A tenth of the training images (5,000 of CIFAR-10's 50,000).
    Auto,
    /// This many.
    Images(usize),
}

impl Validation {
    /// None held out.
    pub fn none() -> Self {
        Validation::Images(0)
    }

    /// The images held out of `train` training images.
    pub fn count(self, train: usize) -> usize {
        match self {
            Validation::Auto => train / 10,
            Validation::Images(n) => n,
        }
    }
}

impl FromStr for Validation {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "auto" {
            return Ok(Validation::Auto);
        }
        s.parse()
            .map(Validation::Images)
            .map_err(|_| format!("{s:?} is not a number of images, or auto"))
    }
}

impl Serialize for Validation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Validation::Auto => s.serialize_str("auto"),
            Validation::Images(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Validation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(usize),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(n) => Ok(Validation::Images(n)),
            Raw::Name(name) => name.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// How the learning rate follows the batch size: `--lr` is the rate of a batch of
/// [`REFERENCE_BATCH`] examples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LrScaling {
    /// `--lr` whatever the batch (runs older than the scaling).
    #[default]
    None,
    /// `--lr × batch / 32`: the same step per example.
    Linear,
    /// `--lr × √(batch / 32)`.
    Sqrt,
}

/// The batch size `--lr` is meant for when the rate is scaled.
pub const REFERENCE_BATCH: usize = 32;

impl LrScaling {
    /// The rate for `batch` examples from the rate `lr` of [`REFERENCE_BATCH`].
    pub fn rate(self, lr: f32, batch: usize) -> f32 {
        let ratio = batch as f32 / REFERENCE_BATCH as f32;
        match self {
            LrScaling::None => lr,
            LrScaling::Linear => lr * ratio,
            LrScaling::Sqrt => lr * ratio.sqrt(),
        }
    }
}

impl Default for TrainConfig {
    /// The defaults of `network train`.
    fn default() -> Self {
        TrainConfig {
            epochs: 40,
            batch_size: 32,
            lr: 0.02,
            momentum: 0.9,
            weight_decay: 1e-3,
            schedule: Schedule::Cosine,
            seed: 1,
            threads: 1,
            technique: TechniqueChoice::Auto,
            augment: true,
            init: Init::He,
            validation: Validation::Auto,
            lr_scaling: LrScaling::Linear,
            warmup: 1.0,
            label_smoothing: 0.1,
            shift: 1,
            tta: 10,
            test_every_epoch: false,
            time_budget: None,
            ema: 0.0,
        }
    }
}

impl TrainConfig {
    /// Checks every value, naming the flag of the first that cannot work.
    pub fn validate(&self) -> Result<()> {
        in_range("--epochs", self.epochs, 1, MAX_EPOCHS)?;
        in_range("--batch-size", self.batch_size, 1, MAX_BATCH)?;
        in_range("--threads", self.threads, 1, MAX_THREADS)?;
        check_rates(
            "--lr",
            "--momentum",
            "--weight-decay",
            self.lr,
            self.momentum,
            self.weight_decay,
        )?;
        if !(self.warmup.is_finite() && (0.0..=self.epochs as f32).contains(&self.warmup)) {
            return Err(Error::Usage(format!(
                "--warmup must be between 0 and the {} epochs, not {}",
                self.epochs, self.warmup
            )));
        }
        if !(0.0..=MAX_EMA).contains(&self.ema) {
            return Err(Error::Usage(format!(
                "--ema must be between 0 and {MAX_EMA} epochs, not {}",
                self.ema
            )));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(Error::Usage(format!(
                "--label-smoothing must be in [0, 1), not {}",
                self.label_smoothing
            )));
        }
        in_range("--shift", self.shift as usize, 0, MAX_SHIFT as usize)?;
        in_range("--tta", self.tta, 1, MAX_TTA)?;
        match self.time_budget {
            Some(b) if !(MIN_BUDGET..=MAX_BUDGET).contains(&b) => Err(Error::Usage(format!(
                "--time-budget must be between {MIN_BUDGET} s (measuring the speed alone takes seconds) and a week, not {b} s"
            ))),
            _ => Ok(()),
        }
    }

    /// The factor on every learning rate at `step` (from 0) of `total`, with `per_epoch` steps
    /// an epoch: the batch-size scaling, the warm-up and the schedule.
    pub fn rate_factor(&self, step: u64, total: u64, per_epoch: usize) -> f32 {
        let scale = self.lr_scaling.rate(1.0, self.batch_size);
        let warm = f64::from(self.warmup) * per_epoch as f64;
        let warm = if warm > 0.0 {
            ((step + 1) as f64 / warm).min(1.0) as f32
        } else {
            1.0
        };
        scale * warm * self.schedule.factor(step, total)
    }

    /// The decay `d` of the weights' average after step `step` (from 1), with `per_epoch`
    /// steps an epoch, in `a ← d·a + (1 − d)·w`: one minus the inverse of the time constant in
    /// steps, but at most `(1 + step) / (10 + step)`, so that the starting weights fade within
    /// the first steps rather than over a time constant. `None` without an average.
    pub fn ema_decay(&self, step: u64, per_epoch: usize) -> Option<f32> {
        if self.ema == 0.0 {
            return None;
        }
        let steps = f64::from(self.ema) * per_epoch as f64;
        let early = (1 + step) as f64 / (10 + step) as f64;
        Some((1.0 - 1.0 / steps.max(1.0)).min(early) as f32)
    }
}

/// Checks a count against `[lo, hi]`, naming `flag`.
pub fn in_range(flag: &str, value: usize, lo: usize, hi: usize) -> Result<()> {
    if value < lo || value > hi {
        return Err(Error::Usage(format!(
            "{flag} must be between {lo} and {hi}, not {value}"
        )));
    }
    Ok(())
}

/// Checks a learning rate (positive, finite), a momentum (in [0, 1)) and a weight decay
/// (zero or positive, finite), naming each by the given names.
pub fn check_rates(
    lr_name: &str,
    momentum_name: &str,
    decay_name: &str,
    lr: f32,
    momentum: f32,
    decay: f32,
) -> Result<()> {
    if !(lr.is_finite() && lr > 0.0) {
        return Err(Error::Usage(format!(
            "{lr_name} must be a positive number, not {lr}"
        )));
    }
    if !(0.0..1.0).contains(&momentum) {
        return Err(Error::Usage(format!(
            "{momentum_name} must be in [0, 1), not {momentum}"
        )));
    }
    if !(decay.is_finite() && decay >= 0.0) {
        return Err(Error::Usage(format!(
            "{decay_name} must be zero or positive, not {decay}"
        )));
    }
    Ok(())
}

/// Forces the level of the direct kernels for the whole process: `--isa` where given, else
/// `KERNELS_ISA` where set, else the best this CPU supports. A level that does not exist or
/// that this CPU lacks is a one-line usage error.
pub fn select_isa(flag: Option<&str>) -> Result<kernels::Isa> {
    let usage = |e: kernels::IsaError| Error::Usage(format!("--isa: {e}"));
    let chosen = match flag {
        Some(name) => Some(name.parse::<kernels::Isa>().map_err(usage)?),
        None => kernels::Isa::from_env().map_err(|e| Error::Usage(e.to_string()))?,
    };
    let isa = chosen.unwrap_or_else(kernels::Isa::detect);
    kernels::force_isa(isa).map_err(usage)?;
    Ok(isa)
}

/// The machine's cores (1 if unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A memory size given on a command line: bytes, or a number with `K`, `M`, `G` or `T`
/// (powers of 1024, an optional trailing `B`, any case), e.g. `512M`, `2.5G`.
pub fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let upper = t.to_ascii_uppercase();
    let body = upper.strip_suffix('B').unwrap_or(&upper);
    let (number, scale) = match body.chars().last() {
        Some('K') => (&body[..body.len() - 1], 1u64 << 10),
        Some('M') => (&body[..body.len() - 1], 1 << 20),
        Some('G') => (&body[..body.len() - 1], 1 << 30),
        Some('T') => (&body[..body.len() - 1], 1 << 40),
        _ => (body, 1),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{t:?} is not a size (e.g. 512M, 4G)"))?;
    let bytes = value * scale as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < 2f64.powi(63)) {
        return Err(format!("{t:?} is not a positive size below 8 EiB"));
    }
    Ok(bytes as u64)
}

/// A wall time given on a command line, in seconds: a number with `s`, `m` or `h`, or several
/// (`1h30m`), or bare seconds; e.g. `15m`, `900`, `2.5h`.
pub fn parse_duration(text: &str) -> std::result::Result<f64, String> {
    let t = text.trim().to_ascii_lowercase();
    let bad = || format!("{text:?} is not a duration (e.g. 15m, 900s, 1h30m)");
    let mut total = 0.0;
    let mut number = String::new();
    for ch in t.chars() {
        let scale = match ch {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            _ => {
                number.push(ch);
                continue;
            }
        };
        total += number.parse::<f64>().map_err(|_| bad())? * scale;
        number.clear();
    }
    if !number.is_empty() {
        total += number.parse::<f64>().map_err(|_| bad())?;
    }
    // A week is far past any run this trainer makes; beyond it a typo is likelier.
    if !(total.is_finite() && total > 0.0 && total <= 7.0 * 86_400.0) || t.is_empty() {
        return Err(format!(
            "{text:?} must be a positive duration of at most a week"
        ));
    }
    Ok(total)
}

/// Bytes as a short figure: `312 MB`, `4.2 GB`.
pub fn show_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        // A few bytes show as 1 kB, none as 0.
        format!(
            "{:.0} kB",
            if bytes == 0 { 0.0 } else { (b / 1e3).max(1.0) }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes in the unit a reader takes in at once; nothing is not "1 kB".
    #[test]
    fn bytes_show_in_readable_units() {
        let shown: Vec<String> = [0, 500, 1_500, 2_000_000, 3_200_000_000]
            .into_iter()
            .map(show_bytes)
            .collect();
        assert_eq!(shown, ["0 kB", "1 kB", "2 kB", "2 MB", "3.2 GB"]);
    }

    #[test]
    fn sizes_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("2g"), Ok(2 << 30));
        assert_eq!(parse_bytes("1.5KB"), Ok(1536));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        for bad in ["", "-1G", "0", "G", "nan", "inf", "1e30T", "12Q"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("15m"), Ok(900.0));
        assert_eq!(parse_duration("1h30m"), Ok(5400.0));
        assert_eq!(parse_duration("90"), Ok(90.0));
        assert_eq!(parse_duration("2.5s"), Ok(2.5));
        for bad in ["", "m", "-5m", "0", "1x", "nan", "inf", "1mm"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_counts_and_round_trips() {
        assert_eq!(Validation::Auto.count(50_000), 5_000);
        assert_eq!(Validation::Images(7).count(50_000), 7);
        for v in [
            Validation::Auto,
            Validation::Images(0),
            Validation::Images(123),
        ] {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(serde_json::from_str::<Validation>(&json).unwrap(), v);
        }
        assert!("x".parse::<Validation>().is_err());
    }

    #[test]
    fn the_rate_factor_scales_warms_up_and_follows_the_schedule() {
        let c = TrainConfig {
            batch_size: 128,
            warmup: 2.0,
            schedule: Schedule::Constant,
            ..TrainConfig::default()
        };
        // Linear scaling: 128 / 32 = 4; warm-up over 2 epochs of 10 steps.
        assert_eq!(c.rate_factor(0, 100, 10), 4.0 / 20.0);
        assert_eq!(c.rate_factor(9, 100, 10), 4.0 * 10.0 / 20.0);
        assert_eq!(c.rate_factor(19, 100, 10), 4.0);
        assert_eq!(c.rate_factor(50, 100, 10), 4.0);
        let plain = TrainConfig {
            lr_scaling: LrScaling::None,
            ..c
        };
        assert_eq!(plain.rate_factor(50, 100, 10), 1.0);
    }

    #[test]
    fn the_average_decays_by_its_time_constant_after_the_first_steps() {
        let c = |ema| TrainConfig {
            ema,
            ..TrainConfig::default()
        };
        assert_eq!(c(0.0).ema_decay(5, 100), None);
        // Time constant 1 epoch of 100 steps: d = 0.99, from the step where (1 + t) / (10 + t)
        // exceeds it.
        assert_eq!(c(1.0).ema_decay(1, 100), Some(2.0 / 11.0));
        assert_eq!(c(1.0).ema_decay(100, 100), Some(101.0 / 110.0));
        assert_eq!(c(1.0).ema_decay(5000, 100), Some(0.99));
        // Shorter than a step: the average is the weights.
        assert_eq!(c(0.001).ema_decay(5000, 100), Some(0.0));
        for bad in [-1.0, f32::NAN, f32::INFINITY, 10.5] {
            let err = c(bad).validate().unwrap_err().to_string();
            assert!(err.contains("--ema"), "{err}");
        }
        // A run saved before the average existed has none.
        let mut old = serde_json::to_value(c(2.0)).unwrap();
        old.as_object_mut().unwrap().remove("ema");
        assert_eq!(serde_json::from_value::<TrainConfig>(old).unwrap(), c(0.0));
    }

    #[test]
    fn technique_choice_round_trips_through_its_name() {
        for name in [
            "auto",
            "naive",
            "per-output",
            "axis-reduce",
            "im2col",
            "direct",
        ] {
            let t: TechniqueChoice = name.parse().unwrap();
            assert_eq!(t.name(), name);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::from_str::<TechniqueChoice>(&json).unwrap(), t);
        }
        assert!(
            "fast"
                .parse::<TechniqueChoice>()
                .unwrap_err()
                .contains("or auto")
        );
    }
}
