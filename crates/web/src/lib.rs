//! The browser side of feedloop, embedded at build time: the web UI (`/`), the feedback widget
//! (`/widget.js`) and the demo page (`/demo`). Every file under `assets/` is served at its path;
//! a path without an extension also finds `<path>.html`, and `/` is `index.html`.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Path under `assets/`, with `/` separators.
    pub path: &'static str,
    pub content_type: &'static str,
    /// A strong ETag (quoted), a hash of the bytes.
    pub etag: &'static str,
    pub bytes: &'static [u8],
    /// The same bytes, gzip-compressed at build time.
    pub gzip: &'static [u8],
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Every embedded file, sorted by path.
pub fn assets() -> &'static [Asset] {
    ASSETS
}

/// The file served at a URL path (`/`, `/demo`, `/widget.js`), if any.
pub fn lookup(url_path: &str) -> Option<&'static Asset> {
    let path = url_path.strip_prefix('/')?;
    if path.is_empty() {
        return find("index.html");
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return None;
    }
    find(path).or_else(|| {
        let last = path.rsplit('/').next().unwrap_or(path);
        (!last.contains('.'))
            .then(|| find(&format!("{path}.html")))
            .flatten()
    })
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS
        .binary_search_by(|asset| asset.path.cmp(path))
        .ok()
        .map(|index| &ASSETS[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_sorted_for_lookup() {
        assert!(ASSETS.windows(2).all(|pair| pair[0].path < pair[1].path));
    }

    #[test]
    fn paths_that_leave_the_tree_find_nothing() {
        for path in ["", "//", "/../Cargo.toml", "/a//b", "/./index.html"] {
            assert!(lookup(path).is_none(), "{path}");
        }
    }
}
