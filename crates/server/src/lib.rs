//! feedloop's HTTP API.

pub mod wire;
