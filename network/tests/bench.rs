//! `network bench`: it measures, writes its figures as JSON, renders the report beside a peer's
//! figures, and refuses bad arguments with one line.

mod common;

use common::*;
use network::bench::{BenchReport, flops_per_example};

/// `network bench`, one short run of each figure, and `extra` arguments.
fn short_bench(extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "bench",
        "--runs",
        "1",
        "--seconds",
        "0.01",
        "--technique",
        "im2col",
    ];
    args.extend_from_slice(extra);
    run_cli(&args)
}

/// [`short_bench`] at batch 2 on one thread.
fn quick_bench(extra: &[&str]) -> (bool, String, String) {
    short_bench(&[&["--batches", "2", "--threads", "1"][..], extra].concat())
}

/// Lists as the help shows them (`--batches 1 2`) and with commas (`--batches 1,2`).
#[test]
fn bench_takes_lists_with_spaces_or_commas() {
    for lists in [
        &["--batches", "1", "2", "--threads", "1"][..],
        &["--batches", "1,2", "--threads", "1"][..],
    ] {
        let (ok, stdout, stderr) = short_bench(lists);
        assert!(ok, "{lists:?}\n{stdout}\n{stderr}");
        for batch in ["train     batch   1", "train     batch   2"] {
            assert!(stdout.contains(batch), "{lists:?}\n{stdout}");
        }
    }
}

#[test]
fn bench_measures_and_reports() {
    let dir = temp_dir("bench");
    let json = dir.join("ours.json");
    let (ok, stdout, stderr) = quick_bench(&["--json", json.to_str().unwrap()]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("train     batch   2"), "{stdout}");
    let ours: BenchReport = serde_json::from_slice(&bytes(&json)).unwrap();
    assert_eq!(ours.measurements.len(), 2);
    let train = ours.get("train", 2, 1).unwrap();
    assert!(train.examples_per_second > 0.0 && train.gflops > 0.0);
    let expected =
        train.examples_per_second * (ours.mflop_per_example.0 + ours.mflop_per_example.1) / 1e3;
    assert!((train.gflops - expected).abs() < 1e-9 * expected.max(1.0));

    // The same figures as a "peer": every ratio in the report is then measured against them.
    let mut peer = ours.clone();
    peer.implementation = "pytorch".into();
    peer.version = Some("test".into());
    for m in &mut peer.measurements {
        m.examples_per_second /= 2.0;
    }
    let peer_path = dir.join("peer.json");
    std::fs::write(&peer_path, serde_json::to_vec(&peer).unwrap()).unwrap();
    let report = dir.join("TRAINING.md");
    let (ok, stdout, stderr) = quick_bench(&[
        "--peer",
        peer_path.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let md = String::from_utf8(bytes(&report)).unwrap();
    assert!(
        md.contains("| mode | batch | threads | ours | PyTorch |"),
        "{md}"
    );
    assert!(md.contains("| train | 2 | 1 |"), "{md}");
    assert!(md.contains("### Where a training step's time goes"), "{md}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_flop_count_is_the_seed_networks() {
    let net = network::model::Network::new(
        &network::arch::seed_network(),
        network::model::Init::He,
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0),
    )
    .unwrap();
    let (forward, backward) = flops_per_example(&net);
    // conv1 2·16·3·25·1024, conv2 2·20·16·25·256, conv3 2·20·20·25·64, fc 2·10·320.
    let convs = [2_457_600.0, 4_096_000.0, 1_280_000.0];
    let fc = 6_400.0;
    assert_eq!(forward, convs.iter().sum::<f64>() + fc);
    assert_eq!(backward, convs[0] + 2.0 * (convs[1] + convs[2] + fc));
}

#[test]
fn bad_bench_arguments_are_one_line_errors() {
    assert_one_line_error(&run_cli(&["bench", "--batches", "0"]), "--batches");
    assert_one_line_error(&run_cli(&["bench", "--threads", "0"]), "--threads");
    assert_one_line_error(&run_cli(&["bench", "--runs", "0"]), "--runs");
    // Sizes refused before anything is allocated or timed.
    let huge_runs = ["bench", "--runs", "18446744073709551615"];
    assert_one_line_error(&run_cli(&huge_runs), "--runs");
    assert_one_line_error(&run_cli(&["bench", "--seconds", "inf"]), "--seconds");
    assert_one_line_error(&run_cli(&["bench", "--batches", "65537"]), "--batches");
    // A budget of its own, so that the refusal does not depend on this machine's memory.
    let too_big = ["bench", "--batches", "4096", "--memory-budget", "1G"];
    assert_one_line_error(&run_cli(&too_big), "memory budget");
    let profile = ["bench", "--profile", "1024", "--memory-budget", "1G"];
    assert_one_line_error(&run_cli(&profile), "memory budget");
    assert_one_line_error(
        &run_cli(&["bench", "--report", "/tmp/never.md"]),
        "--report needs --peer",
    );
    assert_one_line_error(
        &run_cli(&["bench", "--peer", "/nonexistent/peer.json"]),
        "/nonexistent/peer.json",
    );
    assert_one_line_error(
        &run_cli(&["bench", "--technique", "fastest"]),
        "--technique",
    );
    assert_one_line_error(&run_cli(&["bench", "--isa", "sse9"]), "--isa");
    for isa in kernels::Isa::ALL.into_iter().filter(|isa| !isa.supported()) {
        assert_one_line_error(&run_cli(&["bench", "--isa", isa.name()]), "not supported");
    }
}

#[test]
fn bench_runs_at_a_forced_level_and_states_every_fma_peak() {
    let (ok, stdout, stderr) = quick_bench(&["--isa", "portable"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("direct kernels at portable"), "{stdout}");
    for isa in kernels::Isa::available() {
        assert!(
            stdout.contains(&format!("FMA peak ({isa}) on 1 thread(s)")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("of the portable FMA peak"), "{stdout}");
}
