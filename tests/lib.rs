//! Helpers shared by the behaviour tests: a real HTTP server on loopback with the Dockerflow
//! endpoints mounted, and a client that returns what came back.

use actix_web::http::{Method, StatusCode};
use actix_web::{web, App};
use dockerflow::Dockerflow;

/// What a request got back.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: actix_web::http::header::HeaderMap,
    /// Response body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

/// Starts a real server on a free loopback port with `dockerflow` mounted and `data` added
/// to the app by `setup`.
pub fn serve<F>(dockerflow: Dockerflow, setup: F) -> actix_test::TestServer
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    actix_test::start(move || {
        let dockerflow = dockerflow.clone();
        let setup = setup.clone();
        App::new()
            .configure(setup)
            .configure(move |cfg| dockerflow.configure(cfg))
    })
}

/// Sends a request and reads the whole answer.
pub async fn call(
    srv: &actix_test::TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = srv.request(method, srv.url(path));
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let body = response
        .body()
        .limit(1 << 20)
        .await
        .unwrap_or_default()
        .to_vec();
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body,
    }
}

/// `GET path`.
pub async fn get(srv: &actix_test::TestServer, path: &str) -> Answer {
    call(srv, Method::GET, path, &[]).await
}

/// A builder that runs only the named checks and reuses nothing, for tests that count runs.
pub fn only(names: &[&str]) -> dockerflow::Builder {
    Dockerflow::builder()
        .environment(std::iter::empty::<(String, String)>())
        .only_checks(names.iter().copied())
}
