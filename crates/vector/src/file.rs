//! The index file: usearch's own serialisation (the i8 graph), then the keys and their f32
//! vectors, then a fixed trailer.
//!
//! ```text
//! [usearch index: blob_len bytes][keys: num_keys × u64 LE]
//! [vectors: num_keys × dimensions × f32 LE, in key order][trailer: 40 bytes]
//! trailer = blob_len u64 | num_keys u64 | dimensions u64 | crc32 u32 | version u32 | "FLVECIDX"
//! ```
//! The CRC covers everything before the trailer. It is checked before usearch reads the file:
//! usearch trusts its input (a flipped bit in the graph would be an out-of-bounds read later),
//! so a damaged file must be turned away here. The keys are stored because usearch has no way
//! to list them; the f32 vectors because the graph only holds i8 ones (`store.rs`).
//!
//! Version 1 (an f32 graph and no vectors) is refused as [`VectorError::Corrupt`], like any
//! unreadable file, so its owner rebuilds the index from its source.
//!
//! Writing goes to a temporary file in the same folder, is fsynced, then renamed over the
//! target (and the folder fsynced), so a crash leaves either the old file or the new one.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::VectorError;
use crate::error::engine_error;

const MAGIC: &[u8; 8] = b"FLVECIDX";
const VERSION: u32 = 2;
const TRAILER_LEN: u64 = 40;
const CHUNK: usize = 1 << 20;

/// Writes `engine`, `keys` and their `vectors` (row-major, in key order) to `path` atomically.
pub(crate) fn save(
    engine: &usearch::Index,
    keys: &[u64],
    vectors: &[f32],
    dimensions: usize,
    path: &Path,
) -> Result<(), VectorError> {
    debug_assert_eq!(keys.len() * dimensions, vectors.len());
    let temporary = temporary_path(path);
    let result = write_temporary(engine, keys, vectors, dimensions, &temporary).and_then(|()| {
        std::fs::rename(&temporary, path).map_err(|e| VectorError::io(path, e))?;
        sync_parent(path)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn write_temporary(
    engine: &usearch::Index,
    keys: &[u64],
    vectors: &[f32],
    dimensions: usize,
    temporary: &Path,
) -> Result<(), VectorError> {
    let io = |e| VectorError::io(temporary, e);
    engine.save(utf8(temporary)?).map_err(engine_error)?;
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(temporary)
        .map_err(io)?;
    let blob_len = file.metadata().map_err(io)?.len();
    let mut crc = crc32fast::Hasher::new();
    let mut reader = BufReader::with_capacity(CHUNK, &mut file);
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let read = reader.read(&mut buffer).map_err(io)?;
        if read == 0 {
            break;
        }
        crc.update(&buffer[..read]);
    }
    drop(reader);
    let mut writer = BufWriter::with_capacity(CHUNK, &mut file);
    for key in keys {
        let bytes = key.to_le_bytes();
        crc.update(&bytes);
        writer.write_all(&bytes).map_err(io)?;
    }
    let mut bytes = Vec::with_capacity(CHUNK);
    for chunk in vectors.chunks(CHUNK / 4) {
        bytes.clear();
        bytes.extend(chunk.iter().flat_map(|value| value.to_le_bytes()));
        crc.update(&bytes);
        writer.write_all(&bytes).map_err(io)?;
    }
    let mut trailer = Vec::with_capacity(TRAILER_LEN as usize);
    trailer.extend_from_slice(&blob_len.to_le_bytes());
    trailer.extend_from_slice(&(keys.len() as u64).to_le_bytes());
    trailer.extend_from_slice(&(dimensions as u64).to_le_bytes());
    trailer.extend_from_slice(&crc.finalize().to_le_bytes());
    trailer.extend_from_slice(&VERSION.to_le_bytes());
    trailer.extend_from_slice(MAGIC);
    writer.write_all(&trailer).map_err(io)?;
    writer.flush().map_err(io)?;
    drop(writer);
    file.sync_all().map_err(io)
}

/// A file whose trailer, length and CRC have been checked.
pub(crate) struct CheckedFile {
    /// The keys stored beside the index, in the order they were saved.
    pub(crate) keys: Vec<u64>,
    /// The f32 vectors of `keys`, row-major in the same order.
    pub(crate) vectors: Vec<f32>,
}

/// Checks `path` before usearch may read it, and returns the stored keys and vectors.
pub(crate) fn check(path: &Path, dimensions: usize) -> Result<CheckedFile, VectorError> {
    let io = |e| VectorError::io(path, e);
    let mut file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    if file_len < TRAILER_LEN {
        return Err(VectorError::corrupt(
            path,
            "file is too short to be an index",
        ));
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.seek(SeekFrom::Start(file_len - TRAILER_LEN))
        .map_err(io)?;
    file.read_exact(&mut trailer).map_err(io)?;
    let u64_at = |at: usize| u64::from_le_bytes(trailer[at..at + 8].try_into().expect("8 bytes"));
    let u32_at = |at: usize| u32::from_le_bytes(trailer[at..at + 4].try_into().expect("4 bytes"));
    if &trailer[32..40] != MAGIC {
        return Err(VectorError::corrupt(
            path,
            "not a feedloop vector index (no trailer)",
        ));
    }
    if u32_at(28) != VERSION {
        return Err(VectorError::corrupt(
            path,
            format!("unsupported format version {}", u32_at(28)),
        ));
    }
    let (blob_len, num_keys, found_dimensions, stored_crc) =
        (u64_at(0), u64_at(8), u64_at(16), u32_at(24));
    if found_dimensions != dimensions as u64 {
        return Err(VectorError::DimensionsMismatch {
            path: path.to_path_buf(),
            expected: dimensions,
            found: usize::try_from(found_dimensions).unwrap_or(usize::MAX),
        });
    }
    let expected_len = num_keys
        .checked_mul(8 + 4 * found_dimensions)
        .and_then(|k| k.checked_add(blob_len))
        .and_then(|n| n.checked_add(TRAILER_LEN));
    if expected_len != Some(file_len) {
        return Err(VectorError::corrupt(
            path,
            "file length does not match its trailer (truncated?)",
        ));
    }

    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut reader = BufReader::with_capacity(CHUNK, file);
    let mut crc = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut remaining = blob_len;
    while remaining > 0 {
        let want = usize::try_from(remaining.min(CHUNK as u64)).expect("at most CHUNK");
        reader.read_exact(&mut buffer[..want]).map_err(io)?;
        crc.update(&buffer[..want]);
        remaining -= want as u64;
    }
    let num_keys =
        usize::try_from(num_keys).map_err(|_| VectorError::corrupt(path, "too many keys"))?;
    let mut keys = Vec::with_capacity(num_keys);
    let mut key = [0u8; 8];
    for _ in 0..num_keys {
        reader.read_exact(&mut key).map_err(io)?;
        crc.update(&key);
        keys.push(u64::from_le_bytes(key));
    }
    let mut vectors = Vec::with_capacity(num_keys * dimensions);
    let mut remaining = num_keys * dimensions * 4;
    while remaining > 0 {
        let want = remaining.min(CHUNK);
        reader.read_exact(&mut buffer[..want]).map_err(io)?;
        crc.update(&buffer[..want]);
        vectors.extend(
            buffer[..want]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        );
        remaining -= want;
    }
    if crc.finalize() != stored_crc {
        return Err(VectorError::corrupt(path, "checksum mismatch"));
    }
    Ok(CheckedFile { keys, vectors })
}

/// usearch takes paths as UTF-8 strings.
pub(crate) fn utf8(path: &Path) -> Result<&str, VectorError> {
    path.to_str().ok_or_else(|| {
        VectorError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "path is not valid utf-8"),
        )
    })
}

/// A name beside `path` that no other save (of this process or another) is using.
fn temporary_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = NEXT.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{unique}", std::process::id()))
}

fn sync_parent(path: &Path) -> Result<(), VectorError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| VectorError::io(parent, e))
}
