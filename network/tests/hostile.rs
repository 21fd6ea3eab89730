//! The `network` binary attacked as a careless or hostile user would: every bad input must
//! end in exactly one `error: ` line naming the flag, field or file at fault, a non-zero exit
//! that is not a panic (101) or an abort (134), no hang, and nothing already saved changed.
//!
//! Each class is one table: every row is run, and the test fails at the end listing ALL the
//! rows that broke, not just the first. Besides the one `error: ` line, stderr may hold only
//! notes (`note: `, `data: `).

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{cifar_dir, generation, temp_dir};

/// Longest any one command may take before it is killed and counted as a hang.
const WATCHDOG: Duration = Duration::from_secs(20);
/// The flags of every small training run.
const SMALL: [&str; 8] = [
    "--epochs",
    "1",
    "--technique",
    "direct",
    "--threads",
    "1",
    "--batch-size",
    "16",
];

/// What one command did.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    seconds: f64,
    timed_out: bool,
}

/// A command of the binary: run in `cwd`, with none of the user's `NETWORK_*` variables.
fn command(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_network"));
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("NETWORK_DATA")
        .env_remove("NETWORK_RUNS")
        .env_remove("NETWORK_FAULT_AFTER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Waits for a spawned child under the watchdog, collecting its output.
fn finish(mut child: Child, started: Instant) -> Out {
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > WATCHDOG {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let seconds = started.elapsed().as_secs_f64();
    Out {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        seconds,
        timed_out,
    }
}

/// Runs the binary in `cwd` under the watchdog.
fn run_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let started = Instant::now();
    let child = command(cwd, args, env).spawn().unwrap();
    finish(child, started)
}

/// A line that is a note rather than a result: allowed beside the one error line.
fn is_note(line: &str) -> bool {
    line.starts_with("note: ") || line.starts_with("data: ")
}

/// The checks of a refused command: non-zero, not a panic or abort, in time, one `error: `
/// line holding `needle`, and no other stderr line but notes.
fn refused(out: &Out, needle: &str, max_seconds: f64) -> Result<(), String> {
    let mut wrong = Vec::new();
    if out.timed_out {
        wrong.push(format!("hung: killed after {WATCHDOG:?}"));
    }
    match out.code {
        Some(0) => wrong.push("exit code 0: the command succeeded".into()),
        Some(101) => wrong.push("exit code 101: a panic".into()),
        Some(134) => wrong.push("exit code 134: an abort".into()),
        None => wrong.push("killed by a signal".into()),
        Some(_) => {}
    }
    if out.seconds > max_seconds {
        wrong.push(format!(
            "took {:.2} s, more than {max_seconds} s",
            out.seconds
        ));
    }
    if out.stderr.contains("panicked") {
        wrong.push("stderr holds a panic".into());
    }
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error: ")).collect();
    let others: Vec<&&str> = lines
        .iter()
        .filter(|l| !l.starts_with("error: ") && !is_note(l))
        .collect();
    if errors.len() != 1 {
        wrong.push(format!("{} `error: ` lines, not one", errors.len()));
    } else if !errors[0].contains(needle) {
        wrong.push(format!("the error does not name {needle:?}"));
    }
    if !others.is_empty() {
        wrong.push(format!("{} other stderr line(s)", others.len()));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}; exit {:?}; stderr: {:?}",
            wrong.join(", "),
            out.code,
            out.stderr.chars().take(600).collect::<String>()
        ))
    }
}

/// The checks of a command that must succeed.
fn succeeded(out: &Out) -> Result<(), String> {
    if out.timed_out || out.code != Some(0) || out.stderr.contains("panicked") {
        return Err(format!(
            "expected success, got exit {:?} (timed out: {}); stderr: {:?}",
            out.code,
            out.timed_out,
            out.stderr.chars().take(600).collect::<String>()
        ));
    }
    Ok(())
}

/// Every file under `dir` and its bytes (the `lock`, rewritten by each claim, only when
/// `with_lock`); a missing path is an empty map.
fn snapshot(dir: &Path, with_lock: bool) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            files.insert(p.clone(), b"<dir>".to_vec());
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else if with_lock || p.file_name().is_none_or(|n| n != "lock") {
            let bytes = if meta.is_file() && meta.len() > 1 << 24 {
                // A huge (sparse) file: its length and modification time stand for it.
                format!("{} bytes, modified {:?}", meta.len(), meta.modified().ok()).into_bytes()
            } else if meta.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                b"<special>".to_vec()
            };
            files.insert(p, bytes);
        }
    }
    files
}

fn compare(
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
) -> Result<(), String> {
    let mut changed = Vec::new();
    for (p, b) in before {
        match after.get(p) {
            None => changed.push(format!("{} removed", p.display())),
            Some(a) if a != b => changed.push(format!("{} changed", p.display())),
            Some(_) => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        changed.push(format!("{} appeared", p.display()));
    }
    if changed.is_empty() {
        Ok(())
    } else {
        Err(format!("saved files changed: {}", changed.join(", ")))
    }
}

/// What must not change while a row runs.
#[derive(Clone)]
enum Guard {
    /// A run directory: every file but the lock.
    Run(PathBuf),
    /// Any path: every file, byte for byte, nothing added.
    Exact(PathBuf),
    /// A path that must not exist afterwards (a refused new run creates nothing).
    Absent(PathBuf),
}

/// One class's table: rows are run as added, failures collected and reported together.
struct Table {
    class: &'static str,
    cwd: PathBuf,
    rows: usize,
    failures: Vec<String>,
}

impl Table {
    fn new(class: &'static str, cwd: &Path) -> Table {
        Table {
            class,
            cwd: cwd.to_path_buf(),
            rows: 0,
            failures: Vec::new(),
        }
    }

    /// A row checked by `check`.
    fn check(&mut self, name: &str, check: impl FnOnce() -> Result<(), String>) {
        self.rows += 1;
        if let Err(e) = check() {
            self.failures.push(format!("[{}] {name}: {e}", self.class));
        }
    }

    /// A row whose command must be refused naming `needle`, with the guards kept.
    fn refuse_full(
        &mut self,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        needle: &str,
        guards: &[Guard],
        max_seconds: f64,
    ) {
        let cwd = self.cwd.clone();
        let before: Vec<_> = guards
            .iter()
            .map(|g| match g {
                Guard::Run(p) => snapshot(p, false),
                Guard::Exact(p) => snapshot(p, true),
                Guard::Absent(_) => BTreeMap::new(),
            })
            .collect();
        self.check(name, || {
            let out = run_in(&cwd, args, env);
            let mut wrong = Vec::new();
            if let Err(e) = refused(&out, needle, max_seconds) {
                wrong.push(e);
            }
            for (g, b) in guards.iter().zip(&before) {
                let r = match g {
                    Guard::Run(p) => compare(b, &snapshot(p, false)),
                    Guard::Exact(p) => compare(b, &snapshot(p, true)),
                    Guard::Absent(p) if p.exists() => Err(format!("{} was created", p.display())),
                    Guard::Absent(_) => Ok(()),
                };
                if let Err(e) = r {
                    wrong.push(e);
                }
            }
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(wrong.join(" | "))
            }
        });
    }

    fn refuse(&mut self, name: &str, args: &[&str], needle: &str, guards: &[Guard]) {
        self.refuse_full(name, args, &[], needle, guards, WATCHDOG.as_secs_f64());
    }

    /// Panics listing every failed row.
    fn finish(self) {
        eprintln!("{}: {} rows", self.class, self.rows);
        assert!(
            self.failures.is_empty(),
            "{} of {} {} rows failed:\n{}",
            self.failures.len(),
            self.rows,
            self.class,
            self.failures.join("\n")
        );
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `extra`, then the flags of [`SMALL`] that `extra` does not give (clap refuses a flag twice).
fn with_small<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = extra.to_vec();
    for pair in SMALL.chunks(2) {
        if !extra.contains(&pair[0]) {
            args.extend(pair);
        }
    }
    args
}

/// Removes its directories when dropped, so that a test that panics half-way cleans up too.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Trains a small run into `out` on `data`, with `extra` flags; panics if it fails.
fn train(cwd: &Path, data: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["--data", s(data), "--out", s(out)];
    args.extend(extra);
    let args = with_small(&args);
    let o = run_in(cwd, &args, &[]);
    assert!(
        succeeded(&o).is_ok(),
        "fixture training failed: {}",
        o.stderr
    );
}

/// Copies a directory tree (hard links become separate files).
fn copy_tree(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

fn truncate(path: &Path, size: &str) {
    let ok = Command::new("truncate")
        .args(["-s", size])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "truncate {}", path.display());
}

/// The seed-like architecture of the brief, as JSON text, with `from` replaced by `to`.
fn arch_text(from: &str, to: &str) -> String {
    let base = r#"[{"type":"input","channels":3,"height":32,"width":32},{"type":"conv","filters":16,"size":5,"stride":1,"pad":2},{"type":"relu"},{"type":"pool","size":2,"stride":2},{"type":"fc","outputs":10},{"type":"softmax"}]"#;
    assert!(from.is_empty() || base.contains(from), "{from}");
    if from.is_empty() {
        base.to_string()
    } else {
        base.replacen(from, to, 1)
    }
}

/// Copies the safetensors file `from` to `to` with tensor `name` replaced by zeros of `shape`,
/// the metadata kept.
fn reshaped_model(from: &Path, name: &str, shape: &[usize], to: &Path) {
    use safetensors::{Dtype, SafeTensors, tensor::TensorView};
    let bytes = std::fs::read(from).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let zeros = vec![0u8; 4 * shape.iter().product::<usize>()];
    let views: Vec<(String, TensorView)> = tensors
        .tensors()
        .into_iter()
        .map(|(n, v)| match n == name {
            true => (
                n,
                TensorView::new(Dtype::F32, shape.to_vec(), &zeros).unwrap(),
            ),
            false => (n, v),
        })
        .collect();
    safetensors::serialize_to_file(views, header.metadata().clone(), to).unwrap();
}

/// Writes a PNG of `w`×`h` grey pixels.
fn png(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_pixel(w, h, image::Rgb([120, 130, 140]))
        .save(path)
        .unwrap();
}

#[test]
fn architecture() {
    let dir = temp_dir("hostile-arch");
    let data = cifar_dir("hostile-arch-data", 64, 16);
    let mut t = Table::new("architecture", &dir);
    let _cleanup = Cleanup(vec![dir.clone(), data.clone()]);
    let good = dir.join("good.json");
    std::fs::write(&good, arch_text("", "")).unwrap();
    // A row: write `text` to `file`, train with it; refused naming `needle`, no run created.
    let arch_row = |t: &mut Table, name: &str, text: &[u8], needle: &str| {
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, text).unwrap();
        let out = dir.join(format!("run-{name}"));
        let mut args = vec!["--arch", s(&file), "--data", s(&data), "--out", s(&out)];
        args.extend(SMALL);
        t.refuse(name, &args, needle, &[Guard::Absent(out.clone())]);
    };
    let rows: Vec<(&str, String, &str)> = vec![
        (
            "input-1-channel",
            arch_text(r#""channels":3"#, r#""channels":1"#),
            "layer 0",
        ),
        (
            "input-28-high",
            arch_text(r#""height":32"#, r#""height":28"#),
            "layer 0",
        ),
        (
            "input-huge",
            arch_text(r#""width":32"#, r#""width":99999999999999"#),
            "layer 0",
        ),
        (
            "7-outputs",
            arch_text(r#""outputs":10"#, r#""outputs":7"#),
            "outputs",
        ),
        (
            "huge-filters",
            arch_text(r#""filters":16"#, r#""filters":99999999999"#),
            "filters",
        ),
        (
            "million-filters",
            arch_text(r#""filters":16"#, r#""filters":1000000"#),
            "layer 1",
        ),
        (
            "huge-pad",
            arch_text(r#""pad":2"#, r#""pad":4000"#),
            "layer 1",
        ),
        (
            "huge-size",
            arch_text(r#""size":5"#, r#""size":4000"#),
            "layer 1",
        ),
        (
            "huge-outputs",
            arch_text(r#""outputs":10"#, r#""outputs":10000000"#),
            "outputs",
        ),
        (
            "zero-filters",
            arch_text(r#""filters":16"#, r#""filters":0"#),
            "filters",
        ),
        (
            "negative-filters",
            arch_text(r#""filters":16"#, r#""filters":-3"#),
            "negative-filters.json",
        ),
        (
            "zero-size",
            arch_text(r#""size":5"#, r#""size":0"#),
            "layer 1",
        ),
        (
            "zero-stride",
            arch_text(r#""stride":1"#, r#""stride":0"#),
            "stride",
        ),
        (
            "negative-pad",
            arch_text(r#""pad":2"#, r#""pad":-5"#),
            "pad",
        ),
        (
            "zero-pool",
            arch_text(r#""size":2"#, r#""size":0"#),
            "layer 3",
        ),
        (
            "conv-lr-0",
            arch_text(r#""pad":2"#, r#""pad":2,"lr":0"#),
            "lr",
        ),
        (
            "conv-lr-negative",
            arch_text(r#""pad":2"#, r#""pad":2,"lr":-1"#),
            "lr",
        ),
        (
            "fc-momentum-1",
            arch_text(r#""outputs":10"#, r#""outputs":10,"momentum":1"#),
            "momentum",
        ),
        (
            "fc-decay-negative",
            arch_text(r#""outputs":10"#, r#""outputs":10,"decay":-0.1"#),
            "decay",
        ),
        (
            "fc-lr-overflows-to-inf",
            arch_text(r#""outputs":10"#, r#""outputs":10,"lr":1e40"#),
            "lr",
        ),
        (
            "fc-lr-nan",
            arch_text(r#""outputs":10"#, r#""outputs":10,"lr":NaN"#),
            "fc-lr-nan.json",
        ),
        ("malformed", "[{".to_string(), "malformed.json"),
        ("empty-list", "[]".to_string(), "input"),
        ("unknown-layer", arch_text(r#""relu""#, r#""tanh""#), "tanh"),
        (
            "unknown-field",
            arch_text(r#""width":32"#, r#""width":32,"extra":1"#),
            "extra",
        ),
    ];
    for (name, text, needle) in &rows {
        arch_row(&mut t, name, text.as_bytes(), needle);
    }
    arch_row(&mut t, "not-utf8", b"\xff\xfe[{\"type\"", "not-utf8.json");
    let big = vec![b' '; 2_000_000];
    arch_row(&mut t, "two-megabytes", &big, "two-megabytes.json");

    let special = |t: &mut Table, name: &str, path: &Path| {
        let out = dir.join(format!("run-{name}"));
        let mut args = vec!["--arch", s(path), "--data", s(&data), "--out", s(&out)];
        args.extend(SMALL);
        let needle = path.file_name().unwrap().to_str().unwrap().to_string();
        t.refuse(name, &args, &needle, &[Guard::Absent(out.clone())]);
    };
    let subdir = dir.join("a-directory");
    std::fs::create_dir_all(&subdir).unwrap();
    special(&mut t, "directory", &subdir);
    let fifo = dir.join("arch-fifo.json");
    mkfifo(&fifo);
    special(&mut t, "fifo", &fifo);
    special(&mut t, "missing-file", &dir.join("nowhere.json"));

    // A bare model file (of the good architecture) with a bad --arch.
    let run = dir.join("run");
    train(&dir, &data, &run, &["--max-steps", "1", "--arch", s(&good)]);
    let bad = dir.join("eval-bad.json");
    std::fs::write(&bad, arch_text(r#""outputs":10"#, r#""outputs":7"#)).unwrap();
    let model = run.join("model.safetensors");
    t.refuse(
        "eval-bare-model-with-mismatched-arch",
        &[
            "eval",
            "--model",
            s(&model),
            "--arch",
            s(&bad),
            "--data",
            s(&data),
        ],
        "architecture",
        &[Guard::Run(run.clone())],
    );
    t.refuse(
        "eval-bare-model-with-arch-fifo",
        &[
            "eval",
            "--model",
            s(&model),
            "--arch",
            s(&fifo),
            "--data",
            s(&data),
        ],
        "arch-fifo.json",
        &[Guard::Run(run.clone())],
    );
    // A bare model whose tensors match its --arch, but which takes 28-row images: refused
    // before the images are filled into it.
    let short = dir.join("eval-28-high.json");
    std::fs::write(&short, arch_text(r#""height":32"#, r#""height":28"#)).unwrap();
    let short_model = dir.join("28-high.safetensors");
    reshaped_model(&model, "4.weight", &[10, 16 * 14 * 16], &short_model);
    t.refuse(
        "eval-bare-model-of-28-high-images",
        &[
            "eval",
            "--model",
            s(&short_model),
            "--arch",
            s(&short),
            "--data",
            s(&data),
        ],
        "eval-28-high.json: layer 0 (input) takes 3×28×32 images",
        &[Guard::Run(run.clone())],
    );
    // A CIFAR-10 network too wide for any memory (262,144 maps of 32×32, 1 GiB an example
    // and a point): refused from the layer list, before the model file is read or anything
    // allocated.
    let wide = dir.join("eval-wide.json");
    let wide_text = r#"[{"type":"input","channels":3,"height":32,"width":32},{"type":"conv","filters":262144,"size":1},{"type":"relu"},{"type":"pool","size":32,"stride":32},{"type":"fc","outputs":10},{"type":"softmax"}]"#;
    std::fs::write(&wide, wide_text).unwrap();
    t.refuse(
        "eval-too-wide-for-memory",
        &[
            "eval",
            "--model",
            s(&model),
            "--arch",
            s(&wide),
            "--data",
            s(&data),
            "--threads",
            "1",
        ],
        "memory budget",
        &[Guard::Run(run.clone())],
    );
    t.check("good-arch-trains", || {
        let out = dir.join("run-good");
        let mut args = vec!["--arch", s(&good), "--data", s(&data), "--out", s(&out)];
        args.extend(SMALL);
        succeeded(&run_in(&dir, &args, &[]))
    });
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&data);
    t.finish();
}

/// `sweep` with bad spaces and a bad directory: one-line errors naming the file or flag,
/// nothing written into the run given as its directory.
fn sweep_rows(t: &mut Table, dir: &Path, d: &str, run: &Path) {
    let many: Vec<String> = (1..=1001).map(|i| i.to_string()).collect();
    let too_many = format!(r#"{{"grid": {{"seed": [{}]}}}}"#, many.join(","));
    let spaces: &[(&str, &str, &str)] = &[
        ("sweep-not-json", "{", "space-not-json.json"),
        (
            "sweep-unknown-key",
            r#"{"grid": {}, "trials": 3}"#,
            "trials",
        ),
        (
            "sweep-unknown-setting",
            r#"{"grid": {"lerning_rate": [0.1]}}"#,
            "lerning_rate",
        ),
        ("sweep-grid-not-a-list", r#"{"grid": {"lr": 0.1}}"#, "lr"),
        ("sweep-grid-empty-list", r#"{"grid": {"lr": []}}"#, "lr"),
        ("sweep-bad-value", r#"{"grid": {"lr": [0.1, -1]}}"#, "--lr"),
        (
            "sweep-wrong-type",
            r#"{"base": {"epochs": "many"}}"#,
            "epochs",
        ),
        (
            "sweep-zero-samples",
            r#"{"grid": {"lr": [0.1]}, "samples": 0}"#,
            "samples",
        ),
        ("sweep-too-many-trials", &too_many, "at most"),
    ];
    let out = dir.join("sweep-never");
    for (name, text, needle) in spaces {
        let file = dir.join(format!("space-{}.json", &name[6..]));
        std::fs::write(&file, text).unwrap();
        let args = ["sweep", s(&file), "--out", s(&out), "--data", d];
        t.refuse(name, &args, needle, &[Guard::Absent(out.clone())]);
    }
    let good = dir.join("space-good.json");
    std::fs::write(&good, r#"{"base": {"epochs": 1}}"#).unwrap();
    t.refuse(
        "sweep-into-a-run",
        &["sweep", s(&good), "--out", s(run), "--data", d],
        "--out",
        &[Guard::Run(run.to_path_buf())],
    );
    t.refuse(
        "sweep-missing-space",
        &["sweep", "no-such-space.json", "--out", s(&out), "--data", d],
        "no-such-space.json",
        &[Guard::Absent(out.clone())],
    );
}

#[test]
fn numbers_and_flags() {
    let dir = temp_dir("hostile-numbers");
    let data = cifar_dir("hostile-numbers-data", 64, 16);
    let mut t = Table::new("numbers/flags", &dir);
    let _cleanup = Cleanup(vec![dir.clone(), data.clone()]);
    let out = dir.join("never");
    let d = s(&data).to_string();
    let o = s(&out).to_string();
    let rows: &[(&str, &[&str], &str)] = &[
        ("lr-negative", &["--lr", "-1"], "--lr"),
        ("lr-zero", &["--lr", "0"], "--lr"),
        ("lr-nan", &["--lr", "NaN"], "--lr"),
        ("lr-inf", &["--lr", "inf"], "--lr"),
        ("lr-overflows-f32", &["--lr", "1e39"], "--lr"),
        ("lr-not-a-number", &["--lr", "fast"], "--lr"),
        ("momentum-1", &["--momentum", "1"], "--momentum"),
        ("momentum-negative", &["--momentum", "-0.5"], "--momentum"),
        ("momentum-nan", &["--momentum", "nan"], "--momentum"),
        (
            "weight-decay-negative",
            &["--weight-decay", "-1"],
            "--weight-decay",
        ),
        (
            "weight-decay-inf",
            &["--weight-decay", "inf"],
            "--weight-decay",
        ),
        ("epochs-zero", &["--epochs", "0"], "--epochs"),
        ("epochs-negative", &["--epochs", "-1"], "--epochs"),
        ("epochs-huge", &["--epochs", "99999999999"], "--epochs"),
        (
            "epochs-past-u128",
            &["--epochs", "999999999999999999999999999999999999999999"],
            "--epochs",
        ),
        (
            "batch-size-negative",
            &["--batch-size", "-5"],
            "--batch-size",
        ),
        ("batch-size-zero", &["--batch-size", "0"], "--batch-size"),
        (
            "batch-size-huge",
            &["--batch-size", "99999999999"],
            "--batch-size",
        ),
        ("threads-zero", &["--threads", "0"], "--threads"),
        ("threads-1000", &["--threads", "1000"], "--memory-budget"),
        (
            "max-steps-past-u64",
            &["--max-steps", "18446744073709551616"],
            "--max-steps",
        ),
        ("max-steps-negative", &["--max-steps", "-3"], "--max-steps"),
        ("seed-negative", &["--seed", "-1"], "--seed"),
        (
            "memory-budget-nonsense",
            &["--memory-budget", "banana"],
            "--memory-budget",
        ),
        (
            "memory-budget-negative",
            &["--memory-budget", "-5"],
            "--memory-budget",
        ),
        (
            "memory-budget-zero",
            &["--memory-budget", "0"],
            "--memory-budget",
        ),
        (
            "memory-budget-too-small",
            &["--memory-budget", "1K"],
            "--memory-budget",
        ),
        (
            "memory-budget-overflow",
            &["--memory-budget", "99999999999E"],
            "--memory-budget",
        ),
        (
            "technique-unknown",
            &["--technique", "bogus"],
            "--technique",
        ),
        ("schedule-unknown", &["--schedule", "bogus"], "--schedule"),
        ("unknown-flag", &["--frobnicate"], "--frobnicate"),
        ("validation-all", &["--validation", "64"], "--validation"),
        (
            "validation-past",
            &["--validation", "100000"],
            "--validation",
        ),
        (
            "validation-negative",
            &["--validation", "-1"],
            "--validation",
        ),
        ("validation-word", &["--validation", "half"], "--validation"),
        ("warmup-negative", &["--warmup", "-1"], "--warmup"),
        ("warmup-past-epochs", &["--warmup", "5"], "--warmup"),
        ("warmup-nan", &["--warmup", "nan"], "--warmup"),
        ("ema-negative", &["--ema", "-1"], "--ema"),
        ("ema-nan", &["--ema", "nan"], "--ema"),
        ("ema-inf", &["--ema", "inf"], "--ema"),
        ("ema-past-limit", &["--ema", "11"], "--ema"),
        ("ema-word", &["--ema", "long"], "--ema"),
        (
            "label-smoothing-1",
            &["--label-smoothing", "1"],
            "--label-smoothing",
        ),
        (
            "label-smoothing-negative",
            &["--label-smoothing", "-0.1"],
            "--label-smoothing",
        ),
        ("shift-9", &["--shift", "9"], "--shift"),
        ("shift-huge", &["--shift", "99999999999"], "--shift"),
        ("tta-zero", &["--tta", "0"], "--tta"),
        ("tta-51", &["--tta", "51"], "--tta"),
        (
            "lr-scaling-unknown",
            &["--lr-scaling", "cubic"],
            "--lr-scaling",
        ),
        (
            "time-budget-word",
            &["--time-budget", "soon"],
            "--time-budget",
        ),
        ("time-budget-zero", &["--time-budget", "0"], "--time-budget"),
        (
            "time-budget-year",
            &["--time-budget", "9000h"],
            "--time-budget",
        ),
        (
            "time-budget-with-epochs",
            &["--time-budget", "1m", "--epochs", "2"],
            "--time-budget",
        ),
    ];
    for (name, flags, needle) in rows {
        // The flag under test goes last so that it overrides the small defaults.
        let mut args = vec!["--data", &d, "--out", &o];
        args.extend(*flags);
        let args = with_small(&args);
        t.refuse(name, &args, needle, &[Guard::Absent(out.clone())]);
    }
    // Without --epochs, which a budget replaces: shorter than measuring the speed takes.
    t.refuse(
        "time-budget-too-short",
        &[
            "--data",
            &d,
            "--out",
            &o,
            "--time-budget",
            "0.5s",
            "--threads",
            "1",
        ],
        "--time-budget",
        &[Guard::Absent(out.clone())],
    );
    let run = dir.join("run");
    train(&dir, &data, &run, &["--max-steps", "1"]);
    let r = s(&run).to_string();
    sweep_rows(&mut t, &dir, &d, &run);
    let model_rows: &[(&str, &[&str], &str)] = &[
        ("test-start-past", &["test", "--start", "16"], "--start"),
        (
            "test-start-and-count-max",
            &[
                "test",
                "--start",
                "18446744073709551615",
                "--count",
                "18446744073709551615",
            ],
            "--start",
        ),
        ("test-count-negative", &["test", "--count", "-1"], "--count"),
        (
            "eval-threads-zero",
            &["eval", "--threads", "0"],
            "--threads",
        ),
        ("eval-tta-zero", &["eval", "--tta", "0"], "--tta"),
        ("eval-tta-51", &["eval", "--tta", "51"], "--tta"),
        ("eval-on-train", &["eval", "--on", "train"], "--on"),
    ];
    for (name, flags, needle) in model_rows {
        let mut args = flags.to_vec();
        args.extend(["--model", &r, "--data", &d]);
        t.refuse(name, &args, needle, &[Guard::Run(run.clone())]);
    }
    t.refuse_full(
        "threads-1024-batch-65536-refused-by-budget-at-once",
        &with_small(&[
            "--data",
            &d,
            "--out",
            &o,
            "--threads",
            "1024",
            "--batch-size",
            "65536",
        ]),
        &[],
        "--memory-budget",
        &[Guard::Absent(out.clone())],
        3.0,
    );
    t.refuse(
        "eval-threads-huge",
        &["eval", "--model", &r, "--data", &d, "--threads", "100000"],
        "--threads",
        &[Guard::Run(run.clone())],
    );
    t.check("test-count-huge-is-clamped", || {
        let out = run_in(
            &dir,
            &[
                "test",
                "--model",
                &r,
                "--data",
                &d,
                "--json",
                "--start",
                "10",
                "--count",
                "18446744073709551615",
            ],
            &[],
        );
        succeeded(&out)?;
        let v: serde_json::Value =
            serde_json::from_str(&out.stdout).map_err(|e| format!("stdout not JSON: {e}"))?;
        let n = v["examples"].as_array().map_or(0, Vec::len);
        if n == 6 {
            Ok(())
        } else {
            Err(format!("{n} examples, expected 6 (10..16)"))
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&data);
    t.finish();
}

#[test]
fn data_files() {
    let dir = temp_dir("hostile-data");
    let good = cifar_dir("hostile-data-good", 64, 16);
    let mut t = Table::new("data files", &dir);
    let _cleanup = Cleanup(vec![dir.clone(), good.clone()]);
    let train_file = std::fs::read(good.join("data_batch_1.bin")).unwrap();
    let test_file = std::fs::read(good.join("test_batch.bin")).unwrap();
    // A data directory `name` holding the test file, made by `setup`.
    let make = |name: &str, setup: &dyn Fn(&Path)| -> PathBuf {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("test_batch.bin"), &test_file).unwrap();
        setup(&d);
        d
    };
    let train_bin = |d: &Path| d.join("data_batch_1.bin");
    let cases: Vec<(&str, PathBuf, &str, f64)> = vec![
        (
            "no-training-file",
            make("no-train", &|_| {}),
            "data_batch_1.bin",
            20.0,
        ),
        (
            "empty-training-file",
            make("empty", &|d| std::fs::write(train_bin(d), b"").unwrap()),
            "data_batch_1.bin",
            20.0,
        ),
        (
            "partial-record",
            make("partial", &|d| {
                std::fs::write(train_bin(d), &train_file[..5000]).unwrap();
            }),
            "data_batch_1.bin",
            20.0,
        ),
        (
            "label-12",
            make("label", &|d| {
                let mut b = train_file.clone();
                b[3073] = 12;
                std::fs::write(train_bin(d), b).unwrap();
            }),
            "data_batch_1.bin",
            20.0,
        ),
        (
            "label-255-in-test-file",
            make("test-label", &|d| {
                std::fs::write(train_bin(d), &train_file).unwrap();
                let mut b = test_file.clone();
                b[0] = 255;
                std::fs::write(d.join("test_batch.bin"), b).unwrap();
            }),
            "test_batch.bin",
            20.0,
        ),
        (
            "sparse-10G-refused-by-size",
            make("sparse", &|d| truncate(&train_bin(d), "10G")),
            "data_batch_1.bin",
            1.0,
        ),
        (
            "sparse-12G-whole-records-refused-by-size",
            make("sparse-whole", &|d| {
                truncate(&train_bin(d), &(3073u64 * 4_000_000).to_string());
            }),
            "data_batch_1.bin",
            1.0,
        ),
        (
            "fifo-training-file",
            make("fifo", &|d| mkfifo(&train_bin(d))),
            "data_batch_1.bin",
            20.0,
        ),
        (
            "fifo-test-file",
            make("fifo-test", &|d| {
                std::fs::write(train_bin(d), &train_file).unwrap();
                std::fs::remove_file(d.join("test_batch.bin")).unwrap();
                mkfifo(&d.join("test_batch.bin"));
            }),
            "test_batch.bin",
            20.0,
        ),
        (
            "directory-as-training-file",
            make("dir-file", &|d| std::fs::create_dir(train_bin(d)).unwrap()),
            "data_batch_1.bin",
            20.0,
        ),
        (
            "missing-test-file",
            make("no-test", &|d| {
                std::fs::write(train_bin(d), &train_file).unwrap();
                std::fs::remove_file(d.join("test_batch.bin")).unwrap();
            }),
            "test_batch.bin",
            20.0,
        ),
        (
            "missing-directory",
            dir.join("no-such-data"),
            "no-such-data",
            20.0,
        ),
        (
            "data-is-a-file",
            good.join("data_batch_1.bin"),
            "data_batch_1.bin",
            20.0,
        ),
    ];
    for (name, data, needle, seconds) in &cases {
        let out = dir.join(format!("run-{name}"));
        let mut args = vec!["--data", s(data), "--out", s(&out)];
        args.extend(SMALL);
        t.refuse_full(
            name,
            &args,
            &[],
            needle,
            &[Guard::Absent(out.clone()), Guard::Exact(data.clone())],
            *seconds,
        );
    }
    // eval and test on bad data.
    let run = dir.join("run");
    train(&dir, &good, &run, &["--max-steps", "1"]);
    for (name, data, needle) in [
        (
            "eval-fifo-test-file",
            dir.join("fifo-test"),
            "test_batch.bin",
        ),
        ("eval-sparse-data", dir.join("sparse"), "data_batch_1.bin"),
        (
            "test-missing-data",
            dir.join("no-such-data"),
            "no-such-data",
        ),
    ] {
        let cmd = if name.starts_with("eval") {
            "eval"
        } else {
            "test"
        };
        t.refuse(
            name,
            &[cmd, "--model", s(&run), "--data", s(&data)],
            needle,
            &[Guard::Run(run.clone())],
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&good);
    t.finish();
}

#[test]
fn run_directory_and_concurrency() {
    let dir = temp_dir("hostile-rundir");
    let data = cifar_dir("hostile-rundir-data", 64, 16);
    let mut t = Table::new("run directory & concurrency", &dir);
    let _cleanup = Cleanup(vec![dir.clone(), data.clone()]);
    let d = s(&data).to_string();
    let small = |out: &str| -> Vec<String> {
        let mut v: Vec<String> = vec!["--data".into(), d.clone(), "--out".into(), out.into()];
        v.extend(SMALL.iter().map(|x| x.to_string()));
        v
    };
    let refuse = |t: &mut Table, name: &str, out: &Path, needle: &str, guards: &[Guard]| {
        let args = small(s(out));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        t.refuse(name, &args, needle, guards);
    };
    let file = dir.join("a-file");
    std::fs::write(&file, b"precious").unwrap();
    refuse(
        &mut t,
        "out-is-a-file",
        &file,
        "--out",
        &[Guard::Exact(file.clone())],
    );
    refuse(
        &mut t,
        "out-under-a-file",
        &file.join("x"),
        "--out",
        &[Guard::Exact(file.clone())],
    );
    refuse(
        &mut t,
        "out-under-etc-passwd",
        Path::new("/etc/passwd/x"),
        "--out",
        &[Guard::Exact("/etc/passwd".into())],
    );
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(foreign.join("sub")).unwrap();
    std::fs::write(foreign.join("notes.txt"), b"mine").unwrap();
    refuse(
        &mut t,
        "out-is-a-foreign-directory-left-untouched",
        &foreign,
        "--out",
        &[Guard::Exact(foreign.clone())],
    );
    let run = dir.join("run");
    train(&dir, &data, &run, &["--max-steps", "1"]);
    refuse(
        &mut t,
        "out-is-an-existing-run",
        &run,
        "--out",
        &[Guard::Run(run.clone())],
    );
    // A new run nested inside another run's generation would be removed with it when that
    // run prunes the generation: refused, the generation untouched.
    let nested = generation(&run).join("nested");
    refuse(
        &mut t,
        "out-inside-another-runs-generation",
        &nested,
        "--out",
        &[Guard::Run(run.clone())],
    );
    t.refuse_full(
        "runs-root-is-a-file",
        &["--data", &d, "--epochs", "1", "--technique", "direct"],
        &[("NETWORK_RUNS", s(&file))],
        "a-file",
        &[Guard::Exact(file.clone())],
        20.0,
    );

    // A run in training holds its directory: a second --out or a --resume is refused naming
    // the holder; Ctrl-C then stops it with a checkpoint.
    let busy = dir.join("busy");
    let started = Instant::now();
    let holder = command(
        &dir,
        &[
            "--data",
            &d,
            "--out",
            s(&busy),
            "--epochs",
            "1000",
            "--lr",
            "0.001",
            "--technique",
            "direct",
            "--threads",
            "1",
            "--batch-size",
            "16",
        ],
        &[],
    )
    .spawn()
    .unwrap();
    let pid = holder.id().to_string();
    let ready = Instant::now();
    while !busy.join("latest").exists() && ready.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let needle = format!("process {pid}");
    let busy_args = small(s(&busy));
    let busy_args: Vec<&str> = busy_args.iter().map(String::as_str).collect();
    t.refuse("same-out-while-held", &busy_args, &needle, &[]);
    t.refuse("resume-while-held", &["--resume", s(&busy)], &needle, &[]);
    t.check("eval-while-training-loads", || {
        succeeded(&run_in(&dir, &["eval", "--model", s(&busy)], &[]))
    });
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let out = finish(holder, started);
    t.check("sigint-saves-and-exits-130", || {
        if out.code == Some(130) && !out.stderr.contains("panicked") {
            Ok(())
        } else {
            Err(format!("exit {:?}; stderr {:?}", out.code, out.stderr))
        }
    });

    // Two new runs started at once with the same --out: one trains, the other is refused.
    let race = dir.join("race");
    let race_args = with_small(&["--data", &d, "--out", s(&race), "--max-steps", "2"]);
    let t0 = Instant::now();
    let a = command(&dir, &race_args, &[]).spawn().unwrap();
    let b = command(&dir, &race_args, &[]).spawn().unwrap();
    let (a, b) = (finish(a, t0), finish(b, t0));
    t.check("two-new-runs-at-once-with-the-same-out", || {
        let (won, lost) = match (a.code, b.code) {
            (Some(0), _) => (&a, &b),
            (_, Some(0)) => (&b, &a),
            _ => {
                return Err(format!(
                    "neither succeeded: {:?} / {:?}",
                    a.stderr, b.stderr
                ));
            }
        };
        succeeded(won)?;
        refused(lost, "--out", 20.0)
    });

    // Two new runs at once in the same directory get different runs/N.
    let shared = dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let args = [
        "--data",
        &d,
        "--technique",
        "direct",
        "--threads",
        "1",
        "--max-steps",
        "2",
    ];
    let t0 = Instant::now();
    let a = command(&shared, &args, &[]).spawn().unwrap();
    let b = command(&shared, &args, &[]).spawn().unwrap();
    let (a, b) = (finish(a, t0), finish(b, t0));
    t.check("two-runs-at-once-get-different-numbers", || {
        succeeded(&a)?;
        succeeded(&b)?;
        let runs = shared.join("runs");
        for n in ["1", "2"] {
            if !runs.join(n).join("latest").is_file() {
                return Err(format!("runs/{n} holds no run"));
            }
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&data);
    t.finish();
}

#[test]
fn resume() {
    let dir = temp_dir("hostile-resume");
    let data = cifar_dir("hostile-resume-data", 64, 16);
    let other = cifar_dir("hostile-resume-other", 48, 16);
    let mut t = Table::new("resume", &dir);
    let _cleanup = Cleanup(vec![dir.clone(), data.clone(), other.clone()]);
    let run = dir.join("run");
    // Two epochs of four steps; stop after three so that there is something to resume.
    train(&dir, &data, &run, &["--epochs", "2", "--max-steps", "3"]);
    let r = s(&run).to_string();
    let g = [Guard::Run(run.clone())];
    let flags: &[(&str, &[&str])] = &[
        ("--lr", &["--lr", "0.1"]),
        ("--out", &["--out", "elsewhere"]),
        ("--epochs", &["--epochs", "3"]),
        ("--batch-size", &["--batch-size", "8"]),
        ("--momentum", &["--momentum", "0.5"]),
        ("--weight-decay", &["--weight-decay", "0"]),
        ("--schedule", &["--schedule", "constant"]),
        ("--seed", &["--seed", "9"]),
        ("--threads", &["--threads", "2"]),
        ("--technique", &["--technique", "im2col"]),
        ("--no-augment", &["--no-augment"]),
        ("--init-scheme", &["--init-scheme", "xavier"]),
        ("--init", &["--init", "x.safetensors"]),
        ("--arch", &["--arch", "x.json"]),
        ("--validation", &["--validation", "8"]),
        ("--warmup", &["--warmup", "1"]),
        ("--label-smoothing", &["--label-smoothing", "0.1"]),
        ("--ema", &["--ema", "1"]),
        ("--shift", &["--shift", "1"]),
        ("--tta", &["--tta", "4"]),
        ("--lr-scaling", &["--lr-scaling", "none"]),
        ("--test-every-epoch", &["--test-every-epoch"]),
        ("--time-budget", &["--time-budget", "1m"]),
    ];
    for (flag, extra) in flags {
        let mut args = vec!["--resume", &r];
        args.extend(*extra);
        t.refuse(&format!("resume-with-{flag}"), &args, flag, &g);
    }
    t.refuse(
        "resume-with-memory-budget-too-small",
        &["--resume", &r, "--memory-budget", "1K"],
        "--memory-budget",
        &g,
    );
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), b"mine").unwrap();
    t.refuse(
        "resume-a-foreign-directory-left-untouched",
        &["--resume", s(&foreign)],
        "foreign",
        &[Guard::Exact(foreign.clone())],
    );
    t.refuse(
        "resume-a-missing-directory",
        &["--resume", s(&dir.join("nowhere"))],
        "nowhere",
        &[Guard::Absent(dir.join("nowhere"))],
    );
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    t.refuse(
        "resume-a-file",
        &["--resume", s(&file)],
        "a-file",
        &[Guard::Exact(file.clone())],
    );
    t.refuse(
        "resume-with-other-data",
        &["--resume", &r, "--data", s(&other)],
        "hostile-resume-other",
        &g,
    );
    t.refuse(
        "resume-with-missing-data",
        &["--resume", &r, "--data", s(&dir.join("no-data"))],
        "no-data",
        &g,
    );
    // Without --data the run's own data is used, from any current directory.
    let elsewhere = dir.join("elsewhere-cwd");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let copy = dir.join("copy");
    copy_tree(&run, &copy);
    t.check("resume-without-data-uses-the-recorded-data", || {
        let out = run_in(&elsewhere, &["--resume", s(&copy), "--max-steps", "4"], &[]);
        succeeded(&out)?;
        if !out
            .stderr
            .contains(data.file_name().unwrap().to_str().unwrap())
        {
            return Err(format!("the recorded data is not named: {:?}", out.stderr));
        }
        let gen_dir = generation(&copy);
        if !gen_dir.ends_with("gen-000000000004") {
            return Err(format!("resumed to {}", gen_dir.display()));
        }
        Ok(())
    });
    // The same data spelled by another path is the same data.
    let copy2 = dir.join("copy2");
    copy_tree(&run, &copy2);
    t.check("resume-with-the-same-data-by-a-relative-path", || {
        let rel = format!("../{}", data.file_name().unwrap().to_str().unwrap());
        let out = run_in(
            &dir,
            &["--resume", s(&copy2), "--data", &rel, "--max-steps", "4"],
            &[],
        );
        succeeded(&out)
    });
    // A run keeps its architecture: the --arch file may go away.
    let arch_file = dir.join("gone-arch.json");
    std::fs::write(&arch_file, arch_text("", "")).unwrap();
    let arch_run = dir.join("arch-run");
    train(
        &dir,
        &data,
        &arch_run,
        &["--arch", s(&arch_file), "--epochs", "2", "--max-steps", "1"],
    );
    std::fs::remove_file(&arch_file).unwrap();
    t.check("resume-after-the-arch-file-is-deleted", || {
        succeeded(&run_in(
            &dir,
            &["--resume", s(&arch_run), "--max-steps", "2"],
            &[],
        ))?;
        if step_of_run(&arch_run) == 2 {
            Ok(())
        } else {
            Err(format!("at step {}", step_of_run(&arch_run)))
        }
    });
    // Recorded data gone: refused, naming --data, nothing changed.
    let moved = cifar_dir("hostile-resume-moved", 64, 16);
    let _cleanup_moved = Cleanup(vec![moved.clone()]);
    let gone = dir.join("gone");
    train(&dir, &moved, &gone, &["--epochs", "2", "--max-steps", "1"]);
    std::fs::remove_dir_all(&moved).unwrap();
    t.refuse(
        "resume-when-recorded-data-is-gone",
        &["--resume", s(&gone)],
        "--data",
        &[Guard::Run(gone.clone())],
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&other);
    t.finish();
}

/// The step of the generation the pointer of `run` names (0 if none).
fn step_of_run(run: &Path) -> u64 {
    std::fs::read_to_string(run.join("latest"))
        .ok()
        .and_then(|n| n.trim().strip_prefix("gen-").and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Sets the first float of the first tensor of a safetensors file to NaN.
fn poison(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let first = header
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| *k != "__metadata__")
        .unwrap()
        .1;
    let at = 8 + n + first["data_offsets"][0].as_u64().unwrap() as usize;
    b[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(path, b).unwrap();
}

#[test]
fn checkpoint_corruption() {
    let dir = temp_dir("hostile-corrupt");
    let data = cifar_dir("hostile-corrupt-data", 64, 16);
    let mut t = Table::new("checkpoint corruption", &dir);
    let _cleanup = Cleanup(vec![dir.clone(), data.clone()]);
    let run = dir.join("run");
    train(&dir, &data, &run, &["--epochs", "2", "--max-steps", "2"]);
    let other = dir.join("other");
    train(
        &dir,
        &data,
        &other,
        &["--epochs", "2", "--max-steps", "2", "--seed", "7"],
    );
    let gen_name = generation(&run).file_name().unwrap().to_owned();
    type Damage = Box<dyn Fn(&Path, &Path)>;
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "latest-deleted",
            Box::new(|r, _| std::fs::remove_file(r.join("latest")).unwrap()),
            "latest-deleted",
        ),
        (
            "latest-garbage",
            Box::new(|r, _| std::fs::write(r.join("latest"), b"garbage\n").unwrap()),
            "latest",
        ),
        (
            "latest-names-a-missing-generation",
            Box::new(|r, _| std::fs::write(r.join("latest"), b"gen-000000000099\n").unwrap()),
            "gen-000000000099",
        ),
        (
            "latest-huge",
            Box::new(|r, _| truncate(&r.join("latest"), "5G")),
            "latest",
        ),
        (
            "generation-deleted",
            Box::new(|r, _| std::fs::remove_dir_all(generation(r)).unwrap()),
            "state.json",
        ),
        (
            "state-deleted",
            Box::new(|r, _| std::fs::remove_file(generation(r).join("state.json")).unwrap()),
            "state.json",
        ),
        (
            "state-garbage",
            Box::new(|r, _| std::fs::write(generation(r).join("state.json"), b"{").unwrap()),
            "state.json",
        ),
        (
            "state-wrong-step",
            Box::new(|r, _| {
                let p = generation(r).join("state.json");
                let text = std::fs::read_to_string(&p).unwrap();
                let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
                v["progress"]["step"] = 1.into();
                std::fs::write(&p, v.to_string()).unwrap();
            }),
            "state.json",
        ),
        (
            // Read by every command (serve divided by it), not only by a resume.
            "state-batch-size-0",
            Box::new(|r, _| {
                let p = generation(r).join("state.json");
                let text = std::fs::read_to_string(&p).unwrap();
                let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
                v["settings"]["config"]["batch_size"] = 0.into();
                std::fs::write(&p, v.to_string()).unwrap();
            }),
            "state.json: --batch-size",
        ),
        (
            "state-is-a-fifo",
            Box::new(|r, _| {
                let p = generation(r).join("state.json");
                std::fs::remove_file(&p).unwrap();
                mkfifo(&p);
            }),
            "state.json",
        ),
        (
            "model-truncated",
            Box::new(|r, _| {
                let p = generation(r).join("model.safetensors");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() / 2]).unwrap();
            }),
            "model.safetensors",
        ),
        (
            "model-garbage",
            Box::new(|r, _| {
                let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
                std::fs::write(generation(r).join("model.safetensors"), garbage).unwrap();
            }),
            "model.safetensors",
        ),
        (
            "model-deleted",
            Box::new(|r, _| std::fs::remove_file(generation(r).join("model.safetensors")).unwrap()),
            "model.safetensors",
        ),
        (
            "model-nan-weights",
            Box::new(|r, _| poison(&generation(r).join("model.safetensors"))),
            "model.safetensors",
        ),
        (
            "model-from-another-run",
            Box::new(|r, o| {
                std::fs::copy(
                    generation(o).join("model.safetensors"),
                    generation(r).join("model.safetensors"),
                )
                .unwrap();
            }),
            "model.safetensors",
        ),
        (
            "optimizer-from-another-run",
            Box::new(|r, o| {
                std::fs::copy(
                    generation(o).join("optimizer.safetensors"),
                    generation(r).join("optimizer.safetensors"),
                )
                .unwrap();
            }),
            "optimizer.safetensors",
        ),
        (
            "optimizer-nan",
            Box::new(|r, _| poison(&generation(r).join("optimizer.safetensors"))),
            "optimizer.safetensors",
        ),
        (
            "lock-is-a-directory",
            Box::new(|r, _| {
                std::fs::remove_file(r.join("lock")).unwrap();
                std::fs::create_dir(r.join("lock")).unwrap();
            }),
            "--resume",
        ),
        (
            "state-claims-200-MB-of-history",
            Box::new(|r, _| {
                let p = generation(r).join("state.json");
                let text = std::fs::read_to_string(&p).unwrap();
                let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
                v["progress"]["steps_bytes"] = 200_000_000u64.into();
                std::fs::write(&p, v.to_string()).unwrap();
            }),
            "steps.jsonl",
        ),
        (
            "steps-history-truncated",
            Box::new(|r, _| {
                let p = r.join("steps.jsonl");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() / 2]).unwrap();
            }),
            "steps.jsonl",
        ),
    ];
    for (name, damage, needle) in &cases {
        let copy = dir.join(name);
        copy_tree(&run, &copy);
        damage(&copy, &other);
        t.refuse(
            &format!("resume-{name}"),
            &["--resume", s(&copy)],
            needle,
            &[Guard::Run(copy.clone())],
        );
    }
    // --init: starting weights that cannot be used refuse the new run.
    let fifo = dir.join("init-fifo.safetensors");
    mkfifo(&fifo);
    let nan = dir.join("init-nan.safetensors");
    std::fs::copy(run.join("model.safetensors"), &nan).unwrap();
    poison(&nan);
    let garbage = dir.join("init-garbage.safetensors");
    std::fs::write(&garbage, b"\x10\0\0\0\0\0\0\0{not json}xxxxxx").unwrap();
    let wrong_arch = dir.join("init-wrong-arch.json");
    std::fs::write(&wrong_arch, arch_text("", "")).unwrap();
    for (name, init, extra) in [
        ("init-fifo", &fifo, vec![]),
        ("init-nan", &nan, vec![]),
        ("init-garbage", &garbage, vec![]),
        (
            "init-of-another-architecture",
            &run.join("model.safetensors"),
            vec!["--arch", s(&wrong_arch)],
        ),
    ] {
        let out = dir.join(format!("new-{name}"));
        let mut args = vec!["--data", s(&data), "--out", s(&out), "--init", s(init)];
        args.extend(extra);
        let needle = init.file_name().unwrap().to_str().unwrap().to_string();
        t.refuse(
            name,
            &with_small(&args),
            &needle,
            &[Guard::Absent(out.clone()), Guard::Run(run.clone())],
        );
    }
    // eval and test must refuse what cannot be loaded, too.
    for name in [
        "latest-garbage",
        "model-truncated",
        "model-nan-weights",
        "state-garbage",
        "state-batch-size-0",
    ] {
        let copy = dir.join(name);
        let needle = cases.iter().find(|c| c.0 == name).unwrap().2;
        t.refuse(
            &format!("eval-{name}"),
            &["eval", "--model", s(&copy)],
            needle,
            &[Guard::Run(copy.clone())],
        );
    }
    t.refuse(
        "test-model-garbage",
        &["test", "--model", s(&dir.join("model-garbage"))],
        "model.safetensors",
        &[Guard::Run(dir.join("model-garbage"))],
    );
    let _ = gen_name;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&data);
    t.finish();
}

#[test]
fn output_json_and_overwrite() {
    let dir = temp_dir("hostile-output");
    let data = cifar_dir("hostile-output-data", 64, 16);
    let mut t = Table::new("output/JSON/overwrite", &dir);
    let _cleanup = Cleanup(vec![dir.clone(), data.clone()]);
    let run = dir.join("run");
    train(&dir, &data, &run, &["--epochs", "2", "--max-steps", "4"]);
    let r = s(&run).to_string();
    let gen_dir = generation(&run);
    let one_json = |out: &Out| -> Result<serde_json::Value, String> {
        succeeded(out)?;
        serde_json::from_str(&out.stdout)
            .map_err(|e| format!("stdout is not one JSON document: {e}: {:?}", out.stdout))
    };
    t.check("eval-json-is-one-document", || {
        let v = one_json(&run_in(
            &dir,
            &[
                "eval",
                "--model",
                &r,
                "--json",
                "--confusion",
                s(&dir.join("c.png")),
            ],
            &[],
        ))?;
        let total: u64 = v["confusion"]
            .as_array()
            .ok_or("no confusion")?
            .iter()
            .flat_map(|row| row.as_array().cloned().unwrap_or_default())
            .filter_map(|x| x.as_u64())
            .sum();
        if total == 16 {
            Ok(())
        } else {
            Err(format!("confusion counts {total}, not 16"))
        }
    });
    t.check("test-json-is-one-document", || {
        let v = one_json(&run_in(
            &dir,
            &["test", "--model", &r, "--json", "--count", "3"],
            &[],
        ))?;
        let n = v["examples"].as_array().map_or(0, Vec::len);
        if n == 3 {
            Ok(())
        } else {
            Err(format!("{n} examples"))
        }
    });
    t.check("train-json-is-one-document", || {
        let out = dir.join("json-run");
        let mut args = vec!["--data", s(&data), "--out", s(&out), "--json"];
        args.extend(SMALL);
        let v = one_json(&run_in(&dir, &args, &[]))?;
        if v["outcome"] == "finished" {
            Ok(())
        } else {
            Err(format!("{v}"))
        }
    });
    let g = [Guard::Run(run.clone())];
    // Each overwrite row on its own copy of the run, so that one that gets through does not
    // spoil the next.
    let targets: &[(&str, &str)] = &[
        ("run-model", "model.safetensors"),
        ("generation-model", "GEN/model.safetensors"),
        ("generation-optimizer", "GEN/optimizer.safetensors"),
        ("generation-state", "GEN/state.json"),
        ("latest", "latest"),
        ("steps-history", "steps.jsonl"),
        ("epochs-history", "epochs.jsonl"),
    ];
    let gen_name = gen_dir.file_name().unwrap().to_str().unwrap().to_string();
    for (name, file) in targets {
        for (cmd, flag) in [("eval", "--confusion"), ("plot", "--out")] {
            let copy = dir.join(format!("{cmd}-{name}"));
            copy_tree(&run, &copy);
            let target = copy.join(file.replace("GEN", &gen_name));
            let c = s(&copy);
            let args = if cmd == "eval" {
                vec!["eval", "--model", c, "--data", s(&data), flag, s(&target)]
            } else {
                vec!["plot", c, flag, s(&target)]
            };
            t.refuse(
                &format!("{cmd}-onto-{name}"),
                &args,
                flag,
                &[Guard::Run(copy.clone())],
            );
        }
    }
    t.refuse(
        "eval-bare-model-confusion-onto-itself",
        &[
            "eval",
            "--model",
            &format!("{r}/model.safetensors"),
            "--confusion",
            &format!("{r}/model.safetensors"),
        ],
        "--confusion",
        &g,
    );
    t.refuse(
        "plot-a-missing-run",
        &["plot", s(&dir.join("nowhere"))],
        "nowhere",
        &[],
    );
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    t.refuse(
        "plot-a-file",
        &["plot", s(&file)],
        "a-file",
        &[Guard::Exact(file.clone())],
    );
    let fifo = dir.join("model-fifo.safetensors");
    mkfifo(&fifo);
    t.refuse(
        "eval-a-fifo-model",
        &["eval", "--model", s(&fifo), "--data", s(&data)],
        "model-fifo.safetensors",
        &[],
    );
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), b"mine").unwrap();
    t.refuse(
        "eval-a-foreign-directory",
        &["eval", "--model", s(&foreign), "--data", s(&data)],
        "foreign",
        &[Guard::Exact(foreign.clone())],
    );
    t.refuse(
        "plot-a-foreign-directory",
        &["plot", s(&foreign)],
        "foreign",
        &[Guard::Exact(foreign.clone())],
    );
    // A picture onto an existing directory: refused naming --out, and no temporary file left
    // beside it.
    let parent = dir.join("parent");
    std::fs::create_dir_all(parent.join("a-dir")).unwrap();
    t.refuse(
        "plot-out-is-a-directory",
        &["plot", &r, "--out", s(&parent.join("a-dir"))],
        "--out",
        &[Guard::Exact(parent.clone()), g[0].clone()],
    );
    t.refuse(
        "eval-confusion-is-a-directory",
        &[
            "eval",
            "--model",
            &r,
            "--confusion",
            s(&parent.join("a-dir")),
        ],
        "--confusion",
        &[Guard::Exact(parent.clone()), g[0].clone()],
    );
    t.refuse(
        "plot-out-under-a-file",
        &["plot", &r, "--out", s(&file.join("x.png"))],
        "--out",
        &[Guard::Exact(file.clone()), g[0].clone()],
    );
    // Writing a picture must not delete what the user keeps beside it.
    let pics = dir.join("pics");
    std::fs::create_dir_all(pics.join(".keep.png.tmp")).unwrap();
    std::fs::write(pics.join(".keep.png.tmp/important.txt"), b"mine").unwrap();
    t.check("confusion-picture-leaves-the-users-files-beside-it", || {
        let out = run_in(
            &dir,
            &[
                "eval",
                "--model",
                &r,
                "--confusion",
                s(&pics.join("keep.png")),
            ],
            &[],
        );
        succeeded(&out)?;
        if pics.join(".keep.png.tmp/important.txt").is_file() {
            Ok(())
        } else {
            Err(format!(
                "{} was deleted",
                pics.join(".keep.png.tmp/important.txt").display()
            ))
        }
    });
    t.refuse(
        "eval-a-missing-model",
        &["eval", "--model", s(&dir.join("none.safetensors"))],
        "none.safetensors",
        &[],
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&data);
    t.finish();
}

#[test]
fn pictures() {
    let dir = temp_dir("hostile-pictures");
    let data = cifar_dir("hostile-pictures-data", 64, 16);
    let mut t = Table::new("pictures", &dir);
    let _cleanup = Cleanup(vec![dir.clone(), data.clone()]);
    let run = dir.join("run");
    train(&dir, &data, &run, &["--max-steps", "2"]);
    let r = s(&run).to_string();
    let g = Guard::Run(run.clone());
    let good = dir.join("good.png");
    png(&good, 32, 32);
    let garbage = dir.join("garbage.png");
    std::fs::write(
        &garbage,
        (0..1000u32)
            .map(|i| (i * 31 % 256) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let empty = dir.join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let cut = dir.join("cut.png");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 20]).unwrap();
    let huge = dir.join("huge.png");
    png(&huge, 4000, 4000);
    let fifo = dir.join("fifo.png");
    mkfifo(&fifo);
    let rows: Vec<(&str, Vec<&str>, &str)> = vec![
        ("index-past-the-test-set", vec!["--index", "16"], "--index"),
        (
            "index-huge",
            vec!["--index", "18446744073709551615"],
            "--index",
        ),
        ("image-garbage", vec!["--image", s(&garbage)], "garbage.png"),
        ("image-zero-bytes", vec!["--image", s(&empty)], "empty.png"),
        ("image-truncated", vec!["--image", s(&cut)], "cut.png"),
        ("image-4000x4000", vec!["--image", s(&huge)], "huge.png"),
        ("image-fifo", vec!["--image", s(&fifo)], "fifo.png"),
        (
            "image-missing",
            vec!["--image", "missing.png"],
            "missing.png",
        ),
        (
            "image-directory",
            vec!["--image", s(&dir)],
            "hostile-pictures",
        ),
        (
            "patch-zero",
            vec!["--index", "0", "--patch", "0"],
            "--patch",
        ),
        (
            "patch-huge",
            vec!["--index", "0", "--patch", "99999"],
            "--patch",
        ),
        (
            "stride-zero",
            vec!["--index", "0", "--stride", "0"],
            "--stride",
        ),
        (
            "class-unknown",
            vec!["--image", s(&good), "--class", "unicorn"],
            "--class",
        ),
        ("nothing-to-draw", vec![], "--index"),
        ("index-twice", vec!["--index", "0", "0"], "--index"),
    ];
    for (name, extra, needle) in &rows {
        let mut args = vec!["visualize", "--model", &r];
        args.extend(extra.iter().copied());
        t.refuse(
            name,
            &args,
            needle,
            &[g.clone(), Guard::Exact(good.clone())],
        );
    }
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    png(&a.join("same.png"), 32, 32);
    png(&b.join("same.png"), 32, 32);
    t.refuse(
        "two-images-with-the-same-name",
        &[
            "visualize",
            "--model",
            &r,
            "--image",
            s(&a.join("same.png")),
            s(&b.join("same.png")),
            "--out",
            s(&dir.join("maps")),
        ],
        "same.png",
        &[g.clone(), Guard::Exact(a.clone()), Guard::Exact(b.clone())],
    );
    t.refuse(
        "out-would-overwrite-the-image",
        &[
            "visualize",
            "--model",
            &r,
            "--image",
            s(&a.join("same.png")),
            "--out",
            s(&a),
        ],
        "--out",
        &[g.clone(), Guard::Exact(a.clone())],
    );
    t.refuse(
        "out-is-a-file",
        &[
            "visualize",
            "--model",
            &r,
            "--index",
            "0",
            "--out",
            s(&good),
        ],
        "--out",
        &[g.clone(), Guard::Exact(good.clone())],
    );
    t.check("a-good-image-is-drawn", || {
        let maps = dir.join("maps-good");
        succeeded(&run_in(
            &dir,
            &[
                "visualize",
                "--model",
                &r,
                "--image",
                s(&good),
                "--out",
                s(&maps),
            ],
            &[],
        ))?;
        if maps.join("good.png").is_file() {
            Ok(())
        } else {
            Err("no picture".into())
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&data);
    t.finish();
}

#[test]
fn signals_and_faults() {
    let dir = temp_dir("hostile-signals");
    let data = cifar_dir("hostile-signals-data", 64, 16);
    let mut t = Table::new("signals", &dir);
    let _cleanup = Cleanup(vec![dir.clone(), data.clone()]);
    let d = s(&data).to_string();
    let long = |out: &Path| -> Vec<String> {
        [
            "--data",
            &d,
            "--out",
            s(out),
            "--epochs",
            "1000",
            "--lr",
            "0.001",
            "--technique",
            "direct",
            "--threads",
            "1",
            "--batch-size",
            "16",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    let step_of = |run: &Path| -> u64 {
        std::fs::read_to_string(run.join("latest"))
            .ok()
            .and_then(|n| n.trim().strip_prefix("gen-").and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    };
    // Kill with `signal` once the run has saved past its first epoch; then eval loads it and
    // --resume continues.
    for (name, signal, code) in [("sigint", "-INT", Some(130)), ("sigkill", "-KILL", None)] {
        let run = dir.join(name);
        let args = long(&run);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let child = command(&dir, &args, &[]).spawn().unwrap();
        let pid = child.id().to_string();
        while step_of(&run) < 4 && started.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(10));
        }
        // A moment into the next epoch, so that the kill lands mid-way.
        std::thread::sleep(Duration::from_millis(70));
        let _ = Command::new("kill").args([signal, &pid]).status();
        let out = finish(child, started);
        t.check(&format!("{name}-exit-code"), || {
            if out.code == code && !out.stderr.contains("panicked") && !out.timed_out {
                Ok(())
            } else {
                Err(format!(
                    "exit {:?}, expected {code:?}; stderr {:?}",
                    out.code,
                    out.stderr.lines().last()
                ))
            }
        });
        let at = step_of(&run);
        t.check(&format!("{name}-then-eval-loads"), || {
            succeeded(&run_in(&dir, &["eval", "--model", s(&run)], &[]))
        });
        t.check(&format!("{name}-then-resume-continues"), || {
            let target = (at + 2).to_string();
            succeeded(&run_in(
                &dir,
                &["--resume", s(&run), "--max-steps", &target],
                &[],
            ))?;
            let now = step_of(&run);
            if now == at + 2 {
                Ok(())
            } else {
                Err(format!("step {now} after resuming from {at} to {target}"))
            }
        });
    }
    // Ctrl-C twice: the second quits at once, exit 130; the pointer still names a complete
    // generation.
    let twice = dir.join("sigint-twice");
    let args = long(&twice);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let child = command(&dir, &args, &[]).spawn().unwrap();
    let pid = child.id().to_string();
    while step_of(&twice) < 4 && started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(40));
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let out = finish(child, started);
    t.check("sigint-twice-exits-130-and-leaves-a-loadable-run", || {
        if out.code != Some(130) || out.stderr.contains("panicked") {
            return Err(format!("exit {:?}; stderr {:?}", out.code, out.stderr));
        }
        succeeded(&run_in(&dir, &["eval", "--model", s(&twice)], &[]))?;
        let target = (step_of(&twice) + 1).to_string();
        succeeded(&run_in(
            &dir,
            &["--resume", s(&twice), "--max-steps", &target],
            &[],
        ))
    });
    // An injected crash after the k-th file operation: exit 86, and what is left loads.
    // Every crash point of a one-epoch run (about 50 file operations, until one finishes):
    // exit 86, then what is left loads, and finishing it gives the same history as an uncut
    // run: 4 steps, 1 epoch.
    let lines = |p: &Path| std::fs::read_to_string(p).map_or(0, |t| t.lines().count());
    for k in 1u32..=100 {
        let run = dir.join(format!("fault-{k}"));
        let mut args = vec!["--data", &d, "--out", s(&run)];
        args.extend(SMALL);
        let kk = k.to_string();
        let out = run_in(&dir, &args, &[("NETWORK_FAULT_AFTER", &kk)]);
        let finished = out.code == Some(0);
        t.check(&format!("fault-after-{k}-then-recover"), || {
            if out.code == Some(0) {
                return Ok(()); // fewer operations than k: nothing to check
            }
            if out.code != Some(86) || out.stderr.contains("panicked") {
                return Err(format!("exit {:?}; stderr {:?}", out.code, out.stderr));
            }
            if run.join("latest").exists() {
                succeeded(&run_in(&dir, &["eval", "--model", s(&run)], &[]))?;
                succeeded(&run_in(&dir, &["--resume", s(&run)], &[]))?;
            } else {
                // No checkpoint yet: the same --out must be usable for a new run.
                succeeded(&run_in(&dir, &args, &[]))?;
            }
            let (steps, epochs) = (
                lines(&run.join("steps.jsonl")),
                lines(&run.join("epochs.jsonl")),
            );
            if step_of(&run) == 4 && steps == 4 && epochs == 1 {
                Ok(())
            } else {
                Err(format!(
                    "after recovery: step {}, {steps} step lines, {epochs} epoch lines",
                    step_of(&run)
                ))
            }
        });
        if finished {
            break; // fewer operations than k: every crash point was tried
        }
    }
    t.refuse_full(
        "fault-env-nonsense",
        &[
            "--data",
            &d,
            "--out",
            s(&dir.join("never")),
            "--epochs",
            "1",
        ],
        &[("NETWORK_FAULT_AFTER", "abc")],
        "NETWORK_FAULT_AFTER",
        &[Guard::Absent(dir.join("never"))],
        20.0,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&data);
    t.finish();
}

#[test]
fn defaults() {
    let dir = temp_dir("hostile-defaults");
    let data = cifar_dir("hostile-defaults-data", 64, 16);
    let mut t = Table::new("defaults", &dir);
    let _cleanup = Cleanup(vec![dir.clone(), data.clone()]);
    let quick = [
        "--technique",
        "direct",
        "--threads",
        "1",
        "--batch-size",
        "16",
        "--max-steps",
        "1",
    ];
    let cwd = dir.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    t.check("runs-1-appears-in-the-current-directory", || {
        let out = run_in(&cwd, &quick, &[]);
        succeeded(&out)?;
        if !cwd.join("runs/1/latest").is_file() {
            return Err("no runs/1 in the current directory".into());
        }
        if !out.stderr.contains("embedded sample") {
            return Err(format!("the sample is not named: {:?}", out.stderr));
        }
        Ok(())
    });
    t.check("the-next-run-is-runs-2", || {
        succeeded(&run_in(&cwd, &quick, &[]))?;
        if cwd.join("runs/2/latest").is_file() {
            Ok(())
        } else {
            Err("no runs/2".into())
        }
    });
    let root = dir.join("elsewhere-runs");
    t.check("network-runs-is-honoured", || {
        succeeded(&run_in(&cwd, &quick, &[("NETWORK_RUNS", s(&root))]))?;
        if root.join("1/latest").is_file() && !cwd.join("runs/3").exists() {
            Ok(())
        } else {
            Err("the run is not under $NETWORK_RUNS".into())
        }
    });
    t.check("network-data-is-honoured", || {
        let out = run_in(
            &cwd,
            &quick,
            &[("NETWORK_DATA", s(&data)), ("NETWORK_RUNS", s(&root))],
        );
        succeeded(&out)?;
        if out.stderr.contains("hostile-defaults-data") {
            Ok(())
        } else {
            Err(format!("{:?}", out.stderr))
        }
    });
    let local = dir.join("with-data");
    std::fs::create_dir_all(local.join("data")).unwrap();
    copy_tree(&data, &local.join("data/cifar-10-batches-bin"));
    t.check("data-dir-in-the-current-directory-is-used", || {
        let out = run_in(&local, &quick, &[]);
        succeeded(&out)?;
        if out.stderr.contains("cifar-10-batches-bin") && local.join("runs/1/latest").is_file() {
            Ok(())
        } else {
            Err(format!("{:?}", out.stderr))
        }
    });
    // An explicit $NETWORK_DATA that does not exist is a mistake, not a reason to train on
    // the sample.
    let mut t2 = Table::new("defaults", &cwd);
    t2.refuse_full(
        "network-data-missing-is-refused",
        &with_small(&["--max-steps", "1", "--out", s(&dir.join("never"))]),
        &[("NETWORK_DATA", s(&dir.join("typo-data")))],
        "typo-data",
        &[Guard::Absent(dir.join("never"))],
        20.0,
    );
    t.rows += t2.rows;
    t.failures.extend(t2.failures);
    t.check("nothing-written-in-the-source-tree", || {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        if here.join("runs").exists() {
            Err("runs/ appeared beside the crate".into())
        } else {
            Ok(())
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&data);
    t.finish();
}
