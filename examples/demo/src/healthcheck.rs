//! `dockerflow-demo healthcheck [PATH]`: a `HEALTHCHECK` for images that have no curl.
//!
//! It GETs `http://127.0.0.1:$PORT` + `PATH` (default `/__lbheartbeat__`) and exits 0 on a 2xx
//! answer, 1 otherwise (refused, no answer, another status, a bad `PORT` or `PATH`), within
//! [`DEADLINE`] for connecting, writing and reading together.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long the whole check may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(2);

/// The path asked when none is given: the process is up, nothing else is touched.
pub(crate) const DEFAULT_PATH: &str = "/__lbheartbeat__";

/// Runs the check with `PORT` read through `var`; says why on stderr when it fails.
pub(crate) fn run(path: Option<&str>, var: impl Fn(&str) -> Option<String>) -> ExitCode {
    let outcome = crate::cli::port(&var)
        .map_err(|err| err.to_string())
        .and_then(|port| check(port, path.unwrap_or(DEFAULT_PATH), DEADLINE));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("dockerflow-demo healthcheck: {reason}");
            ExitCode::from(1)
        }
    }
}

/// GETs `path` on `127.0.0.1:port`; `Ok` when the status is 2xx, all within `deadline`.
pub(crate) fn check(port: u16, path: &str, deadline: Duration) -> Result<(), String> {
    if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(format!(
            "the path must start with / and hold no spaces or control characters: {path:?}"
        ));
    }
    let end = Instant::now() + deadline;
    let left = || {
        end.checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| format!("no answer within {} ms", deadline.as_millis()))
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, left()?)
        .map_err(|err| format!("cannot connect to {addr}: {err}"))?;
    stream.set_write_timeout(Some(left()?)).map_err(io)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: dockerflow-demo-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|err| format!("cannot send the request to {addr}: {err}"))?;
    // Only the status line matters; read until it is complete, however the answer is cut.
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') {
        if head.len() > 1024 {
            return Err("the status line is longer than 1 KiB".to_owned());
        }
        stream.set_read_timeout(Some(left()?)).map_err(io)?;
        match stream.read(&mut buf) {
            Ok(0) => return Err(format!("{addr} closed the connection without an answer")),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no answer within {} ms", deadline.as_millis()))
            }
            Err(err) => return Err(format!("cannot read the answer of {addr}: {err}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..head.iter().position(|&b| b == b'\n').unwrap_or(0)])
        .trim_end()
        .to_owned();
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("GET {path} answered {line:?}"))
    }
}

fn io(err: std::io::Error) -> String {
    err.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_must_be_a_plain_absolute_path() {
        for path in ["__heartbeat__", "/a b", "/a\r\nX-Injected: 1", ""] {
            let err = check(1, path, DEADLINE).unwrap_err();
            assert!(err.contains("the path must start with /"), "{err}");
        }
    }
}
