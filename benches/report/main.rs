//! Renders `reports/` from criterion's output: `TIMINGS.md` (the seed's tables, the sweeps,
//! the sgemm peak, PyTorch beside them, findings) and PNG charts.
//!
//! Usage: `cargo run -p study --release --bin report [-- --criterion DIR --out DIR]`, after
//! `cargo bench -p study`. Benchmarks are identified by the `group_id`, `function_id` and
//! `value_str` fields of criterion's `benchmark.json`, never by directory names; the median is
//! `estimates.json`'s `median.point_estimate`.

mod charts;
mod data;
mod isa;
mod markdown;
mod numpy;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = crate_dir.parent().unwrap_or(crate_dir).to_path_buf();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or(workspace.join("target"), PathBuf::from);
    let mut criterion_dir = target.join("criterion");
    let mut out_dir = workspace.join("reports");
    let mut readme = None;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a directory"));
        match arg.as_str() {
            "--criterion" => criterion_dir = value()?.into(),
            "--out" => out_dir = value()?.into(),
            "--readme" => readme = Some(PathBuf::from(value()?)),
            "--quick" => quick = true,
            "-h" | "--help" => {
                println!(
                    "usage: report [--criterion DIR (default target/criterion)] [--out DIR (default reports)] [--readme FILE] [--quick (the benchmarks ran with STUDY_QUICK=1)]"
                );
                return Ok(());
            }
            _ => return Err(format!("unknown argument {arg:?} (see --help)")),
        }
    }
    let mut timings = data::Timings::load(&criterion_dir)?;
    timings.quick = quick;
    let torch = data::TorchPeer::load(&out_dir.join("torch_layers.json"))?;
    let numpy = data::NumpyPeer::load(&out_dir.join("numpy_layers.json"))?;
    let machine = data::Machine::describe(&timings);
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    study::register_fonts();
    let charts = charts::draw_all(&timings, torch.as_ref(), numpy.as_ref(), &out_dir)?;
    let text = markdown::timings(&timings, torch.as_ref(), numpy.as_ref(), &machine);
    let path = out_dir.join("TIMINGS.md");
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("wrote {} and {charts} charts", path.display());
    if let Some(readme) = readme {
        let text = std::fs::read_to_string(&readme)
            .map_err(|e| format!("cannot read {}: {e}", readme.display()))?;
        let table = markdown::headline_table(&timings, torch.as_ref(), numpy.as_ref(), &machine);
        let updated = markdown::replace_block(&text, &table).ok_or(format!(
            "{} has no {} … {} block to replace",
            readme.display(),
            markdown::README_BEGIN,
            markdown::README_END
        ))?;
        std::fs::write(&readme, updated)
            .map_err(|e| format!("cannot write {}: {e}", readme.display()))?;
        println!("updated the headline table in {}", readme.display());
    }
    Ok(())
}
