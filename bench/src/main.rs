//! `dockerflow-bench`: measures the Dockerflow endpoints against a bare actix-web handler and
//! against the physical limits of the heartbeat, side by side in one run, and prints one table
//! of ratios, so the figures hold on a noisy shared machine.
//!
//! Run it with `scripts/bench` (installs `wrk` when missing), or
//! `cargo run --release -p dockerflow-bench -- [--quick] [--workers N] [--connections N]`.
//! It needs `wrk`, `redis-server` (it starts a private one) and PostgreSQL at 127.0.0.1:5432
//! with trust auth for `postgres` (it creates a database for the run and drops it after).
//!
//! Figures are printed, never asserted: the exit status is 0 whether targets are met or not,
//! and non-zero only when the benchmark itself could not run.

mod backends;
mod checks;
mod figures;
mod server;
mod table;
mod wrk;

use std::process::ExitCode;
use std::time::Instant;

use crate::figures::{Bench, Plan};

const USAGE: &str = "usage: dockerflow-bench [--quick] [--workers N] [--connections N] [--only GROUP,...]

  --quick          a few seconds in all, fewer requests (for CI); figures are printed, never asserted
  --workers N      actix-web workers of every server, the baseline's too (default 1)
  --connections N  wrk connections of the throughput figures (default 64)
  --only GROUP,... measure only these groups of figures: throughput, deployed, probes, memory,
                   hostile-version, fan-out, hung-check, lb-while-hanging (default: all)";

/// The groups of figures, in the order they are measured.
const GROUPS: [&str; 8] = [
    "throughput",
    "deployed",
    "probes",
    "memory",
    "hostile-version",
    "fan-out",
    "hung-check",
    "lb-while-hanging",
];

/// The benchmark could not run (a missing tool, a backend that is down, a broken endpoint).
#[derive(Debug)]
pub(crate) struct BenchError(String);

impl BenchError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        BenchError(message.into())
    }
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn main() -> ExitCode {
    let (plan, only) = match parse_args(std::env::args().skip(1)) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("dockerflow-bench: {err}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    match run(&plan, &only) {
        Ok(rows) => {
            let mode = if plan.quick { "quick" } else { "full" };
            println!(
                "dockerflow-bench, {mode} mode: {} worker(s) per server, wrk 1 thread, {} connections; {}",
                plan.workers,
                plan.connections,
                machine()
            );
            println!();
            print!("{}", table::render(&rows));
            let targeted = rows.iter().filter(|row| row.has_target()).count();
            let missed = rows
                .iter()
                .filter(|row| row.has_target() && !row.passed())
                .count();
            println!();
            println!(
                "{} of {} figures meet their target; took {:.0} s",
                targeted - missed,
                targeted,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("dockerflow-bench: could not run: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(None)` for `--help`.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<(Plan, Vec<String>)>, String> {
    let mut quick = false;
    let mut only: Vec<String> = GROUPS.map(str::to_owned).to_vec();
    let mut workers = 1;
    let mut connections = 64;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u32, String> {
            let value = args
                .next()
                .ok_or_else(|| format!("{name} needs a number"))?;
            match value.parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{name} needs a positive number, not {value:?}")),
            }
        };
        match arg.as_str() {
            "--quick" => quick = true,
            "--workers" => workers = number("--workers")? as usize,
            "--connections" => connections = number("--connections")?,
            "--only" => {
                let list = args.next().ok_or("--only needs a list of groups")?;
                only = list.split(',').map(|g| g.trim().to_owned()).collect();
                if let Some(unknown) = only.iter().find(|g| !GROUPS.contains(&g.as_str())) {
                    return Err(format!(
                        "unknown group {unknown:?}; the groups are {}",
                        GROUPS.join(", ")
                    ));
                }
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let plan = if quick {
        Plan::quick(workers, connections)
    } else {
        Plan::full(workers, connections)
    };
    Ok(Some((plan, only)))
}

/// The figures of the groups in `only`, in the order of the table. The throughput figures
/// come first, on a quiet process; the memory figure before the ones that start many threads.
fn run(plan: &Plan, only: &[String]) -> Result<Vec<table::Row>, BenchError> {
    let bench = Bench::new(plan.clone())?;
    let started = Instant::now();
    let wanted = |group: &str| only.iter().any(|g| g == group);
    let step = |group: &str| {
        let on = wanted(group);
        if on {
            eprintln!(
                "dockerflow-bench: [{:>5.1} s] {group}…",
                started.elapsed().as_secs_f64()
            );
        }
        on
    };
    let mut rows = Vec::new();
    if step("throughput") {
        rows.extend(bench.throughput()?);
    }
    // After the throughput figures: it installs the process's global log subscriber.
    if step("deployed") {
        rows.extend(bench.deployed()?);
    }
    if step("probes") {
        rows.push(bench.probes()?);
    }
    let memory = if step("memory") {
        Some(bench.memory()?)
    } else {
        None
    };
    if step("hostile-version") {
        rows.push(bench.hostile_version()?);
    }
    if step("fan-out") {
        rows.extend(bench.fan_out()?);
    }
    if step("hung-check") {
        rows.push(bench.hung_check()?);
    }
    if step("lb-while-hanging") {
        rows.push(bench.lb_while_hanging()?);
    }
    rows.extend(memory);
    eprintln!(
        "dockerflow-bench: [{:>5.1} s] done; stopping the backends…",
        started.elapsed().as_secs_f64()
    );
    Ok(rows)
}

/// `2 cores, AMD EPYC`: what the figures were measured on.
fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cores} cores, {model}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn reads_arguments() {
        let (plan, only) = parse_args(args(&["--quick", "--workers", "2"]))
            .unwrap()
            .unwrap();
        assert!(plan.quick);
        assert_eq!(only.len(), GROUPS.len());
        assert_eq!(plan.workers, 2);
        assert_eq!(plan.connections, 64);
        assert!(parse_args(args(&["--help"])).unwrap().is_none());
        assert!(parse_args(args(&["--workers", "0"])).is_err());
        assert!(parse_args(args(&["--fast"])).is_err());
        let (_, only) = parse_args(args(&["--only", "probes,memory"]))
            .unwrap()
            .unwrap();
        assert_eq!(only, ["probes", "memory"]);
        assert!(parse_args(args(&["--only", "speed"])).is_err());
    }
}
