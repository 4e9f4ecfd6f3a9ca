//! What one request costs in instructions, for `valgrind --tool=callgrind`: `path`
//! (`/__lbheartbeat__` unless given) called in-process (`actix_web::test::call_service`, no
//! network) `count` times on the app as `variant` builds it, with the subscriber
//! `logging::init` installs writing to `/dev/null` through a `BatchWriter`. `/__version__`
//! serves a small `version.json` written to the temporary directory; `/__heartbeat__` runs
//! no check.
//!
//! ```text
//! cargo build --release -p dockerflow-bench --example request_cost
//! valgrind --tool=callgrind target/release/examples/request_cost logged 2000
//! valgrind --tool=callgrind target/release/examples/request_cost logged 12000
//! ```
//!
//! The difference of the two totals divided by 10,000 is the cost of a request, start-up
//! left out. Variants: `handler` (a bare actix-web handler answering 200 on the same path, the
//! baseline of the benchmarks), `answer` (a bare handler answering what `/__version__` answers:
//! the same `version.json`, `Content-Type` and `Cache-Control`, written by hand), `bare` (the
//! endpoints, no middleware), `quiet` (the middleware with `DOCKERFLOW_LOG_PROBES=false`),
//! `logged` (a summary line per request).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{test, App, HttpResponse};
use dockerflow::logging::{BatchWriter, Setup};
use dockerflow::Dockerflow;

/// The `version.json` that `/__version__` serves, and the `answer` variant answers by hand.
const VERSION_JSON: &str = r#"{"source":"https://github.com/mozilla-services/dockerflow","version":"1.0.0","commit":"0000000","build":"bench"}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: request_cost handler|answer|bare|quiet|logged <count> [path]";
    let variant = args.next().ok_or(usage)?;
    let count: u32 = args.next().ok_or(usage)?.parse()?;
    let path = args.next().unwrap_or_else(|| "/__lbheartbeat__".to_owned());
    let sink = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    Setup::new("request-cost")
        .environment([("RUST_LOG", "info")])
        .writer(BatchWriter::new(sink))
        .init()?;
    let probes = if variant == "quiet" { "false" } else { "true" };
    let version = std::env::temp_dir().join(format!("request-cost-{}.json", std::process::id()));
    std::fs::write(&version, VERSION_JSON)?;
    let dockerflow = Dockerflow::builder()
        .environment([
            ("DOCKERFLOW_LOG_PROBES", probes),
            ("DOCKERFLOW_VERSION_FILE", &*version.to_string_lossy()),
        ])
        .only_checks(std::iter::empty::<String>())
        .build()?;
    actix_web::rt::System::new().block_on(async move {
        macro_rules! run {
            ($app:expr) => {{
                let app = test::init_service($app).await;
                for _ in 0..count {
                    let req = test::TestRequest::get().uri(&path).to_request();
                    let res = test::call_service(&app, req).await;
                    assert!(res.status().is_success(), "{}", res.status());
                }
            }};
        }
        let summary = dockerflow.request_summary();
        match variant.as_str() {
            "handler" => run!(App::new().route(
                &path,
                actix_web::web::get().to(|| async { HttpResponse::Ok().finish() })
            )),
            "answer" => run!(App::new().route(
                &path,
                actix_web::web::get().to(|| async {
                    HttpResponse::Ok()
                        .insert_header((
                            header::CACHE_CONTROL,
                            HeaderValue::from_static("no-store"),
                        ))
                        .content_type(HeaderValue::from_static("application/json"))
                        .body(VERSION_JSON)
                })
            )),
            "bare" => run!(App::new().configure(|cfg| dockerflow.configure(cfg))),
            "quiet" | "logged" => run!(App::new()
                .configure(|cfg| dockerflow.configure(cfg))
                .wrap(summary)),
            _ => panic!("{usage}"),
        }
    });
    dockerflow::logging::flush();
    std::fs::remove_file(&version)?;
    Ok(())
}
