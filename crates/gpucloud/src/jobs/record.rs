//! Job records: what recovering a detached job needs once the process that submitted it is gone.
//!
//! A detached job's pod says what the job is doing ([`super::detached`]), but an interrupted spot
//! pod is gone with everything on it, and relaunching the job needs its whole definition: the
//! launch, the workdir to sync, the setup and the command. [`crate::Fleet::submit_recorded`] keeps that
//! definition in a **job record**, one private file per job under [`JobRecords::default_dir`]
//! (`<state dir>/jobs`, 0700; each file 0600, since a launch's environment may hold tokens),
//! beside the job's history: which pod runs it now, the interruptions recovered so far, and how
//! it ended. `gpucloud jobs wait --recover` ([`crate::Fleet::wait_recorded`]) and `gpucloud reap --every
//! --recover` ([`crate::Fleet::recover_recorded`]) read it, on the machine the job was submitted from.
//!
//! **One recoverer at a time**: recovering a job (terminate the interrupted pod, relaunch,
//! record the new pod) holds an exclusive lock on the job's `.lock` file, and every recoverer
//! reads the record again under it: a waiter and a reaper that see the same interruption relaunch
//! once, the second finding the new pod in the record. A record is replaced whole (written beside
//! it, then renamed), so a process killed mid-write leaves the old one.
//!
//! **A recorded job that ends for good says so** ([`RecordEnd`]): its command exited, it was
//! cancelled or its pod ended through gpucloud ([`JobRecords::end_pod`]), its lease or deadline
//! ran out, or it was interrupted once more than its recovery allows. An ended record is never
//! recovered again, and is removed [`ENDED_RECORD_KEPT`] after it ended.

use super::Job;
use crate::model::error::{Error, Result};
use crate::model::spot::{Interruption, Place};
use crate::model::{Pod, PodId};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// How long a record stays after its job ended, so that `jobs wait --recover` can still answer.
pub const ENDED_RECORD_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The pod a recorded job runs on now: what an interruption report needs once the provider no
/// longer has the pod.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Attempt {
    /// The pod (the job's id from then on).
    pub id: PodId,
    /// Whether it is spot capacity (only spot pods are interrupted).
    pub spot: bool,
    /// Where it runs.
    pub place: Place,
    /// Its hourly rate, when its provider reported one.
    pub price_per_hour: Option<f64>,
    /// When its provider created it.
    pub created_at: Option<DateTime<Utc>>,
    /// When its lease (in its name) ends: a pod gone after that was ended for its lease (by a
    /// reaper, perhaps on another machine), not interrupted.
    pub lease_expires_at: Option<DateTime<Utc>>,
}

impl Attempt {
    /// The attempt running on `pod`.
    pub fn of(pod: &Pod) -> Self {
        Self {
            id: pod.id.clone(),
            spot: pod.is_spot(),
            place: Place { provider: pod.provider, data_center: pod.data_center.clone() },
            price_per_hour: pod.price_per_hour,
            created_at: pod.created_at,
            lease_expires_at: pod.lease_expires_at,
        }
    }
}

/// How a recorded job ended for good.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum RecordEnd {
    /// Its command exited with this status.
    Exited {
        /// The exit status.
        code: i32,
    },
    /// It was cancelled, or its pod was terminated through gpucloud (`jobs cancel`, `down`,
    /// `jobs wait --end`, the reaper), so it is not relaunched.
    Ended {
        /// Who ended it.
        by: String,
    },
    /// It was interrupted once more than its recovery allows.
    GaveUp,
    /// Its deadline passed before it could be relaunched.
    DeadlinePassed,
    /// Its pod's lease had run out when it went away: a reaper ended it, as the lease says.
    LeaseOver,
    /// Its pod went away and it was no spot pod: not an interruption, nothing to recover.
    Lost {
        /// What was seen.
        why: String,
    },
}

impl std::fmt::Display for RecordEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited { code } => write!(f, "its command exited {code}"),
            Self::Ended { by } => write!(f, "it was ended by {by}"),
            Self::GaveUp => write!(f, "it was interrupted more often than its recovery allows"),
            Self::DeadlinePassed => write!(f, "its deadline passed before it could be relaunched"),
            Self::LeaseOver => write!(f, "its pod's lease ran out (a reaper ends such pods)"),
            Self::Lost { why } => write!(f, "its pod was lost ({why})"),
        }
    }
}

/// A detached job's definition and history (see [the module](self)).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JobRecord {
    /// The id the job was first given (its first pod's): the record's name.
    pub first: PodId,
    /// When it was first submitted; a relaunch gets what is left of [`Job::deadline`] from here.
    pub submitted_at: DateTime<Utc>,
    /// The job as submitted (workdir and key file absolute).
    pub job: Job,
    /// The pod it runs on now.
    pub current: Attempt,
    /// Every interruption recovered so far, oldest first.
    pub interruptions: Vec<Interruption>,
    /// When the last interruption was seen.
    pub interrupted_at: Option<DateTime<Utc>>,
    /// Set while a relaunch is under way: the name its pod is created under. A recoverer that
    /// finds it set (the last one was killed mid-relaunch) ends whatever pod carries that name
    /// before it relaunches, so that one interruption never leaves two pods.
    #[serde(default)]
    pub relaunching: Option<String>,
    /// When a recoverer last saw the current pod running.
    pub last_seen_running: Option<DateTime<Utc>>,
    /// How it ended, once it did.
    pub end: Option<RecordEnd>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
}

impl JobRecord {
    /// A record of `job` just submitted onto `pod`.
    pub fn new(job: &Job, pod: &Pod) -> Self {
        let mut job = job.clone();
        // The record is read by other processes, perhaps from other directories.
        job.workdir = job.workdir.map(|dir| absolute(&dir));
        job.session.identity_file = job.session.identity_file.map(|file| absolute(&file));
        Self {
            first: pod.id.clone(),
            submitted_at: Utc::now(),
            job,
            current: Attempt::of(pod),
            interruptions: Vec::new(),
            interrupted_at: None,
            relaunching: None,
            last_seen_running: Some(Utc::now()),
            end: None,
            ended_at: None,
        }
    }

    /// Whether `id` is one of this job's pods: the current one, or one interrupted before.
    pub fn knows(&self, id: &PodId) -> bool {
        &self.first == id || &self.current.id == id || self.interruptions.iter().any(|i| &i.pod == id)
    }

    /// What is left of the job's deadline now; `None` without a deadline.
    pub fn deadline_left(&self) -> Option<Duration> {
        let deadline = self.job.deadline?;
        let spent = (Utc::now() - self.submitted_at).to_std().unwrap_or_default();
        Some(deadline.saturating_sub(spent))
    }

    /// The error a waiter gets for a job that ended as `end` without an exit status.
    pub fn end_error(&self, end: &RecordEnd) -> Error {
        match end {
            RecordEnd::GaveUp => Error::Interrupted { interruptions: self.interruptions.clone() },
            RecordEnd::DeadlinePassed => Error::Timeout {
                what: format!("job {}'s deadline", self.first),
                waited: (Utc::now() - self.submitted_at).to_std().unwrap_or_default(),
            },
            other => Error::JobEnded { id: self.first.clone(), end: other.to_string() },
        }
    }

    pub(crate) fn close(&mut self, end: RecordEnd) {
        if self.end.is_none() {
            self.end = Some(end);
            self.ended_at = Some(Utc::now());
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The directory of job records (see [the module](self)).
#[derive(Debug, Clone)]
pub struct JobRecords {
    dir: PathBuf,
}

/// The log of interrupted attempts in the records' directory ([`JobRecords::note_interrupted`]).
pub const INTERRUPTED_LOG: &str = "interrupted.jsonl";

/// How long a recoverer waits for another's lock before giving up, at most.
pub const RECORD_LOCK_WAIT: Duration = Duration::from_secs(30 * 60);

/// An exclusive hold on one job's record (released when dropped).
#[derive(Debug)]
pub struct RecordLock {
    _file: std::fs::File,
}

fn file_name(id: &PodId) -> String {
    // A pod id is the provider's own string: keep only what is safe in a file name, and write
    // every other byte as `%XX`, so that two ids never share a record (`a.b` and `a_b` did).
    let mut clean = String::new();
    for byte in id.id().bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            clean.push(char::from(byte));
        } else {
            clean.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{}-{clean}", id.provider())
}

impl JobRecords {
    /// `<state dir>/jobs` ([`crate::remote::state_dir`]).
    pub fn default_dir() -> PathBuf {
        crate::remote::state_dir().join("jobs")
    }

    /// The records in [`Self::default_dir`].
    pub fn open_default() -> Self {
        Self { dir: Self::default_dir() }
    }

    /// The records in `dir` (created private on the first write).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory private, or checks that it is ([`Error::UnsafeStateDir`] if not):
    /// [`crate::Fleet::submit_recorded`] does so before it launches anything.
    pub fn ensure_dir(&self) -> Result<()> {
        crate::remote::session::ensure_private(&self.dir)
    }

    fn path(&self, first: &PodId) -> PathBuf {
        self.dir.join(format!("{}.json", file_name(first)))
    }

    /// Where job `first`'s checkpoint directory ([`Job::checkpoint`]) is pulled back to: kept
    /// while the job may be relaunched, removed once its record ends.
    pub fn checkpoint_dir(&self, first: &PodId) -> PathBuf {
        self.dir.join(format!("{}.ckpt", file_name(first)))
    }

    fn io(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::UnsafeStateDir { path: self.dir.display().to_string(), reason: format!("{what}: {e}") }
    }

    /// Writes `record` (replacing the one of the same job whole).
    pub fn save(&self, record: &JobRecord) -> Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        self.ensure_dir()?;
        let path = self.path(&record.first);
        let text = serde_json::to_vec_pretty(record).map_err(|e| self.io("a job record cannot be written", e))?;
        let partial = path.with_extension(format!("json.{}.partial", std::process::id()));
        let written = (|| {
            let mut file =
                std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&partial)?;
            file.write_all(&text)?;
            file.sync_all()?;
            std::fs::rename(&partial, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(self.io(&format!("the job record {} cannot be written", path.display()), e));
        }
        if record.end.is_some() {
            // Nothing relaunches an ended job: its pulled checkpoints only take room.
            let _ = std::fs::remove_dir_all(self.checkpoint_dir(&record.first));
        }
        Ok(())
    }

    /// The record named `first` (the job's first id), if there is one.
    pub fn load(&self, first: &PodId) -> Result<Option<JobRecord>> {
        let path = self.path(first);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let record: JobRecord = serde_json::from_slice(&bytes)
                    .map_err(|e| self.io(&format!("the job record {} cannot be read", path.display()), e))?;
                if &record.first != first {
                    return Err(self.io(
                        &format!("the job record {} is not job {first}'s", path.display()),
                        format!("it names job {}", record.first),
                    ));
                }
                Ok(Some(record))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(&format!("the job record {} cannot be read", path.display()), e)),
        }
    }

    /// Every record that can be read, and why the others cannot; ended records older than
    /// [`ENDED_RECORD_KEPT`] are removed on the way.
    pub fn all(&self) -> (Vec<JobRecord>, Vec<Error>) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return (Vec::new(), Vec::new()) };
        let mut records = Vec::new();
        let mut unreadable = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let record = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice::<JobRecord>(&bytes).map_err(|e| e.to_string()));
            match record {
                Ok(record) => {
                    let stale = record
                        .ended_at
                        .is_some_and(|at| (Utc::now() - at).to_std().is_ok_and(|age| age > ENDED_RECORD_KEPT));
                    if stale {
                        let _ = std::fs::remove_file(&path);
                        let _ = std::fs::remove_file(path.with_extension("lock"));
                        let _ = std::fs::remove_dir_all(self.checkpoint_dir(&record.first));
                    } else {
                        records.push(record);
                    }
                }
                Err(e) => unreadable.push(self.io(&format!("the job record {} cannot be read", path.display()), e)),
            }
        }
        records.sort_by_key(|r| r.submitted_at);
        (records, unreadable)
    }

    /// The record of the job `id` belongs to: named so, or whose pods include it.
    pub fn find(&self, id: &PodId) -> Result<Option<JobRecord>> {
        if let Some(record) = self.load(id)? {
            return Ok(Some(record));
        }
        Ok(self.all().0.into_iter().find(|r| r.knows(id)))
    }

    /// Notes `interruption` in the log of interrupted attempts (`interrupted.jsonl` here, one
    /// JSON object a line, 0600), which `gpucloud cost` marks: every interruption an attached
    /// [`crate::Fleet::run`] or a recovery sees. Best effort: a failure is logged, never the
    /// job's.
    pub fn note_interrupted(&self, interruption: &Interruption) {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let noted = self.ensure_dir().map_err(|e| e.to_string()).and_then(|()| {
            let mut line = serde_json::to_vec(interruption).map_err(|e| e.to_string())?;
            line.push(b'\n');
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(self.dir.join(INTERRUPTED_LOG))
                .and_then(|mut file| file.write_all(&line))
                .map_err(|e| e.to_string())
        });
        if let Err(e) = noted {
            tracing::warn!(pod = %interruption.pod, error = %e, "the interruption could not be noted for the cost report");
        }
    }

    /// Every interruption [`Self::note_interrupted`] noted (a line that does not parse is
    /// skipped), oldest first.
    pub fn interrupted(&self) -> Vec<Interruption> {
        let Ok(text) = std::fs::read_to_string(self.dir.join(INTERRUPTED_LOG)) else { return Vec::new() };
        text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }

    /// Takes the job's lock, waiting at most `wait` for another recoverer to let go; `None` if
    /// it did not in time.
    pub async fn lock(&self, first: &PodId, wait: Duration) -> Result<Option<RecordLock>> {
        self.ensure_dir()?;
        let path = self.path(first).with_extension("lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| self.io(&format!("the lock {} cannot be opened", path.display()), e))?;
        let until = Instant::now() + wait.min(RECORD_LOCK_WAIT);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(RecordLock { _file: file })),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(self.io(&format!("the lock {} cannot be taken", path.display()), e));
                }
            }
        }
    }

    /// [`Self::lock`], or [`Error::Timeout`] when another process held the lock all along (it is
    /// recovering the job): nothing may write the record beside it, since it writes its own copy
    /// when done.
    pub async fn lock_or_busy(&self, first: &PodId, wait: Duration) -> Result<RecordLock> {
        let started = Instant::now();
        self.lock(first, wait).await?.ok_or_else(|| Error::Timeout {
            what: format!(
                "the lock of job {first}'s record (another gpucloud process is recovering the job; try again once it relaunched it)"
            ),
            waited: started.elapsed(),
        })
    }

    /// Marks the job `id` belongs to (as its current pod) ended by `by`, so that nothing
    /// relaunches it: for every path that ends a job's pod on purpose. A pod no record runs on is
    /// left alone; an interrupted pod of a job that was relaunched since does not end the job.
    pub async fn end_pod(&self, id: &PodId, by: &str) -> Result<()> {
        let Some(record) = self.find(id)? else { return Ok(()) };
        if &record.current.id != id || record.end.is_some() {
            return Ok(());
        }
        let _lock = self.lock_or_busy(&record.first, Duration::from_secs(60)).await?;
        self.update(&record.first, |r| {
            if &r.current.id == id {
                r.close(RecordEnd::Ended { by: by.into() });
            }
        })
    }

    /// Ends the job `id` names (its first id, or any of its pods' ids) for good, under its lock,
    /// whichever pod it runs on now, and returns that pod (to cancel or terminate): `jobs
    /// cancel` on a job relaunched since it was given its id. `None` when no record knows `id`.
    /// Beside it, the marker of a relaunch a killed recoverer left (its pod, if any, is the
    /// caller's to end: [`crate::Fleet::end_recorded_job`] does).
    ///
    /// Errors: [`Error::Timeout`] when a recoverer holds the job's lock for a minute (a relaunch
    /// under way); [`Error::UnsafeStateDir`] when the record cannot be read or written.
    pub async fn end_job(&self, id: &PodId, by: &str) -> Result<Option<(PodId, Option<String>)>> {
        let Some(record) = self.find(id)? else { return Ok(None) };
        let _lock = self.lock_or_busy(&record.first, Duration::from_secs(60)).await?;
        let mut ended = None;
        self.update(&record.first, |r| {
            r.close(RecordEnd::Ended { by: by.into() });
            ended = Some((r.current.id.clone(), r.relaunching.clone()));
        })?;
        Ok(ended)
    }

    /// Ends the record of job `first` with `end`, unless it already ended. Callers hold its lock.
    pub fn close(&self, first: &PodId, end: RecordEnd) -> Result<()> {
        self.update(first, |r| r.close(end))
    }

    /// Reads the record of job `first`, changes it, writes it back. Callers hold its lock.
    pub fn update(&self, first: &PodId, change: impl FnOnce(&mut JobRecord)) -> Result<()> {
        let Some(mut record) = self.load(first)? else { return Ok(()) };
        change(&mut record);
        self.save(&record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LaunchRequest;
    use crate::model::Provider;

    fn record(id: &str) -> JobRecord {
        let job = Job::new(LaunchRequest::new("H100_80GB", 1, "train"), ["python", "train.py"]);
        let first = PodId::new(Provider::PrimeIntellect, id);
        JobRecord {
            first: first.clone(),
            submitted_at: Utc::now(),
            job,
            current: Attempt {
                id: first,
                spot: true,
                place: Place { provider: Provider::PrimeIntellect, data_center: Some("dc-1".into()) },
                price_per_hour: Some(1.5),
                created_at: None,
                lease_expires_at: None,
            },
            interruptions: Vec::new(),
            interrupted_at: None,
            relaunching: None,
            last_seen_running: None,
            end: None,
            ended_at: None,
        }
    }

    #[tokio::test]
    async fn records_round_trip_are_private_and_found_by_any_of_their_pods() {
        let dir = tempfile::tempdir().unwrap();
        let records = JobRecords::at(dir.path().join("jobs"));
        let mut rec = record("..");
        records.save(&rec).unwrap();
        let file = records.path(&rec.first);
        assert!(file.starts_with(records.dir()), "an id never leaves the directory: {}", file.display());
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(records.dir()).unwrap().permissions().mode() & 0o777, 0o700);
        let later = PodId::new(Provider::PrimeIntellect, "2");
        rec.current.id = later.clone();
        records.save(&rec).unwrap();
        let found = records.find(&later).unwrap().expect("found by its current pod");
        assert_eq!(found.first, rec.first);
        assert_eq!(found.job.command, ["python", "train.py"]);
        assert!(records.find(&PodId::new(Provider::RunPod, "2")).unwrap().is_none());
        records.end_pod(&later, "jobs cancel").await.unwrap();
        let ended = records.load(&rec.first).unwrap().unwrap();
        assert_eq!(ended.end, Some(RecordEnd::Ended { by: "jobs cancel".into() }));
        // Ending an older pod of the job does not end the job.
        let mut other = record("3");
        other.current.id = PodId::new(Provider::PrimeIntellect, "4");
        records.save(&other).unwrap();
        records.end_pod(&other.first, "down").await.unwrap();
        assert_eq!(records.load(&other.first).unwrap().unwrap().end, None);
    }

    #[tokio::test]
    async fn one_lock_holder_at_a_time_and_a_garbled_record_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let records = JobRecords::at(dir.path());
        let first = PodId::new(Provider::PrimeIntellect, "1");
        let held = records.lock(&first, Duration::ZERO).await.unwrap();
        assert!(held.is_some());
        assert!(records.lock(&first, Duration::from_millis(250)).await.unwrap().is_none());
        drop(held);
        assert!(records.lock(&first, Duration::ZERO).await.unwrap().is_some());
        std::fs::write(records.path(&first), b"{\"first\": 12").unwrap();
        let interruption = Interruption {
            pod: first.clone(),
            place: Place { provider: Provider::PrimeIntellect, data_center: None },
            spot: true,
            sign: crate::model::spot::InterruptionSign::Gone,
            ran_for: Duration::from_secs(90),
            detected_within: Duration::from_millis(250),
            price_per_hour: Some(2.0),
            cost: Some(0.05),
        };
        records.note_interrupted(&interruption);
        std::fs::OpenOptions::new()
            .append(true)
            .open(records.dir().join(INTERRUPTED_LOG))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"garbage\n"))
            .unwrap();
        records.note_interrupted(&interruption);
        assert_eq!(records.interrupted(), vec![interruption.clone(), interruption]);
        assert!(records.load(&first).is_err());
        let (all, unreadable) = records.all();
        assert!(all.is_empty());
        assert_eq!(unreadable.len(), 1);
    }

    #[test]
    fn two_ids_never_share_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let records = JobRecords::at(dir.path());
        let (dotted, underscored) = (record("a.b"), record("a_b"));
        records.save(&dotted).unwrap();
        records.save(&underscored).unwrap();
        assert_eq!(records.load(&dotted.first).unwrap().unwrap().first, dotted.first);
        assert_eq!(records.load(&underscored.first).unwrap().unwrap().first, underscored.first);
        // A record put under another job's name is an error, not that job's record.
        std::fs::copy(records.path(&dotted.first), records.path(&underscored.first)).unwrap();
        assert!(records.load(&underscored.first).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn end_pod_never_writes_a_record_whose_lock_another_process_holds() {
        // A recoverer holds the lock while it relaunches (minutes): it writes its own copy of
        // the record when done, so an `end` written beside it would be lost and the job, though
        // cancelled, would run on its new pod.
        let dir = tempfile::tempdir().unwrap();
        let records = JobRecords::at(dir.path());
        let rec = record("1");
        records.save(&rec).unwrap();
        let held = records.lock(&rec.first, Duration::ZERO).await.unwrap().expect("the lock");
        match records.end_pod(&rec.first, "jobs cancel").await {
            Err(Error::Timeout { what, .. }) => assert!(what.contains("recovering"), "{what}"),
            other => panic!("expected a Timeout naming the recoverer, got {other:?}"),
        }
        assert_eq!(records.load(&rec.first).unwrap().unwrap().end, None, "nothing written without the lock");
        drop(held);
        records.end_pod(&rec.first, "jobs cancel").await.unwrap();
        assert_eq!(records.load(&rec.first).unwrap().unwrap().end, Some(RecordEnd::Ended { by: "jobs cancel".into() }));
    }

    #[test]
    fn the_deadline_left_counts_from_the_first_submission() {
        let mut rec = record("1");
        assert_eq!(rec.deadline_left(), None);
        rec.job.deadline = Some(Duration::from_secs(3600));
        rec.submitted_at = Utc::now() - chrono::Duration::seconds(3000);
        let left = rec.deadline_left().unwrap();
        assert!(left <= Duration::from_secs(600) && left > Duration::from_secs(590), "{left:?}");
        rec.submitted_at = Utc::now() - chrono::Duration::seconds(4000);
        assert_eq!(rec.deadline_left(), Some(Duration::ZERO));
    }
}
