//! The client subcommands against a live broker (`gregor server` started
//! here): a topic's lifecycle as text and JSON, a produce → consume round
//! trip with keys and a group's committed offsets, the bench, and
//! one-line errors.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn gregor(args: &[&str]) -> (i32, String, String) {
    gregor_with_input(args, "")
}

fn gregor_with_input(args: &[&str], input: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
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
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let address = lines
            .find_map(|l| l.ok()?.strip_prefix("gregor broker listening on ").map(str::to_string))
            .expect("the broker reports its address");
        // Keep its stdout open and drained.
        std::thread::spawn(move || lines.for_each(drop));
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
    assert_eq!(
        err.trim(),
        "gregor: creating topic orders: TopicAlreadyExists: Topic 'orders' already exists."
    );

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
    assert_eq!(
        (
            value["partitions"][0]["earliest_offset"].clone(),
            value["partitions"][0]["latest_offset"].clone()
        ),
        (serde_json::json!(0), serde_json::json!(0))
    );
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
    let (code, out, err) = gregor(&[
        "topic",
        "alter",
        "orders",
        "--config",
        "retention.ms=1000",
        "--delete-config",
        "nothing",
        b,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "altered topic orders");
    let (_, out, _) = gregor(&["topic", "describe", "orders", "--json", b]);
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["configs"]["retention.ms"], "1000");
    let (code, _, err) = gregor(&["topic", "alter", "orders", "--config", "retention.ms=soon", b]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("gregor: altering topic orders's configs: InvalidConfig"),
        "{err}"
    );
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

#[test]
fn lines_produced_are_consumed_with_keys_offsets_and_a_groups_position() {
    let server = Server::start();
    let bootstrap = format!("--bootstrap-server={}", server.address);
    let b = bootstrap.as_str();
    let (code, _, err) = gregor_with_input(
        &["produce", "--topic", "lines", "--key-separator", ":", b],
        "k1:first\nk2:second\nthird\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.trim(), "produced 3 records to lines");
    let (code, out, err) = gregor(&[
        "consume",
        "--topic",
        "lines",
        "--from-beginning",
        "--max-messages",
        "3",
        "--format",
        "%o %k=%v",
        b,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0 k1=first\n1 k2=second\n2 =third\n");
    // A group reads two, commits, and the next run resumes after them.
    let (code, out, err) = gregor(&[
        "consume",
        "--topic",
        "lines",
        "--from-beginning",
        "--group",
        "g",
        "--max-messages",
        "2",
        b,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "first\nsecond\n");
    let (_, out, _) = gregor(&[
        "consume",
        "--topic",
        "lines",
        "--group",
        "g",
        "--idle-timeout-ms",
        "1000",
        b,
    ]);
    assert_eq!(out, "third\n");
    let (code, _, err) = gregor(&["produce", "--topic", "lines", "--acks", "2", b]);
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "gregor: --acks \"2\": expected all, -1, 1 or 0");
}

#[test]
fn a_group_stopped_by_max_messages_commits_only_what_it_printed() {
    let server = Server::start();
    let bootstrap = format!("--bootstrap-server={}", server.address);
    let b = bootstrap.as_str();
    let (code, _, err) = gregor(&["topic", "create", "spread", "--partitions", "2", b]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<String> = (0..20).map(|i| format!("line {i}")).collect();
    let (code, _, err) = gregor_with_input(&["produce", "--topic", "spread", b], &(lines.join("\n") + "\n"));
    assert_eq!(code, 0, "{err}");
    // One fetch brings records of both partitions; only 3 are printed,
    // and the next run of the group gets every other line, none twice.
    let consume = |extra: &[&str]| {
        let mut args = vec!["consume", "--topic", "spread", "--from-beginning", "--group", "g", b];
        args.extend(extra);
        let (code, out, err) = gregor(&args);
        assert_eq!(code, 0, "{err}");
        out.lines().map(str::to_string).collect::<Vec<_>>()
    };
    let mut got = consume(&["--max-messages", "3"]);
    assert_eq!(got.len(), 3);
    got.extend(consume(&["--idle-timeout-ms", "1500"]));
    got.sort();
    let mut want = lines.clone();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn the_bench_reports_rates_and_latency_percentiles() {
    let server = Server::start();
    let bootstrap = format!("--bootstrap-server={}", server.address);
    let b = bootstrap.as_str();
    let (code, out, err) = gregor(&[
        "bench",
        "produce",
        "--topic",
        "bench",
        "--num-records",
        "5000",
        "--acks",
        "all",
        b,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("produce: 5000 records in "), "{out}");
    assert!(
        out.contains("delivery latency ms: p50 ") && out.contains(" p99 "),
        "{out}"
    );
    let (code, out, err) = gregor(&[
        "bench",
        "consume",
        "--topic",
        "bench",
        "--num-records",
        "5000",
        "--json",
        b,
    ]);
    assert_eq!(code, 0, "{err}");
    let result: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(result["records"], 5000);
    assert!(result["mb_per_second"].as_f64().unwrap() > 0.0);
    assert!(result["latency_ms"]["p99"].as_f64().is_some());
}

#[test]
fn two_members_of_a_group_share_the_partitions() {
    use gregor_client::{Consumer, ConsumerConfig, Producer, ProducerConfig, StartAt};
    let server = Server::start();
    let b = format!("--bootstrap-server={}", server.address);
    let (code, _, err) = gregor(&["topic", "create", "shared", "--partitions", "4", &b]);
    assert_eq!(code, 0, "{err}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut producer = Producer::new(&server.address, ProducerConfig::default());
        for i in 0..200u32 {
            producer
                .send("shared", Some(&i.to_be_bytes()), Some(b"v"))
                .await
                .unwrap();
        }
        producer.flush().await.unwrap();
        let mut first = Consumer::new(&server.address, ConsumerConfig::default());
        first
            .subscribe("sharers", &["shared"], StartAt::Earliest)
            .await
            .unwrap();
        assert_eq!(first.assignment().len(), 4, "alone, it gets every partition");
        // The second member's join completes once the first rejoins (on its
        // next heartbeat, driven by polling).
        let mut second = Consumer::new(&server.address, ConsumerConfig::default());
        let polling = async {
            let mut read = 0;
            for _ in 0..100 {
                read += first.poll().await.unwrap().len();
                if first.assignment().len() == 2 {
                    break;
                }
            }
            read
        };
        let (mut read, joined) = tokio::join!(polling, second.subscribe("sharers", &["shared"], StartAt::Earliest));
        joined.unwrap();
        let (a, b) = (first.assignment(), second.assignment());
        assert_eq!((a.len(), b.len()), (2, 2), "{a:?} {b:?}");
        assert!(a.iter().all(|p| !b.contains(p)), "disjoint: {a:?} {b:?}");
        // What the first read before the rebalance it committed on rejoining.
        for _ in 0..50 {
            read += first.poll().await.unwrap().len() + second.poll().await.unwrap().len();
            if read >= 200 {
                break;
            }
        }
        assert_eq!(read, 200, "together they read every record once");
        second.close().await.unwrap();
    });
}
