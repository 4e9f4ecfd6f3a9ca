//! Checks that live in a crate of their own.
