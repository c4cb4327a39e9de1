//! The dashboard in a real browser: `lethe serve` with an HTTP port and a password, and Debian's
//! headless Chromium driven over the Chrome DevTools protocol. The page is loaded with Basic
//! credentials in the URL, as an operator would, so its own requests (the stats stream, the key
//! lookup) must get through the admin port's authentication on the browser's resent
//! credentials.
//!
//! The DevTools client is a few dozen lines over a `TcpStream` (one WebSocket, text frames,
//! request ids), so the test needs no browser-automation dependency. Every wait is bounded.
//! A screenshot of the page goes to `target/dashboard.png`; with `LETHE_UPDATE_SCREENSHOT=1`
//! also to `docs/dashboard.png` (the README's), so an ordinary run leaves the sources alone.

mod common;

use common::{Client, spawn_listening};
use serde_json::{Value, json};
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const PASSWORD: &str = "dash-pw";

/// A child process killed (and reaped) on drop, so a failing assertion leaves nothing running.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Headless Chromium with a throwaway profile, and a DevTools connection to its page.
struct Browser {
    child: Killed,
    profile: PathBuf,
    ws: TcpStream,
    next_id: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The profile goes once Chromium no longer writes to it.
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Browser {
    fn launch() -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "Chromium is not installed at {CHROMIUM}: the dashboard's browser test needs it \
             (scripts/test-all installs Debian's package `chromium`)"
        );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let profile =
            std::env::temp_dir().join(format!("lethe-dashboard-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&profile).unwrap();
        let child = Command::new(CHROMIUM)
            .args([
                "--headless=new",
                // The sandbox needs user namespaces, which containers (and root) often lack.
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let child = Killed(child);
        // Port 0: Chromium picks the port and writes it to the profile once it listens.
        let port_file = profile.join("DevToolsActivePort");
        let port: u16 = wait_for("Chromium's DevTools port", Duration::from_secs(30), || {
            std::fs::read_to_string(&port_file)
                .ok()?
                .lines()
                .next()?
                .trim()
                .parse()
                .ok()
        });
        let page = wait_for("Chromium's blank page", Duration::from_secs(15), || {
            let (status, body) = http_get(port, "/json/list", None);
            if status != 200 {
                return None;
            }
            let targets: Value = serde_json::from_str(&body).ok()?;
            targets.as_array()?.iter().find_map(|t| {
                (t["type"] == "page")
                    .then(|| t["webSocketDebuggerUrl"].as_str().map(String::from))?
            })
        });
        let path = &page[page.find("/devtools/").expect("a DevTools URL")..];
        let mut ws = TcpStream::connect(("127.0.0.1", port)).unwrap();
        ws.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            ws,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: bGV0aGUtZGFzaGJvYXJkIQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let head = read_head(&mut ws);
        assert!(head.starts_with("HTTP/1.1 101"), "DevTools refused: {head}");
        Browser {
            child,
            profile,
            ws,
            next_id: 1,
        }
    }

    /// Sends one DevTools command and returns its result (events in between are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let text = json!({"id": id, "method": method, "params": params}).to_string();
        send_frame(&mut self.ws, text.as_bytes());
        let started = Instant::now();
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no reply to {method}"
            );
            let reply: Value = serde_json::from_slice(&read_message(&mut self.ws)).unwrap();
            if reply["id"] == id {
                assert!(reply["error"].is_null(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
    }

    /// Evaluates `expr` in the page and returns its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    /// Waits (at most `within`) until `expr` is true in the page.
    fn wait_until(&mut self, what: &str, expr: &str, within: Duration) {
        let started = Instant::now();
        while self.eval(expr) != Value::Bool(true) {
            let state = self.eval(
                "JSON.stringify({body: document.body?.dataset, status: \
                 document.getElementById('status')?.textContent, \
                 why: document.getElementById('why')?.textContent})",
            );
            assert!(
                started.elapsed() < within,
                "the page never showed {what} within {within:?}; its state: {state}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn number(&mut self, expr: &str) -> u64 {
        let v = self.eval(expr);
        v.as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| v.as_u64())
            .unwrap_or_else(|| panic!("{expr} is not a number: {v}"))
    }

    /// The whole page as a PNG, 1280 pixels wide.
    fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine;
        let metrics = self.call("Page.getLayoutMetrics", json!({}));
        let height = metrics["cssContentSize"]["height"]
            .as_f64()
            .unwrap_or(900.0);
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}}),
        );
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .unwrap()
    }
}

/// Polls `probe` every 100 ms until it gives a value, for at most `within`.
fn wait_for<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            started.elapsed() < within,
            "{what}: nothing within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Response headers, up to the blank line.
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(s.read(&mut byte).unwrap() == 1, "connection closed");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// One masked text frame (clients must mask).
fn send_frame(s: &mut TcpStream, payload: &[u8]) {
    let mask = [0x5a, 0x17, 0xc3, 0x8e];
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n < 65536 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame).unwrap();
}

/// One whole message (continuation frames joined; the server does not mask).
fn read_message(s: &mut TcpStream) -> Vec<u8> {
    let mut message = Vec::new();
    loop {
        let mut head = [0u8; 2];
        s.read_exact(&mut head).expect("a DevTools frame");
        let len = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                s.read_exact(&mut n).unwrap();
                u64::from(u16::from_be_bytes(n))
            }
            127 => {
                let mut n = [0u8; 8];
                s.read_exact(&mut n).unwrap();
                u64::from_be_bytes(n)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).unwrap();
        let opcode = head[0] & 0x0f;
        assert_ne!(opcode, 0x8, "DevTools closed the connection");
        if matches!(opcode, 0x0..=0x2) {
            message.extend_from_slice(&payload);
            if head[0] & 0x80 != 0 {
                return message;
            }
        }
    }
}

/// A plain `GET` (status and body), with Basic credentials when given.
fn http_get(port: u16, path: &str, basic: Option<&str>) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = basic.map_or(String::new(), |b| {
        use base64::Engine;
        format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(b)
        )
    });
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = BufReader::new(s).read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |b| b.1).to_owned();
    (status, body)
}

/// `lethe serve` on ephemeral RESP and HTTP ports, with a password and a key history.
fn serve() -> (Killed, u16, u16) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lethe"));
    cmd.args([
        "serve",
        "--port",
        "0",
        "--http-port",
        "0",
        "--requirepass",
        PASSWORD,
        // The key lookup shows a history only when one is kept (off by default).
        "--history-memory",
        "16777216",
    ]);
    let (child, at) = spawn_listening(&mut cmd, true);
    (Killed(child), at.port, at.http_port.expect("an HTTP port"))
}

fn authed(port: u16) -> Client {
    let mut c = Client::connect(port);
    assert_eq!(c.cmd(&["AUTH", PASSWORD]), "+OK\r\n");
    c
}

/// Traffic the charts can show: tagged writes, hits and misses, tag invalidations.
fn traffic(c: &mut Client, round: usize) -> u64 {
    let mut sent = 0;
    for i in 0..40 {
        let (key, tag) = (format!("item:{round}:{i}"), format!("category:{}", i % 5));
        c.cmd(&["LETHE.SET", &key, "value", "TAGS", "1", &tag]);
        c.cmd(&["GET", &key]);
        c.cmd(&["GET", &format!("missing:{i}")]);
        c.cmd(&["HSET", &format!("h:{i}"), "f", "v"]);
        sent += 4;
    }
    for t in 0..=round % 5 {
        c.cmd(&["LETHE.INVALIDATE", "TAG", &format!("category:{t}")]);
        sent += 1;
    }
    sent
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_dashboard_needs_the_password() {
    let (_server, _, http) = serve();
    for path in ["/dashboard", "/v1/stats", "/v1/stats/stream"] {
        assert_eq!(
            http_get(http, path, None).0,
            401,
            "{path} without a password"
        );
        assert_eq!(
            http_get(http, path, Some("default:wrong")).0,
            401,
            "{path} with a wrong password"
        );
    }
    let (status, page) = http_get(http, "/dashboard", Some(&format!("default:{PASSWORD}")));
    assert_eq!(status, 200);
    assert!(page.contains("<canvas"), "{page}");
    // Self-contained: no script, style or request from anywhere else.
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "{page}"
    );
    let (status, stats) = http_get(http, "/v1/stats", Some(&format!("default:{PASSWORD}")));
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert!(stats["engine"]["hits"].is_u64(), "{stats}");
}

#[test]
fn the_dashboard_charts_live_traffic_and_shows_a_keys_history() {
    let (_server, resp, http) = serve();
    let mut client = authed(resp);
    let mut browser = Browser::launch();
    let base = format!("http://default:{PASSWORD}@127.0.0.1:{http}");

    // (a) The charts follow the stream: samples arrive, and the commands they count grow by
    // what this test sends while the page is open.
    browser.navigate(&format!("{base}/dashboard"));
    browser.wait_until(
        "a first sample",
        "Number(document.body.dataset.samples) >= 1",
        Duration::from_secs(20),
    );
    let transport = browser.eval("document.body.dataset.transport");
    assert_eq!(transport, "live", "the page should use the stats stream");
    let before = browser.number("document.body.dataset.ops");
    let mut sent = 0;
    for round in 0..6 {
        sent += traffic(&mut client, round);
        std::thread::sleep(Duration::from_millis(700));
    }
    browser.wait_until(
        "the traffic's commands",
        &format!("Number(document.body.dataset.ops) >= {}", before + sent),
        Duration::from_secs(20),
    );
    let samples = browser.number("document.body.dataset.samples");
    assert!(samples >= 3, "only {samples} samples in about 5 seconds");
    // The top tags chart got its bars from the same stream.
    browser.wait_until(
        "the invalidated tags",
        "document.getElementById('removed').textContent.includes('tag')",
        Duration::from_secs(5),
    );

    // (b) A key's history, looked up from the URL at load. A few more samples first, so the
    // screenshot's charts have lines.
    client.cmd(&["LETHE.SET", "dash:probe", "v1", "TAGS", "1", "probe"]);
    client.cmd(&["SET", "dash:probe", "v2"]);
    browser.navigate(&format!("{base}/dashboard?key=dash:probe"));
    for round in 0..5 {
        traffic(&mut client, round);
        std::thread::sleep(Duration::from_millis(600));
    }
    browser.wait_until(
        "more samples and the lookup's answer",
        "Number(document.body.dataset.samples) >= 4 && \
         !document.getElementById('why').textContent.startsWith('looking up')",
        Duration::from_secs(20),
    );
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let update_docs = std::env::var_os("LETHE_UPDATE_SCREENSHOT").is_some();
    for dir in ["target", "docs"] {
        if dir == "docs" && !update_docs {
            continue;
        }
        let dir = workspace().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("dashboard.png"), &png).unwrap();
    }
    let why = browser.eval("document.getElementById('why').textContent");
    let why = why.as_str().unwrap_or_default().to_owned();
    let rows = browser.number("String(document.querySelectorAll('#why tr.hist').length)");
    assert!(
        rows >= 2,
        "the page shows {rows} history rows for dash:probe (two writes), from \
         GET /v1/keys/dash:probe/why: {why}"
    );
    assert!(why.contains("dash:probe"), "{why}");
    assert!(why.contains("write"), "the history shows the writes: {why}");
}
