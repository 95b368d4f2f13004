//! Embeds every file under `assets/` in the binary, each with a gzip variant and an ETag, so
//! the browser side needs no build step of its own and ships inside `cargo build`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let root = manifest.join("assets");
    println!("cargo:rerun-if-changed={}", root.display());

    let mut files = Vec::new();
    collect(&root, &mut files);
    // Sorted by the URL path (not the file system's order) for `lookup`'s binary search.
    let mut files: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|file| {
            let path = file
                .strip_prefix(&root)
                .expect("under assets")
                .components()
                .map(|part| part.as_os_str().to_str().expect("asset names are UTF-8"))
                .collect::<Vec<_>>()
                .join("/");
            (path, file)
        })
        .collect();
    files.sort();

    let mut table = String::from("&[\n");
    for (index, (path, file)) in files.iter().enumerate() {
        let bytes = std::fs::read(file).expect("asset is readable");
        let gzip_file = out.join(format!("asset-{index}.gz"));
        std::fs::write(&gzip_file, gzip(&bytes)).expect("OUT_DIR is writable");
        writeln!(
            table,
            "    Asset {{ path: {path:?}, content_type: {content_type:?}, etag: \"\\\"{etag:016x}\\\"\", \
             bytes: include_bytes!({source:?}), gzip: include_bytes!({gzip_file:?}) }},",
            content_type = content_type(path),
            etag = fnv1a(&bytes),
            source = file.display().to_string(),
            gzip_file = gzip_file.display().to_string(),
        )
        .expect("writing to a String cannot fail");
    }
    table.push(']');
    std::fs::write(out.join("assets.rs"), table).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("assets directory is readable").path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("ico") => "image/x-icon",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(bytes)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// FNV-1a: stable across builds and toolchains, which the ETag needs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
