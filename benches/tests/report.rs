//! The report renderer, run as a user runs it, on a small synthetic criterion tree whose
//! figures are known, so every number it prints can be checked.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("study-report-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes one benchmark as criterion does; the directory name is deliberately unrelated to
/// the id, since the renderer must read ids from `benchmark.json`.
fn benchmark(root: &Path, n: usize, group: &str, function: &str, value: &str, median_ns: f64) {
    benchmark_of(root, n, group, function, value, median_ns, 1.0);
}

/// [`benchmark`] declaring `elements` per iteration, as the peaks declare their flops.
fn benchmark_of(
    root: &Path,
    n: usize,
    group: &str,
    function: &str,
    value: &str,
    median_ns: f64,
    elements: f64,
) {
    let dir = root.join(format!("bench{n}")).join("new");
    std::fs::create_dir_all(&dir).unwrap();
    let id = format!(
        r#"{{"group_id":"{group}","function_id":"{function}","value_str":"{value}","throughput":{{"Elements":{elements}}},"full_id":"x","directory_name":"x","title":"x"}}"#
    );
    std::fs::write(dir.join("benchmark.json"), id).unwrap();
    let estimate = format!(
        r#"{{"median":{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":{median_ns},"upper_bound":{median_ns}}},"point_estimate":{median_ns},"standard_error":1.0}}}}"#
    );
    std::fs::write(dir.join("estimates.json"), estimate).unwrap();
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn renders_tables_and_charts_from_criterion_results() {
    let criterion = fresh_dir("criterion");
    let out = fresh_dir("out");
    // conv1 forward: naive 1 ms, per-output 500 µs, axis-reduce 2 ms, im2col 100 µs at b = 5.
    let times = [
        ("naive", 1e6),
        ("per-output", 5e5),
        ("axis-reduce", 2e6),
        ("im2col", 1e5),
    ];
    for (n, (technique, ns)) in times.iter().enumerate() {
        benchmark(&criterion, n, "conv1/forward", technique, "5", *ns);
    }
    // 2·1024³ flops in 10 ms: 214.7 GFLOP/s.
    benchmark(&criterion, 10, "sgemm-peak", "threads", "1", 1e7);
    // The FMA peak of the level the renderer runs at: 246 GFLOP/s, so conv1's im2col
    // (122.9 GFLOP/s) is 50.0% of it; none for portable.
    let active = kernels::Isa::active();
    benchmark_of(&criterion, 11, "fma-peak", active.name(), "1", 1e6, 2.46e8);
    // conv1 forward at each level: direct 400 µs portable, 100 µs at the active level.
    benchmark(
        &criterion,
        13,
        "conv1-isa/forward",
        "direct-portable",
        "5",
        4e5,
    );
    let direct_active = format!("direct-{}", active.name());
    benchmark(
        &criterion,
        14,
        "conv1-isa/forward",
        &direct_active,
        "5",
        1e5,
    );
    // The same direct kernel in the layer table: 150 µs, 1.50× the section's 100 µs.
    benchmark(&criterion, 18, "conv1/forward", "direct", "5", 1.5e5);
    benchmark(
        &criterion,
        15,
        "conv1-isa/forward",
        "naive-portable",
        "5",
        1e6,
    );
    // The whole trainer: naive timed on 100 examples in 10 s (100 s per 1000), im2col on 1000
    // in 5 s.
    benchmark_of(&criterion, 16, "trainer", "naive", "5", 1e10, 100.0);
    benchmark_of(&criterion, 17, "trainer", "im2col", "5", 5e9, 1000.0);
    // numpy: naive 10 s (timed once), per-output 1 s, einsum 1 ms; no axis-reduce cell.
    std::fs::write(
        out.join("numpy_layers.json"),
        r#"{"cpu": "test cpu", "python": "3.11.7", "numpy": "2.0", "threads": 1, "quick": false,
            "fixes": ["time.clock is time.perf_counter"],
            "median_ns": {"conv1/forward": {"5": {"naive": 1e10, "per-output": 1e9,
                                                 "axis-reduce": null, "im2col": 1e6}}},
            "samples": {"conv1/forward": {"5": {"naive": 1, "per-output": 3, "im2col": 30}}},
            "trainer": {"batch": 5, "examples": 1000, "seconds": {"naive": 300.0},
                        "examples_run": {"naive": 15}}}"#,
    )
    .unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_report"))
        .args([
            "--criterion",
            criterion.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(out.join("TIMINGS.md")).unwrap();
    // conv1 at b = 5 is 5·16·32·32·75·2 = 12.3 MFLOP: 122.9 GFLOP/s in 100 µs, 57% of the peak.
    let isa_row = format!(
        "| conv1 | forward | 1.00 ms (12.3, –) | – | 400 µs (30.7, –) | 100 µs (123, {}) | 4.00× |",
        if active == kernels::Isa::Portable {
            "–"
        } else {
            "50.0%"
        }
    );
    let numpy_naive = "| b=5 numpy time | 10.0 s† | 1.00 s | – | 1.00 ms | – |";
    for needle in [
        "215 GFLOP/s on 1 thread",
        "| conv1 | forward | 1.00 ms | im2col | 100 µs | 10.0× | 123 | 50.0% | 57.2% | 10.0 s | 1.00 ms (im2col) | 10.0× |",
        "| b=5 of FMA peak | 5.0% | 10.0% | 2.5% | 50.0% |",
        numpy_naive,
        "| b=5 numpy speed-up over its naive | 1.00× | 10.0× | – | 10000× | – |",
        "| b=5 numpy ÷ Rust, same technique | 10000× | 2000× | – | 10.0× | – |",
        "- time.clock is time.perf_counter",
        "| naive | 300 s (scaled from 15) | 100 s (scaled from 100) | 3.00× |",
        "| naive | 5 | 1 | 100 s (scaled from 100) | 10 | 1.00× |",
        "over 1 layer passes the two medians differ by 1.50× at the median and 1.50× at worst (conv1 forward: 150 µs and 100 µs)",
        "| im2col | 5 | 1 | 5.00 s | 200 | 20.0× |",
        &isa_row,
        "| b=5 time | 1.00 ms | 500 µs | 2.00 ms | 100 µs |",
        "| b=5 speed-up over naive | 1.00× | 2.00× | 0.500× | 10.0× |",
        "| b=5 × fastest | 10.0× | 5.00× | 20.0× | 1.00× |",
        "| b=5 GFLOP/s | 12.3 | 24.6 | 6.14 | 123 |",
    ] {
        assert!(
            text.contains(needle),
            "TIMINGS.md lacks {needle:?}:\n{text}"
        );
    }
    for chart in [
        "headline.png",
        "conv1.png",
        "fc.png",
        "batch-sweep.png",
        "size-sweep.png",
        "numpy-rust.png",
    ] {
        let (w, h) = png_size(&out.join(chart));
        assert!(w >= 1000 && h >= 500, "{chart} is {w}×{h}");
    }
    let _ = std::fs::remove_dir_all(&criterion);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn without_results_it_says_what_to_run() {
    let empty = fresh_dir("empty");
    let output = Command::new(env!("CARGO_BIN_EXE_report"))
        .args([
            "--criterion",
            empty.to_str().unwrap(),
            "--out",
            empty.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cargo bench -p study"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let _ = std::fs::remove_dir_all(&empty);
}
