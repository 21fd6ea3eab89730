//! Helpers of the network tests: temporary directories and small CIFAR-10 directories cut
//! from the embedded sample.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use network::data::{Cifar10, Dataset};

/// A fresh, empty directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("network-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The records of a dataset, as a CIFAR-10 file holds them.
pub fn records(data: &Dataset) -> Vec<u8> {
    (0..data.len())
        .flat_map(|i| std::iter::once(data.labels[i]).chain(data.image(i).iter().copied()))
        .collect()
}

/// A CIFAR-10 directory with `train` training images (in data_batch_1.bin) and `test` test
/// images, cut from the embedded sample.
pub fn cifar_dir(name: &str, train: usize, test: usize) -> PathBuf {
    let dir = temp_dir(name);
    let sample = Cifar10::sample();
    std::fs::write(
        dir.join("data_batch_1.bin"),
        records(&sample.train.truncated(train)),
    )
    .unwrap();
    std::fs::write(
        dir.join("test_batch.bin"),
        records(&sample.test.truncated(test)),
    )
    .unwrap();
    dir
}

/// Runs the `network` binary in a scratch current directory (so that no default writes into
/// the source tree); returns (success, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (bool, String, String) {
    let cwd = std::env::temp_dir().join(format!("network-test-{}-cwd", std::process::id()));
    std::fs::create_dir_all(&cwd).unwrap();
    run_cli_in(&cwd, args, &[])
}

/// Runs the `network` binary in `cwd` with extra environment variables (and without the
/// `NETWORK_*` ones of the caller); returns (success, stdout, stderr).
pub fn run_cli_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_network"))
        .args(args)
        .current_dir(cwd)
        .env_remove("NETWORK_RUNS")
        .env_remove("NETWORK_DATA")
        .env_remove("NETWORK_FAULT_AFTER")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Checks a failed command's stderr: one line, starting with `error:`, holding `needle`,
/// and no panic.
pub fn assert_one_line_error(result: &(bool, String, String), needle: &str) {
    let (ok, _, stderr) = result;
    assert!(!ok, "the command succeeded; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(needle), "{stderr:?} lacks {needle:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Checks a command that failed after it started working (notes before are fine): its last
/// stderr line is the `error:` holding `needle`, and no panic.
pub fn assert_ends_in_error(result: &(bool, String, String), needle: &str) {
    let (ok, _, stderr) = result;
    assert!(!ok, "the command succeeded; stderr: {stderr}");
    let last = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        last.starts_with("error: ") && last.contains(needle),
        "{stderr:?} lacks {needle:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The bytes of a file.
pub fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file below `dir` (but the lock) with its bytes, sorted: to show that nothing changed.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != "lock") {
                files.push((path.clone(), bytes(&path)));
            }
        }
    }
    files.sort();
    files
}

/// The generation directory the `latest` pointer of the run `run` names.
pub fn generation(run: &Path) -> PathBuf {
    let name = std::fs::read_to_string(run.join("latest")).unwrap();
    run.join(name.trim())
}
