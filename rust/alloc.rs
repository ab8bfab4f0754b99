//! The extension's global allocator: the system allocator, with transparent huge pages asked
//! for on large blocks.
//!
//! The log reader builds columns of hundreds of MB (a 1 GB `negotiations.csv` holds ~1.8 M
//! offers). Fresh memory is faulted in 4 KiB at a time, and on the VMs measured here those faults
//! (not the parsing) were a third of the parse's CPU time (`docs/data.md`). Where the kernel's
//! transparent huge pages are in `madvise` mode (the common default), a block of
//! [`HUGE_PAGE_MIN`] bytes or more is marked `MADV_HUGEPAGE`, so its 2 MiB-aligned interior is
//! faulted in 2 MiB at a time. Small blocks, other systems and a refused `madvise` are the plain
//! system allocator.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks at least this large (bytes) are marked for huge pages.
pub const HUGE_PAGE_MIN: usize = 4 << 20;

/// The system allocator, marking large blocks for transparent huge pages (Linux).
pub struct HugePageAlloc;

#[cfg(target_os = "linux")]
fn advise(ptr: *mut u8, size: usize) {
    const HUGE: usize = 2 << 20;
    if ptr.is_null() || size < HUGE_PAGE_MIN {
        return;
    }
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + size) / HUGE * HUGE;
    if end > start {
        // SAFETY: the range lies inside a block this allocator just handed out; MADV_HUGEPAGE
        // only sets a flag on the mapping (it never changes the contents), and a failure is
        // harmless (the pages stay small).
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_ptr: *mut u8, _size: usize) {}

// SAFETY: every call is forwarded to `System` with the same arguments; `advise` never touches
// the memory's contents.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        advise(ptr, layout.size());
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        advise(ptr, layout.size());
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        advise(new, new_size);
        new
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn large_blocks_hold_their_contents_through_growth() {
        let mut v: Vec<u64> = (0..1000).collect();
        v.extend(1000..(3 << 20));
        assert!(v.capacity() * 8 >= super::HUGE_PAGE_MIN);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64));
        let zeros = vec![0u32; 5 << 20];
        assert!(zeros.iter().all(|&x| x == 0));
    }
}
