//! The baseline of `scripts/bench-demo`: a bare actix-web server answering `200` with an empty
//! body on the three Dockerflow paths, with actix-web's default worker count (as the demo has).
//!
//! `cargo run --release -p dockerflow-bench --example bare_handler -- <port>`

use actix_web::{web, App, HttpResponse, HttpServer};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|port| port.parse().ok())
        .ok_or_else(|| std::io::Error::other("usage: bare_handler <port>"))?;
    HttpServer::new(|| {
        let mut app = App::new();
        for path in ["/__lbheartbeat__", "/__version__", "/__heartbeat__"] {
            app = app.route(
                path,
                web::get().to(|| async { HttpResponse::Ok().finish() }),
            );
        }
        app
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
