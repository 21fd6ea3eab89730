//! The page's routes. Every path is matched segment by segment against a fixed table; a run is
//! found by its key among the served runs and never by a path, so no request reaches a file
//! the server was not given. No route writes anything.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /`, `/app.js`, `/style.css` | the page, embedded in the binary |
//! | `GET /api/runs` | every run: settings, plan, curve points, epochs, confusion, gallery, progress (JSON) |
//! | `GET /api/events` | the same as a first `snapshot` event, then every update (server-sent events) |
//! | `GET /api/runs/KEY/test/N.png` | test image N |
//! | `GET /api/runs/KEY/filters.png` | the first convolution's filters, newest checkpoint |
//! | `GET /api/runs/KEY/inspect/N` | test image N's predictions, maps and layers (JSON) |
//! | `POST /api/runs/KEY/upload` | the same for a PNG or JPEG in the body (at most [`MAX_UPLOAD`] bytes) |

use std::io::Read;

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response};

use crate::data::decode_resized;
use crate::error::Error;

use super::hub::{Hub, Watched};
use super::look::{self, NO_MODEL};
use super::stream;

/// Largest upload, in bytes.
pub const MAX_UPLOAD: usize = 8 << 20;

const INDEX_HTML: &str = include_str!("../../assets/page/index.html");
const APP_JS: &str = include_str!("../../assets/page/app.js");
const STYLE_CSS: &str = include_str!("../../assets/page/style.css");

/// An answer: a status, a content type and a body.
struct Reply {
    status: u16,
    kind: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn ok(kind: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status: 200,
            kind,
            body: body.into(),
        }
    }

    fn json(value: &Value) -> Self {
        Reply::ok("application/json", value.to_string())
    }

    /// An error as JSON, `{"error": message}`.
    fn error(status: u16, message: impl Into<String>) -> Self {
        let body = json!({ "error": message.into() }).to_string();
        Reply {
            status,
            kind: "application/json",
            body: body.into_bytes(),
        }
    }

    fn send(self, request: Request) {
        let header = |name: &str, value: &str| {
            Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a fixed ASCII header")
        };
        let response = Response::from_data(self.body)
            .with_status_code(self.status)
            .with_header(header("Content-Type", self.kind))
            .with_header(header("Cache-Control", "no-store"))
            .with_header(header("X-Content-Type-Options", "nosniff"));
        let _ = request.respond(response);
    }
}

/// Answers a request when every connection is taken.
pub(crate) fn refuse_busy(request: Request) {
    Reply::error(503, "too many connections; try again").send(request);
}

/// Answers one request.
pub(crate) fn handle(hub: &Hub, mut request: Request) {
    let url = request.url().to_string();
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let method = request.method().clone();
    if segments == ["api", "events"] && method == Method::Get {
        return stream::serve(hub, request);
    }
    let reply = route(hub, &method, &segments, &mut request);
    reply.send(request);
}

/// The reply to `method` on `segments`.
fn route(hub: &Hub, method: &Method, segments: &[&str], request: &mut Request) -> Reply {
    let get = *method == Method::Get || *method == Method::Head;
    let wrong = || Reply::error(405, format!("{method} is not allowed here"));
    match segments {
        [""] | ["index.html"] if get => Reply::ok("text/html; charset=utf-8", INDEX_HTML),
        ["app.js"] if get => Reply::ok("text/javascript; charset=utf-8", APP_JS),
        ["style.css"] if get => Reply::ok("text/css; charset=utf-8", STYLE_CSS),
        ["api", "runs"] if get => Reply::json(&hub.snapshot()),
        ["" | "index.html" | "app.js" | "style.css"] | ["api", "runs" | "events"] => wrong(),
        ["api", "runs", key, rest @ ..] => match hub.find(key) {
            None => Reply::error(404, format!("no run {key:?} is served")),
            Some((_, run)) => run_route(run, get, method, rest, request),
        },
        _ => Reply::error(404, "no such page"),
    }
}

/// The routes of one run.
fn run_route(
    run: &Watched,
    get: bool,
    method: &Method,
    rest: &[&str],
    request: &mut Request,
) -> Reply {
    let post = *method == Method::Post;
    match rest {
        ["test", file] if get => match file.strip_suffix(".png").and_then(|n| index(run, n)) {
            Some(bytes) => {
                answer(look::image_png(bytes.view()).map(|png| Reply::ok("image/png", png)))
            }
            None => Reply::error(404, format!("no test image {file:?}")),
        },
        ["filters.png"] if get => answer(look::filters(run).map(|png| Reply::ok("image/png", png))),
        ["inspect", n] if get => match index(run, n) {
            Some(bytes) => {
                let truth = n
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| run.test.as_ref().map(|t| usize::from(t.labels[i])));
                answer(look::inspect(run, bytes.view(), truth).map(|v| Reply::json(&v)))
            }
            None => Reply::error(404, format!("no test image {n:?}")),
        },
        ["upload"] if post => upload(run, request),
        ["test", _] | ["filters.png"] | ["inspect", _] | ["upload"] => {
            Reply::error(405, format!("{method} is not allowed here"))
        }
        _ => Reply::error(404, "no such page"),
    }
}

/// Test image `text` of `run`: plain decimal digits naming an image it has.
fn index(run: &Watched, text: &str) -> Option<ndarray::Array3<u8>> {
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    look::test_image(run, text.parse().ok()?)
}

/// A result as a reply: errors of the model not loaded yet are 503, others 500.
fn answer(result: crate::Result<Reply>) -> Reply {
    match result {
        Ok(reply) => reply,
        Err(Error::Usage(m)) if m == NO_MODEL => Reply::error(503, m),
        Err(e) => Reply::error(500, e.to_string()),
    }
}

/// `POST …/upload`: a PNG or JPEG of at most [`MAX_UPLOAD`] bytes, resized to 32×32, then
/// inspected as a test image is.
fn upload(run: &Watched, request: &mut Request) -> Reply {
    let kind = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Content-Type"))
        .map(|h| h.value.as_str().to_ascii_lowercase())
        .unwrap_or_default();
    if !(kind.starts_with("image/png") || kind.starts_with("image/jpeg")) {
        return Reply::error(
            415,
            format!("the upload must be image/png or image/jpeg, not {kind:?}"),
        );
    }
    if request.body_length().is_some_and(|n| n > MAX_UPLOAD) {
        return too_large();
    }
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_UPLOAD as u64 + 1)
        .read_to_end(&mut body);
    if let Err(e) = read {
        return Reply::error(400, format!("the upload could not be read: {e}"));
    }
    if body.len() > MAX_UPLOAD {
        return too_large();
    }
    match decode_resized(&body, "the upload") {
        Ok(bytes) => answer(look::inspect(run, bytes.view(), None).map(|v| Reply::json(&v))),
        Err(e) => Reply::error(400, e.to_string()),
    }
}

fn too_large() -> Reply {
    Reply::error(
        413,
        format!("the upload is larger than {} MiB", MAX_UPLOAD >> 20),
    )
}
