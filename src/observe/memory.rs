//! The process's own memory figures for `/metrics`: the allocator's bytes in use (glibc's
//! `mallinfo2`: small blocks plus mmapped ones; what the program holds, whatever the
//! allocator keeps cached or the kernel counts as resident) and the resident set size
//! (`/proc/self/statm`). The first is what tells a leak from page reuse: a daemon that
//! dashboards reconnect to all day must end the day holding what it held in the morning.

/// Bytes handed out by the allocator and not yet freed; `None` when the allocator is not
/// glibc's (musl, other systems).
pub fn heap_in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments and only reads the allocator's statistics.
        let m = unsafe { libc::mallinfo2() };
        Some((m.uordblks + m.hblkhd) as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// Resident set size in bytes (Linux); `None` elsewhere or when /proc cannot be read.
pub fn resident() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    #[cfg(unix)]
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    #[cfg(not(unix))]
    let page = 4096;
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn heap_in_use_sees_an_allocation() {
        let Some(before) = super::heap_in_use() else { return };
        let block = vec![1u8; 200_000];
        let during = super::heap_in_use().unwrap_or(0);
        assert!(during >= before + 150_000, "{before} → {during}");
        drop(block);
        assert!(super::resident().is_some_and(|r| r > 0));
    }
}
