//! The paths of the Dockerflow endpoints, for code that must tell them apart from the app's
//! own routes (an auth middleware that lets the probes through, a log filter).

/// The paths of the Dockerflow endpoints (`/__error__` is mounted only when enabled). Each
/// also answers with a trailing `/`; [`is_endpoint_path`] accepts both forms.
///
/// An app's authentication middleware can let them through, so that the load balancer and
/// the monitoring reach them without credentials:
///
/// ```
/// use actix_web::dev::ServiceRequest;
///
/// fn needs_credentials(req: &ServiceRequest) -> bool {
///     !dockerflow::is_endpoint_path(req.path())
/// }
/// assert!(dockerflow::ENDPOINT_PATHS.contains(&"/__lbheartbeat__"));
/// ```
pub const ENDPOINT_PATHS: [&str; 4] = [
    "/__heartbeat__",
    "/__lbheartbeat__",
    "/__version__",
    "/__error__",
];

/// Whether `path` is one of [`ENDPOINT_PATHS`], with or without a trailing `/`.
///
/// ```
/// assert!(dockerflow::is_endpoint_path("/__heartbeat__"));
/// assert!(dockerflow::is_endpoint_path("/__version__/"));
/// assert!(!dockerflow::is_endpoint_path("/__version__/x"));
/// assert!(!dockerflow::is_endpoint_path("/orders"));
/// ```
pub fn is_endpoint_path(path: &str) -> bool {
    let path = path.strip_suffix('/').unwrap_or(path);
    // All of them start with `/__`: one comparison for most of an app's paths.
    path.starts_with("/__") && ENDPOINT_PATHS.contains(&path)
}
