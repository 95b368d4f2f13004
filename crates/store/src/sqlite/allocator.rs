//! SQLite's allocations through Rust's global allocator.
//!
//! By default SQLite calls libc's `malloc`. Its page caches churn: a read connection drops its
//! whole cache whenever another connection has committed, and temporary b-trees come and go with
//! queries, on whichever blocking thread ran the read. glibc's per-thread arenas kept that
//! memory: after 20 minutes of sustained ingest they held ~300 MiB from the system for ~70 MiB
//! in use (RELIABILITY.md, "Soak"). Routed here, SQLite shares the binary's allocator, which
//! returns freed pages.
//!
//! SQLite needs each block's size back (`xSize`), so every block carries it in a 16-byte header
//! (which also keeps the 8-byte alignment SQLite asks for).

use rusqlite::ffi;
use std::alloc::Layout;
use std::ffi::{c_int, c_void};

const HEADER: usize = 16;
const ALIGN: usize = 16;

/// Makes SQLite allocate through Rust's global allocator. Must run before the process opens its
/// first SQLite connection; afterwards SQLite refuses (`false` is returned, nothing changes).
pub fn use_global_allocator() -> bool {
    // SQLite copies the methods; they need not outlive the call.
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(x_malloc),
        xFree: Some(x_free),
        xRealloc: Some(x_realloc),
        xSize: Some(x_size),
        xRoundup: Some(x_roundup),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLITE_CONFIG_MALLOC takes a pointer to an sqlite3_mem_methods, which SQLite
    // copies; the functions below keep its contract (null on failure, sizes from the header).
    let code = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_MALLOC,
            &methods as *const ffi::sqlite3_mem_methods,
        )
    };
    code == ffi::SQLITE_OK
}

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, ALIGN).ok()
}

/// Stores `size` in the header at `base` and returns the block after it.
///
/// # Safety
/// `base` must point to at least `HEADER` writable bytes aligned to `ALIGN`.
unsafe fn finish(base: *mut u8, size: usize) -> *mut c_void {
    if base.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the caller gives a block of at least HEADER bytes aligned for usize.
    unsafe {
        base.cast::<usize>().write(size);
        base.add(HEADER).cast()
    }
}

/// The start of the allocation a block of `x_malloc` or `x_realloc` lies in, and its layout.
///
/// # Safety
/// `block` must come from `x_malloc` or `x_realloc` and not have been freed.
unsafe fn allocation(block: *mut c_void) -> (*mut u8, Layout) {
    // SAFETY: every block starts HEADER bytes into an allocation whose first word is the size
    // SQLite asked for, which `layout` accepted when the block was made.
    unsafe {
        let base = block.cast::<u8>().sub(HEADER);
        let size = base.cast::<usize>().read();
        (
            base,
            Layout::from_size_align_unchecked(size + HEADER, ALIGN),
        )
    }
}

unsafe extern "C" fn x_malloc(size: c_int) -> *mut c_void {
    let Some(layout) = usize::try_from(size).ok().and_then(layout) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the layout is never zero-sized (it includes the header).
    unsafe { finish(std::alloc::alloc(layout), layout.size() - HEADER) }
}

unsafe extern "C" fn x_free(block: *mut c_void) {
    if block.is_null() {
        return;
    }
    // SAFETY: SQLite frees only blocks x_malloc or x_realloc made, once.
    unsafe {
        let (base, layout) = allocation(block);
        std::alloc::dealloc(base, layout);
    }
}

unsafe extern "C" fn x_realloc(block: *mut c_void, requested: c_int) -> *mut c_void {
    if block.is_null() {
        // SAFETY: as x_malloc.
        return unsafe { x_malloc(requested) };
    }
    let Some(new) = usize::try_from(requested).ok().and_then(layout) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `block` is live and from x_malloc/x_realloc; on failure realloc leaves it
    // untouched and SQLite keeps it.
    unsafe {
        let (base, old) = allocation(block);
        finish(
            std::alloc::realloc(base, old, new.size()),
            new.size() - HEADER,
        )
    }
}

unsafe extern "C" fn x_size(block: *mut c_void) -> c_int {
    if block.is_null() {
        return 0;
    }
    // SAFETY: SQLite asks only for the size of live blocks it got from x_malloc/x_realloc,
    // whose sizes came in as a c_int.
    unsafe { (allocation(block).1.size() - HEADER) as c_int }
}

unsafe extern "C" fn x_roundup(size: c_int) -> c_int {
    size.saturating_add(7) & !7
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_their_size_contents_and_alignment_through_realloc() {
        unsafe {
            let block = x_malloc(100);
            assert!(!block.is_null());
            assert_eq!(block as usize % 8, 0);
            assert_eq!(x_size(block), 100);
            std::ptr::write_bytes(block.cast::<u8>(), 0xab, 100);
            let grown = x_realloc(block, 10_000);
            assert_eq!(x_size(grown), 10_000);
            let bytes = std::slice::from_raw_parts(grown.cast::<u8>(), 100);
            assert!(bytes.iter().all(|&b| b == 0xab));
            let shrunk = x_realloc(grown, 10);
            assert_eq!(x_size(shrunk), 10);
            x_free(shrunk);
            x_free(std::ptr::null_mut());
            assert!(x_malloc(-1).is_null());
            let fresh = x_realloc(std::ptr::null_mut(), 24);
            assert_eq!(x_size(fresh), 24);
            x_free(fresh);
            assert_eq!(x_roundup(13), 16);
        }
    }
}
