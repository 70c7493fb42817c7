//! Giving the heap's free memory back to the system. glibc's allocator keeps what a thread freed
//! in that thread's arena; memory freed in the middle of an arena is never returned on its own,
//! so a server whose threads allocate and free buffers of varied sizes (HTTP bodies, media parts,
//! playlists) holds more and more free memory: in the 60-minute soak (docs/benchmarks/soak.md)
//! RSS rose 22 MB/h while the bytes in use stayed flat, and one `malloc_trim` gave 169 MB of
//! 342 MB back. [`trim`] does that; the server runs it every `server.heap_trim_interval_s`.

/// Returns the allocator's free memory to the system; whether any was returned. Does nothing
/// (false) where the allocator is not glibc's.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` has no preconditions: it takes each arena's lock itself and only
        // releases pages of free chunks (madvise), never memory in use.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// The process's resident set size in bytes, from `/proc/self/statm` (Linux; `None` elsewhere).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // The page size of every Linux target cuecast is built for.
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn freed_memory_goes_back_to_the_system() {
        // Many mid-sized blocks freed in an order that leaves holes the allocator keeps (the
        // last one stays in use, so the top of the heap cannot shrink on its own).
        let blocks: Vec<Vec<u8>> = (0..8000)
            .map(|i| vec![(i % 251) as u8; 16 * 1024])
            .collect();
        let keep = vec![1u8; 16 * 1024];
        let before = resident_bytes().expect("statm");
        drop(blocks);
        let held = resident_bytes().expect("statm");
        assert!(trim(), "nothing was returned");
        let after = resident_bytes().expect("statm");
        assert!(
            after + 64 * 1024 * 1024 < held,
            "RSS {before} → {held} after the free → {after} after trim"
        );
        assert_eq!(keep[0], 1);
    }

    #[test]
    fn resident_bytes_reads_statm() {
        let rss = resident_bytes().expect("statm");
        assert!(rss > 1024 * 1024, "{rss}");
    }
}
