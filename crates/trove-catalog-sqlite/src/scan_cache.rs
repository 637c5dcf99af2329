//! The scan cache: what `trove sync --scan` last found in each data file (its size, modification time and
//! inode, and the checksum of its bytes then), so that a file whose three did not change is never hashed
//! again. Like every table of the catalog it is disposable: a rebuild empties it, and the next scan hashes
//! every file once. A row without a checksum says only where trove itself placed a file (a file just
//! written has not settled, so its checksum is not trusted to its stat): a scan uses it to recognise the
//! file after a hand `mv`, which keeps the inode, and hashes the file as usual.

use std::collections::HashMap;

use rusqlite::params;

use trove_catalog::CachedFile;

use crate::Result;
use crate::read::Queries;

impl Queries<'_> {
    /// Every cached file, by its path relative to the store root, in one query.
    pub fn scan_cache(&self) -> Result<HashMap<String, CachedFile>> {
        let mut stmt = self.conn.prepare_cached("SELECT key, size, mtime_ns, ino, checksum FROM scan_files")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                CachedFile {
                    size: r.get::<_, i64>(1)? as u64,
                    mtime_ns: r.get(2)?,
                    ino: r.get::<_, i64>(3)? as u64,
                    checksum: r.get(4)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stores what a scan hashed and forgets files it no longer found. This writes: call it on the reader of
    /// a write transaction (`WriteTx::read`, or the one `Store::transact` hands its closure), so that the rows
    /// commit or roll back with the scan's commit.
    pub(crate) fn record_scan(&self, found: &[(&str, &CachedFile)], gone: &[&str]) -> Result<()> {
        let mut upsert = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO scan_files(key, size, mtime_ns, ino, checksum) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (key, file) in found.iter().copied() {
            upsert.execute(params![key, file.size as i64, file.mtime_ns, file.ino as i64, file.checksum])?;
        }
        let mut delete = self.conn.prepare_cached("DELETE FROM scan_files WHERE key = ?1")?;
        for key in gone {
            delete.execute([key])?;
        }
        Ok(())
    }
}
