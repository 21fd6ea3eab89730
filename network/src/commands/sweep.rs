//! `network sweep`: trains every trial of a space one after another, then writes the table
//! (`sweep.md`, `results.json`) and the chart (`sweep.png`) of validation accuracy per trial.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::arch::{LayerSpec, seed_network};
use crate::config::TrainConfig;
use crate::disk::write_atomic;
use crate::error::{Error, Result};
use crate::pictures;
use crate::run::RunOptions;
use crate::store::refuse_inside_run;
use crate::sweep::{Space, TrialResult, run_trial};

use super::{DataArgs, EXIT_INTERRUPTED, progress};

/// What `sweep` was asked to do.
pub struct SweepArgs {
    /// The space's JSON file.
    pub space: PathBuf,
    /// The sweep's directory: one run directory per trial, and the results.
    pub out: PathBuf,
    /// `--data`, if given.
    pub data: Option<PathBuf>,
    /// The layer list (the seed network if absent).
    pub arch: Option<Vec<LayerSpec>>,
    /// The settings no one gave (threads: every core).
    pub defaults: TrainConfig,
    /// Memory budget.
    pub options: RunOptions,
    /// Print the results as one JSON document on stdout.
    pub json: bool,
}

/// Runs the sweep; returns the exit code (130 when stopped, after saving the trial).
pub fn sweep(args: &SweepArgs, stop: &AtomicBool) -> Result<u8> {
    let trials = Space::load(&args.space, &args.defaults)?;
    prepare(&args.out)?;
    let source = DataArgs::resolve(args.data.clone());
    let data = source.load()?;
    source.note(&data, 0);
    let arch = args.arch.clone().unwrap_or_else(seed_network);
    let mut results = Vec::new();
    for (i, trial) in trials.iter().enumerate() {
        eprintln!("trial {}/{}: {}", i + 1, trials.len(), trial.label());
        let mut bars = progress::Bars::new(args.json);
        let result = run_trial(
            &args.out,
            i,
            trial,
            &arch,
            &data,
            &args.options,
            stop,
            &mut bars,
        )?;
        let Some(result) = result else {
            eprintln!(
                "interrupted in trial {}: run the same command again to go on",
                i + 1
            );
            return Ok(EXIT_INTERRUPTED);
        };
        results.push(result);
    }
    report(args, &results)?;
    Ok(0)
}

/// Creates the sweep's directory, or accepts one that holds only an earlier sweep's trials.
fn prepare(out: &Path) -> Result<()> {
    refuse_inside_run(out)?;
    if out.exists() && !out.is_dir() {
        return Err(Error::Usage(format!(
            "--out {} is not a directory",
            out.display()
        )));
    }
    if out.join("latest").exists() {
        return Err(Error::Usage(format!(
            "--out {} is a run directory, not a sweep's",
            out.display()
        )));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", out.display())))
}

/// The table, the JSON results and the chart.
fn report(args: &SweepArgs, results: &[TrialResult]) -> Result<()> {
    let pct = |a: Option<f32>| a.map_or("–".into(), |a| format!("{:.2}%", 100.0 * a));
    let best = results
        .iter()
        .filter_map(|r| r.validation)
        .fold(f32::NEG_INFINITY, f32::max);
    let mut md = format!(
        "# Sweep of {}\n\n| trial | settings | validation (last) | validation (best epoch) | test | training s |\n| ---: | --- | ---: | ---: | ---: | ---: |\n",
        args.space.display()
    );
    for r in results {
        let mark = if r.validation == Some(best) {
            " **best**"
        } else {
            ""
        };
        md += &format!(
            "| {} | {}{mark} | {} | {} | {} | {:.0} |\n",
            r.trial,
            r.label,
            pct(r.validation),
            pct(r.best_validation),
            pct(r.test),
            r.seconds
        );
    }
    write_atomic(&args.out.join("sweep.md"), md.as_bytes())?;
    let json = serde_json::to_string_pretty(results).expect("results serialise");
    write_atomic(&args.out.join("results.json"), json.as_bytes())?;
    let rows: Vec<(String, f64)> = results
        .iter()
        .filter_map(|r| {
            r.validation
                .map(|v| (r.label.clone(), 100.0 * f64::from(v)))
        })
        .collect();
    let chart = args.out.join("sweep.png");
    pictures::draw_bars(
        &chart,
        &format!("validation accuracy per trial of {}", args.space.display()),
        &rows,
    )?;
    if args.json {
        println!("{json}");
    } else {
        print!("{md}");
    }
    eprintln!(
        "table in {}, chart in {}",
        args.out.join("sweep.md").display(),
        chart.display()
    );
    Ok(())
}
