//! Checks defined in another crate show up once that crate is linked.

use actix_web::http::StatusCode;
use actix_web::web;
use dockerflow_tests::{get, serve, with_data};
// The one line an app needs for a crate whose only job is to register checks: without a
// reference, the linker drops the crate and its checks vanish.
use linked_checks as _;

#[actix_web::test]
async fn a_check_from_a_linked_crate_runs_in_the_heartbeat() {
    let df = dockerflow::Dockerflow::builder()
        .environment([("DOCKERFLOW_SHOW_DETAILS", "true")])
        .build()
        .unwrap();
    let check = df
        .checks()
        .iter()
        .find(|c| c.name() == "check_linked_upstream")
        .expect("linked check missing");
    assert!(
        check.location().contains("linked-checks/src/lib.rs"),
        "{}",
        check.location()
    );

    let srv = serve(
        df,
        with_data(web::Data::new(linked_checks::Upstream { up: false })),
    );
    let answer = get(&srv, "/__heartbeat__").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer.json()["details"]["check_linked_upstream"]["messages"]["linked.W001"],
        "upstream is down"
    );
}
