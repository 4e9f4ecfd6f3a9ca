//! The demo's container kit (`examples/demo/container/`), every part that runs without a
//! container engine: the `dockerflow-demo healthcheck` subcommand the image's `HEALTHCHECK`
//! runs, against a live demo, a stopped one and a listener that never answers; the script that
//! writes `version.json`; and the Dockerfile and Kubernetes manifest say what the README says.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use dockerflow_tests::demo::DemoBinary;
use dockerflow_tests::net::{closed_port, Listener};
use dockerflow_tests::temp::WorkDir;
use serde_json::Value;

const DEMO: DemoBinary = DemoBinary(env!("CARGO_BIN_EXE_dockerflow-demo"));

/// `dockerflow-demo healthcheck [path]` with `PORT=port`: exit code and stderr, and how long it
/// took.
fn healthcheck(port: u16, path: Option<&str>) -> (i32, String, Duration) {
    let mut args = vec!["healthcheck"];
    args.extend(path);
    let run = DEMO.run(&WorkDir::create(), &args, &[("PORT", &port.to_string())]);
    let code = run
        .status
        .code()
        .expect("the healthcheck exits, it is not killed");
    (code, run.stderr, run.took)
}

#[test]
fn healthcheck_passes_on_a_live_demo_and_fails_on_a_stopped_one() {
    let dir = WorkDir::create();
    let mut server = DEMO.start(&dir, &[], &[]);
    let port = server.port;

    let (code, stderr, _) = healthcheck(port, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.is_empty(),
        "a passing healthcheck says nothing: {stderr}"
    );
    let (code, stderr, _) = healthcheck(port, Some("/__heartbeat__"));
    assert_eq!(code, 0, "the demo's heartbeat is ok on SQLite: {stderr}");

    let (code, stderr, _) = healthcheck(port, Some("/no-such-path"));
    assert_eq!(code, 1);
    assert!(stderr.contains("404"), "{stderr}");

    assert!(server.terminate().success());
    let (code, stderr, _) = healthcheck(port, None);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

#[test]
fn healthcheck_fails_while_the_demo_drains() {
    let dir = WorkDir::create();
    let server = DEMO.start(&dir, &[], &[("DOCKERFLOW_DRAIN_MS", "30000")]);
    assert_eq!(healthcheck(server.port, None).0, 0);
    server.signal_term();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.get("/__lbheartbeat__").0 != 503 {
        assert!(Instant::now() < deadline, "the demo does not drain");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, stderr, _) = healthcheck(server.port, None);
    assert_eq!(code, 1);
    assert!(stderr.contains("503"), "{stderr}");
}

#[test]
fn healthcheck_fails_on_a_closed_port_a_bad_path_and_a_bad_port() {
    let (code, stderr, _) = healthcheck(closed_port(), None);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot connect"), "{stderr}");

    let (code, stderr, _) = healthcheck(closed_port(), Some("__heartbeat__"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("must start with /"), "{stderr}");

    let run = DEMO.run(&WorkDir::create(), &["healthcheck"], &[("PORT", "eighty")]);
    assert_eq!(run.status.code(), Some(1));
    assert!(run.stderr.contains("PORT"), "{}", run.stderr);
}

#[test]
fn healthcheck_gives_up_on_a_listener_that_never_answers_after_two_seconds() {
    let silent = Listener::silent();
    let (code, stderr, took) = healthcheck(silent.port, None);
    assert_eq!(code, 1);
    assert!(stderr.contains("no answer within 2000 ms"), "{stderr}");
    // The behaviour is the 2 s deadline; the bound is generous for a loaded machine.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn healthcheck_deadline_covers_an_answer_that_trickles_in() {
    // One byte of a status line every 200 ms: each read succeeds, the whole never completes.
    let trickle = Listener::serving(|mut socket| {
        std::thread::spawn(move || {
            for byte in b"HTTP/1.1 200 OK".iter().cycle().take(200) {
                if socket.write_all(&[*byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
    });
    let (code, stderr, took) = healthcheck(trickle.port, None);
    assert_eq!(code, 1);
    assert!(stderr.contains("no answer within 2000 ms"), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

fn container_file(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/container")).join(name)
}

/// Runs the version.json script with `args` and `env` only (and `PATH`); its stdout as JSON.
fn version_json(args: &[&str], env: &[(&str, &str)]) -> Value {
    version_json_with(&std::env::var("PATH").unwrap(), args, env)
}

/// [`version_json`] with another `PATH` (another `awk`).
fn version_json_with(path: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let output = Command::new("sh")
        .arg(container_file("version-json.sh"))
        .args(args)
        .env_clear()
        .env("PATH", path)
        .envs(env.iter().copied())
        .output()
        .expect("sh runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn version_json_script_writes_the_four_fields_of_the_spec() {
    // What a CI passes, tricky values included: quotes, backslashes, control characters,
    // a newline, and text that is not ASCII.
    let tricky = "a \"quoted\" \\path\\\n\ttab \u{1}\u{1f} é ✓";
    let version = version_json(
        &[
            "--source",
            "https://github.com/example/app",
            "--version",
            tricky,
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
            "--build",
            "https://ci.example/builds/42",
        ],
        &[],
    );
    let expected = serde_json::json!({
        "source": "https://github.com/example/app",
        "version": tricky,
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "build": "https://ci.example/builds/42",
    });
    assert_eq!(version, expected);

    // mawk, the awk of Debian's slim images (and a required package, so always there), too.
    let dir = WorkDir::create();
    std::os::unix::fs::symlink("/usr/bin/mawk", dir.join("awk")).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    let args = ["--version", tricky, "--commit", "abc"];
    let version = version_json_with(&path, &args, &[]);
    assert_eq!(version["version"], tricky);

    // The Dockerfile's build arguments arrive as environment variables; options win.
    let version = version_json(
        &["--version", "v2"],
        &[
            ("SOURCE", "https://s"),
            ("VERSION", "v1"),
            ("COMMIT", "abc"),
        ],
    );
    assert_eq!(
        version,
        serde_json::json!({"source": "https://s", "version": "v2", "commit": "abc", "build": ""})
    );
}

#[test]
fn version_json_script_output_is_served_by_the_demo() {
    let dir = WorkDir::create();
    let version = version_json(&["--commit", "abc\"def"], &[("BUILD", "https://ci/1")]);
    std::fs::write(dir.join("version.json"), version.to_string()).unwrap();
    let server = DEMO.start(&dir, &[], &[]);
    let (status, body) = server.get("/__version__");
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), version);
}

#[test]
fn version_json_script_refuses_unknown_options() {
    let output = Command::new("sh")
        .arg(container_file("version-json.sh"))
        .args(["--sha", "abc"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
}

/// The lines of a Dockerfile's instructions, continuation lines joined.
fn instructions(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut continued = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || (line.starts_with('#') && !continued) {
            continue;
        }
        let (body, more) = match line.strip_suffix('\\') {
            Some(body) => (body.trim(), true),
            None => (line, false),
        };
        if continued {
            let last = out.last_mut().unwrap();
            last.push(' ');
            last.push_str(body);
        } else {
            out.push(body.to_owned());
        }
        continued = more;
    }
    out
}

#[test]
fn dockerfile_runs_as_app_from_app_with_the_healthcheck_subcommand() {
    let text = std::fs::read_to_string(container_file("Dockerfile")).unwrap();
    let all = instructions(&text);
    // The runtime stage: everything after the last FROM.
    let last_from = all.iter().rposition(|i| i.starts_with("FROM ")).unwrap();
    assert!(
        all[..last_from].iter().any(|i| i.starts_with("FROM ")),
        "multi-stage"
    );
    let runtime = &all[last_from..];
    let has = |prefix: &str| runtime.iter().any(|i| i.starts_with(prefix));
    assert!(has("USER 10001:10001"), "{runtime:#?}");
    assert!(has("WORKDIR /app"), "{runtime:#?}");
    assert!(runtime
        .iter()
        .any(|i| i.contains("--uid 10001") && i.contains("--gid 10001")));
    assert!(runtime
        .iter()
        .any(|i| i.starts_with("ENV ") && i.contains("HOST=0.0.0.0") && i.contains("PORT=")));
    assert!(has("ENTRYPOINT [\"dockerflow-demo\"]"));
    assert!(has("CMD [\"serve\"]"));
    assert!(has("COPY --from=build") && runtime.iter().any(|i| i.contains("/app/version.json")));
    let healthcheck = runtime
        .iter()
        .find(|i| i.starts_with("HEALTHCHECK"))
        .unwrap();
    assert!(
        healthcheck.contains("CMD [\"dockerflow-demo\", \"healthcheck\"]"),
        "{healthcheck}"
    );
    assert!(
        !runtime.iter().any(|i| i.contains("curl")),
        "the image has no curl"
    );
}

#[test]
fn kubernetes_liveness_is_lbheartbeat_and_readiness_is_heartbeat() {
    let text = std::fs::read_to_string(container_file("kubernetes.yaml")).unwrap();
    // The path of the httpGet on the line after each probe's name.
    let probe_path = |probe: &str| {
        let mut lines = text.lines().skip_while(|l| l.trim() != format!("{probe}:"));
        lines.next().unwrap_or_else(|| panic!("no {probe}"));
        let next = lines.next().unwrap();
        let start = next.find("path: ").unwrap_or_else(|| panic!("{next}")) + 6;
        next[start..]
            .split([',', '}'])
            .next()
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(probe_path("livenessProbe"), "/__lbheartbeat__");
    assert_eq!(probe_path("readinessProbe"), "/__heartbeat__");
    assert_eq!(probe_path("startupProbe"), "/__lbheartbeat__");
    assert!(text.contains("runAsUser: 10001"));
}
