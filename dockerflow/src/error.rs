//! What stops start-up.

/// A reason `dockerflow` refuses to start. Its text names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// A setting from the environment or from code cannot be used.
    #[error("invalid setting {setting}={value:?}: expected {expected}")]
    InvalidSetting {
        /// The environment variable, or the builder method.
        setting: String,
        /// What was given (never a secret: secret settings do not fail to parse).
        value: String,
        /// The accepted values.
        expected: String,
    },
    /// Two checks have the same name.
    #[error("two checks are named {name:?}: one at {first}, one at {second}; give one of them another name with #[dockerflow::check(name = \"...\")]")]
    DuplicateCheck {
        /// The name both checks have.
        name: String,
        /// Where the first is defined.
        first: String,
        /// Where the second is defined.
        second: String,
    },
    /// `only_checks` names a check that does not exist.
    #[error(
        "only_checks names {name:?}, which is not a registered check; registered checks: {known}"
    )]
    UnknownCheck {
        /// The unknown name.
        name: String,
        /// The checks that exist.
        known: String,
    },
}
