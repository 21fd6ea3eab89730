//! The live page: a local web server that shows runs as they train — loss and accuracy curves
//! pushed to the browser as server-sent events, the run's settings and progress, a gallery of
//! test images with their predictions, the maps and every layer of an image the user clicks or
//! drops, the confusion matrix and the first layer's filters after each epoch.
//!
//! How it keeps off the training's back: the training thread only hands small records to a
//! channel ([`live::LiveObserver`]); a pump thread turns them into events for the browsers, and
//! an analyst thread loads each new checkpoint from the run directory (a copy of the weights, on
//! one thread of its own) for the gallery and the filters. Clicks and uploads run on the
//! connection's thread against that copy.
//!
//! Safe by default: bound to 127.0.0.1 unless another address is asked for; no request changes
//! a run (the server only reads run directories, and never takes their lock); uploads are
//! size-limited and decoded defensively; run names in URLs are looked up in the served set,
//! never joined to a path; every connection has its own thread, up to a limit.

mod analyst;
mod follow;
mod hub;
mod live;
mod look;
mod routes;
mod stream;
mod view;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::data::{Cifar10, Dataset};
use crate::error::{Error, Result};
use crate::history::History;
use crate::store::{Checkpoint, Settings};

pub use live::LiveObserver;

/// Connections served at once (each has a thread); more get 503.
pub const MAX_CONNECTIONS: usize = 64;

/// Where the server listens.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// The address (default 127.0.0.1: this machine only).
    pub bind: IpAddr,
    /// The port (0: a free one).
    pub port: u16,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
        }
    }
}

/// One run to show: its directory, what it is, its history so far and its test images.
pub struct Served {
    /// The run directory.
    pub dir: PathBuf,
    /// Its settings.
    pub settings: Settings,
    /// Its history so far.
    pub history: History,
    /// Its test images, for the gallery and clicks (`None` when its data cannot be read).
    pub test: Option<Dataset>,
    /// Whether this process trains it (events come from a [`LiveObserver`]); otherwise its
    /// directory is followed.
    pub live: bool,
}

impl Served {
    /// A run directory of another process (or a finished run), read without its lock: the
    /// newest checkpoint's settings and history, and the test images of the data it recorded.
    /// A note on stderr says when the data cannot be read (the page then has no gallery).
    pub fn read(dir: &Path) -> Result<Served> {
        let checkpoint = Checkpoint::latest(dir)?;
        let history = checkpoint.history(dir)?;
        let settings = checkpoint.state.settings;
        let data = match &settings.data.dir {
            Some(d) => Cifar10::load_or_sample(d, false),
            None => Ok(Cifar10::sample()),
        };
        let test = match data {
            Ok(data) => Some(data.test),
            Err(e) => {
                eprintln!(
                    "note: {}: no gallery, the run's data cannot be read ({e})",
                    dir.display()
                );
                None
            }
        };
        Ok(Served {
            dir: dir.to_path_buf(),
            settings,
            history,
            test,
            live: false,
        })
    }
}

/// A running server.
pub struct Server {
    url: String,
    hub: Arc<hub::Hub>,
    updates: mpsc::Sender<hub::Update>,
    http: Arc<tiny_http::Server>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts serving `runs` on `options`' address: binds (an error names the address), then
    /// starts the pump, the analyst, a follower per run not trained here, and the accept loop.
    pub fn start(options: ServeOptions, runs: Vec<Served>) -> Result<Server> {
        if runs.is_empty() {
            return Err(Error::Usage("no run to serve".into()));
        }
        let addr = SocketAddr::new(options.bind, options.port);
        let http = tiny_http::Server::http(addr)
            .map_err(|e| Error::Usage(format!("--bind/--port: cannot listen on {addr}: {e}")))?;
        let port = http
            .server_addr()
            .to_ip()
            .map_or(options.port, |a| a.port());
        let host = match options.bind {
            IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let url = format!("http://{host}:{port}/");
        let known: Vec<(u64, usize)> = (runs.iter())
            .map(|r| {
                let step = r.history.steps.last().map_or(0, |s| s.step);
                (step, r.history.epochs.len())
            })
            .collect();
        let (updates, pump_rx) = mpsc::channel();
        let (jobs, jobs_rx) = mpsc::channel();
        let hub = Arc::new(hub::Hub::new(runs, jobs));
        hub::start_pump(hub.clone(), pump_rx)?;
        analyst::start(hub.clone(), jobs_rx, updates.clone())?;
        for (index, run) in hub.runs.iter().enumerate() {
            if !run.live {
                follow::start(hub.clone(), index, known[index], updates.clone())?;
            }
            hub.analyse(index);
        }
        let http = Arc::new(http);
        let accept = {
            let (http, hub) = (http.clone(), hub.clone());
            spawn("page accept", move || accept_loop(&http, &hub))?
        };
        Ok(Server {
            url,
            hub,
            updates,
            http,
            accept: Some(accept),
        })
    }

    /// The page's address.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The observer that feeds the page the events of served run `index` (one trained in this
    /// process, [`Served::live`]).
    pub fn observer(&self, index: usize) -> LiveObserver {
        LiveObserver::new(index, self.updates.clone())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.hub.close();
        self.http.unblock();
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Starts a thread of the page named `name` (shown by `top -H`, so that its cost can be told
/// from the training's).
pub(crate) fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| Error::Io(format!("cannot start the page's {name} thread: {e}")))
}

/// Accepts requests until the server is unblocked; each gets a thread of its own, up to
/// [`MAX_CONNECTIONS`] at once.
fn accept_loop(http: &tiny_http::Server, hub: &Arc<hub::Hub>) {
    let busy = Arc::new(AtomicUsize::new(0));
    while let Ok(request) = http.recv() {
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            busy.fetch_sub(1, Ordering::SeqCst);
            routes::refuse_busy(request);
            continue;
        }
        let (hub, slot) = (hub.clone(), Slot(busy.clone()));
        // The slot is freed when the closure is dropped: after the request, after a panic in
        // it (a decoder's, say), or unrun if the thread cannot start.
        let _ = spawn("page request", move || {
            let _slot = slot;
            routes::handle(&hub, request);
        });
    }
}

/// One of [`MAX_CONNECTIONS`] taken, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
