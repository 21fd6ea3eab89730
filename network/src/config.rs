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
}

impl Default for TrainConfig {
    /// The defaults of `network train`.
    fn default() -> Self {
        TrainConfig {
            epochs: 50,
            batch_size: 32,
            lr: 0.02,
            momentum: 0.9,
            weight_decay: 5e-4,
            schedule: Schedule::Cosine,
            seed: 1,
            threads: 1,
            technique: TechniqueChoice::Auto,
            augment: true,
            init: Init::He,
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
        )
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

/// Bytes as a short figure: `312 MB`, `4.2 GB`.
pub fn show_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} kB", (b / 1e3).max(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
