//! Which filesystem a store is on, and whether SQLite's locking can be trusted there.
//!
//! SQLite serialises writers with POSIX advisory locks and, in WAL mode, shared memory. Network and cluster
//! filesystems either do not implement those locks across machines or implement them unreliably, so two
//! machines writing one catalog there can corrupt it. trove asks the kernel for the filesystem's type
//! (`statfs`, `f_type`) and treats these as unsafe for the catalog:
//!
//! | filesystem | magic |
//! |---|---|
//! | NFS (v2, v3, v4) | `0x6969` |
//! | SMB / CIFS / SMB2 | `0x517B`, `0xFF534D42`, `0xFE534D42` |
//! | Lustre | `0x0BD00BD0` |
//! | IBM Spectrum Scale (GPFS) | `0x47504653` |
//! | BeeGFS | `0x19830326` |
//! | CephFS | `0x00C36400` |
//! | AFS / OpenAFS | `0x5346414F`, `0x6B414653` |
//! | OCFS2 | `0x7461636F` |
//! | GFS2 | `0x01161970` |
//! | 9p (virtual machines, WSL) | `0x01021997` |
//! | FUSE (sshfs, s3fs, gcsfuse, ...) | `0x65735546` |
//!
//! Everything else (ext2/3/4, XFS, Btrfs, ZFS, tmpfs, overlayfs, F2FS, ...) counts as local and safe. An
//! unknown type counts as safe too: it is far more often a local filesystem this table does not list than a
//! network one.

use std::path::Path;

/// A filesystem, as far as trove cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsKind {
    /// Its usual name (`ext4`, `nfs`, `lustre`, ...), or `unknown`.
    pub name: &'static str,
    /// The `f_type` magic number statfs reported.
    pub magic: u64,
    /// Whether SQLite's locking can be trusted on it.
    pub sqlite_safe: bool,
}

/// Known filesystems: magic, name, whether SQLite is safe there.
const KNOWN: &[(u64, &str, bool)] = &[
    (0x6969, "nfs", false),
    (0x517B, "smb", false),
    (0xFF53_4D42, "cifs", false),
    (0xFE53_4D42, "smb2", false),
    (0x0BD0_0BD0, "lustre", false),
    (0x4750_4653, "gpfs", false),
    (0x1983_0326, "beegfs", false),
    (0x00C3_6400, "cephfs", false),
    (0x5346_414F, "afs", false),
    (0x6B41_4653, "openafs", false),
    (0x7461_636F, "ocfs2", false),
    (0x0116_1970, "gfs2", false),
    (0x0102_1997, "9p", false),
    (0x6573_5546, "fuse", false),
    (0xEF53, "ext4", true),
    (0x5846_5342, "xfs", true),
    (0x9123_683E, "btrfs", true),
    (0x2FC1_2FC1, "zfs", true),
    (0x0102_1994, "tmpfs", true),
    (0x794C_7630, "overlayfs", true),
    (0xF2F5_2010, "f2fs", true),
    (0x4D44, "vfat", true),
    (0x2011_BAB0, "exfat", true),
];

/// The filesystem kind for a statfs magic number.
pub fn kind_of_magic(magic: u64) -> FsKind {
    match KNOWN.iter().find(|(m, _, _)| *m == magic) {
        Some((_, name, safe)) => FsKind { name, magic, sqlite_safe: *safe },
        None => FsKind { name: "unknown", magic, sqlite_safe: true },
    }
}

/// The filesystem holding `path`.
pub fn filesystem_of(path: &Path) -> std::io::Result<FsKind> {
    let stat = rustix::fs::statfs(path)?;
    // f_type is signed on some targets; the magic numbers are its bits.
    #[allow(clippy::unnecessary_cast)]
    let magic = stat.f_type as u64 & 0xFFFF_FFFF;
    Ok(kind_of_magic(magic))
}

impl std::fmt::Display for FsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.name == "unknown" {
            write!(f, "an unknown filesystem (0x{:X})", self.magic)
        } else {
            f.write_str(self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_filesystems_are_unsafe_and_local_ones_safe() {
        for magic in [0x6969, 0x0BD0_0BD0, 0x4750_4653, 0x6573_5546, 0xFF53_4D42] {
            assert!(!kind_of_magic(magic).sqlite_safe, "{:x}", magic);
        }
        for magic in [0xEF53, 0x5846_5342, 0x0102_1994, 0x794C_7630] {
            assert!(kind_of_magic(magic).sqlite_safe, "{:x}", magic);
        }
        assert_eq!(kind_of_magic(0x1234).to_string(), "an unknown filesystem (0x1234)");
        assert_eq!(kind_of_magic(0x6969).to_string(), "nfs");
    }

    #[test]
    fn the_temp_dir_is_safe() {
        let dir = tempfile::tempdir().unwrap();
        let kind = filesystem_of(dir.path()).unwrap();
        assert!(kind.sqlite_safe, "{kind}");
    }
}
