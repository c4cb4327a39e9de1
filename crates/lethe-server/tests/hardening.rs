//! Hardening, probed as an attacker or an unlucky operator would: the HTTP admin port's
//! authentication, protected mode and bounds; shutdown that no client can hold up; a request
//! parser whose cost is linear whatever the pacing, with Redis's strict length errors byte for
//! byte; descriptor limits; refusal of match-everything purges; TLS.
//!
//! The binary is started for what concerns the process (signals, CPU time, `ulimit -n`);
//! the rest runs in-process.

mod common;

use common::{Client, Lethe, Redis, encode};
use lethe_server::http::HttpOptions;
use lethe_server::limits::Limits;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `lethe serve` as a child process, killed on drop.
struct Binary {
    child: Child,
    port: u16,
    stderr: Option<std::process::ChildStderr>,
}

impl Binary {
    /// Starts `lethe serve --port P <args>` through `sh -c` with `prefix` before it (e.g. a
    /// `ulimit`), and waits until it answers.
    fn start(prefix: &str, args: &[&str]) -> Binary {
        Binary::start_listening(prefix, args).0
    }

    /// Like [`Binary::start`], also returning the HTTP admin port when `args` ask for one
    /// (`--http-port 0`).
    fn start_listening(prefix: &str, args: &[&str]) -> (Binary, common::Listening) {
        let command = format!(
            "{prefix} exec '{}' serve --port 0 {}",
            env!("CARGO_BIN_EXE_lethe"),
            args.join(" ")
        );
        let http = args.contains(&"--http-port");
        let (mut child, listening) = common::spawn_listening(
            Command::new("sh")
                .args(["-c", &command])
                .stderr(Stdio::piped()),
            http,
        );
        let stderr = child.stderr.take();
        let b = Binary {
            stderr,
            child,
            port: listening.port,
        };
        (b, listening)
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Waits for the process to exit, at most `limit`; returns how long it took.
    fn wait_exit(&mut self, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.child.try_wait().unwrap().is_some() {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "lethe did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// User plus system CPU seconds the process has used (from /proc).
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which is in parentheses): utime is the 14th field.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        let hz = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok())
            .unwrap_or(100.0);
        ticks / hz
    }

    /// Standard error so far (after the process exited or until `until` appears).
    fn stderr_until(&mut self, until: &str) -> String {
        let mut reader = BufReader::new(self.stderr.take().unwrap());
        let mut all = String::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            all.push_str(&line);
            if line.contains(until) {
                break;
            }
        }
        self.stderr = Some(reader.into_inner());
        all
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/1.1 request (`Connection: close`) and the whole response.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"))
}

/// In-process RESP and HTTP on loopback (or `addr`), with `limits` and `options`.
struct Served {
    resp: u16,
    http: u16,
    _thread: std::thread::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Served {
    fn start(addr: &str, limits: Arc<Limits>, options: HttpOptions) -> Served {
        let resp = TcpListener::bind(format!("{addr}:0")).unwrap();
        let http = TcpListener::bind(format!("{addr}:0")).unwrap();
        let (rp, hp) = (
            resp.local_addr().unwrap().port(),
            http.local_addr().unwrap().port(),
        );
        resp.set_nonblocking(true).unwrap();
        http.set_nonblocking(true).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                lethe_server::Server::builder(tokio::net::TcpListener::from_std(resp).unwrap())
                    .limits(limits)
                    .http(tokio::net::TcpListener::from_std(http).unwrap(), options)
                    .shutdown_timeout(Duration::from_secs(1))
                    .build()
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Served {
            resp: rp,
            http: hp,
            _thread: thread,
            stop: Some(stop),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn with_password(pw: &str) -> Arc<Limits> {
    let l = Limits::new();
    l.set_requirepass(pw.as_bytes());
    Arc::new(l)
}

#[test]
fn http_needs_the_password_when_one_is_set() {
    let s = Served::start("127.0.0.1", with_password("s3cret"), HttpOptions::default());
    let purge = r#"{"keys": ["k"]}"#;
    for (method, path, body) in [
        ("GET", "/metrics", ""),
        ("GET", "/v1/keys/k", ""),
        ("POST", "/invalidate", purge),
    ] {
        let r = http(s.http, method, path, &[], body);
        assert_eq!(status(&r), 401, "{method} {path}: {r}");
        assert!(
            r.to_ascii_lowercase().contains("www-authenticate: basic"),
            "{r}"
        );
        let wrong = http(
            s.http,
            method,
            path,
            &[("Authorization", "Bearer nope")],
            body,
        );
        assert_eq!(status(&wrong), 401, "{wrong}");
    }
    let bearer = [("Authorization", "Bearer s3cret")];
    assert_eq!(status(&http(s.http, "GET", "/metrics", &bearer, "")), 200);
    assert_eq!(
        status(&http(s.http, "POST", "/invalidate", &bearer, purge)),
        200
    );
    // Basic, user "default": base64("default:s3cret").
    let basic = [("Authorization", "Basic ZGVmYXVsdDpzM2NyZXQ=")];
    assert_eq!(status(&http(s.http, "GET", "/metrics", &basic, "")), 200);
    // Another user is refused even with the right password: base64("admin:s3cret").
    let other = [("Authorization", "Basic YWRtaW46czNjcmV0")];
    assert_eq!(status(&http(s.http, "GET", "/metrics", &other, "")), 401);
    // Health checks need no credentials and reveal nothing.
    assert_eq!(status(&http(s.http, "GET", "/healthz", &[], "")), 200);
    // RESP and HTTP share the setting: clearing it opens both.
    let mut c = Client::connect(s.resp);
    assert_eq!(c.raw(&["AUTH", "s3cret"]), b"+OK\r\n");
    assert_eq!(c.raw(&["CONFIG", "SET", "requirepass", ""]), b"+OK\r\n");
    assert_eq!(status(&http(s.http, "GET", "/metrics", &[], "")), 200);
}

/// A local address that is not loopback, if this machine has one.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn http_follows_protected_mode() {
    let ip = non_loopback_ip().expect("this test needs a non-loopback interface address");
    let limits = Arc::new(Limits::new());
    let s = Served::start("0.0.0.0", limits.clone(), HttpOptions::default());
    let remote = |path: &str| {
        let mut t = TcpStream::connect((ip, s.http)).unwrap();
        t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        t.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let mut out = String::new();
        let _ = t.read_to_string(&mut out);
        out
    };
    let r = remote("/metrics");
    assert_eq!(status(&r), 403, "{r}");
    assert!(r.contains("protected mode"), "{r}");
    assert_eq!(status(&remote("/healthz")), 403);
    // Loopback is served.
    assert_eq!(status(&http(s.http, "GET", "/metrics", &[], "")), 200);
    // With a password, remote clients get in (and must authenticate).
    limits.set_requirepass(b"pw");
    assert_eq!(status(&remote("/metrics")), 401);
    assert_eq!(status(&remote("/healthz")), 200);
    limits.set_requirepass(b"");
    limits.set_protected_mode(false);
    assert_eq!(status(&remote("/metrics")), 200);
}

#[test]
fn http_bounds_bodies_connections_and_slow_clients() {
    let options = HttpOptions {
        max_clients: 2,
        timeout: Duration::from_secs(1),
        max_body: 1000,
    };
    let s = Served::start("127.0.0.1", Arc::new(Limits::new()), options);
    // A declared body over the limit is refused before it is sent.
    let mut t = TcpStream::connect(("127.0.0.1", s.http)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    t.write_all(
        b"POST /invalidate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000000000\r\n\r\n",
    )
    .unwrap();
    let mut head = [0u8; 12];
    t.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    drop(t);
    // A chunked body is counted as it arrives.
    let mut t = TcpStream::connect(("127.0.0.1", s.http)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let chunk = "x".repeat(800);
    let req = format!(
        "POST /invalidate HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
         320\r\n{chunk}\r\n320\r\n{chunk}\r\n0\r\n\r\n"
    );
    t.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = t.read_to_string(&mut out);
    assert_eq!(status(&out), 413, "{out}");

    // Half-sent headers, and a connection that sends nothing, are closed after the timeout.
    let started = Instant::now();
    let mut half = TcpStream::connect(("127.0.0.1", s.http)).unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut silent = TcpStream::connect(("127.0.0.1", s.http)).unwrap();
    for c in [&mut half, &mut silent] {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "slow clients held on for {took:?}"
    );

    // A body that stops halfway is answered 408 after the timeout.
    let mut t = TcpStream::connect(("127.0.0.1", s.http)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    t.write_all(b"POST /invalidate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ke")
        .unwrap();
    let mut out = String::new();
    let _ = t.read_to_string(&mut out);
    assert_eq!(status(&out), 408, "{out}");

    // Two connections held open: a third is refused with 503, not queued.
    let hold: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut h = TcpStream::connect(("127.0.0.1", s.http)).unwrap();
            h.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut b = [0u8; 12];
            h.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            h.read_exact(&mut b).unwrap();
            h
        })
        .collect();
    let r = http(s.http, "GET", "/healthz", &[], "");
    assert_eq!(status(&r), 503, "{r}");
    drop(hold);
    // Slots come back once those close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = http(s.http, "GET", "/healthz", &[], "");
        if status(&r) == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slots not released: {r}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn purging_everything_takes_an_explicit_form() {
    let s = Served::start("127.0.0.1", Arc::new(Limits::new()), HttpOptions::default());
    let mut c = Client::connect(s.resp);
    assert_eq!(c.raw(&["SET", "a", "1"]), b"+OK\r\n");
    assert_eq!(
        c.cmd(&["LETHE.INVALIDATE", "PREFIX", ""]),
        "-ERR this prefix matches every key; use FLUSHALL to invalidate everything\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.INVALIDATE", "GLOB", "*"]),
        "-ERR this glob matches every key; use FLUSHALL to invalidate everything\r\n"
    );
    let json = [("Content-Type", "application/json")];
    for body in [r#"{"prefixes": [""]}"#, r#"{"globs": ["*"]}"#] {
        let r = http(s.http, "POST", "/invalidate", &json, body);
        assert_eq!(status(&r), 400, "{r}");
        assert!(r.contains("all"), "{r}");
    }
    assert_eq!(c.raw(&["EXISTS", "a"]), b":1\r\n");
    // The explicit forms work.
    let r = http(s.http, "POST", "/invalidate", &json, r#"{"all": true}"#);
    assert_eq!(status(&r), 200, "{r}");
    assert!(r.contains("\"all\":1"), "{r}");
    assert_eq!(c.raw(&["EXISTS", "a"]), b":0\r\n");
    assert_eq!(c.raw(&["LETHE.INVALIDATE", "PREFIX", "a"]), b":0\r\n");
}

/// A client that asks for a 1 MB value over and over without reading the replies: the server
/// ends up blocked writing to it.
fn stuck_client(port: u16) -> TcpStream {
    let mut c = Client::connect(port);
    let value = "v".repeat(1 << 20);
    assert_eq!(c.raw(&["SET", "big", &value]), b"+OK\r\n");
    let mut stuck = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stuck
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let get = encode(&["GET", "big"]);
    for _ in 0..64 {
        if stuck.write_all(&get).is_err() {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    stuck
}

#[test]
fn sigterm_exits_within_the_deadline_despite_a_client_that_does_not_read() {
    let mut b = Binary::start("", &["--shutdown-timeout", "1"]);
    let _stuck = stuck_client(b.port);
    b.signal("TERM");
    let took = b.wait_exit(Duration::from_secs(6));
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[test]
fn sigterm_exits_within_the_deadline_despite_a_half_sent_http_request() {
    let (mut b, listening) =
        Binary::start_listening("", &["--shutdown-timeout", "1", "--http-port", "0"]);
    let port = listening.http_port.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut half = loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            break s;
        }
        assert!(Instant::now() < deadline, "no HTTP port");
        std::thread::sleep(Duration::from_millis(10));
    };
    half.write_all(b"POST /invalidate HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
        .unwrap();
    // And a RESP client halfway through a request.
    let mut resp = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    resp.write_all(b"*2\r\n$3\r\nGET\r\n$5\r\nab").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    b.signal("TERM");
    let took = b.wait_exit(Duration::from_secs(6));
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[test]
fn a_second_signal_exits_at_once() {
    let mut b = Binary::start("", &["--shutdown-timeout", "60"]);
    let _stuck = stuck_client(b.port);
    b.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        b.child.try_wait().unwrap().is_none(),
        "the first signal waits for the connection"
    );
    b.signal("INT");
    let took = b.wait_exit(Duration::from_secs(5));
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

/// A request trickled in small pieces costs CPU linear in its size: the parser keeps its place.
/// (A parser restarting on every read costs reads x request size: here about 2000 x 1.2 MB.)
#[test]
fn a_trickled_request_costs_linear_cpu() {
    let b = Binary::start("", &[]);
    let args: Vec<String> = (0..100_000).map(|i| format!("k{i}")).collect();
    let mut req = format!("*{}\r\n$3\r\nDEL\r\n", args.len() + 1).into_bytes();
    for a in &args {
        req.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    let before = b.cpu_seconds();
    let mut s = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    s.set_nodelay(true).unwrap();
    for chunk in req.chunks(req.len() / 2000 + 1) {
        s.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_micros(300));
    }
    let mut c = Client::from_tcp(s);
    assert_eq!(c.read_reply(), b":0\r\n");
    let used = b.cpu_seconds() - before;
    eprintln!("trickled {} bytes: {used:.3} CPU-s", req.len());
    assert!(
        used < 1.5,
        "{used} CPU seconds for a {} byte request",
        req.len()
    );
}

#[test]
fn strict_length_errors_match_redis_byte_for_byte() {
    let redis = Redis::start().expect("redis-server is needed (scripts/test-all installs it)");
    let lethe = Lethe::start();
    for input in [
        &b"*+1\r\n"[..],
        b"*01\r\n",
        b"*1\r\n$04\r\nPING\r\n",
        b"*1\r\n$+3\r\n",
        b"*1\r\n$-0\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n\xff\r\n",
        b"*-0\r\n",
        b"*1\r\n%1\r\n",
        b"*3000000000\r\n",
        b"echo \"a\r\n",
    ] {
        let mut r = redis.client();
        r.send(input);
        let expected = r.read_to_close();
        let mut l = lethe.client();
        l.send(input);
        assert_eq!(
            l.read_to_close(),
            expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    // As Redis, a line ends at its first CR and the byte after it is skipped unchecked.
    let input = b"*1\rx$4\r\nPING\r\n";
    let mut r = redis.client();
    r.send(input);
    let mut l = lethe.client();
    l.send(input);
    assert_eq!(l.read_reply(), r.read_reply());
}

#[test]
fn maxclients_is_fitted_to_the_descriptor_limit() {
    let mut b = Binary::start("ulimit -n 256 &&", &["--max-clients", "10000"]);
    let log = b.stderr_until("maxclients lowered");
    assert!(log.contains("maxclients lowered"), "{log}");
    let mut c = Client::connect(b.port);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxclients"]),
        "*2\r\n$10\r\nmaxclients\r\n$3\r\n224\r\n"
    );
    // Past it, clients are refused with Redis's error rather than left waiting.
    let mut held = vec![c];
    let mut refused = 0;
    for _ in 0..260 {
        let mut extra = Client::connect(b.port);
        extra.set_read_timeout(Duration::from_secs(5));
        extra.send(&encode(&["PING"]));
        let reply = extra.read_reply();
        if reply == b"-ERR max number of clients reached\r\n" {
            refused += 1;
        } else {
            assert_eq!(reply, b"+PONG\r\n");
            held.push(extra);
        }
    }
    assert_eq!(held.len(), 224);
    assert_eq!(refused, 260 + 1 - 224);
    // The server is still fine for those it serves.
    assert_eq!(held[0].raw(&["PING"]), b"+PONG\r\n");
}

/// RESP and HTTP over TLS, with the certificate loaded from PEM files as `--tls-cert-file` and
/// `--tls-key-file` do; a plain-text client gets nothing served.
#[test]
fn resp_and_http_speak_tls_when_configured() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("lethe-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, generated.cert.pem()).unwrap();
    std::fs::write(&key_path, generated.key_pair.serialize_pem()).unwrap();
    let acceptor = lethe_server::tls::acceptor(&cert_path, &key_path).unwrap();
    assert!(lethe_server::tls::acceptor(&key_path, &key_path).is_err());
    let _ = std::fs::remove_dir_all(&dir);

    let resp = TcpListener::bind("127.0.0.1:0").unwrap();
    let http_l = TcpListener::bind("127.0.0.1:0").unwrap();
    let (rp, hp) = (
        resp.local_addr().unwrap().port(),
        http_l.local_addr().unwrap().port(),
    );
    resp.set_nonblocking(true).unwrap();
    http_l.set_nonblocking(true).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(async move {
        lethe_server::Server::builder(tokio::net::TcpListener::from_std(resp).unwrap())
            .http(
                tokio::net::TcpListener::from_std(http_l).unwrap(),
                HttpOptions::default(),
            )
            .tls(acceptor)
            .build()
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(generated.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    rt.block_on(async {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", rp))
            .await
            .unwrap();
        let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
        tls.write_all(&encode(&["SET", "k", "over tls"]))
            .await
            .unwrap();
        tls.write_all(&encode(&["GET", "k"])).await.unwrap();
        let mut buf = vec![0u8; 64];
        let mut got = Vec::new();
        while got.len() < b"+OK\r\n$8\r\nover tls\r\n".len() {
            let n = tls.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early: {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"+OK\r\n$8\r\nover tls\r\n");

        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", hp))
            .await
            .unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out).await;
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");

        // Plain text on the TLS port is not a RESP client.
        let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", rp))
            .await
            .unwrap();
        plain.write_all(&encode(&["PING"])).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut out)).await;
        assert!(!out.starts_with(b"+PONG"), "{out:?}");
    });
    let _ = stop.send(());
    rt.block_on(server).unwrap();
}

/// Binding RESP to every interface leaves the admin port on loopback unless `--http-bind` says
/// otherwise; TLS settings that cannot work stop the server at start with a clear message.
#[test]
fn the_admin_port_stays_on_loopback_and_bad_tls_settings_refuse_to_start() {
    let ip = non_loopback_ip().expect("this test needs a non-loopback interface address");
    let (b, listening) = Binary::start_listening(
        "",
        &[
            "--bind",
            "0.0.0.0",
            "--requirepass",
            "pw",
            "--http-port",
            "0",
        ],
    );
    let http_port = listening.http_port.unwrap();
    // RESP answers on the outside address (with a password, protected mode lets it in).
    let mut remote = Client::connect_to(ip, b.port);
    assert_eq!(
        remote.raw(&["PING"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", http_port)).is_err() {
        assert!(Instant::now() < deadline, "no HTTP port on loopback");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        TcpStream::connect((ip, http_port)).is_err(),
        "the admin port answers on {ip}"
    );
    drop(b);

    let out = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["serve", "--port", "0"])
        .args(["--tls-cert-file", "/nonexistent/cert.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls-key-file"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["serve", "--port", "0"])
        .args(["--tls-cert-file", "/nonexistent/cert.pem"])
        .args(["--tls-key-file", "/nonexistent/key.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}
