//! The `network` binary as a user runs it: an end-to-end run on the sample, eval and test,
//! and every kind of bad input, each a one-line error with a non-zero exit.

mod common;

use common::*;

#[test]
fn trains_evaluates_and_tests_end_to_end() {
    let data = cifar_dir("e2e-data", 200, 100);
    let run = temp_dir("e2e-run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let (ok, stdout, stderr) = run_cli(&[
        "--data",
        d,
        "--out",
        r,
        "--epochs",
        "2",
        "--batch-size",
        "20",
        "--threads",
        "2",
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("epoch 2/2") && stdout.contains("test accuracy"),
        "{stdout}"
    );
    assert!(
        stderr.contains("techniques (fastest measured per layer and pass)"),
        "{stderr}"
    );
    for file in [
        "model.safetensors",
        "latest",
        "lock",
        "steps.jsonl",
        "epochs.jsonl",
        "curves.png",
        "gen-000000000018/model.safetensors",
        "gen-000000000018/optimizer.safetensors",
        "gen-000000000018/state.json",
        "gen-000000000009/state.json",
    ] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    // Generation 0 (the starting point) is gone: the newest and the one before are kept.
    assert!(!run.join("gen-000000000000").exists());
    let lines = |f: &str| -> Vec<serde_json::Value> {
        String::from_utf8(bytes(&run.join(f)))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // A tenth of the 200 training images held out: 180 left, 9 steps an epoch.
    assert_eq!(lines("steps.jsonl").len(), 18);
    let epochs = lines("epochs.jsonl");
    assert_eq!(epochs.len(), 2);
    // Validation after every epoch; the test set only after the last.
    assert!(epochs.iter().all(|e| e["validation_accuracy"].is_f64()));
    assert!(epochs[0]["test_accuracy"].is_null() && epochs[1]["test_accuracy"].is_f64());
    assert!(
        stderr.contains("200 training images, 20 held out for validation"),
        "{stderr}"
    );

    // --json: stdout is exactly one JSON document.
    let (ok, stdout, stderr) = run_cli(&["eval", "--model", r, "--data", d, "--json"]);
    assert!(ok, "{stderr}");
    let eval: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let confusion = eval["confusion"].as_array().unwrap();
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 100);
    let last = epochs[1]["test_accuracy"].as_f64().unwrap();
    assert!(
        (eval["accuracy"].as_f64().unwrap() - last).abs() < 1e-6,
        "eval and training disagree on test accuracy"
    );

    let (ok, stdout, stderr) = run_cli(&["test", "--model", r, "--data", d, "--count", "2"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.matches("example ").count(), 2, "{stdout}");
    assert!(stdout.contains("airplane"), "{stdout}");
    // Without --data, a run directory is evaluated on the data it recorded.
    let (ok, stdout, stderr) = run_cli(&[
        "test",
        "--model",
        r,
        "--json",
        "--count",
        "18446744073709551615",
    ]);
    assert!(ok, "{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rows["examples"].as_array().unwrap().len(), 100);
    assert!(
        stderr.contains(&format!(
            "data: {}",
            std::path::absolute(&data).unwrap().display()
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(data);
    let _ = std::fs::remove_dir_all(run);
}

#[test]
fn bad_data_is_a_one_line_error() {
    let missing = temp_dir("missing");
    let m = missing.join("nothing-here");
    assert_one_line_error(
        &run_cli(&["--data", m.to_str().unwrap(), "--epochs", "1"]),
        "no such directory",
    );

    let empty = temp_dir("no-train-files");
    assert_one_line_error(
        &run_cli(&["--data", empty.to_str().unwrap()]),
        "no training file",
    );

    let partial = cifar_dir("partial-record", 10, 10);
    let mut bytes = bytes(&partial.join("data_batch_1.bin"));
    bytes.truncate(bytes.len() - 100);
    std::fs::write(partial.join("data_batch_1.bin"), &bytes).unwrap();
    assert_one_line_error(
        &run_cli(&["--data", partial.to_str().unwrap()]),
        "not a whole number of 3073-byte",
    );

    let label = cifar_dir("bad-label", 10, 10);
    let mut bytes = common::bytes(&label.join("test_batch.bin"));
    bytes[3073 * 4] = 12;
    std::fs::write(label.join("test_batch.bin"), &bytes).unwrap();
    assert_one_line_error(
        &run_cli(&["--data", label.to_str().unwrap()]),
        "record 4 has label 12",
    );

    let no_test = cifar_dir("no-test", 10, 10);
    std::fs::remove_file(no_test.join("test_batch.bin")).unwrap();
    assert_one_line_error(
        &run_cli(&["--data", no_test.to_str().unwrap()]),
        "missing test_batch.bin",
    );
}

#[test]
fn bad_hyper_parameters_are_one_line_errors() {
    let data = cifar_dir("hyper", 10, 10);
    let d = data.to_str().unwrap();
    for (flags, needle) in [
        (&["--lr", "-1"][..], "--lr must be a positive number"),
        (&["--momentum", "1.5"], "--momentum must be in [0, 1)"),
        (&["--batch-size", "0"], "--batch-size must be between 1 and"),
        (&["--epochs", "0"], "--epochs must be between 1 and"),
        (&["--threads", "0"], "--threads must be between 1 and"),
        (&["--epochs", "-1"], "--epochs"),
        (
            &["--batch-size", "99999999999"],
            "--batch-size must be between 1 and",
        ),
        (&["--technique", "einsum"], "unknown technique"),
        (&["--weight-decay", "NaN"], "--weight-decay"),
    ] {
        let mut args = vec!["--data", d];
        args.extend_from_slice(flags);
        assert_one_line_error(&run_cli(&args), needle);
    }
}

#[test]
fn bad_architectures_are_one_line_errors() {
    let data = cifar_dir("arch", 10, 10);
    let dir = temp_dir("arch-files");
    let input = r#"{"type":"input","channels":3,"height":32,"width":32}"#;
    for (name, json, needle) in [
        (
            "no-input",
            r#"[{"type":"fc","outputs":10},{"type":"softmax"}]"#.to_string(),
            "first layer must be the input",
        ),
        (
            "softmax-not-last",
            format!(r#"[{input},{{"type":"softmax"}},{{"type":"fc","outputs":10}}]"#),
            "last layer must be softmax",
        ),
        (
            "too-small",
            format!(
                r#"[{input},{{"type":"pool","size":2,"stride":2}},{{"type":"pool","size":2,"stride":2}},{{"type":"pool","size":2,"stride":2}},{{"type":"pool","size":2,"stride":2}},{{"type":"pool","size":2,"stride":2}},{{"type":"pool","size":2,"stride":2}},{{"type":"fc","outputs":10}},{{"type":"softmax"}}]"#
            ),
            "layer 6 (pool)",
        ),
        (
            "zero-filters",
            format!(
                r#"[{input},{{"type":"conv","filters":0,"size":5,"pad":-1}},{{"type":"fc","outputs":10}},{{"type":"softmax"}}]"#
            ),
            "zero filters",
        ),
        ("not-json", "[{".to_string(), "not-json.json"),
        (
            "unknown-layer",
            format!(r#"[{input},{{"type":"dropout"}},{{"type":"softmax"}}]"#),
            "unknown variant",
        ),
        (
            "wrong-classes",
            format!(r#"[{input},{{"type":"fc","outputs":7}},{{"type":"softmax"}}]"#),
            "7 outputs, but CIFAR-10 has 10",
        ),
    ] {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, json).unwrap();
        assert_one_line_error(
            &run_cli(&[
                "--data",
                data.to_str().unwrap(),
                "--arch",
                path.to_str().unwrap(),
            ]),
            needle,
        );
    }
}

#[test]
fn bad_checkpoints_are_one_line_errors_and_are_never_damaged() {
    let data = cifar_dir("ckpt-data", 40, 20);
    let run = temp_dir("ckpt-run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let (ok, _, stderr) = run_cli(&[
        "--data",
        d,
        "--out",
        r,
        "--epochs",
        "1",
        "--batch-size",
        "20",
        "--technique",
        "im2col",
    ]);
    assert!(ok, "{stderr}");

    assert_one_line_error(
        &run_cli(&["eval", "--model", "/nonexistent/run", "--data", d]),
        "/nonexistent/run",
    );

    let garbage = run.join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").unwrap();
    assert_one_line_error(
        &run_cli(&["eval", "--model", garbage.to_str().unwrap(), "--data", d]),
        "not a valid safetensors file",
    );

    // Weights of another architecture: conv1 with 8 filters.
    let dir = temp_dir("ckpt-other-arch");
    let arch = dir.join("narrow.json");
    std::fs::write(&arch, r#"[{"type":"input","channels":3,"height":32,"width":32},{"type":"conv","filters":8,"size":5,"pad":2},{"type":"relu"},{"type":"pool","size":2,"stride":2},{"type":"fc","outputs":10},{"type":"softmax"}]"#).unwrap();
    let model = run.join("model.safetensors");
    assert_one_line_error(
        &run_cli(&[
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--arch",
            arch.to_str().unwrap(),
            "--data",
            d,
        ]),
        "0.weight has shape [16, 3, 5, 5], the architecture expects [8, 3, 5, 5]",
    );
    assert_one_line_error(
        &run_cli(&[
            "--data",
            d,
            "--init",
            model.to_str().unwrap(),
            "--arch",
            arch.to_str().unwrap(),
        ]),
        "0.weight has shape",
    );

    // A fresh run never writes into a directory that holds a run.
    assert_one_line_error(
        &run_cli(&["--data", d, "--out", r, "--epochs", "1"]),
        "already holds a run",
    );

    // A run that diverges stops with the step, suggests a lower rate, and keeps the last good
    // checkpoint. (The rate is raised in the checkpoint's state.json to make the resumed run
    // diverge.)
    let latest = generation(&run);
    let state_file = latest.join("state.json");
    let mut state: serde_json::Value = serde_json::from_slice(&bytes(&state_file)).unwrap();
    state["settings"]["config"]["lr"] = serde_json::json!(1e30);
    state["settings"]["config"]["epochs"] = serde_json::json!(3);
    std::fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();
    let saved = snapshot(&run);
    let result = run_cli(&["--resume", r]);
    assert_ends_in_error(&result, "training diverged; try a lower --lr");
    assert!(
        result.2.contains("at step ") && result.2.contains("is kept"),
        "{}",
        result.2
    );
    assert!(saved == snapshot(&run), "the checkpoint changed");
    let fresh = dir.join("fresh-run");
    let result = run_cli(&[
        "--data",
        d,
        "--out",
        fresh.to_str().unwrap(),
        "--lr",
        "1e30",
    ]);
    assert_ends_in_error(&result, "training diverged");

    // A state that does not match its generation, tensors of another run, a state file that
    // does not parse: each refused, nothing changed.
    let mut bad = state.clone();
    bad["progress"]["step"] = serde_json::json!(999);
    std::fs::write(&state_file, serde_json::to_vec(&bad).unwrap()).unwrap();
    assert_one_line_error(&run_cli(&["--resume", r]), "does not match its generation");
    std::fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();
    let other = dir.join("other-run");
    let (ok, _, stderr) = run_cli(&[
        "--data",
        d,
        "--out",
        other.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "20",
        "--technique",
        "im2col",
    ]);
    assert!(ok, "{stderr}");
    let theirs = generation(&other);
    std::fs::copy(
        theirs.join("optimizer.safetensors"),
        latest.join("optimizer.safetensors"),
    )
    .unwrap();
    let saved = snapshot(&run);
    assert_one_line_error(&run_cli(&["--resume", r]), "belongs to another checkpoint");
    assert!(saved == snapshot(&run), "a refused resume changed the run");
    std::fs::write(&state_file, b"{ nope").unwrap();
    assert_one_line_error(&run_cli(&["--resume", r]), "is not a valid state file");
    assert_one_line_error(
        &run_cli(&["eval", "--model", r]),
        "is not a valid state file",
    );
}

#[test]
fn help_is_there() {
    let (ok, stdout, _) = run_cli(&["--help"]);
    assert!(
        ok && stdout.contains("eval") && stdout.contains("--batch-size"),
        "{stdout}"
    );
    let (ok, stdout, _) = run_cli(&["test", "--help"]);
    assert!(ok && stdout.contains("--count"), "{stdout}");
}

#[test]
fn fetch_script_checks_and_unpacks_a_local_tarball() {
    let dir = temp_dir("fetch");
    let src = cifar_dir("fetch-src", 10, 10);
    let staging = dir.join("staging/cifar-10-batches-bin");
    std::fs::create_dir_all(&staging).unwrap();
    for f in ["data_batch_1.bin", "test_batch.bin"] {
        std::fs::copy(src.join(f), staging.join(f)).unwrap();
    }
    let tarball = dir.join("cifar-10-binary.tar.gz");
    let status = std::process::Command::new("tar")
        .args([
            "-czf",
            tarball.to_str().unwrap(),
            "-C",
            dir.join("staging").to_str().unwrap(),
            "cifar-10-batches-bin",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/fetch_cifar10.sh");
    let dest = dir.join("data");
    // The official checksum does not match this home-made tarball: refused, nothing unpacked.
    let out = std::process::Command::new("bash")
        .args([script, tarball.to_str().unwrap(), dest.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected c32a1d4ab5d03f1284b67883e8d87530")
    );
    assert!(!dest.join("cifar-10-batches-bin").exists());
    // With its own checksum it unpacks where the trainer looks.
    let md5 = std::process::Command::new("md5sum")
        .arg(&tarball)
        .output()
        .unwrap();
    let md5 = String::from_utf8_lossy(&md5.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let out = std::process::Command::new("bash")
        .args([script, tarball.to_str().unwrap(), dest.to_str().unwrap()])
        .env("CIFAR10_MD5", &md5)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        bytes(&dest.join("cifar-10-batches-bin/test_batch.bin"))
            == bytes(&src.join("test_batch.bin"))
    );
}

#[test]
fn ctrl_c_saves_and_says_how_to_resume() {
    use std::io::{BufRead, BufReader};
    let data = cifar_dir("ctrl-c-data", 64, 16);
    let run = temp_dir("ctrl-c-run").join("run");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_network"))
        .args([
            "--data",
            data.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--epochs",
            "100000",
            "--batch-size",
            "16",
        ])
        .args(["--technique", "im2col"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let first_epoch = line.starts_with("epoch 1/");
        seen.push(line);
        if first_epoch {
            break;
        }
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    seen.extend(lines.map(|l| l.unwrap()));
    let status = child.wait().unwrap();
    let text = errors.join().unwrap();
    assert_eq!(status.code(), Some(130), "{seen:?} {text}");
    assert!(text.contains("interrupted at step"), "{text}");
    // The hint is the binary as invoked, and works as printed.
    let hint = format!(
        "{} train --resume {}",
        env!("CARGO_BIN_EXE_network"),
        run.display()
    );
    assert!(text.contains(&hint), "{text}");
    let step: u64 = String::from_utf8(bytes(&run.join("latest")))
        .unwrap()
        .trim()["gen-".len()..]
        .parse()
        .unwrap();
    assert!(step >= 4);
    // The saved run resumes, on the data it recorded.
    let (ok, stdout, stderr) = run_cli(&[
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--max-steps",
        &(step + 2).to_string(),
    ]);
    assert!(ok && stderr.contains("resuming"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "data: {}",
            std::path::absolute(&data).unwrap().display()
        )),
        "{stderr}"
    );
}

#[test]
fn init_starts_from_saved_weights() {
    let data = cifar_dir("init-data", 64, 32);
    let first = temp_dir("init-first").join("run");
    let (d, f) = (data.to_str().unwrap(), first.to_str().unwrap());
    let (ok, _, stderr) = run_cli(&[
        "--data",
        d,
        "--out",
        f,
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--technique",
        "im2col",
    ]);
    assert!(ok, "{stderr}");
    let model = first.join("model.safetensors");
    let second = temp_dir("init-second").join("run");
    let (ok, stdout, stderr) = run_cli(&[
        "--data",
        d,
        "--out",
        second.to_str().unwrap(),
        "--epochs",
        "1",
        "--max-steps",
        "0",
        "--init",
        model.to_str().unwrap(),
        "--technique",
        "im2col",
    ]);
    assert!(
        ok && stderr.contains(&format!("weights from {}", model.display())),
        "{stdout}\n{stderr}"
    );
    // Stopped before any step: the saved weights are the ones it started from.
    let (a, b) = (bytes(&model), bytes(&second.join("model.safetensors")));
    let st_a = safetensors::SafeTensors::deserialize(&a).unwrap();
    let st_b = safetensors::SafeTensors::deserialize(&b).unwrap();
    for name in st_a.names() {
        assert_eq!(
            st_a.tensor(name).unwrap().data(),
            st_b.tensor(name).unwrap().data(),
            "{name}"
        );
    }
}

/// Defaults resolve against the current directory: `runs/N` there, `data/…` there, or the
/// environment variables; never the build tree.
#[test]
fn defaults_resolve_against_the_current_directory() {
    let cwd = temp_dir("default-cwd");
    let quick = ["--epochs", "1", "--max-steps", "3", "--technique", "im2col"];
    let (ok, stdout, stderr) = run_cli_in(&cwd, &quick, &[]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("using the embedded sample (800 training images, 80 held out for validation; 200 test images)"),
        "{stderr}"
    );
    assert!(stderr.contains("scripts/fetch_cifar10.sh"), "{stderr}");
    assert!(stderr.contains("stopped at --max-steps"), "{stderr}");
    assert!(
        cwd.join("runs/1/latest").exists(),
        "no runs/1 in the current directory"
    );
    // A data directory where the default says, and a second run in runs/2.
    let data = cifar_dir("default-data", 32, 16);
    std::fs::create_dir_all(cwd.join("data")).unwrap();
    std::fs::rename(&data, cwd.join("data/cifar-10-batches-bin")).unwrap();
    let (ok, _, stderr) = run_cli_in(&cwd, &quick, &[]);
    assert!(
        ok && stderr.contains("cifar-10-batches-bin (32 training images, 3 held out"),
        "{stderr}"
    );
    assert!(cwd.join("runs/2/latest").exists());
    // The environment variables; a data directory named there is asked for: no fallback.
    let elsewhere = temp_dir("default-env");
    let runs = elsewhere.join("my-runs");
    let r = runs.to_str().unwrap();
    let env = [("NETWORK_RUNS", r), ("NETWORK_DATA", "/nonexistent/data")];
    assert_one_line_error(&run_cli_in(&elsewhere, &quick, &env), "/nonexistent/data");
    let data = cwd.join("data/cifar-10-batches-bin");
    let env = [
        ("NETWORK_RUNS", r),
        ("NETWORK_DATA", data.to_str().unwrap()),
    ];
    let (ok, _, stderr) = run_cli_in(&elsewhere, &quick, &env);
    assert!(
        ok && stderr.contains("(32 training images, 3 held out for validation; 16 test images)"),
        "{stderr}"
    );
    assert!(runs.join("1/latest").exists());
    for dir in [cwd, elsewhere] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_checkpoint_with_other_names_is_refused() {
    use safetensors::tensor::{Dtype, TensorView};
    let data = cifar_dir("names-data", 10, 10);
    let dir = temp_dir("names");
    let bytes = vec![0u8; 16 * 3 * 5 * 5 * 4];
    let view = TensorView::new(Dtype::F32, vec![16, 3, 5, 5], &bytes).unwrap();
    let file = safetensors::serialize(vec![("conv1.weight", view)], None).unwrap();
    let path = dir.join("renamed.safetensors");
    std::fs::write(&path, file).unwrap();
    assert_one_line_error(
        &run_cli(&[
            "eval",
            "--model",
            path.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ]),
        "has no tensor 0.weight",
    );
}

/// `--isa` is global: before the subcommand, after it, and with the top-level train, it
/// chooses the level; a bad level in any place is one line naming `--isa`, and a train flag
/// before a subcommand is still refused.
#[test]
fn isa_works_before_and_after_any_subcommand() {
    // Portable: always supported, and not the default on an x86-64 CPU with AVX2 or better.
    let level = kernels::Isa::Portable.name();
    let bench = [
        "--batches",
        "2",
        "--threads",
        "1",
        "--runs",
        "1",
        "--seconds",
        "0.01",
        "--technique",
        "direct",
    ];
    for args in [
        [&["--isa", level, "bench"][..], &bench].concat(),
        [&["bench"][..], &bench, &["--isa", level]].concat(),
    ] {
        let (ok, stdout, stderr) = run_cli(&args);
        assert!(ok, "{args:?}\n{stdout}\n{stderr}");
        let expected = format!("direct kernels at {level}");
        assert!(stdout.contains(&expected), "{args:?}\n{stdout}");
    }

    let data = cifar_dir("isa-data", 10, 10);
    let runs = temp_dir("isa-runs");
    let d = data.to_str().unwrap();
    let small = ["--data", d, "--epochs", "1", "--batch-size", "5"];
    let small = [&small[..], &["--technique", "direct", "--max-steps", "1"]].concat();
    let out = |n: usize| runs.join(n.to_string()).to_str().unwrap().to_owned();
    let (r1, r2, r3) = (out(1), out(2), out(3));
    for args in [
        [&["--isa", level, "train"][..], &small, &["--out", &r1]].concat(),
        [&["train"][..], &small, &["--out", &r2, "--isa", level]].concat(),
        [&["--isa", level][..], &small, &["--out", &r3]].concat(),
    ] {
        let (ok, stdout, stderr) = run_cli(&args);
        assert!(ok, "{args:?}\n{stdout}\n{stderr}");
        let expected = format!("instruction set of the direct kernels: {level}");
        assert!(stderr.contains(&expected), "{args:?}\n{stderr}");
    }

    for args in [
        &["--isa", "sse9", "bench"][..],
        &["bench", "--isa", "sse9"],
        &["--isa", "sse9", "train", "--epochs", "1"],
        &["--isa", "sse9", "--epochs", "1"],
    ] {
        assert_one_line_error(&run_cli(args), "--isa");
    }
    for isa in kernels::Isa::ALL.into_iter().filter(|isa| !isa.supported()) {
        assert_one_line_error(&run_cli(&["--isa", isa.name(), "bench"]), "not supported");
    }
    for args in [
        &["--epochs", "1", "bench"][..],
        &["--isa", level, "--epochs", "1", "bench"],
    ] {
        assert_one_line_error(
            &run_cli(args),
            "the subcommand 'bench' cannot be used with '--epochs",
        );
    }
    for dir in [data, runs] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `--time-budget` sizes the run from the speed of its first steps, says what it chose, records
/// the count (so that a resumed run keeps it) and finishes that many epochs. The warm-up is
/// checked against the chosen count, not the default one the budget replaces.
#[test]
fn a_time_budget_sizes_the_run_and_records_the_count() {
    let data = cifar_dir("budget-data", 100, 20);
    let run = temp_dir("budget-run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let (ok, stdout, stderr) = run_cli(&[
        "--data",
        d,
        "--out",
        r,
        "--time-budget",
        "10s",
        "--warmup",
        "0.5",
        "--batch-size",
        "10",
        "--threads",
        "1",
        "--technique",
        "direct",
        "--tta",
        "1",
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let chosen: usize = stderr
        .split("time budget 10 s: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no sizing note: {stderr}"));
    assert!(chosen >= 1);
    let latest = generation(&run);
    let state: serde_json::Value =
        serde_json::from_slice(&bytes(&latest.join("state.json"))).unwrap();
    let config = &state["settings"]["config"];
    assert_eq!(config["epochs"], serde_json::json!(chosen), "{config}");
    assert_eq!(config["time_budget"], serde_json::json!(10.0), "{config}");
    let epochs = String::from_utf8(bytes(&run.join("epochs.jsonl"))).unwrap();
    assert_eq!(epochs.lines().count(), chosen);
    assert!(
        stdout.contains(&format!("epoch {chosen}/{chosen}")),
        "{stdout}"
    );
    // A warm-up longer than the default 40 epochs waits for the chosen count: here (100
    // images, at least 0.5 s counted per epoch) at most 19 epochs fit, so 45 is refused after
    // sizing, naming --warmup and the budget, and nothing is left behind.
    let parent = temp_dir("budget-refused");
    let refused = parent.join("run");
    let o = refused.to_str().unwrap();
    let (ok, stdout, stderr) = run_cli(&[
        "--data",
        d,
        "--out",
        o,
        "--time-budget",
        "10s",
        "--warmup",
        "45",
        "--threads",
        "1",
        "--technique",
        "direct",
    ]);
    assert!(!ok, "{stdout}\n{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("");
    assert!(
        error.contains("--warmup must be between 0 and the ")
            && error.contains("--time-budget 10s chose"),
        "{stderr}"
    );
    assert!(!refused.exists(), "the refused run left {refused:?}");
    std::fs::remove_dir_all(&parent).unwrap();
    std::fs::remove_dir_all(&run).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
}

/// Output piped into a reader that has gone ends the process by SIGPIPE, quietly: no panic
/// at the print (Unix tools' behaviour; `network test | head -1`).
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_process_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let data = cifar_dir("cli-sigpipe-data", 64, 16);
    let run = std::env::temp_dir().join(format!("network-test-{}-sigpipe-run", std::process::id()));
    let _ = std::fs::remove_dir_all(&run);
    let (ok, _, stderr) = run_cli(&[
        "--data",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--epochs",
        "1",
        "--max-steps",
        "1",
    ]);
    assert!(ok, "{stderr}");
    // The reader closed before the first print, so that the result does not hang on timing.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_network"))
        .args(["test", "--model", run.to_str().unwrap(), "--count", "16"])
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(13), "{:?} {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&run);
    let _ = std::fs::remove_dir_all(&data);
}
