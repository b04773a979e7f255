//! `gregor topic` against a live broker (`gregor server` started here):
//! the lifecycle of a topic, as text and JSON, and one-line errors.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn gregor(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gregor")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A broker on a free port; stopped (SIGTERM) when dropped.
struct Server {
    child: Child,
    address: String,
    _data: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
            .args([
                "server",
                "--listeners",
                "PLAINTEXT://127.0.0.1:0",
                "--metrics-listen",
                "",
            ])
            .arg("--log-dirs")
            .arg(data.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let address = lines
            .find_map(|l| l.ok()?.strip_prefix("gregor broker listening on ").map(str::to_string))
            .expect("the broker reports its address");
        Self {
            child,
            address,
            _data: data,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

#[test]
fn a_topic_is_created_listed_described_grown_and_deleted() {
    let server = Server::start();
    let bootstrap = format!("--bootstrap-server={}", server.address);
    let b = bootstrap.as_str();
    let (code, out, err) = gregor(&[
        "topic",
        "create",
        "orders",
        "--partitions",
        "2",
        "--config",
        "retention.ms=3600000",
        b,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "created topic orders");
    let (code, _, err) = gregor(&["topic", "create", "orders", b]);
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "gregor: creating topic orders: TopicAlreadyExists");

    // Leaders appear once the controller assigned them.
    let mut described = String::new();
    for _ in 0..100 {
        let (code, out, err) = gregor(&["topic", "describe", "orders", "--json", b]);
        assert_eq!(code, 0, "{err}");
        described = out;
        if !described.contains("\"leader\":-1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let value: serde_json::Value = serde_json::from_str(&described).unwrap();
    assert_eq!(value["partitions"].as_array().unwrap().len(), 2);
    assert_eq!(value["partitions"][0]["leader"], 0);
    assert_eq!(value["partitions"][0]["isr"], serde_json::json!([0]));
    assert_eq!(value["configs"]["retention.ms"], "3600000");
    assert_ne!(value["id"], "00000000-0000-0000-0000-000000000000");

    let (code, out, _) = gregor(&["topic", "list", b]);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["orders", "2", "1"]),
        "{out}"
    );
    let (code, out, err) = gregor(&["topic", "alter", "orders", "--partitions", "3", b]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "topic orders now has 3 partitions");
    let (code, _, err) = gregor(&["topic", "alter", "orders", "--partitions", "1", b]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("gregor: altering topic orders: InvalidPartitions"),
        "{err}"
    );
    let (code, out, _) = gregor(&["topic", "delete", "orders", "--json", b]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), r#"{"deleted":"orders"}"#);
    let (_, out, _) = gregor(&["topic", "list", "--json", b]);
    assert_eq!(out.trim(), "[]");
}

#[test]
fn an_unreachable_broker_is_one_line_and_exit_1() {
    let (code, out, err) = gregor(&["topic", "list", "--bootstrap-server", "127.0.0.1:1"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("gregor: connecting to 127.0.0.1:1: "), "{err}");
}
