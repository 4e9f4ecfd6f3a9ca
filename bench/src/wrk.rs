//! Drives a server with Debian's `wrk` and reads what it measured.
//!
//! wrk's own summary prints latencies of a second or more as seconds with two decimals (a
//! 10 ms resolution), so every run loads a small Lua script whose `done` hook prints one JSON
//! line with the counts and the latencies in microseconds:
//!
//! ```text
//! dockerflow-bench: {"requests":565700,"duration_us":10100000,"p50_us":250,"p99_us":1010000,
//!                    "max_us":12920,"non_2xx":12,"timeouts":3}
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde::Deserialize;

use crate::BenchError;

/// What the JSON line starts with.
const MARKER: &str = "dockerflow-bench: ";

/// Prints the summary as JSON when wrk is done (latencies in microseconds).
const SUMMARY_SCRIPT: &str = r#"-- dockerflow-bench: the summary as one JSON line, latencies in microseconds
function done(summary, latency, requests)
   io.write(string.format(
      'dockerflow-bench: {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"non_2xx":%d,"timeouts":%d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, summary.errors.status, summary.errors.timeout))
end
"#;

/// Also stops each wrk thread once it has read this many responses (`init` gets the budget as
/// its first argument after `--`), so that a run is bounded in count as well as in time. A
/// separate script, because a `response` hook costs wrk time on every response.
const BUDGET_SCRIPT: &str = r#"-- dockerflow-bench: stop each thread after a budget of responses
local budget = 0
local seen = 0
function init(args)
   budget = tonumber(args[1])
end
function response(status, headers, body)
   seen = seen + 1
   if seen >= budget then
      wrk.thread:stop()
   end
end
"#;

/// One run of wrk: where, how hard, for how long.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub(crate) url: String,
    pub(crate) threads: u32,
    pub(crate) connections: u32,
    /// Whole seconds: wrk reads no finer unit.
    pub(crate) seconds: u64,
    /// Whole seconds before wrk gives up on a response (and leaves it out of the latencies).
    pub(crate) timeout_seconds: u64,
    /// Stop after about this many responses (split evenly over the threads).
    pub(crate) budget: Option<u64>,
}

impl Load {
    /// `connections` clients on one wrk thread for `seconds`, with a 10 s response timeout.
    pub(crate) fn new(url: impl Into<String>, connections: u32, seconds: u64) -> Self {
        Load {
            url: url.into(),
            threads: 1,
            connections,
            seconds,
            timeout_seconds: 10,
            budget: None,
        }
    }

    pub(crate) fn timeout(mut self, seconds: u64) -> Self {
        self.timeout_seconds = seconds;
        self
    }

    pub(crate) fn budget(mut self, responses: u64) -> Self {
        self.budget = Some(responses);
        self
    }
}

/// What wrk measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Measured {
    pub(crate) requests: u64,
    pub(crate) requests_per_sec: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
    pub(crate) non_2xx: u64,
    pub(crate) timeouts: u64,
}

/// The wrk program and its two scripts, written once per run of the bench.
pub(crate) struct Wrk {
    summary: PathBuf,
    budget: PathBuf,
}

impl Wrk {
    /// Finds `wrk` (scripts/bench installs it) and writes the budget script to a temp file.
    pub(crate) fn new() -> Result<Self, BenchError> {
        let found = Command::new("wrk")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if found.is_err() {
            return Err(BenchError::new(
                "wrk is not installed: run scripts/bench, or apt-get install wrk",
            ));
        }
        Ok(Wrk {
            summary: write_script("summary", SUMMARY_SCRIPT)?,
            budget: write_script("budget", &format!("{SUMMARY_SCRIPT}{BUDGET_SCRIPT}"))?,
        })
    }

    /// Runs wrk to the end and reads its summary.
    pub(crate) fn run(&self, load: &Load) -> Result<Measured, BenchError> {
        let output = self
            .command(load)
            .output()
            .map_err(|e| BenchError::new(format!("cannot run wrk: {e}")))?;
        read_output(load, &output)
    }

    /// Starts wrk in the background; [`Running::finish`] waits for it and reads its summary.
    pub(crate) fn start(&self, load: &Load) -> Result<Running, BenchError> {
        let child = self
            .command(load)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BenchError::new(format!("cannot run wrk: {e}")))?;
        Ok(Running {
            load: load.clone(),
            child: Some(child),
        })
    }

    fn command(&self, load: &Load) -> Command {
        let mut cmd = Command::new("wrk");
        cmd.arg(format!("-t{}", load.threads))
            .arg(format!("-c{}", load.connections))
            .arg(format!("-d{}s", load.seconds))
            .arg("--timeout")
            .arg(format!("{}s", load.timeout_seconds));
        let script = match load.budget {
            Some(_) => &self.budget,
            None => &self.summary,
        };
        cmd.arg("-s").arg(script);
        cmd.arg(&load.url);
        if let Some(budget) = load.budget {
            let per_thread = budget.div_ceil(u64::from(load.threads.max(1)));
            cmd.arg("--").arg(per_thread.to_string());
        }
        cmd.stdin(Stdio::null());
        cmd
    }
}

impl Drop for Wrk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.summary);
        let _ = std::fs::remove_file(&self.budget);
    }
}

fn write_script(name: &str, text: &str) -> Result<PathBuf, BenchError> {
    let path = std::env::temp_dir().join(format!(
        "dockerflow-bench-{}-{name}.lua",
        std::process::id()
    ));
    let mut file = std::fs::File::create(&path)
        .map_err(|e| BenchError::new(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(|e| BenchError::new(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// A wrk started in the background.
pub(crate) struct Running {
    load: Load,
    child: Option<Child>,
}

impl Running {
    pub(crate) fn finish(mut self) -> Result<Measured, BenchError> {
        let child = self.child.take().expect("finish is called once");
        let output = child
            .wait_with_output()
            .map_err(|e| BenchError::new(format!("wrk did not finish: {e}")))?;
        read_output(&self.load, &output)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn read_output(load: &Load, output: &Output) -> Result<Measured, BenchError> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(BenchError::new(format!(
            "wrk {} failed ({}): {}{}",
            load.url,
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    parse(&stdout).ok_or_else(|| {
        BenchError::new(format!(
            "cannot read wrk's summary for {}:\n{stdout}",
            load.url
        ))
    })
}

/// The JSON line of the summary script.
#[derive(Debug, Deserialize)]
struct Summary {
    requests: u64,
    duration_us: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    non_2xx: u64,
    timeouts: u64,
}

/// Reads the summary script's JSON line; `None` when there is none.
pub(crate) fn parse(text: &str) -> Option<Measured> {
    let line = text
        .lines()
        .find_map(|line| line.trim().strip_prefix(MARKER))?;
    let s: Summary = serde_json::from_str(line).ok()?;
    let seconds = s.duration_us as f64 / 1e6;
    Some(Measured {
        requests: s.requests,
        requests_per_sec: if seconds > 0.0 {
            s.requests as f64 / seconds
        } else {
            0.0
        },
        p50: Duration::from_micros(s.p50_us),
        p99: Duration::from_micros(s.p99_us),
        max: Duration::from_micros(s.max_us),
        non_2xx: s.non_2xx,
        timeouts: s.timeouts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 10s test @ http://127.0.0.1:8080/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   635.91us    0.89ms  12.92ms   93.69%
  565700 requests in 10.10s, 68.50MB read
Requests/sec:  56007.00
dockerflow-bench: {\"requests\":565700,\"duration_us\":10100000,\"p50_us\":250,\"p99_us\":1010123,\"max_us\":12920,\"non_2xx\":12,\"timeouts\":3}
";

    #[test]
    fn reads_the_json_summary_to_the_microsecond() {
        let m = parse(SAMPLE).unwrap();
        assert_eq!(m.requests, 565_700);
        assert!(
            (m.requests_per_sec - 56_009.9).abs() < 0.1,
            "{}",
            m.requests_per_sec
        );
        assert_eq!(m.p50, Duration::from_micros(250));
        assert_eq!(m.p99, Duration::from_micros(1_010_123));
        assert_eq!(m.max, Duration::from_micros(12_920));
        assert_eq!(m.non_2xx, 12);
        assert_eq!(m.timeouts, 3);
    }

    #[test]
    fn output_without_the_json_line_is_refused() {
        assert!(parse("  10 requests in 1.00s, 1KB read\nRequests/sec: 10\n").is_none());
    }
}
