//! Recovering a detached spot job ([`Fleet::wait_job_recovering`]): the caller that submitted the
//! job still holds its definition ([`Job`]) and relaunches it, through the same failover as an
//! attached [`Fleet::run`] ([`Recovery::relaunch`]: every interrupted place tried last, on-demand
//! after K), when its spot pod is interrupted. The relaunch re-submits the same command, setup and
//! workdir; no checkpoint is carried (the relaunched command finds only what it left on a disk or
//! volume of its own).

use super::Job;
use super::detached::Submitted;
use super::spot::Recovery;
use crate::Fleet;
use crate::model::PodId;
use crate::model::error::{Error, Result};
use crate::model::spot::Interruption;
use std::time::Duration;
use tokio::time::Instant;

/// How a detached job waited on by [`Fleet::wait_job_recovering`] ended.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The command's exit status, on the last pod.
    pub code: i32,
    /// The job's id at the end: the first id, or the last relaunch's.
    pub id: PodId,
    /// The interruptions recovered on the way, oldest first.
    pub interruptions: Vec<Interruption>,
}

impl Fleet {
    /// Waits for detached job `id` (submitted from `job` with [`Fleet::submit`]) as
    /// [`Fleet::wait_job`] does, and when its spot pod is interrupted, terminates that pod
    /// (confirmed; a pod the provider no longer has counts as ended) and submits `job` again
    /// with the launch [`Recovery::relaunch`] gives, up to `recovery.max_interruptions` times.
    /// `relaunched` is told of each new job (its id is the job's id from then on). `timeout`
    /// bounds the whole wait, relaunches included.
    ///
    /// Errors: as [`Fleet::wait_job`] and [`Fleet::submit`]; [`Error::Interrupted`] listing every
    /// interruption once one more than recovery allows happened; [`Error::Timeout`].
    pub async fn wait_job_recovering(
        &self,
        job: &Job,
        id: &PodId,
        recovery: Recovery,
        poll: Duration,
        timeout: Duration,
        mut relaunched: impl FnMut(&Submitted) + Send,
    ) -> Result<Recovered> {
        let started = Instant::now();
        let mut id = id.clone();
        let mut interruptions: Vec<Interruption> = Vec::new();
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            let more = match self.wait_job(&id, &job.session, poll, left).await {
                Ok(code) => return Ok(Recovered { code, id, interruptions }),
                Err(Error::Interrupted { interruptions: more }) => more,
                Err(Error::Timeout { what, .. }) => return Err(Error::Timeout { what, waited: started.elapsed() }),
                Err(e) => return Err(e),
            };
            interruptions.extend(more);
            match self.terminate(&id).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            if u32::try_from(interruptions.len()).unwrap_or(u32::MAX) > recovery.max_interruptions {
                return Err(Error::Interrupted { interruptions });
            }
            let mut next = job.clone();
            next.launch = recovery.relaunch(&job.launch, &interruptions);
            let left = timeout.saturating_sub(started.elapsed());
            // Past the deadline the relaunch is cancelled (its pod, if any, terminated), never dropped.
            let submitted = self.submit(&next, |_| {}, tokio::time::sleep(left)).await?;
            relaunched(&submitted);
            id = submitted.id;
        }
    }
}
