//! Vector width as a dimension of the study: the FMA peak of each instruction-set level, and
//! the naive and direct techniques timed at every level the CPU supports.

use std::fmt::Write;

use kernels::{Isa, Technique};
use study::{Case, ISA_BATCH, ISA_TECHNIQUES, Pass, SEED_NETWORK};

use crate::data::Timings;
use crate::markdown::{opt, percent, ratio, sig3, time};

/// The levels with results, slowest first.
fn measured(t: &Timings) -> Vec<Isa> {
    Isa::ALL
        .into_iter()
        .filter(|&isa| {
            SEED_NETWORK.iter().any(|case| {
                Pass::ALL
                    .into_iter()
                    .any(|pass| t.at_isa(case, pass, Technique::Direct, isa).is_some())
            })
        })
        .collect()
}

/// Lanes of one vector at `isa`, as the direct kernels use them.
fn lanes(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 | Isa::Portable => 8,
    }
}

/// The FMA peaks, one line per level, for the top of `TIMINGS.md`.
pub fn peak_line(t: &Timings) -> String {
    let levels: Vec<String> = Isa::ALL
        .into_iter()
        .filter(|&isa| t.fma_gflops(isa, 1).is_some())
        .map(|isa| {
            format!(
                "{} {} on 1 thread, {} on 2",
                isa.name(),
                opt(t.fma_gflops(isa, 1), sig3),
                opt(t.fma_gflops(isa, 2), sig3)
            )
        })
        .collect();
    if levels.is_empty() {
        return String::new();
    }
    format!(
        "**The core's limit.** A register-only loop of independent multiply-adds \
         (`kernels::fma_loop`, no load or store) at each instruction-set level, GFLOP/s: {}. \
         Every GFLOP/s figure below is also given as a fraction of the 1-thread FMA peak of the \
         level it ran at. The portable level has no fused instruction: its loop runs separate \
         chains of multiplies and of adds in SSE2 registers (runs before 2026-11-29 divided by \
         an earlier loop that LLVM had spilled, about a sixth of this rate).\n",
        levels.join("; ")
    )
}

/// The section: for every layer and pass at batch [`ISA_BATCH`], the naive and direct
/// techniques at each level, time and (for products) GFLOP/s with its fraction of the level's
/// FMA peak.
pub fn section(s: &mut String, t: &Timings) {
    let levels = measured(t);
    if levels.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Vector width: what each instruction-set level buys\n");
    let _ = writeln!(
        s,
        "One binary, the level forced per benchmark (`kernels::with_isa`; `KERNELS_ISA` or \
         `network --isa` do the same for a process). The direct kernels are written in each \
         level's vectors ({}); the naive loops are the same scalar source compiled for each \
         level, so what changes is only what the compiler's vectoriser makes of them. Batch \
         {ISA_BATCH}, one thread. For convolutions and the fully connected layer, GFLOP/s and \
         the fraction of that level's 1-thread FMA peak follow each time.\n",
        levels
            .iter()
            .map(|&isa| format!("{} lanes at {}", lanes(isa), isa.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut header = vec!["layer".to_string(), "pass".into()];
    for tq in ISA_TECHNIQUES {
        for &isa in &levels {
            header.push(format!("{tq} {}", isa.name()));
        }
    }
    header.push(format!(
        "direct {} ÷ {}",
        levels[0].name(),
        levels[levels.len() - 1].name()
    ));
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let _ = writeln!(s, "| --- | --- |{}", " ---: |".repeat(header.len() - 2));
    for case in &SEED_NETWORK {
        for pass in Pass::ALL {
            row(s, t, case, pass, &levels);
        }
    }
    s.push('\n');
    if let Some(text) = repeat_check(t) {
        let _ = writeln!(s, "{text}\n");
    }
}

/// The run's own repeat: the direct kernels at the level this machine picks are timed twice
/// in one run, in the layer tables and in this section (same kernel, batch, inputs), so the
/// spread of the two medians shows how far one criterion window can be off on this host.
pub fn repeat_check(t: &Timings) -> Option<String> {
    let active = Isa::active();
    let mut pairs: Vec<(f64, String)> = Vec::new();
    for case in &SEED_NETWORK {
        for pass in Pass::ALL {
            let a = t.layer(case, pass, Technique::Direct, ISA_BATCH);
            let b = t.at_isa(case, pass, Technique::Direct, active);
            if let Some((a, b)) = a.zip(b) {
                let what = format!("{} {}: {} and {}", case.name, pass.name(), time(a), time(b));
                pairs.push((a.max(b) / a.min(b), what));
            }
        }
    }
    if pairs.is_empty() {
        return None;
    }
    pairs.sort_by(|x, y| x.0.total_cmp(&y.0));
    let median = pairs[pairs.len() / 2].0;
    let (worst, what) = &pairs[pairs.len() - 1];
    Some(format!(
        "**The run's own repeat.** The direct kernels at {} (the level this machine picks) are \
         timed twice in this run, in the layer tables and in this section, with the same inputs: \
         over {} layer passes the two medians differ by {} at the median and {} at worst ({what}). \
         The two differ only in when they ran and where their buffers lie, so their gap is the \
         measurement's spread on this machine: read any single figure with that margin.",
        active.name(),
        pairs.len(),
        ratio(median),
        ratio(*worst),
    ))
}

/// One layer pass's row of the section.
fn row(s: &mut String, t: &Timings, case: &Case, pass: Pass, levels: &[Isa]) {
    let flops = case.layer.flops(pass, ISA_BATCH);
    let mut cells = vec![case.name.to_string(), pass.name().to_string()];
    for tq in ISA_TECHNIQUES {
        for &isa in levels {
            cells.push(opt(t.at_isa(case, pass, tq, isa), |ns| match flops {
                Some(f) => format!(
                    "{} ({}, {})",
                    time(ns),
                    sig3(f / ns),
                    opt(t.fma_gflops(isa, 1).map(|p| f / ns / p), percent)
                ),
                None => time(ns),
            }));
        }
    }
    let direct = |isa| t.at_isa(case, pass, Technique::Direct, isa);
    cells.push(opt(
        direct(levels[0])
            .zip(direct(levels[levels.len() - 1]))
            .map(|(a, b)| a / b),
        ratio,
    ));
    let _ = writeln!(s, "| {} |", cells.join(" | "));
}

/// Findings on vector width, computed from the timings.
pub fn findings(t: &Timings) -> Vec<String> {
    let levels = measured(t);
    let (Some(&first), Some(&last)) = (levels.first(), levels.last()) else {
        return Vec::new();
    };
    let convs: Vec<&Case> = crate::data::cases_of_kind("conv").collect();
    let gain = |tq: Technique| -> Vec<String> {
        convs
            .iter()
            .filter_map(|c| {
                let a = t.at_isa(c, Pass::Forward, tq, first)?;
                let b = t.at_isa(c, Pass::Forward, tq, last)?;
                Some(format!("{} {}", c.name, ratio(a / b)))
            })
            .collect()
    };
    let (direct, naive) = (gain(Technique::Direct), gain(Technique::Naive));
    if direct.is_empty() || naive.is_empty() {
        return Vec::new();
    }
    // A run from before the portable loop has no portable peak (see [`peak_line`]).
    let peaks = (t.fma_gflops(last, 1).zip(t.fma_gflops(first, 1)))
        .map(|(a, b)| format!(" (a {} higher FMA peak)", ratio(a / b)))
        .unwrap_or_default();
    let naive_max = convs
        .iter()
        .filter_map(|c| {
            Some(
                t.at_isa(c, Pass::Forward, Technique::Naive, first)?
                    / t.at_isa(c, Pass::Forward, Technique::Naive, last)?,
            )
        })
        .fold(0.0, f64::max);
    let why = if naive_max < 1.15 {
        " — Rust does not reorder a float sum, so a scalar accumulation stays scalar whatever \
         the width"
    } else {
        ""
    };
    vec![format!(
        "Vector width pays where the source is written for it: from {} to {}{peaks} the \
         direct convolution's forward pass at batch {ISA_BATCH} runs {} \
         faster; the naive loops compiled for each level: {}{why}.",
        first.name(),
        last.name(),
        direct.join(", "),
        naive.join(", ")
    )]
}
