//! `network bench`: the trainer's speed, its profile, and the report beside PyTorch's.

use std::path::Path;

use crate::error::{Error, Result};

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
        let rows = crate::bench::profile(batch, config, config.runs)?;
        let total: f64 = rows.iter().map(|r| r.3).sum();
        println!("one worker, batch {batch}: {:.3} ms per step", total * 1e3);
        for (layer, pass, technique, seconds) in rows {
            println!(
                "  {layer:<12} {pass:<8} {technique:<12} {:>9.1} µs {:>5.1}%",
                seconds * 1e6,
                100.0 * seconds / total
            );
        }
        return Ok(());
    }
    // Every input is read before minutes of measuring.
    let peer = out.peer.map(crate::bench::load).transpose()?;
    let run = match out.run {
        Some(dir) => {
            let checkpoint = crate::store::Checkpoint::latest(dir)?;
            Some((checkpoint.history(dir)?, checkpoint.state.settings.config))
        }
        None => None,
    };
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
    let rows = crate::bench::profile(PROFILE_BATCH, config, config.runs.max(15))?;
    let figures =
        run.as_ref()
            .zip(out.run)
            .map(|((history, config), dir)| crate::bench::RunFigures {
                dir: dir.display().to_string(),
                config,
                history,
            });
    let md = crate::bench::markdown(&ours, &peer, config, &rows, PROFILE_BATCH, figures);
    println!("\n{md}");
    if let Some(path) = out.report {
        crate::disk::write_atomic(path, md.as_bytes())?;
        println!("report written to {}", path.display());
    }
    Ok(())
}
