//! The browser's event stream (`GET /api/events`, server-sent events): the snapshot of every
//! run, then every update, pushed as it happens. The connection's thread waits on the hub's
//! channel and writes each event out at once.

use std::io::Write;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use super::hub::Hub;

/// The response's head: written by hand, since the body has no end and must not be buffered.
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n";

/// Streams events to `request`'s browser until it leaves or the server closes.
pub(crate) fn serve(hub: &Hub, request: tiny_http::Request) {
    let events = hub.subscribe();
    let mut out = request.into_writer();
    if out.write_all(HEAD).and_then(|()| out.flush()).is_err() {
        return;
    }
    loop {
        match events.recv_timeout(Duration::from_secs(1)) {
            Ok(event) => {
                if out
                    .write_all(event.as_bytes())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) if !hub.closing() => {}
            Err(_) => return,
        }
    }
}
