//! The live page's server, route by route, through real sockets: the page and its assets, the
//! runs' JSON, the event stream of a run trained in this process and of a run followed from its
//! directory, test images, filters, clicks and uploads; bad uploads (garbage, huge, wrong type,
//! lying headers) and paths outside the table (traversal, encoded, unknown runs) get clear
//! errors; no request changes a run directory; several browsers at once; the CLI.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::*;
use network::arch::seed_network;
use network::config::{TrainConfig, Validation};
use network::data::Cifar10;
use network::events::{Event, Observer, Quiet, Tee};
use network::run::{NewRun, Run, RunOptions};
use network::serve::{ServeOptions, Served, Server};
use network::store::Place;
use serde_json::Value;

/// A run of the embedded sample: 2 epochs of 40 steps, im2col, one thread, nothing held out
/// and the test set measured after every epoch (so every epoch has its confusion matrix).
fn new_run(dir: &Path) -> Run {
    let config = TrainConfig {
        epochs: 2,
        batch_size: 20,
        threads: 1,
        technique: "im2col".parse().unwrap(),
        validation: Validation::Images(0),
        test_every_epoch: true,
        ..TrainConfig::default()
    };
    let new = NewRun {
        arch: seed_network(),
        config,
        ..NewRun::default()
    };
    Run::create(
        &Place::Dir(dir.into()),
        Cifar10::sample(),
        new,
        &RunOptions::default(),
    )
    .unwrap()
}

/// A finished run in a fresh directory, released by its process.
fn finished_run(name: &str) -> PathBuf {
    let dir = temp_dir(name).join("run");
    let mut run = new_run(&dir);
    run.fit(None, &AtomicBool::new(false), &mut Quiet).unwrap();
    dir
}

/// Serves the run directories `dirs`, followed as another process's.
fn serve(dirs: &[&Path]) -> Server {
    let served = dirs.iter().map(|d| Served::read(d).unwrap()).collect();
    Server::start(ServeOptions::default(), served).unwrap()
}

fn address(server: &Server) -> String {
    server
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// An answer: status, content type, body.
struct Answer {
    status: u16,
    kind: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.0 request (so the answer is never chunked) with `head` lines and `body`.
fn request(addr: &str, method: &str, path: &str, head: &[&str], body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut text = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for line in head {
        text.push_str(line);
        text.push_str("\r\n");
    }
    if !body.is_empty() && !head.iter().any(|h| h.starts_with("Content-Length")) {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    // A server that refuses a body early may close before it is all sent: the answer counts.
    let _ = stream
        .write_all(text.as_bytes())
        .and_then(|()| stream.write_all(body));
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse(&raw)
}

fn parse(raw: &[u8]) -> Answer {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let kind = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    Answer {
        status,
        kind,
        body: raw[end + 4..].to_vec(),
    }
}

fn get(addr: &str, path: &str) -> Answer {
    request(addr, "GET", path, &[], &[])
}

fn upload(addr: &str, key: &str, kind: &str, body: &[u8]) -> Answer {
    let head = format!("Content-Type: {kind}");
    let head: &[&str] = if kind.is_empty() { &[] } else { &[&head] };
    request(addr, "POST", &format!("/api/runs/{key}/upload"), head, body)
}

/// A browser's event stream.
struct Events(BufReader<TcpStream>);

impl Events {
    fn open(addr: &str) -> Events {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(stream, "GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut events = Events(BufReader::new(stream));
        let status = events.line();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut kind = String::new();
        loop {
            let line = events.line();
            if line.is_empty() {
                break;
            }
            if line.to_ascii_lowercase().starts_with("content-type:") {
                kind = line;
            }
        }
        assert!(kind.contains("text/event-stream"), "{kind}");
        events
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        line.trim_end_matches(['\r', '\n']).to_string()
    }

    /// The next event (comments skipped): its name and data.
    fn next(&mut self) -> (String, Value) {
        self.next_before(Instant::now() + Duration::from_secs(60))
    }

    /// The next event, which must come before `deadline` (the server's keep-alive comments
    /// alone would keep a read timeout from ever firing).
    fn next_before(&mut self, deadline: Instant) -> (String, Value) {
        let (mut name, mut data) = (String::new(), String::new());
        loop {
            assert!(Instant::now() < deadline, "no event before the deadline");
            let line = self.line();
            if line.is_empty() && !name.is_empty() {
                return (name, serde_json::from_str(&data).unwrap());
            }
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                data = d.to_string();
            }
        }
    }

    /// Events until `done` says so, within `limit`.
    fn until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&str, &Value) -> bool,
    ) -> Vec<(String, Value)> {
        let start = Instant::now();
        let mut seen = Vec::new();
        while start.elapsed() < limit {
            let (name, data) = self.next_before(start + limit);
            let stop = done(&name, &data);
            seen.push((name, data));
            if stop {
                return seen;
            }
        }
        panic!(
            "not done within {limit:?}: {:?}",
            seen.iter().map(|e| &e.0).collect::<Vec<_>>()
        );
    }
}

/// A PNG of `w × h` pixels.
fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 5) as u8, (y * 3) as u8, 120]))
        .write_to(&mut out, image::ImageOutputFormat::Png)
        .unwrap();
    out.into_inner()
}

/// A JPEG of `w × h` pixels.
fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([200, (x * 2) as u8, (y * 2) as u8]))
        .write_to(&mut out, image::ImageOutputFormat::Jpeg(90))
        .unwrap();
    out.into_inner()
}

/// A data URL's PNG, decoded.
fn data_png(url: &Value) -> image::RgbImage {
    use base64::Engine;
    let text = url
        .as_str()
        .unwrap()
        .strip_prefix("data:image/png;base64,")
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    image::load_from_memory(&bytes).unwrap().to_rgb8()
}

/// Waits until the analyst has loaded the run's checkpoint (filters answer 200).
fn wait_for_model(addr: &str, key: &str) {
    let start = Instant::now();
    while get(addr, &format!("/api/runs/{key}/filters.png")).status != 200 {
        assert!(start.elapsed() < Duration::from_secs(60), "no model loaded");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_page_and_the_runs_answer() {
    let dir = finished_run("serve-page");
    let server = serve(&[&dir]);
    let addr = address(&server);
    assert!(
        server.url().starts_with("http://127.0.0.1:"),
        "{}",
        server.url()
    );
    let page = get(&addr, "/");
    assert_eq!(
        (page.status, page.kind.as_str()),
        (200, "text/html; charset=utf-8")
    );
    assert!(page.text().contains("/app.js") && page.text().contains("Watch it learn"));
    for (path, kind) in [("/app.js", "text/javascript"), ("/style.css", "text/css")] {
        let answer = get(&addr, path);
        assert_eq!(answer.status, 200, "{path}");
        assert!(answer.kind.starts_with(kind), "{path}: {}", answer.kind);
        assert!(answer.body.len() > 500, "{path}");
    }
    let runs = get(&addr, "/api/runs").json();
    let run = &runs["runs"][0];
    assert_eq!(run["key"], "run");
    assert_eq!(run["epochs"].as_array().unwrap().len(), 2);
    assert_eq!(run["steps_per_epoch"], 40);
    // 80 steps, one point per whole 1/32 epoch (a step here): 80 points.
    assert_eq!(run["points"].as_array().unwrap().len(), 80);
    assert_eq!(run["status"]["step"], 80);
    assert_eq!(run["config"]["batch_size"], 20);
    assert_eq!(run["plan"]["forward"][0], "im2col");
    assert_eq!(runs["classes"][3], "cat");
}

#[test]
fn a_run_trained_here_streams_its_steps_epochs_and_checkpoints() {
    let root = temp_dir("serve-live");
    let mut run = new_run(&root.join("run"));
    let served = Served {
        dir: run.dir().to_path_buf(),
        settings: run.state().settings.clone(),
        history: run.history().clone(),
        test: Some(run.data().test.clone()),
        live: true,
    };
    let server = Server::start(ServeOptions::default(), vec![served]).unwrap();
    let addr = address(&server);
    let mut events = Events::open(&addr);
    let (name, snapshot) = events.next();
    assert_eq!(name, "snapshot");
    assert_eq!(snapshot["runs"][0]["points"].as_array().unwrap().len(), 0);
    let mut page = server.observer(0);
    run.fit(
        Some(40),
        &AtomicBool::new(false),
        &mut Tee(&mut Quiet, &mut page),
    )
    .unwrap();
    page.ended("step-limit");
    let (mut analysed, mut ended) = (false, false);
    let seen = events.until(Duration::from_secs(60), |name, data| {
        analysed |= name == "model" && data["step"] == 40;
        ended |= name == "status" && data["status"]["state"] == "step-limit";
        analysed && ended
    });
    let points: usize = seen
        .iter()
        .filter(|(n, _)| n == "points")
        .map(|(_, d)| d["points"].as_array().unwrap().len())
        .sum();
    assert_eq!(points, 40, "one point a step, every step");
    let epoch = seen
        .iter()
        .find(|(n, _)| n == "epoch")
        .expect("an epoch event");
    let confusion = epoch.1["confusion"].as_array().unwrap();
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 200, "the confusion matrix counts every test image");
    let model = &seen.iter().rfind(|(n, _)| n == "model").unwrap().1;
    assert_eq!(model["gallery"].as_array().unwrap().len(), 20);
    assert_eq!(model["gallery"][0]["top"].as_array().unwrap().len(), 3);
}

/// A run of one epoch (40 steps, checkpointed) in a fresh directory named after `name`, released
/// by its process and served as another process's: its directory, the server, a browser's
/// event stream and the stream's first event (the snapshot).
fn followed_after_one_epoch(name: &str) -> (PathBuf, Server, Events, Value) {
    let dir = temp_dir(name).join("run");
    let mut run = new_run(&dir);
    run.fit(Some(40), &AtomicBool::new(false), &mut Quiet)
        .unwrap();
    drop(run);
    let server = serve(&[&dir]);
    let mut events = Events::open(&address(&server));
    let (_, snapshot) = events.next();
    (dir, server, events, snapshot)
}

#[test]
fn a_followed_run_streams_what_its_checkpoints_add() {
    let (dir, _server, mut events, snapshot) = followed_after_one_epoch("serve-follow");
    assert_eq!(snapshot["runs"][0]["epochs"].as_array().unwrap().len(), 1);
    // Another "process" trains the second epoch; the follower reads what it saves.
    let mut run = Run::resume(&dir, None, &RunOptions::default()).unwrap();
    run.fit(None, &AtomicBool::new(false), &mut Quiet).unwrap();
    // Both, in whichever order the server sends them: the analysed model of step 80 with its
    // confusion matrix, and the second epoch's 40 points.
    let (mut analysed, mut counted) = (false, 0);
    let seen = events.until(Duration::from_secs(60), |name, data| {
        analysed |= name == "model" && data["step"] == 80 && data["confusion"].is_array();
        if name == "points" {
            counted += data["points"].as_array().map_or(0, Vec::len);
        }
        analysed && counted >= 40
    });
    assert!(
        seen.iter()
            .any(|(n, d)| n == "epoch" && d["record"]["epoch"] == 2)
    );
    let points: usize = seen
        .iter()
        .filter(|(n, _)| n == "points")
        .map(|(_, d)| d["points"].as_array().unwrap().len())
        .sum();
    assert_eq!(points, 40);
}

/// Between checkpoints the trainer journals its steps; a follower shows them before any save.
#[test]
fn a_followed_run_shows_the_steps_journaled_between_checkpoints() {
    let (dir, server, mut events, _) = followed_after_one_epoch("serve-journal");
    /// At step 60 of the second epoch (no checkpoint since step 40), waits for the page to
    /// show step 59, the last one journaled then.
    struct Watch<'a> {
        events: &'a mut Events,
        shown: Vec<(String, Value)>,
    }
    impl Observer for Watch<'_> {
        fn event(&mut self, event: &Event) {
            let Event::Step { record, .. } = event else {
                return;
            };
            if record.step != 60 {
                return;
            }
            let last = 59.0 / 40.0;
            self.shown = self.events.until(Duration::from_secs(30), |name, data| {
                name == "points"
                    && (data["points"].as_array().unwrap().iter())
                        .any(|p| (p[0].as_f64().unwrap() - last).abs() < 1e-9)
            });
        }
    }
    let mut watch = Watch {
        events: &mut events,
        shown: Vec::new(),
    };
    let mut run = Run::resume(&dir, None, &RunOptions::default()).unwrap();
    run.fit(Some(61), &AtomicBool::new(false), &mut watch)
        .unwrap();
    let shown = watch.shown;
    // Steps 41–59 arrived as points, and nothing of a later checkpoint did.
    let points: usize = (shown.iter())
        .filter(|(n, _)| n == "points")
        .map(|(_, d)| d["points"].as_array().unwrap().len())
        .sum();
    assert_eq!(points, 19, "{shown:?}");
    assert!(
        !(shown.iter()).any(|(n, d)| n == "epoch" || (n == "model" && d["step"] != 40)),
        "{shown:?}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn images_filters_clicks_and_uploads() {
    let dir = finished_run("serve-look");
    let before = snapshot(&dir);
    let server = serve(&[&dir]);
    let addr = address(&server);
    wait_for_model(&addr, "run");
    let image = get(&addr, "/api/runs/run/test/7.png");
    assert_eq!((image.status, image.kind.as_str()), (200, "image/png"));
    let picture = image::load_from_memory(&image.body).unwrap().to_rgb8();
    assert_eq!(picture.dimensions(), (32, 32));
    let sample = Cifar10::sample();
    assert_eq!(
        picture.get_pixel(5, 9).0[1],
        sample.test.image(7)[1024 + 9 * 32 + 5]
    );
    let filters = get(&addr, "/api/runs/run/filters.png");
    let filters = image::load_from_memory(&filters.body).unwrap().to_rgb8();
    assert_eq!(filters.dimensions(), (498, 126));
    let look = get(&addr, "/api/runs/run/inspect/7").json();
    assert_eq!(look["truth"], sample.test.labels[7]);
    assert_eq!(look["top"].as_array().unwrap().len(), 3);
    assert_eq!(data_png(&look["image"]).dimensions(), (32, 32));
    assert!(data_png(&look["maps"]).width() > 600);
    assert!(data_png(&look["layers"]).height() > 1000);
    for (kind, body) in [("image/png", png(50, 70)), ("image/jpeg", jpeg(300, 120))] {
        let answer = upload(&addr, "run", kind, &body);
        assert_eq!(answer.status, 200, "{kind}: {}", answer.text());
        let look = answer.json();
        assert!(look["truth"].is_null());
        assert_eq!(look["target"], look["top"][0]["class"]);
        assert_eq!(data_png(&look["image"]).dimensions(), (32, 32));
    }
    drop(server);
    assert!(
        snapshot(&dir) == before,
        "a request changed the run directory"
    );
}

#[test]
fn bad_uploads_get_clear_errors() {
    let dir = finished_run("serve-bad-uploads");
    let server = serve(&[&dir]);
    let addr = address(&server);
    wait_for_model(&addr, "run");
    let good = png(40, 40);
    // A PNG whose header claims 100,000 × 100,000 pixels (its checksum fixed).
    let mut giant = good.clone();
    giant[16..24].copy_from_slice(&[0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0]);
    let crc = crc32(&giant[12..29]);
    giant[29..33].copy_from_slice(&crc.to_be_bytes());
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "garbage",
            "image/png",
            b"not an image at all".to_vec(),
            400,
            "not a PNG or JPEG",
        ),
        ("empty", "image/png", Vec::new(), 400, "not a PNG or JPEG"),
        (
            "truncated",
            "image/png",
            good[..good.len() / 2].to_vec(),
            400,
            "cannot read the image",
        ),
        ("giant", "image/png", giant, 400, "cannot read the image"),
        ("gif", "image/png", gif, 400, "not a PNG or JPEG"),
        (
            "text type",
            "text/plain",
            good.clone(),
            415,
            "image/png or image/jpeg",
        ),
        ("no type", "", good.clone(), 415, "image/png or image/jpeg"),
        (
            "huge",
            "image/png",
            vec![0u8; (8 << 20) + 1],
            413,
            "larger than 8 MiB",
        ),
    ];
    for (name, kind, body, status, needle) in cases {
        let answer = upload(&addr, "run", kind, &body);
        assert_eq!(answer.status, status, "{name}: {}", answer.text());
        let error = answer.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(needle), "{name}: {error}");
    }
    // A length that lies: claimed far past the limit, refused before a byte is read.
    let answer = request(
        &addr,
        "POST",
        "/api/runs/run/upload",
        &["Content-Type: image/png", "Content-Length: 99999999999"],
        b"x",
    );
    assert_eq!(answer.status, 413, "{}", answer.text());
    // The server is still there.
    assert_eq!(get(&addr, "/api/runs").status, 200);
    assert_eq!(upload(&addr, "run", "image/png", &good).status, 200);
}

/// CRC-32 (ISO-HDLC, PNG's), for patching a chunk.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn paths_outside_the_table_are_not_found() {
    let dir = finished_run("serve-paths");
    let server = serve(&[&dir]);
    let addr = address(&server);
    let missing = [
        "/api/runs/nope",
        "/api/runs/nope/test/0.png",
        "/api/runs/../run/test/0.png",
        "/api/runs/%2e%2e/test/0.png",
        "/api/runs/..%2Frun/test/0.png",
        "/api/runs/run/../../etc/passwd",
        "/api/runs/run/test/..%2F..%2Flatest",
        "/api/runs/run/test/../latest",
        "/api/runs/run/test/0",
        "/api/runs/run/test/-1.png",
        "/api/runs/run/test/200.png",
        "/api/runs/run/test/99999999999999999999.png",
        "/api/runs/run/test/+1.png",
        "/api/runs/run/inspect/200",
        "/api/runs/run/inspect/x",
        "/api/runs/run/latest",
        "/api/runs/run/state.json",
        "/../../etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "//etc/passwd",
        "/api/runs/run/model.safetensors",
        "/assets/app.js",
        "/api",
    ];
    for path in missing {
        let answer = get(&addr, path);
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
        assert!(answer.json()["error"].is_string(), "{path}");
        let text = answer.text();
        assert!(
            !text.contains("root:") && !text.contains("\"format\""),
            "{path}: {text}"
        );
    }
    let wrong = [
        ("POST", "/"),
        ("POST", "/api/runs"),
        ("DELETE", "/api/runs/run/test/0.png"),
        ("PUT", "/api/runs/run/upload"),
        ("GET", "/api/runs/run/upload"),
        ("POST", "/api/runs/run/inspect/0"),
        ("POST", "/api/events"),
    ];
    for (method, path) in wrong {
        let answer = request(&addr, method, path, &[], &[]);
        assert_eq!(answer.status, 405, "{method} {path}: {}", answer.text());
    }
}

#[test]
fn several_browsers_at_once() {
    let (a, b) = (finished_run("serve-many-a"), finished_run("serve-many-b"));
    let server = serve(&[&a, &b]);
    let addr = address(&server);
    let runs = get(&addr, "/api/runs").json();
    let keys: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["run", "run-2"],
        "same directory names get distinct keys"
    );
    wait_for_model(&addr, "run-2");
    let mut streams: Vec<Events> = (0..6).map(|_| Events::open(&addr)).collect();
    for stream in &mut streams {
        let (name, data) = stream.next();
        assert_eq!(name, "snapshot");
        assert_eq!(data["runs"].as_array().unwrap().len(), 2);
    }
    let clicks: Vec<_> = (0..8)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || get(&addr, &format!("/api/runs/run-2/inspect/{i}")).status)
        })
        .collect();
    for click in clicks {
        assert_eq!(click.join().unwrap(), 200);
    }
    assert_eq!(get(&addr, "/").status, 200);
}

#[test]
fn a_given_port_and_address_are_used() {
    let dir = finished_run("serve-port");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = ServeOptions {
        port,
        ..ServeOptions::default()
    };
    let server = Server::start(options, vec![Served::read(&dir).unwrap()]).unwrap();
    assert_eq!(server.url(), format!("http://127.0.0.1:{port}/"));
    assert_eq!(get(&format!("127.0.0.1:{port}"), "/").status, 200);
    // The port is taken now: a second server on it is an error naming the address.
    let again = Server::start(options, vec![Served::read(&dir).unwrap()]);
    let e = again.err().unwrap().to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[test]
fn the_cli_serves_a_run_directory_and_refuses_bad_flags() {
    let dir = finished_run("serve-cli");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_network"))
        .args(["serve", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("{line}"));
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let runs = get(&addr, "/api/runs").json();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(runs["runs"][0]["key"], "run");
    assert_one_line_error(
        &run_cli(&["train", "--port", "8000"]),
        "--port is for the page: give --serve too",
    );
    assert_one_line_error(&run_cli(&["train", "--bind", "0.0.0.0"]), "--bind");
    assert_one_line_error(&run_cli(&["serve", "/no/such/run"]), "/no/such/run");
    let empty = temp_dir("serve-cli-empty");
    std::fs::create_dir(empty.join("runs")).unwrap();
    let result = run_cli_in(&empty, &["serve"], &[]);
    assert_one_line_error(&result, "holds no run");
    let bad = run_cli(&["serve", "--bind", "localhost:1"]);
    assert!(
        !bad.0 && bad.2.starts_with("error:") && bad.2.contains("--bind"),
        "{}",
        bad.2
    );
}
