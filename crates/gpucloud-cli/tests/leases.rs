//! Leases from the command line: `up --ttl`, `ls`, `extend`, `reap`, and a launcher killed with
//! SIGKILL whose pod the reaper removes after its lease.

use serde_json::Value;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ENV: [&str; 5] =
    ["PRIME_API_KEY", "RUNPOD_API_KEY", "PRIME_API_BASE_URL", "RUNPOD_API_BASE_URL", "GPUCLOUD_EMULATOR"];

/// A public key whose private half does not exist: nothing logs in, pods just answer SSH.
const ACCOUNT_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGpHc2VtdWxhdG9yLXRlc3Qta2V5LW5vdC1yZWFs tests@gpucloud";

/// A standalone `gpucloud emulator` process, killed when dropped.
struct Standalone {
    child: Child,
    url: String,
}

impl Standalone {
    fn start(ready_delay_secs: u32) -> Self {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("gpucloud"))
            .args([
                "emulator",
                "--port",
                "0",
                "--api-key",
                "leases-test-key",
                "--ready-delay",
                &ready_delay_secs.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        // Keep reading what it prints, so it never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let url = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        let emulator = Self { child, url };
        // The account holds a key, as a user's does before RunPod pods can have SSH access.
        let key = std::env::temp_dir().join(format!("gpucloud-leases-{}.pub", std::process::id()));
        std::fs::write(&key, ACCOUNT_KEY).unwrap();
        let added = emulator.run(&["ssh-keys", "add", "--provider", "runpod", key.to_str().unwrap()]);
        assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
        emulator
    }

    fn gpucloud(&self, args: &[&str]) -> Command {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("gpucloud"));
        for var in ENV {
            command.env_remove(var);
        }
        command
            .envs([("PRIME_API_KEY", "leases-test-key"), ("RUNPOD_API_KEY", "leases-test-key")])
            .envs([("PRIME_API_BASE_URL", &self.url), ("RUNPOD_API_BASE_URL", &self.url)])
            .args(args);
        command
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.gpucloud(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
    }

    /// The emulator's own view: `{"pods": [live pods], "creates": n, ...}`.
    fn state(&self) -> Value {
        let body = reqwest::blocking_get(&format!("{}/_emulator/state", self.url));
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny blocking GET (the tests run outside any async runtime).
mod reqwest {
    pub fn blocking_get(url: &str) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // The SDK's TLS settings (reqwest is built without a default crypto provider).
        let tls = runpod_api::tls_config().unwrap();
        let client = ::reqwest::Client::builder().tls_backend_preconfigured(tls).build().unwrap();
        runtime.block_on(async { client.get(url).send().await.unwrap().text().await.unwrap() })
    }
}

#[test]
fn a_launcher_killed_with_sigkill_leaves_a_pod_the_reaper_removes_after_its_lease() {
    let emulator = Standalone::start(60);
    let mut up = emulator.gpucloud(&["up", "--gpu", "H100_80GB", "--ttl", "5s"]).stderr(Stdio::null()).spawn().unwrap();
    for _ in 0..200 {
        if emulator.state()["creates"] == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(emulator.state()["creates"], 1, "the launch created its pod");
    up.kill().unwrap(); // SIGKILL: nothing runs, no cleanup
    up.wait().unwrap();
    let left = emulator.state()["pods"].as_array().unwrap().clone();
    assert_eq!(left.len(), 1, "the killed launcher left its pod behind");

    // Before the lease runs out the reaper keeps it; after, it removes it.
    let early = emulator.json(&["reap", "--json"]);
    assert_eq!(early["reaped"], Value::Array(vec![]));
    std::thread::sleep(Duration::from_secs(6));
    let report = emulator.json(&["reap", "--json"]);
    assert_eq!(report["reaped"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["reaped"][0]["reason"], "lease_expired");
    assert_eq!(report["failures"], Value::Array(vec![]));
    assert_eq!(emulator.state()["pods"], Value::Array(vec![]), "no live pod after the reaper ran");
}

#[test]
fn up_with_a_ttl_then_ls_extend_and_a_dry_run_reap() {
    let emulator = Standalone::start(0);
    let pod = emulator.json(&["up", "--gpu", "H100_80GB", "--provider", "runpod", "--ttl", "1h", "--json"]);
    let id = pod["id"].as_str().unwrap().to_string();
    let expiry = pod["lease_expires_at"].as_str().expect("a leased pod shows its expiry").to_string();

    let table = String::from_utf8(emulator.run(&["ls"]).stdout).unwrap();
    assert!(table.lines().next().unwrap().contains("LEASE"), "{table}");
    let row = table.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(row.contains("59m") || row.contains("1h00m"), "time left shown: {row}");

    let extended = emulator.json(&["extend", &id, "--ttl", "3h", "--json"]);
    assert_eq!(extended["id"], id.as_str());
    assert!(extended["lease_expires_at"].as_str().unwrap() > expiry.as_str());

    let dry = emulator.json(&["reap", "--dry-run", "--prefix", "gpucloud", "--older-than", "0s", "--json"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["reaped"][0]["id"], id.as_str());
    assert_eq!(dry["reaped"][0]["reason"], "prefix_older_than");
    assert_eq!(emulator.state()["pods"].as_array().unwrap().len(), 1, "a dry run touches nothing");

    let bad = emulator.run(&["reap", "--prefix", "gpucloud"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--older-than"));
    let bad = emulator.run(&["up", "--gpu", "H100_80GB", "--ttl", "0s"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ttl"));
}

#[test]
fn extend_on_primeintellect_says_it_cannot() {
    let emulator = Standalone::start(0);
    let pod = emulator.json(&["up", "--gpu", "H100_80GB", "--provider", "primeintellect", "--ttl", "1h", "--json"]);
    let output = emulator.run(&["extend", pod["id"].as_str().unwrap(), "--ttl", "2h"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be renamed"));
}

#[test]
fn reap_every_runs_until_sigterm_and_exits_0() {
    let emulator = Standalone::start(0);
    let mut reaper = emulator.gpucloud(&["reap", "--every", "1s", "--json"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(reaper.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!((first["examined"].clone(), second["dry_run"].clone()), (Value::from(0), Value::from(false)));
    let status = Command::new("kill").args(["-TERM", &reaper.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(reaper.wait().unwrap().code(), Some(0));
}
