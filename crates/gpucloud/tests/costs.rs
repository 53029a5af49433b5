//! The cost report against numbers the test knows: the emulator's own billing records.

mod common;

use gpucloud::upkeep::cost::{Basis, Billable, GroupBy};
use gpucloud::{LaunchSpec, OfferQuery, Provider, Provisioner, VolumeSpec};
use gpucloud_emulator::{Api, Emulator, EmulatorConfig};
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

/// What the emulator billed `id`, in USD.
fn emulator_billed(emulator: &Emulator, id: &str) -> f64 {
    emulator.charges().iter().filter(|c| c.id == id).map(|c| c.amount()).sum()
}

async fn create(provisioner: &dyn Provisioner, name: &str) -> gpucloud::Pod {
    let offers = provisioner.offers(&OfferQuery::gpu("H100_80GB", 1)).await.unwrap();
    let offer = offers.into_iter().find(|o| o.is_usd() && o.prepaid_hours.is_none()).unwrap();
    provisioner.create(&LaunchSpec::new(offer, name)).await.unwrap()
}

fn cents(usd: f64) -> i64 {
    (usd * 100.0).round() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_adds_up_to_the_emulators_records_to_the_cent() {
    let emulator = common::with_account_key(
        Emulator::start(EmulatorConfig {
            ready_delay: Duration::from_millis(20),
            check_responses: true,
            ..EmulatorConfig::default()
        })
        .await
        .unwrap(),
    );
    let (pi, runpod) = (common::primeintellect(&emulator), common::runpod(&emulator));
    // RunPod: one pod ran 3 h and ended, one has run 2 h and still runs; a volume.
    let ended = create(&runpod, "ended").await;
    emulator.backdate(Api::RunPod, ended.id.id(), 3 * HOUR);
    runpod.terminate(&ended.id).await.unwrap();
    let running = create(&runpod, "running").await;
    emulator.backdate(Api::RunPod, running.id.id(), 2 * HOUR);
    let volume = runpod
        .create_volume(&VolumeSpec {
            name: "data".into(),
            size_gb: 100,
            data_center: Some("US-KS-2".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    // PrimeIntellect: one pod ran 5 h and ended (in the history), one has run 1 h.
    let pi_ended = create(&pi, "pi-ended").await;
    emulator.backdate(Api::PrimeIntellect, pi_ended.id.id(), 5 * HOUR);
    pi.terminate(&pi_ended.id).await.unwrap();
    let pi_running = create(&pi, "pi-running").await;
    emulator.backdate(Api::PrimeIntellect, pi_running.id.id(), HOUR);
    // A live PrimeIntellect disk bills from its creation ("billed continuously from creation
    // until termination").
    let disk = pi
        .create_volume(&VolumeSpec {
            name: "pi-data".into(),
            size_gb: 500,
            provider_type: Some("runpod".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    // A deleted disk is in the history as `type: Disk`, and labelled so.
    let gone = pi
        .create_volume(&VolumeSpec {
            name: "pi-scratch".into(),
            size_gb: 100,
            provider_type: Some("runpod".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    pi.delete_volume(&gone.id).await.unwrap();

    let fleet = gpucloud::Fleet::new().with(pi.clone()).with(runpod.clone());
    let now = chrono::Utc::now();
    let report = fleet.costs(now - chrono::Duration::days(1), now).await.unwrap();
    let billed = |id: &str| -> f64 {
        report.entries.iter().filter(|e| e.id == id && e.basis == Basis::Billed).map(|e| e.usd).sum()
    };
    let estimated = |id: &str| -> f64 {
        report.entries.iter().filter(|e| e.id == id && e.basis == Basis::Estimate).map(|e| e.usd).sum()
    };

    // Ended pods bill a fixed amount: equal to the cent, and about price × hours.
    for (pod, hours) in [(&ended, 3.0), (&pi_ended, 5.0)] {
        let expected = emulator_billed(&emulator, pod.id.id());
        assert_eq!(cents(billed(pod.id.id())), cents(expected), "{}", pod.id);
        let price = emulator.all_pods().iter().find(|p| p.id == pod.id.id()).unwrap().price;
        assert!((expected - price * hours).abs() < 0.05, "{}: {expected} for {hours} h at {price}", pod.id);
    }
    assert!(
        report.entries.iter().any(|e| e.id == pi_ended.id.id() && e.name.as_deref() == Some(pi_ended.name.as_str()))
    );
    // RunPod bills a running pod up to the read: billed, no estimate. It keeps billing while
    // the test reads, so within a cent.
    let running_billed = billed(running.id.id());
    assert!((running_billed - emulator_billed(&emulator, running.id.id())).abs() < 0.01, "{running_billed}");
    let price_of = |pod: &gpucloud::Pod| emulator.all_pods().iter().find(|p| p.id == pod.id.id()).unwrap().price;
    assert!(running_billed > 2.0 * price_of(&running) - 0.01, "{running_billed}");
    assert_eq!(estimated(running.id.id()), 0.0);
    assert!(report.entries.iter().any(|e| e.id == volume.id && e.billable == Billable::Volume));
    // PrimeIntellect's history holds no running pod: the hour it ran is an estimate.
    let pi_estimate = estimated(pi_running.id.id());
    assert!((pi_estimate - price_of(&pi_running)).abs() < 0.01, "{pi_estimate}");
    assert_eq!(billed(pi_running.id.id()), 0.0);
    assert!(report.unpriced.is_empty(), "{:?}", report.unpriced);
    let disk_accrued: f64 = report
        .entries
        .iter()
        .filter(|e| e.id == disk.id && e.billable == Billable::Volume && e.provider == Provider::PrimeIntellect)
        .map(|e| e.usd)
        .sum();
    assert!(disk_accrued > 0.0, "the live disk is in the report");
    assert!(
        report.entries.iter().any(|e| e.id == gone.id && e.billable == Billable::Volume && e.basis == Basis::Billed),
        "{:#?}",
        report.entries
    );
    assert!((disk_accrued - emulator_billed(&emulator, &disk.id)).abs() < 0.01, "{disk_accrued}");

    // Totals per provider and overall agree with the entries.
    let by = report.by_provider();
    let all = report.totals();
    assert!(
        (by[&Provider::RunPod].total_usd() + by[&Provider::PrimeIntellect].total_usd() - all.total_usd()).abs() < 1e-9
    );
    assert_eq!(cents(by[&Provider::PrimeIntellect].billed_usd), cents(emulator_billed(&emulator, pi_ended.id.id())));
    let days: f64 = report.group(GroupBy::Day).iter().map(|(_, t)| t.total_usd()).sum();
    assert!((days - all.total_usd()).abs() < 1e-9);

    // A window before any of it holds nothing.
    let early = fleet.costs(now - chrono::Duration::days(3), now - chrono::Duration::days(2)).await.unwrap();
    assert_eq!(early.totals().total_usd(), 0.0, "{early:?}");

    let checks = emulator.response_checks();
    assert!(checks.violations.is_empty(), "answers outside the documents: {:#?}", checks.violations);
    for route in ["GET /v2/billing/pods 200", "GET /v2/billing/network-volumes 200", "GET /api/v1/pods/history 200"] {
        assert!(checks.checked.contains_key(route), "{route} was never checked: {:?}", checks.checked.keys());
    }
}

/// The UTC day `t` lies in, as the report keys it.
fn day(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_holds_only_what_was_spent_in_it_by_the_day_it_was_spent() {
    let test = "the_window_holds_only_what_was_spent_in_it_by_the_day_it_was_spent";
    common::bounded(test, Duration::from_secs(60), async {
        let emulator = common::with_account_key(
            Emulator::start(EmulatorConfig {
                ready_delay: Duration::from_millis(20),
                check_responses: true,
                ..EmulatorConfig::default()
            })
            .await
            .unwrap(),
        );
        let (pi, runpod) = (common::primeintellect(&emulator), common::runpod(&emulator));
        // Lives of 25 h or more each cross a UTC midnight; the window's edges cut through some.
        // RunPod A: [-60 h, -30 h), across the window's start.
        let a = create(&runpod, "a").await;
        emulator.backdate(Api::RunPod, a.id.id(), 30 * HOUR);
        runpod.terminate(&a.id).await.unwrap();
        emulator.backdate(Api::RunPod, a.id.id(), 30 * HOUR);
        // RunPod B: from -26 h, still running, across the window's end.
        let b = create(&runpod, "b").await;
        emulator.backdate(Api::RunPod, b.id.id(), 26 * HOUR);
        // PrimeIntellect C: [-70 h, -45 h), across the window's start; D: [-30 h, -3 h), inside.
        let c = create(&pi, "c").await;
        emulator.backdate(Api::PrimeIntellect, c.id.id(), 25 * HOUR);
        pi.terminate(&c.id).await.unwrap();
        emulator.backdate(Api::PrimeIntellect, c.id.id(), 45 * HOUR);
        let d = create(&pi, "d").await;
        emulator.backdate(Api::PrimeIntellect, d.id.id(), 27 * HOUR);
        pi.terminate(&d.id).await.unwrap();
        emulator.backdate(Api::PrimeIntellect, d.id.id(), 3 * HOUR);

        let fleet = gpucloud::Fleet::new().with(pi.clone()).with(runpod.clone());
        let now = chrono::Utc::now();
        let hour = chrono::Duration::hours(1);
        let (since, until) = (now - hour * 50, now - hour);
        let report = fleet.costs(since, until).await.unwrap();

        // What the emulator charged within the window, per UTC day.
        let mut expected: std::collections::BTreeMap<String, f64> = Default::default();
        for charge in emulator.charges() {
            let mut at = charge.start.max(since);
            while at < charge.end.min(until) {
                let midnight = (at + chrono::Duration::days(1)).date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
                let next = midnight.min(charge.end).min(until);
                *expected.entry(day(at)).or_default() += charge.amount_within(at, next);
                at = next;
            }
        }
        let got: Vec<(String, i64)> =
            report.group(GroupBy::Day).into_iter().map(|(key, t)| (key, cents(t.total_usd()))).collect();
        let want: Vec<(String, i64)> = expected.into_iter().map(|(key, usd)| (key, cents(usd))).collect();
        assert_eq!(got, want, "per day, to the cent");
        // Whole lives are not counted in the window: C's bill was mostly spent before it.
        let c_whole = emulator_billed(&emulator, c.id.id());
        let c_in: f64 = report.entries.iter().filter(|e| e.id == c.id.id()).map(|e| e.usd).sum();
        assert!(c_in < c_whole * 0.25, "{c_in} of {c_whole}");
        // The cut buckets say so; entries lie inside the window.
        assert!(report.entries.iter().all(|e| e.start >= since && e.start < until), "{:#?}", report.entries);
        assert!(report.entries.iter().any(|e| e.provider == Provider::RunPod && e.share_of.is_some()));
        assert!(report.entries.iter().any(|e| e.id == c.id.id() && e.share_of.is_some()));
        assert_eq!(report.totals().estimated_usd, 0.0, "the window ended before now: B is billed through it");
        let checks = emulator.response_checks();
        assert!(checks.violations.is_empty(), "answers outside the documents: {:#?}", checks.violations);
        runpod.terminate(&b.id).await.unwrap();
    })
    .await;
}
