//! Attribute macros of [`dockerflow`](https://docs.rs/dockerflow).
//!
//! Depend on `dockerflow` and use `#[dockerflow::check]`,
//! `#[dockerflow::on_heartbeat_passed]` and `#[dockerflow::on_heartbeat_failed]`; the docs of
//! those re-exports show what each attribute stands for. This crate only parses and expands:
//! everything the generated code calls lives in `dockerflow::__private`.

use proc_macro::TokenStream;

mod args;
mod expand;

/// Registers a health check run by `/__heartbeat__`. Documented on `dockerflow::check`.
#[proc_macro_attribute]
pub fn check(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::check(attr.into(), item.into()).into()
}

/// Registers a hook run when a heartbeat passes. Documented on `dockerflow::on_heartbeat_passed`.
#[proc_macro_attribute]
pub fn on_heartbeat_passed(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::hook(expand::Hook::Passed, attr.into(), item.into()).into()
}

/// Registers a hook run when a heartbeat fails. Documented on `dockerflow::on_heartbeat_failed`.
#[proc_macro_attribute]
pub fn on_heartbeat_failed(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::hook(expand::Hook::Failed, attr.into(), item.into()).into()
}
