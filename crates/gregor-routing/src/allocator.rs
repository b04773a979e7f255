//! A global allocator for processes that decode Kafka requests.
//!
//! `kafka-protocol` 0.18 sizes a decoded array with `Vec::with_capacity`
//! of the element count read off the wire, before reading any element
//! (upstream: kafka-protocol-rs pull requests 152, 161 and 200, open when
//! this was written). A 20-byte request claiming two billion topics asks
//! for hundreds of GiB at once; the system allocator refuses, and Rust
//! aborts the whole broker. This allocator serves such huge requests
//! (≥ 1 GiB) with `mmap(MAP_NORESERVE)`: the address space is reserved,
//! no memory is committed, and the decoder fails on the missing bytes and
//! frees it. Everything smaller goes to the system allocator unchanged.
//! Remove it once the codec bounds its pre-allocation.
//!
//! Use it in a binary: `#[global_allocator] static A: HugeAllocationGuard = HugeAllocationGuard;`

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations from this size up are reserved, not committed.
const HUGE: usize = 1 << 30;
/// `mmap` returns page-aligned memory.
const PAGE: usize = 4096;

/// The system allocator, except that huge allocations only reserve address space.
pub struct HugeAllocationGuard;

fn is_huge(layout: Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

// SAFETY: every pointer handed out is either the system allocator's (and
// returned to it) or an anonymous mapping of exactly `layout.size()` bytes
// (and unmapped with that size); `is_huge` decides which, identically for
// allocation and deallocation of the same layout.
unsafe impl GlobalAlloc for HugeAllocationGuard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(layout) {
            let p = libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                std::ptr::null_mut()
            } else {
                p.cast()
            }
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(layout) {
            self.alloc(layout) // anonymous mappings are zero-filled
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(layout) {
            libc::munmap(ptr.cast(), layout.size());
        } else {
            System.dealloc(ptr, layout)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_capacity_is_reserved_not_committed() {
        let guard = HugeAllocationGuard;
        // 256 GiB: more than this machine has, which the system allocator refuses.
        let layout = Layout::from_size_align(256 << 30, 8).unwrap();
        // SAFETY: allocated and freed with the same layout; only the first byte is touched.
        unsafe {
            let p = guard.alloc(layout);
            assert!(!p.is_null());
            p.write(7);
            assert_eq!(p.read(), 7);
            guard.dealloc(p, layout);
        }
        let small = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: as above.
        unsafe {
            let p = guard.alloc_zeroed(small);
            assert_eq!(p.read(), 0);
            guard.dealloc(p, small);
        }
    }
}
