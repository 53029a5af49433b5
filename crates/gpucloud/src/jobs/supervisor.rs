//! The shell scripts a detached job leaves on its pod: the supervisor that runs the command and
//! records its end, and the watchdog that ends the pod (POSIX `sh`, and `curl` or `wget`).
//!
//! Everything lives in [`JOB_DIR`] under the login directory:
//!
//! | file | written by | what |
//! |---|---|---|
//! | `run.sh`, `watchdog.sh` | the launcher | the two scripts |
//! | `remote_dir` | the launcher | the job's directory (relative to the login directory, or absolute) |
//! | `pid` | the supervisor | its process id, which is its own session's and process group's (`setsid`) |
//! | `log` | the command | stdout and stderr, interleaved as written (append only) |
//! | `status` | the supervisor | the exit status, written once the command has ended (atomically: `mv`) |
//! | `collected` | a waiter | the results are collected: the watchdog ends the pod now |
//! | `watchdog.log` | the watchdog | what it did and why |

use crate::remote::quote;
use std::time::Duration;

/// The directory a detached job keeps its state in, relative to the login directory.
pub const JOB_DIR: &str = ".gpucloud-job";

/// How often the watchdog looks (seconds).
const WATCHDOG_EVERY_S: u64 = 1;

/// The settings the watchdog reads.
pub(crate) struct WatchdogSettings {
    /// Seconds the pod stays after the command ended (unless kept).
    pub linger: Duration,
    /// Seconds from now until the deadline, if any.
    pub deadline_in: Option<Duration>,
    /// Never end the pod after the command ended (the deadline still does).
    pub keep: bool,
}

/// The script that installs and starts both scripts, each in a session of its own (`setsid`, or
/// `nohup` where there is none), so that they survive the SSH connection; it exits 0 once the
/// supervisor has recorded its pid, 3 when a job already runs on this pod.
pub(crate) fn start_script(command_line: &str, remote_dir: &str, watchdog: &WatchdogSettings) -> String {
    let delimiter = format!("GPUCLOUD_{:016x}", fastrand::u64(..));
    let deadline = watchdog.deadline_in.map_or(String::new(), |d| d.as_secs().max(1).to_string());
    format!(
        r#"d="$HOME/{JOB_DIR}"
if [ -e "$d/pid" ]; then echo "a detached job already runs on this pod ($d)" >&2; exit 3; fi
mkdir -p "$d" || exit 1
printf '%s\n' {remote_dir} > "$d/remote_dir"
: > "$d/log"
cat > "$d/run.sh" <<'{delimiter}'
d="$HOME/{JOB_DIR}"
echo $$ > "$d/pid.tmp" && mv "$d/pid.tmp" "$d/pid"
# A cancel (TERM to this process group) ends the command; the status is still recorded.
trap 'echo "gpucloud: the job was cancelled" >> "$d/log"' TERM INT HUP
( {command_line} ) >> "$d/log" 2>&1 < /dev/null
s=$?
echo "$s" > "$d/status.tmp" && mv "$d/status.tmp" "$d/status"
{delimiter}
cat > "$d/watchdog.sh" <<'{delimiter}'
{watchdog}
{delimiter}
if command -v setsid >/dev/null 2>&1; then detach="setsid"; else detach="nohup"; fi
$detach sh "$d/run.sh" < /dev/null > /dev/null 2>&1 &
$detach sh "$d/watchdog.sh" {linger} {deadline_arg} {keep} < /dev/null > /dev/null 2>&1 &
i=0; while [ ! -s "$d/pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -s "$d/pid" ] || {{ echo "the supervisor did not start" >&2; exit 1; }}
echo "started $(cat "$d/pid")"
"#,
        remote_dir = quote(remote_dir),
        watchdog = watchdog_script(),
        linger = watchdog.linger.as_secs(),
        deadline_arg = if deadline.is_empty() { "-".to_string() } else { deadline },
        keep = u8::from(watchdog.keep),
    )
}

/// The watchdog: `sh watchdog.sh LINGER_S DEADLINE_IN_S|- KEEP(0|1)`. At the deadline it stops
/// the command (TERM, then KILL 10 s later) and ends the pod; once the command has ended it ends
/// the pod after LINGER_S (at once when `collected` appears) unless KEEP. Ending the pod is
/// RunPod's `DELETE /v2/pods/$RUNPOD_POD_ID` with the pod-scoped `$RUNPOD_API_KEY` RunPod puts in
/// every pod, at `$RUNPOD_API_BASE_URL` (default RunPod's server); a failed call is retried
/// every 10 s (each call bounded to 20 s). The variables are read from the environment, else
/// from `/etc/rp_environment` (where RunPod's images put them for SSH logins), else from the
/// container's first process. Without those variables (PrimeIntellect) it can stop
/// the command at the deadline but cannot end the pod, and says so in `watchdog.log`.
fn watchdog_script() -> String {
    format!(
        r#"d="$HOME/{JOB_DIR}"
linger=$1; deadline_in=$2; keep=$3
# An SSH session may not carry the container's environment: RunPod's images write it to
# /etc/rp_environment for login shells; the container's first process has it too.
if [ -z "$RUNPOD_POD_ID" ] || [ -z "$RUNPOD_API_KEY" ]; then
  if [ -r /etc/rp_environment ]; then . /etc/rp_environment; fi
fi
if [ -z "$RUNPOD_POD_ID" ] || [ -z "$RUNPOD_API_KEY" ]; then
  if [ -r /proc/1/environ ]; then
    for v in RUNPOD_POD_ID RUNPOD_API_KEY RUNPOD_API_BASE_URL; do
      val=$(tr '\000' '\n' < /proc/1/environ | sed -n "s/^$v=//p" | head -n 1)
      [ -n "$val" ] && eval "[ -n \"\${{$v}}\" ] || export $v=\"\$val\""
    done
  fi
fi
start=$(date +%s)
if [ "$deadline_in" = "-" ]; then deadline=""; else deadline=$((start + deadline_in)); fi
log() {{ echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >> "$d/watchdog.log"; }}
end_pod() {{
  if [ -z "$RUNPOD_POD_ID" ] || [ -z "$RUNPOD_API_KEY" ]; then
    log "cannot end the pod ($1): no RUNPOD_POD_ID and RUNPOD_API_KEY (only RunPod gives a pod its own key)"
    return 2
  fi
  url="${{RUNPOD_API_BASE_URL:-https://api.runpod.io}}/v2/pods/$RUNPOD_POD_ID"
  log "ending the pod: $1"
  if command -v curl >/dev/null 2>&1; then
    code=$(printf 'header = "Authorization: Bearer %s"\n' "$RUNPOD_API_KEY" | curl -K - -sS -o /dev/null -w '%{{http_code}}' --max-time 20 -X DELETE "$url" 2>>"$d/watchdog.log")
  elif command -v wget >/dev/null 2>&1; then
    if wget -q -O /dev/null -T 20 --method=DELETE --header="Authorization: Bearer $RUNPOD_API_KEY" "$url" 2>>"$d/watchdog.log"; then code=204; else code=failed; fi
  else
    log "cannot end the pod: neither curl nor wget"; return 2
  fi
  log "terminate answered $code"
  case "$code" in 2??|404) return 0;; esac
  return 1
}}
stop_command() {{
  p=$(cat "$d/pid" 2>/dev/null)
  [ -n "$p" ] || return 0
  kill -TERM "-$p" 2>/dev/null
  i=0; while [ ! -f "$d/status" ] && [ $i -lt 10 ]; do sleep 1; i=$((i+1)); done
  kill -KILL "-$p" 2>/dev/null
  [ -f "$d/status" ] || {{ echo 124 > "$d/status.tmp" && mv "$d/status.tmp" "$d/status"; }}
}}
ended=""; why=""
while :; do
  now=$(date +%s)
  if [ -n "$deadline" ] && [ "$now" -ge "$deadline" ]; then
    if [ -z "$why" ]; then
      why="the job's deadline"; log "the deadline has passed"
      [ -f "$d/status" ] || {{ echo "gpucloud: the job's deadline has passed: stopping it" >> "$d/log"; stop_command; }}
    fi
  elif [ -f "$d/status" ] && [ "$keep" = 0 ] && [ -z "$why" ]; then
    [ -n "$ended" ] || ended=$now
    if [ -f "$d/collected" ]; then why="the command ended and its results were collected";
    elif [ $((now - ended)) -ge "$linger" ]; then why="the command ended $linger s ago"; fi
  fi
  if [ -n "$why" ]; then
    end_pod "$why"; r=$?
    [ $r -eq 0 ] && exit 0
    [ $r -eq 2 ] && exit 2
    sleep 10
  else
    sleep {WATCHDOG_EVERY_S}
  fi
done"#
    )
}

/// A probe of the job's state, one line each on stdout: `state none|running|exited CODE`, then
/// `log BYTES`, then `dir REMOTE_DIR`.
pub(crate) fn probe_script() -> String {
    format!(
        r#"d="$HOME/{JOB_DIR}"
if [ ! -s "$d/pid" ]; then echo "state none"; exit 0; fi
if [ -f "$d/status" ]; then echo "state exited $(cat "$d/status")"; else echo "state running"; fi
echo "log $(wc -c < "$d/log" | tr -d ' ')"
echo "dir $(cat "$d/remote_dir")"
"#
    )
}

/// Writes the log from byte `offset` on (at most `limit` bytes) to stdout, after writing the
/// state to stderr (`exited CODE` or `running`): read before the bytes, so that `exited` and
/// fewer than `limit` bytes means the log is whole.
pub(crate) fn logs_script(offset: u64, limit: u64) -> String {
    format!(
        r#"d="$HOME/{JOB_DIR}"
[ -s "$d/pid" ] || {{ echo "none" >&2; exit 3; }}
if [ -f "$d/status" ]; then echo "exited $(cat "$d/status")" >&2; else echo "running" >&2; fi
tail -c +{start} "$d/log" | head -c {limit}
"#,
        start = offset + 1,
    )
}

/// Stops the command (TERM to its process group, KILL after 10 s), recording status 143 if the
/// supervisor could not.
pub(crate) fn cancel_script() -> String {
    format!(
        r#"d="$HOME/{JOB_DIR}"
p=$(cat "$d/pid" 2>/dev/null)
[ -n "$p" ] || {{ echo "no job on this pod" >&2; exit 3; }}
[ -f "$d/status" ] && exit 0
kill -TERM "-$p" 2>/dev/null
i=0; while [ ! -f "$d/status" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL "-$p" 2>/dev/null
[ -f "$d/status" ] || {{ echo 143 > "$d/status.tmp" && mv "$d/status.tmp" "$d/status"; }}
exit 0
"#
    )
}

/// Tells the watchdog the results are collected: it ends the pod at once.
pub(crate) fn collected_script() -> String {
    format!(r#"touch "$HOME/{JOB_DIR}/collected""#)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sh -n`: the scripts parse as POSIX shell (dash where it is `sh`).
    fn parses(script: &str) {
        let status = std::process::Command::new("sh").args(["-n", "-c", script]).status().unwrap();
        assert!(status.success(), "does not parse:\n{script}");
    }

    #[test]
    fn every_script_parses_as_posix_shell() {
        let settings =
            WatchdogSettings { linger: Duration::from_secs(5), deadline_in: Some(Duration::from_secs(9)), keep: false };
        parses(&start_script("echo 'it''s' \"$HOME\"", "gpucloud job", &settings));
        parses(&watchdog_script());
        parses(&probe_script());
        parses(&logs_script(10, 100));
        parses(&cancel_script());
        parses(&collected_script());
    }

    #[test]
    fn the_watchdog_reads_the_pod_identity_from_the_pod_environment_when_the_session_lacks_it() {
        let script = watchdog_script();
        assert!(script.contains(". /etc/rp_environment"), "RunPod's SSH environment file");
        assert!(script.contains("/proc/1/environ"), "the container's first process");
        assert!(script.contains("${RUNPOD_API_BASE_URL:-https://api.runpod.io}/v2/pods/$RUNPOD_POD_ID"));
        assert!(script.contains("curl -K -"), "the key goes to curl on stdin, not its command line");
    }
}
