//! `egress-scout report` and the live page in a real browser: headless Chromium (Debian's
//! `chromium`) driven over WebDriver (`chromium-driver`). The file report and the live page
//! load with no error and no request, show every destination of the input, draw one map edge
//! per inventory edge, narrow their tables with the filter, and the live page shows a
//! destination that arrives after it loaded. Screenshots go under target/ for review.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use support::Running;

/// Chromium behind a chromedriver of this test's own, stopped when dropped.
struct Browser {
    client: Client,
    _driver: Running,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// None (skipped, or failed under tests/run.sh) without Chromium and its driver.
    async fn start() -> Option<Browser> {
        let found = Path::new("/usr/bin/chromium").exists()
            && Command::new("chromedriver")
                .arg("--version")
                .output()
                .is_ok();
        support::service(
            found.then_some(()),
            "no chromium and chromium-driver (Debian packages)",
        )?;
        // The WebDriver client's TLS stack wants the process's provider chosen.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = support::free_port();
        let driver = Running(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-quic", "--disable-component-update", "--disable-sync", "--no-first-run",
                "--window-size=1400,1000", format!("--user-data-dir={}", profile.path().display())]}),
        );
        let started = Instant::now();
        let client = loop {
            match ClientBuilder::rustls()
                .unwrap()
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    panic!("chromedriver: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Some(Browser {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Waits until `script` returns true.
    async fn until(&self, what: &str, script: &str) {
        let started = Instant::now();
        while self.eval(script).await != json!(true) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{what}: {}",
                self.state().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the page shows, for failure messages.
    async fn state(&self) -> Value {
        self.eval("return {error: document.getElementById('error').textContent, summary: document.getElementById('summary').textContent}").await
    }

    /// No error shown, and no resource fetched (the page's policy forbids any).
    async fn assert_clean(&self, allowed_requests: usize) {
        let state = self.state().await;
        let hidden = self
            .eval("return document.getElementById('error').hidden")
            .await;
        assert_eq!(hidden, json!(true), "{state}");
        let requests = self
            .eval("return performance.getEntriesByType('resource').map(e => e.name)")
            .await;
        assert!(
            requests.as_array().unwrap().len() <= allowed_requests,
            "{requests}"
        );
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = support::repo("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }

    /// Rows of a table's body.
    async fn rows(&self, table: &str) -> Vec<String> {
        let rows = self
            .eval(&format!(
                "return [...document.querySelectorAll('#{table} tbody tr')].map(r => r.textContent)"
            ))
            .await;
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    }
}

/// The examples' inventory, as `scan` reports it.
fn scanned() -> Value {
    support::scan(&[
        "--pods",
        "examples/pods.json",
        "examples/coredns.log",
        "examples/istio-proxy.log",
        "examples/hubble.json",
    ])
}

fn write_report(dir: &Path) -> PathBuf {
    let out = dir.join("egress.html");
    let status = support::bin()
        .args([
            "report",
            "--pods",
            "examples/pods.json",
            "examples/coredns.log",
            "examples/istio-proxy.log",
            "examples/hubble.json",
        ])
        .args(["--cluster", "examples/pods.json", "--audit", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_report_in_a_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = write_report(dir.path());
    let doc = scanned();
    let destinations: Vec<String> = doc["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["destination"].as_str().unwrap().to_string())
        .collect();
    let edges: usize = doc["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["edges"].as_array().unwrap().len())
        .sum();
    browser
        .client
        .goto(&format!("file://{}", report.display()))
        .await
        .unwrap();
    browser
        .until(
            "the page drew",
            "return document.querySelectorAll('#destinations tbody tr').length > 0",
        )
        .await;
    browser.assert_clean(0).await;
    let rows = browser.rows("destinations").await;
    assert_eq!(rows.len(), destinations.len(), "{rows:?}");
    for d in &destinations {
        assert!(
            rows.iter().any(|r| r.starts_with(d.as_str())),
            "{d} not in {rows:?}"
        );
    }
    let paths = browser
        .eval("return document.querySelectorAll('#map path.edge').length")
        .await;
    assert_eq!(paths, json!(edges));
    // Every pod is unrestricted (the examples' cluster has no policy): edges are coloured so.
    let coloured = browser
        .eval("return [...document.querySelectorAll('#map path.edge')].filter(p => p.dataset.status === 'unrestricted').length")
        .await;
    assert!(coloured.as_u64().unwrap() > 0, "{coloured}");
    assert!(
        !browser.rows("findings").await.is_empty(),
        "the audit's findings"
    );
    browser.screenshot("report-file.png").await;

    // The filter narrows the tables and the map.
    let filter = browser.client.find(Locator::Id("filter")).await.unwrap();
    filter.send_keys("stripe").await.unwrap();
    let narrowed = browser.rows("destinations").await;
    assert!(
        !narrowed.is_empty() && narrowed.len() < rows.len(),
        "{narrowed:?}"
    );
    assert!(
        narrowed.iter().all(|r| r.contains("stripe")),
        "{narrowed:?}"
    );
    let shown = browser
        .eval("return document.querySelectorAll('#map path.edge:not(.dim)').length")
        .await;
    assert!(shown.as_u64().unwrap() < edges as u64, "{shown}");
    // A click on a destination of the map filters to its edges.
    browser
        .client
        .find(Locator::Id("clear"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let picked = browser
        .eval("const t = [...document.querySelectorAll('#map text.node.d')].find(t => t.textContent === 'api.stripe.com'); t.dispatchEvent(new MouseEvent('click', {bubbles: true})); return document.querySelectorAll('#destinations tbody tr').length")
        .await;
    assert_eq!(picked, json!(1));
    browser.client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_shows_what_arrives_after_it_loaded() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("coredns.log");
    std::fs::write(
        &log,
        support::coredns_query("10.244.1.5", "first.example.com") + "\n",
    )
    .unwrap();
    let port = support::free_port();
    let config = dir.path().join("live.toml");
    std::fs::write(
        &config,
        format!(
            "[inventory]\nupdate_interval_secs = 1\n\n[[sources]]\ntype = \"file\"\npath = {log:?}\nfollow = true\npoll_interval_ms = 50\n\n[[sinks]]\ntype = \"prometheus\"\naddress = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let run_log = dir.path().join("run.log");
    let _run = Running(
        support::bin()
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&run_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while !support::scrape(port).is_some_and(|t| t.contains("first.example.com")) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            std::fs::read_to_string(&run_log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser
        .client
        .goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    browser
        .until("the first destination", "return document.getElementById('destinations').textContent.includes('first.example.com')")
        .await;
    support::append(
        &log,
        &(support::coredns_query("10.244.1.5", "later.example.org") + "\n"),
    );
    browser
        .until("the destination that came later", "return document.getElementById('destinations').textContent.includes('later.example.org')")
        .await;
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('#map path.edge').length")
            .await,
        json!(2)
    );
    // Its own two requests: the inventory and the update stream.
    browser.assert_clean(2).await;
    browser.screenshot("report-live.png").await;
    browser.client.close().await.unwrap();
}
