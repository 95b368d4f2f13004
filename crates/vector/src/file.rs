//! The index file: the keys, their f32 vectors, the partition's centroids and the list of each
//! key, then a fixed trailer.
//!
//! ```text
//! [keys: num_keys × u64 LE][vectors: num_keys × dimensions × f32 LE, in key order]
//! [centroids: num_centroids × dimensions × f32 LE][lists: num_keys × u32 LE, in key order]
//! [trailer: 48 bytes]
//! trailer = num_keys u64 | dimensions u64 | num_centroids u64 | trained_len u64
//!         | crc32 u32 | version u32 | "FLVECIDX"
//! ```
//! The CRC covers everything before the trailer, so a damaged file is an error, never a wrong
//! index. The i8 codes are not stored: quantising a million vectors on load takes well under a
//! second, a quarter of the file's size would not.
//!
//! Versions 1 and 2 (HNSW graphs) are refused as [`VectorError::Corrupt`], like any unreadable
//! file, so their owner rebuilds the index from its source. The version sits at the same
//! place in every version's trailer: 12 bytes before the end.
//!
//! Writing goes to a temporary file in the same folder, is fsynced, then renamed over the
//! target (and the folder fsynced), so a crash leaves either the old file or the new one.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::VectorError;

const MAGIC: &[u8; 8] = b"FLVECIDX";
const VERSION: u32 = 3;
const TRAILER_LEN: u64 = 48;
const CHUNK: usize = 1 << 20;

/// What a file holds (borrowed for saving).
pub(crate) struct Saved<'a> {
    pub(crate) keys: &'a [u64],
    /// The f32 vectors of `keys`, row-major in the same order.
    pub(crate) vectors: &'a [f32],
    /// The partition's centroids, row-major (none before its first training).
    pub(crate) centroids: &'a [f32],
    /// How many vectors the centroids were trained on.
    pub(crate) trained_len: usize,
    /// The list of each of `keys`.
    pub(crate) lists: &'a [u32],
}

/// What a file holds, read back and checked.
pub(crate) struct Loaded {
    pub(crate) keys: Vec<u64>,
    pub(crate) vectors: Vec<f32>,
    pub(crate) centroids: Vec<f32>,
    pub(crate) trained_len: usize,
    pub(crate) lists: Vec<u32>,
}

/// Writes `saved` to `path` atomically.
pub(crate) fn save(saved: &Saved<'_>, dimensions: usize, path: &Path) -> Result<(), VectorError> {
    debug_assert_eq!(saved.keys.len() * dimensions, saved.vectors.len());
    debug_assert_eq!(saved.keys.len(), saved.lists.len());
    let temporary = temporary_path(path);
    let result = write_temporary(saved, dimensions, &temporary).and_then(|()| {
        std::fs::rename(&temporary, path).map_err(|e| VectorError::io(path, e))?;
        sync_parent(path)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn write_temporary(
    saved: &Saved<'_>,
    dimensions: usize,
    temporary: &Path,
) -> Result<(), VectorError> {
    let io = |e| VectorError::io(temporary, e);
    let file = File::create(temporary).map_err(io)?;
    let mut writer = Writer {
        inner: BufWriter::with_capacity(CHUNK, &file),
        crc: crc32fast::Hasher::new(),
        buffer: Vec::with_capacity(CHUNK),
    };
    writer.values(saved.keys, u64::to_le_bytes).map_err(io)?;
    writer.values(saved.vectors, f32::to_le_bytes).map_err(io)?;
    writer
        .values(saved.centroids, f32::to_le_bytes)
        .map_err(io)?;
    writer.values(saved.lists, u32::to_le_bytes).map_err(io)?;
    let Writer {
        inner: mut writer,
        crc,
        ..
    } = writer;
    let num_centroids = saved.centroids.len() / dimensions.max(1);
    let mut trailer = Vec::with_capacity(TRAILER_LEN as usize);
    for value in [
        saved.keys.len(),
        dimensions,
        num_centroids,
        saved.trained_len,
    ] {
        trailer.extend_from_slice(&(value as u64).to_le_bytes());
    }
    trailer.extend_from_slice(&crc.finalize().to_le_bytes());
    trailer.extend_from_slice(&VERSION.to_le_bytes());
    trailer.extend_from_slice(MAGIC);
    writer.write_all(&trailer).map_err(io)?;
    writer.flush().map_err(io)?;
    drop(writer);
    file.sync_all().map_err(io)
}

/// Reads and checks the file at `path` (trailer, length, dimensions, CRC).
pub(crate) fn load(path: &Path, dimensions: usize) -> Result<Loaded, VectorError> {
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
    if &trailer[40..48] != MAGIC {
        return Err(VectorError::corrupt(
            path,
            "not a feedloop vector index (no trailer)",
        ));
    }
    if u32_at(36) != VERSION {
        return Err(VectorError::corrupt(
            path,
            format!("unsupported format version {}", u32_at(36)),
        ));
    }
    let (num_keys, found_dimensions, num_centroids, trained_len, stored_crc) =
        (u64_at(0), u64_at(8), u64_at(16), u64_at(24), u32_at(32));
    if found_dimensions != dimensions as u64 {
        return Err(VectorError::DimensionsMismatch {
            path: path.to_path_buf(),
            expected: dimensions,
            found: usize::try_from(found_dimensions).unwrap_or(usize::MAX),
        });
    }
    let expected_len = num_keys
        .checked_mul(8 + 4 * found_dimensions + 4)
        .and_then(|n| n.checked_add(num_centroids.checked_mul(4 * found_dimensions)?))
        .and_then(|n| n.checked_add(TRAILER_LEN));
    if expected_len != Some(file_len) {
        return Err(VectorError::corrupt(
            path,
            "file length does not match its trailer (truncated?)",
        ));
    }
    let too_big = || VectorError::corrupt(path, "too many keys");
    let num_keys = usize::try_from(num_keys).map_err(|_| too_big())?;
    let num_centroids = usize::try_from(num_centroids).map_err(|_| too_big())?;

    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut reader = Reader {
        inner: BufReader::with_capacity(CHUNK, file),
        crc: crc32fast::Hasher::new(),
        buffer: vec![0u8; CHUNK],
    };
    let keys = reader.values(num_keys, u64::from_le_bytes).map_err(io)?;
    let vectors = reader
        .values(num_keys * dimensions, f32::from_le_bytes)
        .map_err(io)?;
    let centroids = reader
        .values(num_centroids * dimensions, f32::from_le_bytes)
        .map_err(io)?;
    let lists = reader.values(num_keys, u32::from_le_bytes).map_err(io)?;
    if reader.crc.finalize() != stored_crc {
        return Err(VectorError::corrupt(path, "checksum mismatch"));
    }
    Ok(Loaded {
        keys,
        vectors,
        centroids,
        trained_len: usize::try_from(trained_len).map_err(|_| too_big())?,
        lists,
    })
}

/// Writes little-endian values, feeding every byte to the CRC.
struct Writer<'a> {
    inner: BufWriter<&'a File>,
    crc: crc32fast::Hasher,
    buffer: Vec<u8>,
}

impl Writer<'_> {
    fn values<const N: usize, T: Copy>(
        &mut self,
        values: &[T],
        to_le: fn(T) -> [u8; N],
    ) -> std::io::Result<()> {
        for chunk in values.chunks(CHUNK / N) {
            self.buffer.clear();
            self.buffer
                .extend(chunk.iter().flat_map(|value| to_le(*value)));
            self.crc.update(&self.buffer);
            self.inner.write_all(&self.buffer)?;
        }
        Ok(())
    }
}

/// Reads little-endian values, feeding every byte to the CRC.
struct Reader {
    inner: BufReader<File>,
    crc: crc32fast::Hasher,
    buffer: Vec<u8>,
}

impl Reader {
    fn values<const N: usize, T>(
        &mut self,
        count: usize,
        from_le: fn([u8; N]) -> T,
    ) -> std::io::Result<Vec<T>> {
        let mut values = Vec::with_capacity(count);
        let mut remaining = count * N;
        while remaining > 0 {
            let want = remaining.min(CHUNK / N * N);
            let bytes = &mut self.buffer[..want];
            self.inner.read_exact(bytes)?;
            self.crc.update(bytes);
            values.extend(
                bytes
                    .chunks_exact(N)
                    .map(|b| from_le(b.try_into().expect("N bytes"))),
            );
            remaining -= want;
        }
        Ok(values)
    }
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
