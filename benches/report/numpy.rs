//! The seed's numpy techniques timed on this machine beside Rust's (`scripts/numpy_layers.py`):
//! rows under each layer's tables, the section that answers the seed's question in both
//! languages, and its findings.

use std::fmt::Write;

use kernels::Technique;
use study::{Case, Pass, SEED_NETWORK, seed_case};

use crate::charts;
use crate::data::{NumpyPeer, Timings, cases_of_kind, seed_speedup};
use crate::markdown::{opt, ratio, time};

/// The batch of the comparison: the seed's.
const B: usize = 5;

/// A numpy time, marked `†` when it was timed fewer than 3 times (the slowest Python loops).
fn marked(np: &NumpyPeer, case: &Case, pass: Pass, t: Technique, batch: usize) -> Option<String> {
    let ns = np.layer(case, pass, t, batch)?;
    let few = np.repeats(case, pass, t, batch).is_some_and(|n| n < 3);
    Some(format!("{}{}", time(ns), if few { "†" } else { "" }))
}

/// Rows under a layer's Rust rows at `batch`: numpy's time per technique, its speed-up over
/// its own loops, and how many times Rust's time for the same technique it takes; `pad` empty
/// cells close the row under other peers' columns.
pub fn layer_rows(
    s: &mut String,
    np: &NumpyPeer,
    case: &Case,
    pass: Pass,
    batch: usize,
    t: &Timings,
    pad: usize,
) {
    let naive = np.layer(case, pass, Technique::Naive, batch);
    let mut row = |label: &str, f: &dyn Fn(Technique) -> Option<String>| {
        let mut cells: Vec<String> = Technique::ALL
            .iter()
            .map(|&tq| f(tq).unwrap_or("–".into()))
            .collect();
        cells.extend(std::iter::repeat_n("–".to_string(), pad));
        let _ = writeln!(s, "| b={batch} {label} | {} |", cells.join(" | "));
    };
    row("numpy time", &|tq| marked(np, case, pass, tq, batch));
    row("numpy speed-up over its naive", &|tq| {
        Some(ratio(naive? / np.layer(case, pass, tq, batch)?))
    });
    row("numpy ÷ Rust, same technique", &|tq| {
        Some(ratio(
            np.layer(case, pass, tq, batch)? / t.layer(case, pass, tq, batch)?,
        ))
    });
}

/// The header line of the numpy peer, for the top of `TIMINGS.md`.
pub fn peer_line(np: &NumpyPeer) -> String {
    format!(
        "**numpy on this machine.** The seed's four techniques as it wrote them \
         (`scripts/numpy_layers.py`: every index a loop; one loop per output with a whole-window \
         `np.sum`; reductions along axes of broadcast products; one `np.einsum`, in the im2col \
         column), numpy {} on Python {}, {} BLAS thread{}, {}; every technique's outputs checked \
         against the Rust kernels' on the same inputs before timing. Medians of repeats; † marks \
         a cell timed fewer than 3 times.{}\n",
        np.numpy,
        np.python,
        np.threads,
        if np.threads == 1 { "" } else { "s" },
        np.cpu,
        if np.quick {
            " **Quick run**: fewer repeats and trainer examples."
        } else {
            ""
        }
    )
}

/// The section: the seed's question answered in both languages, layer by layer, then the
/// whole trainer.
pub fn section(s: &mut String, t: &Timings, np: &NumpyPeer) {
    let _ = writeln!(s, "## The seed's question in both languages\n");
    let _ = writeln!(
        s,
        "![numpy and Rust, technique by technique]({})\n",
        charts::LADDERS
    );
    let _ = writeln!(
        s,
        "What does each technique buy over the loops? Speed-up of each technique over the naive \
         one at batch {B}, in numpy on this machine, in the seed's own table (its batched \
         figures, same layer kind), and in Rust; then how many times Rust's time numpy takes \
         with the same technique (numpy's einsum against Rust's im2col + GEMM).\n"
    );
    let _ = writeln!(
        s,
        "| layer, pass | technique | numpy | speed-up: numpy | seed | Rust | numpy ÷ Rust |"
    );
    let _ = writeln!(s, "| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for case in &SEED_NETWORK {
        for pass in Pass::ALL {
            for (k, tq) in Technique::ALL[..4].iter().copied().enumerate() {
                let Some(ns) = np.layer(case, pass, tq, B) else {
                    continue;
                };
                let np_naive = np.layer(case, pass, Technique::Naive, B);
                let rust = t.layer(case, pass, tq, B);
                let rust_naive = t.layer(case, pass, Technique::Naive, B);
                let _ = writeln!(
                    s,
                    "| {} {} | {tq} | {} | {} | {} | {} | {} |",
                    case.name,
                    pass.name(),
                    marked(np, case, pass, tq, B).unwrap_or_default(),
                    opt(np_naive.map(|n| n / ns), ratio),
                    opt(seed_speedup(case.layer.kind(), pass, true, 0, k), ratio),
                    opt(rust_naive.zip(rust).map(|(n, r)| n / r), ratio),
                    opt(rust.map(|r| ns / r), ratio),
                );
            }
        }
    }
    s.push('\n');
    if !np.fixes.is_empty() {
        let _ = writeln!(
            s,
            "What the seed's code needed to run and to compute the same quantities as the Rust \
             kernels (everything else is as the presentation wrote it):\n"
        );
        for fix in &np.fixes {
            let _ = writeln!(s, "- {fix}");
        }
        s.push('\n');
    }
    trainer(s, t, np);
}

/// The whole trainer in both languages, per technique.
fn trainer(s: &mut String, t: &Timings, np: &NumpyPeer) {
    let Some(tr) = &np.trainer else {
        return;
    };
    let _ = writeln!(
        s,
        "The seed's whole trainer (forward, backward and update of every layer, each technique on \
         every layer, batch {}, random images of CIFAR's shape), per 1000 examples; a technique \
         too slow to train 1000 stops at a time cap and its time is scaled from the examples it \
         trained (the count in brackets). Rust's column is the criterion benchmark of the same \
         network at batch 5 on one thread (below), scaled likewise where it timed fewer. The \
         seed's own: 364.2 s with loops, 78.3 s vectorised, 62.0 s with batches.\n",
        tr.batch
    );
    let _ = writeln!(s, "| technique | numpy | Rust | numpy ÷ Rust |");
    let _ = writeln!(s, "| --- | ---: | ---: | ---: |");
    for tq in Technique::ALL {
        let numpy = np.trainer_per_thousand(tq);
        let rust = crate::markdown::trainer_per_thousand(t, tq);
        if numpy.is_none() && rust.is_none() {
            continue;
        }
        let scaled = |(ns, run): (f64, usize)| crate::markdown::scaled_time(ns, run);
        let _ = writeln!(
            s,
            "| {tq} | {} | {} | {} |",
            numpy.map_or("–".into(), |(seconds, run)| scaled((seconds * 1e9, run))),
            rust.map_or("–".into(), scaled),
            opt(numpy.zip(rust).map(|((n, _), (r, _))| n * 1e9 / r), ratio)
        );
    }
    s.push('\n');
}

/// Findings from numpy on this machine, each number computed from the timings.
pub fn findings(t: &Timings, np: &NumpyPeer) -> Vec<String> {
    let mut out = Vec::new();
    let conv2 = seed_case("conv2").expect("seed layer");
    let speedup =
        |from: &dyn Fn(Technique) -> Option<f64>, tq| Some(from(Technique::Naive)? / from(tq)?);
    // 1. Does the seed's ladder hold here? Its einsum against its loops, and Rust's.
    let np_conv = |tq| np.layer(conv2, Pass::Forward, tq, B);
    let rs_conv = |tq| t.layer(conv2, Pass::Forward, tq, B);
    if let (Some(n2), Some(n3), Some(n4), Some(r2), Some(r4), Some(rd)) = (
        speedup(&np_conv, Technique::PerOutput),
        speedup(&np_conv, Technique::AxisReduce),
        speedup(&np_conv, Technique::Im2colGemm),
        speedup(&rs_conv, Technique::PerOutput),
        speedup(&rs_conv, Technique::Im2colGemm),
        speedup(&rs_conv, Technique::Direct),
    ) {
        out.push(format!(
            "The seed's ladder, on conv2's forward pass at batch {B}: numpy on this machine gains \
             {} with per-output sums, {} with axis reductions and {} with einsum over its loops \
             (the seed's table: {}, {}, {}). In Rust the same step from loops to per-output sums \
             gains {}, and the vectorised end of the ladder {} (im2col + GEMM) or {} \
             (direct): vectorising buys numpy an escape from the interpreter, Rust only the \
             hardware's vector width and cache reuse.",
            ratio(n2),
            ratio(n3),
            ratio(n4),
            opt(seed_speedup("conv", Pass::Forward, true, 0, 1), ratio),
            opt(seed_speedup("conv", Pass::Forward, true, 0, 2), ratio),
            opt(seed_speedup("conv", Pass::Forward, true, 0, 3), ratio),
            ratio(r2),
            ratio(r4),
            ratio(rd)
        ));
    }
    // 2. Language against language, technique by technique.
    let per_tq: Vec<(Technique, f64)> = Technique::ALL[..4]
        .iter()
        .filter_map(|&tq| Some((tq, np_conv(tq)? / rs_conv(tq)?)))
        .collect();
    let widest = per_tq.iter().max_by(|a, b| a.1.total_cmp(&b.1));
    let narrowest = per_tq.iter().min_by(|a, b| a.1.total_cmp(&b.1));
    if let (Some(&(wide, _)), Some(&(narrow, _))) = (widest, narrowest) {
        let list: Vec<String> = per_tq
            .iter()
            .map(|(tq, r)| format!("{tq} {}", ratio(*r)))
            .collect();
        out.push(format!(
            "The same technique in the two languages (conv2 forward, batch {B}, numpy's time ÷ \
             Rust's): {}. The gap is widest for {wide}{}, and narrowest for {narrow}.",
            list.join(", "),
            if wide == Technique::Naive {
                ", where every Python multiply-add pays the interpreter"
            } else {
                ""
            }
        ));
    }
    // 3. Whether axis-reduce beats einsum, in each language (the seed found it did on conv).
    let pairs: Vec<(&Case, f64, f64)> = cases_of_kind("conv")
        .filter_map(|c| {
            let n = np.layer(c, Pass::Backward, Technique::AxisReduce, B)?
                / np.layer(c, Pass::Backward, Technique::Im2colGemm, B)?;
            let r = t.layer(c, Pass::Backward, Technique::AxisReduce, B)?
                / t.layer(c, Pass::Backward, Technique::Im2colGemm, B)?;
            Some((c, n, r))
        })
        .collect();
    let seed = seed_speedup("conv", Pass::Backward, true, 3, 2).map(|x| 1.0 / x);
    if let (false, Some(seed)) = (pairs.is_empty(), seed) {
        let holds = pairs.iter().filter(|(_, n, _)| *n < 1.0).count();
        let verdict = match holds {
            0 => "does not hold on this machine for any convolution",
            h if h == pairs.len() => "holds on this machine for every convolution",
            _ => "holds on this machine for some convolutions only",
        };
        let list: Vec<String> = pairs
            .iter()
            .map(|(c, n, r)| format!("{} {} in numpy, {} in Rust", c.name, ratio(*n), ratio(*r)))
            .collect();
        out.push(format!(
            "The seed found axis reductions faster than its einsum on the convolution's backward \
             pass (axis-reduce's time ÷ einsum's: {} in its batched table); that conclusion \
             {verdict}: {} (batch {B}; below 1× axis-reduce is the faster; in Rust the \
             contraction is im2col + GEMM).",
            ratio(seed),
            list.join("; ")
        ));
    }
    out
}
