//! Integration tests of the HTTP API against the real server and a real SQLite file.

#![allow(clippy::unwrap_used)] // test code

mod common;

mod api {
    mod access;
    mod analytics;
    mod bad_input;
    mod clusters;
    mod datasets;
    mod feedback;
    mod gateway;
    mod import;
    mod lessons;
    mod lists;
    mod migrate;
    mod otlp;
    mod otlp_interop;
    mod outage;
    mod privacy;
    mod replicas;
    mod review;
    mod search;
    mod security;
    mod signals;
    mod traces;
    mod web;
}
