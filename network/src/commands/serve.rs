//! `network serve [RUN_DIR…]`, and the page of `network train --serve`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::run::Run;
use crate::serve::{ServeOptions, Served, Server};

/// Serves the page of `runs` (default: every run directory under the runs root) until the
/// process is stopped; prints the page's address.
pub fn serve(runs: &[PathBuf], options: ServeOptions) -> Result<()> {
    let dirs = if runs.is_empty() {
        runs_under(&super::runs_root())?
    } else {
        runs.to_vec()
    };
    let mut served = Vec::new();
    for dir in &dirs {
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "{}: no such run directory",
                dir.display()
            )));
        }
        served.push(Served::read(dir)?);
    }
    let server = Server::start(options, served)?;
    println!(
        "serving {} run(s) at {} (Ctrl-C to stop)",
        dirs.len(),
        server.url()
    );
    loop {
        std::thread::park();
    }
}

/// Every run directory (one with a `latest` pointer) directly under `root`, by name.
fn runs_under(root: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(root).map_err(|e| {
        Error::Usage(format!(
            "no RUN_DIR given, and the runs directory {} cannot be read: {e}",
            root.display()
        ))
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(crate::store::LATEST).is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(Error::Usage(format!(
            "no RUN_DIR given, and {} holds no run",
            root.display()
        )));
    }
    Ok(dirs)
}

/// The page of a run this process trains: started before the first step, its address on
/// stderr.
pub(crate) fn start_live(run: &Run, options: ServeOptions) -> Result<Server> {
    let served = Served {
        dir: run.dir().to_path_buf(),
        settings: run.state().settings.clone(),
        history: run.history().clone(),
        test: Some(run.data().test.clone()),
        live: true,
    };
    let server = Server::start(options, vec![served])?;
    eprintln!("page: {}", server.url());
    Ok(server)
}

/// After training: keeps the page up until Ctrl-C raises `stop`.
pub(crate) fn linger(server: &Server, stop: &AtomicBool) {
    eprintln!(
        "training is over; the page stays at {} until Ctrl-C",
        server.url()
    );
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
}
