//! The embedders against real things: the real all-MiniLM-L6-v2 checked against
//! sentence-transformers' vectors, and the OpenAI-compatible client against a real HTTP server
//! on loopback.

#![allow(clippy::unwrap_used)] // test code

mod minilm;
mod openai;
