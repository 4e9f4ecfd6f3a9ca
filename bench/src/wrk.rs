//! Drives a server with Debian's `wrk` and reads what it prints.
//!
//! `wrk --latency` ends with a summary such as:
//!
//! ```text
//!   Thread Stats   Avg      Stdev     Max   +/- Stdev
//!     Latency   635.91us    0.89ms  12.92ms   93.69%
//!   Latency Distribution
//!      50%  250.00us
//!      99%    5.80ms
//!   565700 requests in 10.10s, 68.50MB read
//!   Non-2xx or 3xx responses: 12
//! Requests/sec:  56007.00
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::BenchError;

/// Stops each wrk thread once it has read this many responses (`init` gets the budget as its
/// first argument after `--`), so that a run is bounded in count as well as in time.
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

/// The wrk program and the budget script it may need, written once per run of the bench.
pub(crate) struct Wrk {
    script: PathBuf,
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
        let script = std::env::temp_dir().join(format!(
            "dockerflow-bench-{}-budget.lua",
            std::process::id()
        ));
        let mut file = std::fs::File::create(&script)
            .map_err(|e| BenchError::new(format!("cannot write {}: {e}", script.display())))?;
        file.write_all(BUDGET_SCRIPT.as_bytes())
            .map_err(|e| BenchError::new(format!("cannot write {}: {e}", script.display())))?;
        Ok(Wrk { script })
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
        cmd.arg("--latency")
            .arg(format!("-t{}", load.threads))
            .arg(format!("-c{}", load.connections))
            .arg(format!("-d{}s", load.seconds))
            .arg("--timeout")
            .arg(format!("{}s", load.timeout_seconds));
        if load.budget.is_some() {
            cmd.arg("-s").arg(&self.script);
        }
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
        let _ = std::fs::remove_file(&self.script);
    }
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

/// Reads the summary wrk prints; `None` when a line it always prints is missing.
pub(crate) fn parse(text: &str) -> Option<Measured> {
    let mut measured = Measured::default();
    let mut seen_requests = false;
    let mut seen_rate = false;
    let mut in_distribution = false;
    for line in text.lines() {
        let line = line.trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        if line == "Latency Distribution" {
            in_distribution = true;
            continue;
        }
        if in_distribution {
            match words.as_slice() {
                [percent, value] if percent.ends_with('%') => {
                    let value = duration(value)?;
                    match *percent {
                        "50%" => measured.p50 = value,
                        "99%" => measured.p99 = value,
                        _ => {}
                    }
                    continue;
                }
                _ => in_distribution = false,
            }
        }
        match words.as_slice() {
            ["Latency", _avg, _stdev, max, _within] => measured.max = duration(max)?,
            [count, "requests", "in", ..] => {
                measured.requests = count.parse().ok()?;
                seen_requests = true;
            }
            ["Requests/sec:", rate] => {
                measured.requests_per_sec = rate.parse().ok()?;
                seen_rate = true;
            }
            ["Non-2xx", "or", "3xx", "responses:", count] => {
                measured.non_2xx = count.parse().ok()?
            }
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                if let Some(pos) = rest.iter().position(|w| *w == "timeout") {
                    measured.timeouts = rest.get(pos + 1)?.trim_end_matches(',').parse().ok()?;
                }
            }
            _ => {}
        }
    }
    (seen_requests && seen_rate).then_some(measured)
}

/// wrk's time format: a number and one of `us`, `ms`, `s`, `m`, `h`.
fn duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 10s test @ http://127.0.0.1:8080/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   635.91us    0.89ms  12.92ms   93.69%
    Req/Sec    56.20k     8.07k   62.00k    86.54%
  Latency Distribution
     50%  250.00us
     75%  491.00us
     90%  700.00us
     99%    1.01s 
  565700 requests in 10.10s, 68.50MB read
  Socket errors: connect 0, read 0, write 0, timeout 3
  Non-2xx or 3xx responses: 12
Requests/sec:  56007.00
Transfer/sec:      6.78MB
";

    #[test]
    fn reads_the_summary() {
        let m = parse(SAMPLE).unwrap();
        assert_eq!(m.requests, 565_700);
        assert_eq!(m.requests_per_sec, 56_007.0);
        assert_eq!(m.p50, Duration::from_micros(250));
        assert_eq!(m.p99, Duration::from_millis(1010));
        assert_eq!(m.max, Duration::from_micros(12_920));
        assert_eq!(m.non_2xx, 12);
        assert_eq!(m.timeouts, 3);
    }

    #[test]
    fn a_summary_without_a_rate_is_refused() {
        assert!(parse("  10 requests in 1.00s, 1KB read\n").is_none());
    }
}
