//! A bad setting stops start-up with a message naming it, also on the zero-setup path
//! (`App::new().configure(dockerflow::configure)`), where the check runs inside the server's
//! app factory. The test runs itself again as a child process that starts a real server.

use std::process::Command;
use std::time::{Duration, Instant};

const CHILD: &str = "DOCKERFLOW_TESTS_STARTUP_CHILD";

#[test]
fn a_bad_setting_stops_a_server_that_uses_the_global_configure() {
    if std::env::var_os(CHILD).is_some() {
        return run_server();
    }
    for (var, value, accepted) in [
        (
            "DOCKERFLOW_FAIL_LEVEL",
            "sometimes",
            "warning, error, critical",
        ),
        ("DOCKERFLOW_CACHE_TTL_MS", "1s", "milliseconds"),
        ("DOCKERFLOW_SHOW_DETAILS", "yes", "true or false"),
    ] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_bad_setting_stops_a_server_that_uses_the_global_configure",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .env(var, value)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().ok();
                panic!("the server with {var}={value} kept running");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(78), "{var}={value}: {stderr}");
        assert!(
            stderr.contains(var) && stderr.contains(value) && stderr.contains(accepted),
            "{stderr}"
        );
    }
}

fn run_server() {
    actix_web::rt::System::new().block_on(async {
        let server =
            actix_web::HttpServer::new(|| actix_web::App::new().configure(dockerflow::configure))
                .workers(1)
                .bind(("127.0.0.1", 0))
                .unwrap()
                .run();
        // Never reached when the configuration is bad: the process exits first.
        let handle = server.handle();
        actix_web::rt::spawn(async move {
            actix_web::rt::time::sleep(Duration::from_secs(10)).await;
            handle.stop(false).await;
        });
        server.await.unwrap();
    });
}
