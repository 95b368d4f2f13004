//! Replays every committed fuzz corpus input and every crash regression through the fuzz
//! targets' bodies (the same functions `cargo fuzz` runs, from `fuzz/src/lib.rs`), on the stable
//! toolchain: a decoder change that breaks on a known input fails here, without nightly.

#![allow(clippy::unwrap_used)] // test code

#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(name: &str, target: fn(&[u8]), files: &[PathBuf]) {
    for file in files {
        let data = std::fs::read(file).unwrap();
        // Named before it runs: a panic's message then follows the input that caused it.
        eprintln!("{name}: {}", file.display());
        target(&data);
    }
}

#[test]
fn every_corpus_input_passes_its_target() {
    for (name, target) in harness::TARGETS {
        let files = inputs(&fuzz_dir().join("corpus").join(name));
        assert!(!files.is_empty(), "the corpus of {name} is empty");
        replay(name, *target, &files);
    }
}

#[test]
fn every_crash_found_by_fuzzing_stays_fixed() {
    for (name, target) in harness::TARGETS {
        replay(
            name,
            *target,
            &inputs(&fuzz_dir().join("regressions").join(name)),
        );
    }
}
