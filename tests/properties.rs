//! Properties that must hold for any input (issue 9): redaction never panics and never lets a
//! configured secret or a URL password through, whatever surrounds it; request ids are kept
//! exactly when they are sane and replaced by a UUID v4 otherwise; every mozlog line is one
//! whole line of valid JSON, valid against the mozlog schema, whatever the fields hold.
//!
//! They guard the fast paths of the logging code (issue 10): each was written against the
//! straightforward code first.
//!
//! This is a test binary of its own because [`dockerflow::redact::add_secret`] is process-wide:
//! the random secrets added here must not reach the other tests.

use std::io;

use actix_web::http::header::HeaderValue;
use dockerflow::logging::{MozLogLayer, RequestId, MAX_REQUEST_ID_LEN};
use dockerflow::redact::{add_secret, redact};
use dockerflow_tests::logs::{mozlog_schema, Capture};
use proptest::prelude::*;
use serde_json::Value;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        // No files of regressions next to the tests: a failure prints its minimal input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any text: ASCII-heavy, with the characters redaction and JSON care about, and any `char`.
fn text() -> impl Strategy<Value = String> {
    let interesting = prop::sample::select(vec![
        ':', '/', '@', '=', '?', '#', '&', ';', ',', '\'', '"', '\\', ' ', '\n', '\t', '\u{0}',
        '\u{7f}', '*', 'p', 'a', 's', 'w', 'o', 'r', 'd', 'é', '€', '𝄞', '\u{2028}',
    ]);
    let any_char = prop_oneof![3 => interesting, 1 => any::<char>()];
    prop_oneof![
        prop::collection::vec(any_char, 0..64).prop_map(|chars| chars.into_iter().collect()),
        // Fragments that start the patterns redaction looks for.
        prop::collection::vec(
            prop::sample::select(vec![
                "://",
                "@",
                ":",
                "password=",
                "token=",
                "PASSWORD='",
                "x",
                "/",
                " ",
                "&",
                "\"",
                "postgres://",
                "user:",
                "=",
                "?pwd=",
            ]),
            0..12
        )
        .prop_map(|parts| parts.concat()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn redaction_never_panics(input in text()) {
        let _ = redact(&input);
    }

    #[test]
    fn redaction_keeps_text_without_secrets_as_it_is(
        input in "[a-zA-Z0-9 .,!?()_-]{0,80}"
    ) {
        // No `://`, no `=`, no configured secret (they all hold `-s3`): nothing to mask.
        prop_assume!(!input.contains("-s3"));
        prop_assert_eq!(redact(&input), input);
    }

    #[test]
    fn a_configured_secret_never_gets_through(
        secret in "-s3[!-)+-~]{3,20}",
        before in text(),
        after in text(),
        times in 1..3_usize,
    ) {
        // Secrets start with `-s3` so that they cannot mask what the other properties expect;
        // `*` is left out, as the mask is made of it.
        add_secret(secret.clone());
        let input = format!("{before}{}{after}", secret.repeat(times));
        let output = redact(&input);
        prop_assert!(!output.contains(&secret), "{:?} gave {:?}", input, output);
    }

    #[test]
    fn a_url_password_never_gets_through(
        before in text(),
        scheme in "[a-z][a-z0-9+.-]{0,10}",
        user in "[a-zA-Z0-9._%-]{0,12}",
        password in "[A-Z][A-Za-z0-9._~%!$+=-]{5,24}",
        host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        after in text(),
    ) {
        let input = format!("{before}{scheme}://{user}:{password}@{host}{after}");
        prop_assume!(!format!("{before}{user}{host}{after}").contains(&password));
        let output = redact(&input);
        prop_assert!(!output.contains(&password), "{:?} gave {:?}", input, output);
    }

    #[test]
    fn a_sane_request_id_is_kept_and_any_other_value_becomes_a_uuid_v4(
        bytes in prop_oneof![
            prop::collection::vec(0x20..=0x7e_u8, 0..=MAX_REQUEST_ID_LEN + 2),
            prop::collection::vec(any::<u8>(), 0..200),
        ]
    ) {
        // Header values cannot hold CR, LF or NUL; everything else can reach the middleware.
        let Ok(value) = HeaderValue::from_bytes(&bytes) else {
            return Ok(());
        };
        let rid = RequestId::from_header(Some(&value));
        let sane = !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_LEN
            && bytes.iter().all(|b| (0x20..=0x7e).contains(b));
        if sane {
            prop_assert_eq!(rid.as_str().as_bytes(), &bytes[..]);
        } else {
            prop_assert!(is_uuid_v4(rid.as_str()), "{:?} gave {:?}", bytes, rid);
        }
        // Whatever it is, it can be sent back in a header.
        prop_assert!(HeaderValue::from_str(rid.as_str()).is_ok());
    }

    #[test]
    fn every_mozlog_line_is_one_whole_line_of_valid_mozlog(
        logger in text().prop_filter("Logger is never empty", |s| !s.is_empty()),
        hostname in text().prop_filter("Hostname is never empty", |s| !s.is_empty()),
        r#type in prop::option::of(text()),
        span_value in text(),
        message in text(),
        value in text(),
        bytes in prop::collection::vec(any::<u8>(), 0..40),
        debugged in text(),
        float in any::<f64>(),
        int in any::<i64>(),
        big in any::<u128>(),
        flag in any::<bool>(),
        error in text(),
    ) {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry()
            .with(
                MozLogLayer::new(logger.clone())
                    .with_hostname(hostname.clone())
                    .with_writer(capture.clone()),
            )
            .with(LevelFilter::TRACE);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("outer", span_value = span_value.as_str());
            let _entered = span.enter();
            let error = io::Error::other(error.clone());
            // The same fields at two levels, with and without a `Type`.
            macro_rules! event {
                ($level:ident) => {
                    tracing::$level!(
                        Type = r#type.as_deref(),
                        value = value.as_str(),
                        bytes = &bytes[..],
                        debugged = ?debugged,
                        float,
                        int,
                        big,
                        flag,
                        error = &error as &dyn std::error::Error,
                        "{message}"
                    )
                };
            }
            match r#type {
                Some(_) => event!(warn),
                None => event!(info),
            }
        });
        let writes = capture.writes();
        prop_assert_eq!(writes.len(), 1, "one write per line: {:?}", writes);
        let text = std::str::from_utf8(&writes[0]).expect("UTF-8");
        prop_assert!(text.ends_with('\n') && text.matches('\n').count() == 1, "{:?}", text);
        let line: Value = serde_json::from_str(text).map_err(|e| {
            TestCaseError::fail(format!("not JSON ({e}): {text:?}"))
        })?;
        let errors: Vec<String> = mozlog_schema()
            .iter_errors(&line)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        prop_assert!(errors.is_empty(), "{}: {:?}", text, errors);
        prop_assert_eq!(&line["Logger"], &Value::from(logger.clone()));
        prop_assert_eq!(&line["Hostname"], &Value::from(hostname.clone()));
        let fields = &line["Fields"];
        prop_assert_eq!(&fields["msg"], &Value::from(redact(&message)));
        prop_assert_eq!(&fields["value"], &Value::from(redact(&value)));
        prop_assert_eq!(&fields["span_value"], &Value::from(redact(&span_value)));
        prop_assert_eq!(&fields["int"], &Value::from(int));
        prop_assert_eq!(&fields["flag"], &Value::from(flag));
        match u64::try_from(big) {
            Ok(small) => prop_assert_eq!(&fields["big"], &Value::from(small)),
            Err(_) => prop_assert_eq!(&fields["big"], &Value::from(big.to_string())),
        }
        if float.is_finite() {
            prop_assert_eq!(fields["float"].as_f64(), Some(float));
        } else {
            prop_assert_eq!(&fields["float"], &Value::from(float.to_string()));
        }
    }
}

fn is_uuid_v4(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok_and(|id| id.get_version_num() == 4)
}
