//! The `lethe` binary: help text, settings from flags, environment and file, the startup log
//! line, and graceful exit on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lethe");

/// A started `lethe serve`, killed on drop if the test did not stop it.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and waits for its startup log line; returns the line.
fn serve(cmd: &mut Command) -> (Served, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_remove("LETHE_LOG")
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let served = Served(child);
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    (served, line)
}

#[test]
fn help_documents_every_setting() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--bind",
        "LETHE_BIND",
        "--port",
        "LETHE_PORT",
        "6380",
        "--config",
        "LETHE_CONFIG",
        "--max-memory",
        "LETHE_MAX_MEMORY",
        "--http-port",
        "LETHE_HTTP_PORT",
    ] {
        assert!(help.contains(needle), "help lacks {needle}:\n{help}");
    }
    let top = Command::new(BIN).arg("--help").output().unwrap();
    assert!(String::from_utf8(top.stdout).unwrap().contains("serve"));
}

#[test]
fn port_from_environment_then_sigterm_exits_cleanly() {
    let port = common::free_port();
    let (mut served, line) = serve(
        Command::new(BIN)
            .arg("serve")
            .env("LETHE_PORT", port.to_string()),
    );
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    let mut c = common::Client::connect(port);
    assert_eq!(c.raw(&["PING"]), b"+PONG\r\n");
    let status = Command::new("kill")
        .args(["-TERM", &served.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let exit = loop {
        if let Some(s) = served.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "lethe did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    assert!(c.is_closed());
}

#[test]
fn config_file_sets_the_port_and_flags_override_it() {
    let dir = std::env::temp_dir().join(format!("lethe-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lethe.toml");
    let (from_file, from_flag) = (common::free_port(), common::free_port());
    std::fs::write(&file, format!("port = {from_file}\nmax-memory = 1048576\n")).unwrap();

    let (_served, line) = serve(Command::new(BIN).arg("serve").arg("--config").arg(&file));
    assert!(line.contains(&format!(":{from_file}")), "{line}");
    assert!(line.contains("1048576"), "{line}");

    let (_served2, line) = serve(
        Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&file)
            .args(["--port", &from_flag.to_string()]),
    );
    assert!(line.contains(&format!(":{from_flag}")), "{line}");

    std::fs::write(&file, "colour = 1\n").unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn http_port_from_environment_serves_the_admin_api_until_sigterm() {
    use std::io::{Read, Write};
    let (port, http) = (common::free_port(), common::free_port());
    let (mut served, line) = serve(
        Command::new(BIN)
            .args(["serve", "--port", &port.to_string()])
            .env("LETHE_HTTP_PORT", http.to_string()),
    );
    assert!(line.contains(&format!(":{port}")), "{line}");
    // The HTTP listener is bound before the startup line, so it answers now.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", http)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nok"), "{reply}");

    let status = Command::new("kill")
        .args(["-TERM", &served.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let exit = loop {
        if let Some(s) = served.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "lethe did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", http)).is_err());
}
