//! Built-in checks, each behind the feature of the client it talks to. Add one with
//! [`Builder::check`](crate::Builder::check); it finds the pool or client in the app data.
