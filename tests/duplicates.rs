//! Two checks with one name stop start-up with a message naming both places.

mod first {
    #[dockerflow::check(name = "check_twice")]
    fn one() -> Result<(), String> {
        Ok(())
    }
}

mod second {
    #[dockerflow::check(name = "check_twice")]
    async fn two() -> Result<(), String> {
        Ok(())
    }
}

#[test]
fn duplicate_names_stop_start_up_naming_both_locations() {
    let err = dockerflow::Dockerflow::builder().build().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("\"check_twice\""), "{text}");
    assert!(text.contains("tests/duplicates.rs:5:"), "{text}");
    assert!(text.contains("tests/duplicates.rs:12:"), "{text}");
    assert!(matches!(
        err,
        dockerflow::StartupError::DuplicateCheck { .. }
    ));
}

/// The one annotated check of this name in the binary.
#[dockerflow::check]
fn check_registered_once() -> Result<(), String> {
    Ok(())
}

#[test]
fn a_builder_check_may_not_take_a_registered_name_either() {
    // Checks are ordered by name, so this pair is found before the `check_twice` one.
    let err = dockerflow::Dockerflow::builder()
        .check(dockerflow::Check::new("check_registered_once", |_| {
            dockerflow::Prepared::failed("x")
        }))
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("\"check_registered_once\""), "{text}");
    // Both places: the annotated function, and the line that added the builder's check.
    assert!(text.contains("tests/duplicates.rs:32:"), "{text}");
    assert!(text.contains("tests/duplicates.rs:40:"), "{text}");
}
