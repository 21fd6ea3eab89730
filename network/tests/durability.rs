//! A run survives anything: a stop after every single write, fsync, rename, link or removal of
//! its directory (deterministic fault injection, every k), real SIGKILLs at random moments, and
//! a second process. After each, what was saved loads, and resuming reaches the uninterrupted
//! run's weights bit for bit.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::*;
use network::Error;
use network::arch::seed_network;
use network::config::TrainConfig;
use network::data::Cifar10;
use network::disk::{Fault, FaultAction};
use network::events::{Event, Observer, Quiet};
use network::infer::Model;
use network::run::{NewRun, Run, RunOptions};
use network::store::{Checkpoint, Place};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn config() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 16,
        threads: 1,
        seed: 3,
        technique: "direct".parse().unwrap(),
        ..TrainConfig::default()
    }
}

fn options(fault: Option<u64>) -> RunOptions {
    RunOptions {
        fault: fault.map(|after| Fault {
            after,
            action: FaultAction::Fail,
        }),
        ..RunOptions::default()
    }
}

/// Every tensor value of the run's newest checkpoint (weights and momentum), by name.
fn tensors(run: &Path) -> Vec<(String, Vec<u8>)> {
    let checkpoint = Checkpoint::latest(run).unwrap();
    let mut all = Vec::new();
    for (kind, file) in [
        ("model", &checkpoint.model),
        ("optimizer", &checkpoint.optimizer),
    ] {
        let bytes = bytes(file);
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for (name, view) in st.tensors() {
            all.push((format!("{kind}:{name}"), view.data().to_vec()));
        }
    }
    all.sort();
    all
}

/// Creates a run in `dir` and trains it to the end, stopping at the `fault`-th operation.
fn create_and_fit(data: &Path, dir: &Path, fault: Option<u64>) -> network::Result<()> {
    let new = NewRun {
        arch: seed_network(),
        config: config(),
        ..NewRun::default()
    };
    let data = Cifar10::load_dir(data)?;
    let mut run = Run::create(&Place::Dir(dir.to_path_buf()), data, new, &options(fault))?;
    run.fit(None, &AtomicBool::new(false), &mut Quiet).map(drop)
}

/// What a stop must leave: a run that loads and resumes to `want` — or, if the stop came before
/// the first checkpoint was complete, a directory that says so and takes a new run.
fn check_survivor(data: &Path, dir: &Path, want: &[(String, Vec<u8>)], k: u64) {
    if !dir.join("latest").exists() {
        let e = Run::resume(dir, None, &options(None)).err().unwrap();
        assert!(
            e.to_string().contains("no complete checkpoint"),
            "k={k}: {e}"
        );
        create_and_fit(data, dir, None).unwrap_or_else(|e| panic!("k={k}: a new run: {e}"));
        assert!(tensors(dir) == want, "k={k}: the new run differs");
        return;
    }
    let checkpoint = Checkpoint::latest(dir).unwrap();
    // The stable path holds a complete model: the newest generation's or the one before.
    let stable = bytes(&dir.join("model.safetensors"));
    let step = checkpoint.state.progress.step;
    let generations: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("gen-"))
        .map(|p| bytes(&p.join("model.safetensors")))
        .collect();
    assert!(
        generations.contains(&stable),
        "k={k}: model.safetensors is no generation's"
    );
    Model::load(dir, None, 1)
        .unwrap_or_else(|e| panic!("k={k}: eval cannot load step {step}: {e}"));
    let mut run = Run::resume(dir, None, &options(None)).unwrap_or_else(|e| panic!("k={k}: {e}"));
    run.fit(None, &AtomicBool::new(false), &mut Quiet).unwrap();
    drop(run);
    assert!(
        tensors(dir) == want,
        "k={k}: resumed from step {step}, the weights differ"
    );
}

#[test]
fn a_stop_after_any_operation_of_a_save_loses_nothing() {
    let data = cifar_dir("fault-data", 48, 16);
    let reference = temp_dir("fault-reference");
    create_and_fit(&data, &reference, None).unwrap();
    let want = tensors(&reference);
    let steps = Checkpoint::latest(&reference)
        .unwrap()
        .history(&reference)
        .unwrap()
        .steps;
    let mut k = 1;
    loop {
        let dir = temp_dir(&format!("fault-{k}"));
        match create_and_fit(&data, &dir, Some(k)) {
            Err(Error::Injected(n)) => assert_eq!(n, k),
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&dir);
                break;
            }
            Err(e) => panic!("k={k}: {e}"),
        }
        check_survivor(&data, &dir, &want, k);
        let history = Checkpoint::latest(&dir).unwrap().history(&dir).unwrap();
        assert_eq!(history.steps, steps, "k={k}: the history differs");
        let _ = std::fs::remove_dir_all(&dir);
        k += 1;
    }
    // Three saves (the start, two epochs), each of more than twenty operations.
    assert!(k > 60, "only {} operations were stopped at", k - 1);
    eprintln!(
        "stopped after each of {} operations, every one survived",
        k - 1
    );
    for dir in [data, reference] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Between saves the steps are journaled past the checkpoint (every step here: 3 steps an
/// epoch), where no history reads them; each save takes them in.
#[test]
fn steps_are_journaled_between_saves_and_no_history_includes_them() {
    struct Look {
        dir: std::path::PathBuf,
        /// At each step's event: the step, the journal's steps, the history's length.
        seen: Vec<(u64, Vec<u64>, usize)>,
    }
    impl Observer for Look {
        fn event(&mut self, event: &Event) {
            if let Event::Step { record, .. } = event {
                let checkpoint = Checkpoint::latest(&self.dir).unwrap();
                let journal = checkpoint
                    .journal(&self.dir)
                    .iter()
                    .map(|s| s.step)
                    .collect();
                let history = checkpoint.history(&self.dir).unwrap().steps.len();
                self.seen.push((record.step, journal, history));
            }
        }
    }
    let data = cifar_dir("journal-data", 48, 16);
    let dir = temp_dir("journal");
    let new = NewRun {
        arch: seed_network(),
        config: config(),
        ..NewRun::default()
    };
    let loaded = Cifar10::load_dir(&data).unwrap();
    let mut run = Run::create(&Place::Dir(dir.clone()), loaded, new, &options(None)).unwrap();
    let mut look = Look {
        dir: dir.clone(),
        seen: Vec::new(),
    };
    run.fit(None, &AtomicBool::new(false), &mut look).unwrap();
    let want: Vec<(u64, Vec<u64>, usize)> = vec![
        (1, vec![], 0),
        (2, vec![1], 0),
        (3, vec![1, 2], 0),
        (4, vec![], 3),
        (5, vec![4], 3),
        (6, vec![4, 5], 3),
    ];
    assert_eq!(look.seen, want);
    drop(run);
    let checkpoint = Checkpoint::latest(&dir).unwrap();
    assert!(checkpoint.journal(&dir).is_empty());
    let len = std::fs::metadata(dir.join("steps.jsonl")).unwrap().len();
    assert_eq!(len, checkpoint.state.progress.steps_bytes);
    for d in [data, dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A follower reads the journal from where its last read ended, and starts again from the
/// checkpoint once the journal was cut and rewritten under it.
#[test]
fn the_journal_is_read_on_from_an_offset_and_again_after_a_cut() {
    use std::io::Write;
    let data = cifar_dir("journal-from-data", 48, 16);
    let dir = temp_dir("journal-from");
    create_and_fit(&data, &dir, None).unwrap();
    let checkpoint = Checkpoint::latest(&dir).unwrap();
    let start = checkpoint.state.progress.steps_bytes;
    let path = dir.join("steps.jsonl");
    let append = |steps: &[(u64, f32)]| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        for &(step, loss) in steps {
            writeln!(
                f,
                r#"{{"step":{step},"epoch":3,"loss":{loss},"accuracy":0.5,"examples":8}}"#
            )
            .unwrap();
        }
    };
    let read = |from: u64| {
        checkpoint
            .journal_from(&dir, from)
            .map(|(steps, end)| (steps.iter().map(|s| s.step).collect::<Vec<u64>>(), end))
    };
    append(&[(7, 1.5), (8, 1.25)]);
    let (steps, end) = read(0).unwrap();
    assert_eq!(steps, vec![7, 8]);
    assert_eq!(end, std::fs::metadata(&path).unwrap().len());
    assert_eq!(read(end), Some((vec![], end)));
    append(&[(9, 1.0)]);
    let (steps, later) = read(end).unwrap();
    assert_eq!((steps, later > end), (vec![9], true));
    // A line being written (or torn by a kill) is not read, and the next read starts before it.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    write!(f, r#"{{"step":10,"epoch":3,"lo"#).unwrap();
    assert_eq!(read(end), Some((vec![9], later)));
    assert_eq!(read(later), Some((vec![], later)));
    writeln!(f, r#"ss":0.5,"accuracy":0.5,"examples":8}}"#).unwrap();
    let (steps, after) = read(later).unwrap();
    assert_eq!(
        (steps, after),
        (vec![10], std::fs::metadata(&path).unwrap().len())
    );
    // A resume cuts the journal and journals again: the old offset now falls inside a line.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(start)
        .unwrap();
    assert_eq!(read(after), None, "the file is shorter than the offset");
    append(&[
        (7, 1.4999999),
        (8, 1.2499999),
        (9, 0.99999994),
        (10, 0.49999997),
    ]);
    assert_eq!(read(after), None, "the offset is inside a line");
    assert_eq!(read(0).unwrap().0, vec![7, 8, 9, 10]);
    for d in [data, dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The CLI's hook: `NETWORK_FAULT_AFTER=k` stops the process after operation k, exit 86.
#[test]
fn the_fault_hook_stops_the_binary_and_the_run_resumes() {
    let data = cifar_dir("hook-data", 48, 16);
    let d = data.to_str().unwrap();
    let args = |dir: &Path| -> Vec<String> {
        [
            "--data",
            d,
            "--out",
            dir.to_str().unwrap(),
            "--epochs",
            "2",
            "--batch-size",
            "16",
        ]
        .into_iter()
        .chain(["--threads", "1", "--seed", "3", "--technique", "direct"])
        .map(String::from)
        .collect()
    };
    let reference = temp_dir("hook-reference");
    let a: Vec<String> = args(&reference);
    let (ok, _, stderr) = run_cli(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{stderr}");
    let want = tensors(&reference);
    for k in [3, 17, 29, 40, 55, 70] {
        let dir = temp_dir(&format!("hook-{k}"));
        let status = Command::new(env!("CARGO_BIN_EXE_network"))
            .args(args(&dir))
            .env("NETWORK_FAULT_AFTER", k.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(86), "k={k}");
        let r = dir.to_str().unwrap();
        if dir.join("latest").exists() {
            let (ok, _, stderr) = run_cli(&["eval", "--model", r, "--json"]);
            assert!(ok, "k={k}: {stderr}");
            let (ok, _, stderr) = run_cli(&["train", "--resume", r]);
            assert!(ok, "k={k}: {stderr}");
            assert!(tensors(&dir) == want, "k={k}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
    assert_one_line_error(
        &run_cli_in(
            &data,
            &["--epochs", "1"],
            &[("NETWORK_FAULT_AFTER", "soon")],
        ),
        "NETWORK_FAULT_AFTER",
    );
    for dir in [data, reference] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Real kills: SIGKILL at random moments, at least twenty times; after each, `eval` loads the
/// run and `--resume` continues it; the finished run equals the uninterrupted one.
#[test]
fn random_sigkills_never_break_the_run() {
    let data = cifar_dir("kill-data", 32, 16);
    let d = data.to_str().unwrap();
    let args = |dir: &Path, resume: bool| -> Vec<String> {
        let r = dir.to_str().unwrap().to_string();
        let head: Vec<String> = if resume {
            vec!["train".into(), "--resume".into(), r]
        } else {
            [
                "--data",
                d,
                "--out",
                &r,
                "--epochs",
                "60",
                "--batch-size",
                "8",
                "--threads",
                "1",
            ]
            .into_iter()
            .chain(["--seed", "5", "--technique", "direct", "--lr", "0.005"])
            .map(String::from)
            .collect()
        };
        head
    };
    let reference = temp_dir("kill-reference");
    let a = args(&reference, false);
    let started = Instant::now();
    let (ok, _, stderr) = run_cli(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{stderr}");
    let want = tensors(&reference);
    // The longest life between kills: a 25th of the whole run, so that it cannot finish on its
    // own in fewer than 25 lives however fast this machine trains.
    let longest = (started.elapsed().as_millis() as u64 / 25).clamp(30, 250);

    let dir = temp_dir("kill-run");
    let mut rng = StdRng::seed_from_u64(11);
    let (mut kills, mut finished) = (0, false);
    let deadline = Instant::now() + Duration::from_secs(240);
    while !finished && Instant::now() < deadline {
        let resume = dir.join("latest").exists();
        let mut child = Command::new(env!("CARGO_BIN_EXE_network"))
            .args(args(&dir, resume))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill quickly at first, so that the creation itself is hit too.
        let wait = rng.random_range(5..if kills < 3 { 30 } else { longest });
        std::thread::sleep(Duration::from_millis(wait));
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the run failed on its own: {status}");
            finished = true;
            continue;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        if dir.join("latest").exists() {
            let (ok, _, stderr) = run_cli(&["eval", "--model", dir.to_str().unwrap(), "--json"]);
            assert!(ok, "after kill {kills}: {stderr}");
        }
        if kills >= 20 && rng.random_bool(0.2) {
            let (ok, _, stderr) = run_cli(&["train", "--resume", dir.to_str().unwrap()]);
            assert!(ok, "{stderr}");
            finished = true;
        }
    }
    assert!(finished, "the run did not finish in time ({kills} kills)");
    assert!(kills >= 20, "only {kills} kills");
    eprintln!("{kills} kills survived");
    assert!(
        tensors(&dir) == want,
        "after {kills} kills the weights differ"
    );
    for dir in [data, reference, dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A run directory belongs to one process: a second claim is refused while the first holds
/// it, and the default `runs/N` gives concurrent runs different directories.
#[test]
fn a_second_process_is_refused() {
    let data = cifar_dir("claim-data", 32, 16);
    let dir = temp_dir("claim-run");
    let new = || NewRun {
        arch: seed_network(),
        config: config(),
        ..NewRun::default()
    };
    let load = || Cifar10::load_dir(&data).unwrap();
    let place = Place::Dir(dir.clone());
    let first = Run::create(&place, load(), new(), &options(None)).unwrap();
    let e = Run::create(&place, load(), new(), &options(None))
        .err()
        .unwrap();
    assert!(e.to_string().contains("is in use by process"), "{e}");
    let e = Run::resume(&dir, None, &options(None)).err().unwrap();
    assert!(
        e.to_string()
            .contains(&format!("is in use by process {}", std::process::id())),
        "{e}"
    );
    drop(first);
    let e = Run::create(&place, load(), new(), &options(None))
        .err()
        .unwrap();
    assert!(e.to_string().contains("already holds a run"), "{e}");
    drop(Run::resume(&dir, None, &options(None)).unwrap());

    // Processes: two at once into one --out; two at once with the default runs/N.
    let cwd = temp_dir("claim-cwd");
    let spawn = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_network"))
            .args([
                "--data",
                data.to_str().unwrap(),
                "--epochs",
                "3",
                "--technique",
                "direct",
            ])
            .args(extra)
            .current_dir(&cwd)
            .env_remove("NETWORK_RUNS")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let shared = cwd.join("shared");
    let both = [
        spawn(&["--out", shared.to_str().unwrap()]),
        spawn(&["--out", shared.to_str().unwrap()]),
    ];
    let results: Vec<_> = both
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let wins = results.iter().filter(|o| o.status.success()).count();
    assert_eq!(wins, 1, "exactly one of two processes may own the run");
    let loser = results.iter().find(|o| !o.status.success()).unwrap();
    let message = String::from_utf8_lossy(&loser.stderr);
    assert!(
        // The holder may not have written its id yet: "in use by another process".
        message.contains("is in use by") || message.contains("already holds a run"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
    let both = [spawn(&[]), spawn(&[])];
    for child in both {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(cwd.join("runs/1/latest").exists() && cwd.join("runs/2/latest").exists());
    for dir in [data, dir, cwd] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Saving after the last epoch writes what saving after the first wrote: the history is
/// appended, not rewritten.
#[test]
fn a_save_costs_the_same_at_every_epoch() {
    struct Saves(Vec<(u64, f64)>);
    impl network::events::Observer for Saves {
        fn event(&mut self, event: &network::events::Event) {
            if let network::events::Event::Saved { bytes, seconds, .. } = event {
                self.0.push((*bytes, *seconds));
            }
        }
    }
    let data = cifar_dir("save-cost-data", 16, 16);
    let dir = temp_dir("save-cost");
    let new = NewRun {
        arch: seed_network(),
        config: TrainConfig {
            epochs: 150,
            lr: 0.005,
            ..config()
        },
        ..NewRun::default()
    };
    let data = Cifar10::load_dir(&data).unwrap();
    let mut run = Run::create(&Place::Dir(dir.clone()), data, new, &options(None)).unwrap();
    let mut saves = Saves(Vec::new());
    run.fit(None, &AtomicBool::new(false), &mut saves).unwrap();
    let bytes: Vec<u64> = saves.0.iter().map(|s| s.0).collect();
    assert_eq!(bytes.len(), 150);
    let (first, last) = (bytes[0], bytes[149]);
    // Only the digits of the numbers in the history lines vary.
    assert!(
        last.abs_diff(first) < 64,
        "epoch 1 wrote {first} bytes, epoch 150 {last}"
    );
    let seconds = |r: std::ops::Range<usize>| {
        let mut s: Vec<f64> = saves.0[r].iter().map(|s| s.1).collect();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    eprintln!(
        "a save writes {first} bytes after epoch 1 and {last} after epoch 150; median {:.2} ms over epochs 1-10, {:.2} ms over 141-150",
        1e3 * seconds(0..10),
        1e3 * seconds(140..150)
    );
    let _ = std::fs::remove_dir_all(dir);
}
