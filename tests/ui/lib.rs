//! Holds nothing: the cases in `pass/` and `fail/` are compiled by `ui.rs` with trybuild.
