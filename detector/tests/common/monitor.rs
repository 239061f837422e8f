//! Helpers of the monitoring tests (metrics, health, blinded sensor, Prometheus): a bounded
//! HTTP GET on loopback, a free loopback port, `detector health`, and the edits of the
//! shipped config that turn the metrics outputs on. Needs `mod wait;` at the binary's root.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `GET path` on `127.0.0.1:port` over HTTP/1.0 (so every server answers unchunked and
/// closes): (status, body). Bounded by socket timeouts.
pub fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {raw:?}")))?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_owned()))
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `detector health` with these arguments: (success, stdout + stderr).
pub fn health(args: &[&str]) -> (bool, String) {
    let out = crate::wait::output_timeout(
        Command::new(env!("CARGO_BIN_EXE_detector"))
            .arg("health")
            .args(args),
        Duration::from_secs(30),
        "detector health",
    );
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The shipped config's text with the metrics endpoint on `127.0.0.1:port`.
pub fn metrics_listen(text: &str, port: u16) -> String {
    edit(
        text,
        "# listen = \"127.0.0.1:9464\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    )
}

/// The shipped config's text with the metrics textfile at `path` and snapshots every second.
pub fn metrics_textfile(text: &str, path: &Path) -> String {
    let text = edit(
        text,
        "# textfile = \"/var/lib/node_exporter/textfile_collector/detector.prom\"",
        &format!("textfile = {:?}", path.display().to_string()),
    );
    edit(
        &text,
        "# 1 to 3600.\ninterval_secs = 15\n",
        "# 1 to 3600.\ninterval_secs = 1\n",
    )
}

/// `text` with `from` replaced by `to`; fails when the shipped config no longer holds `from`.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the shipped config lost {from:?}");
    text.replacen(from, to, 1)
}
