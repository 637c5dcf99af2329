//! What kind of file something is: a format word and a media type, from the content first and the name second.
//!
//! Content decides where it can (a `.txt` that is really a PNG is an image); the extension decides for
//! content that says little by itself (CSV, JSON, YAML and other text).

use std::path::Path;

/// The format word and media type of a plain file, from its name and first bytes.
///
/// ```
/// use std::path::Path;
/// use trove_formats::media::sniff;
/// assert_eq!(sniff(Path::new("x.bin"), b"\x89PNG\r\n\x1a\n...."), ("image", "image/png"));
/// assert_eq!(sniff(Path::new("notes"), b"plain words\n"), ("text", "text/plain"));
/// assert_eq!(sniff(Path::new("fit.json"), b"{\"a\": 1}"), ("json", "application/json"));
/// ```
pub fn sniff(path: &Path, head: &[u8]) -> (&'static str, &'static str) {
    // netCDF-4 is HDF5 underneath: its markers near the start, or the name netCDF files have, tell it apart.
    let netcdf_name = matches!(by_extension(path).0, "netcdf");
    if crate::science::is_netcdf4(head) || (netcdf_name && head.starts_with(b"\x89HDF\r\n\x1a\n")) {
        return ("netcdf", "application/x-netcdf");
    }
    if let Some(found) = scientific_magic(head) {
        return found;
    }
    // A compressed single file (`image.fits.gz`, `run.nc.zst`) keeps the word of what it holds.
    if crate::csv::is_compressed(head)
        && let Some(inner) = crate::csv::inner_extension(path)
        && path.extension().is_some_and(|e| {
            crate::csv::COMPRESSED_SUFFIXES.contains(&e.to_string_lossy().to_ascii_lowercase().as_str())
        })
    {
        let word = by_extension(Path::new(&format!("x.{inner}"))).0;
        let media = match head[0] {
            0x1f => "application/gzip",
            0x28 => "application/zstd",
            _ => "application/x-bzip2",
        };
        if word != "file" {
            return (word, media);
        }
    }
    if let Some(kind) = infer::get(head) {
        return (word_for(kind.mime_type()), kind.mime_type());
    }
    let by_name = by_extension(path);
    if by_name.0 != "file" {
        return by_name;
    }
    if head.is_empty() {
        return by_name;
    }
    if looks_like_text(head) {
        return ("text", "text/plain");
    }
    by_name
}

/// Magic numbers of scientific formats that general-purpose sniffers do not know.
fn scientific_magic(head: &[u8]) -> Option<(&'static str, &'static str)> {
    const TABLE: &[(&[u8], &str, &str)] = &[
        (b"\x89HDF\r\n\x1a\n", "hdf5", "application/x-hdf5"),
        (b"CDF\x01", "netcdf", "application/x-netcdf"),
        (b"CDF\x02", "netcdf", "application/x-netcdf"),
        (b"CDF\x05", "netcdf", "application/x-netcdf"),
        (b"SIMPLE  =", "fits", "application/fits"),
        (b"PAR1", "parquet", "application/vnd.apache.parquet"),
        (b"ARROW1", "arrow", "application/vnd.apache.arrow.file"),
        (b"\x93NUMPY", "npy", "application/x-npy"),
    ];
    TABLE.iter().find(|(magic, _, _)| head.starts_with(magic)).map(|&(_, word, media)| (word, media))
}

/// The format word for a media type found by content.
fn word_for(media: &str) -> &'static str {
    match media {
        m if m.starts_with("image/") => "image",
        m if m.starts_with("video/") => "video",
        m if m.starts_with("audio/") => "audio",
        "application/pdf" => "pdf",
        "application/zip" => "zip",
        "application/gzip" => "gzip",
        "application/x-tar" => "tar",
        "application/x-bzip2" => "bzip2",
        "application/x-xz" => "xz",
        "application/zstd" => "zstd",
        "application/vnd.sqlite3" | "application/x-sqlite3" => "sqlite",
        _ => "file",
    }
}

/// The format word and media type a file name suggests.
///
/// ```
/// use std::path::Path;
/// assert_eq!(trove_formats::media::by_extension(Path::new("v.CSV")), ("csv", "text/csv"));
/// assert_eq!(trove_formats::media::by_extension(Path::new("notes")), ("file", "application/octet-stream"));
/// ```
pub fn by_extension(path: &Path) -> (&'static str, &'static str) {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    match ext.as_str() {
        "parquet" | "pq" => ("parquet", "application/vnd.apache.parquet"),
        "arrow" | "feather" | "ipc" => ("arrow", "application/vnd.apache.arrow.file"),
        "csv" => ("csv", "text/csv"),
        "tsv" => ("tsv", "text/tab-separated-values"),
        "npy" => ("npy", "application/x-npy"),
        "npz" => ("npz", "application/x-npz"),
        "zarr" => ("zarr", "application/x-zarr"),
        "h5" | "hdf5" | "he5" => ("hdf5", "application/x-hdf5"),
        "nc" | "nc4" | "cdf" | "netcdf" => ("netcdf", "application/x-netcdf"),
        "fits" | "fit" => ("fits", "application/fits"),
        "json" => ("json", "application/json"),
        "jsonl" | "ndjson" => ("jsonl", "application/x-ndjson"),
        "txt" | "log" | "md" | "rst" => ("text", "text/plain"),
        "yaml" | "yml" => ("yaml", "application/yaml"),
        "toml" => ("toml", "application/toml"),
        "png" => ("image", "image/png"),
        "jpg" | "jpeg" => ("image", "image/jpeg"),
        "tif" | "tiff" => ("image", "image/tiff"),
        "svg" => ("image", "image/svg+xml"),
        "pdf" => ("pdf", "application/pdf"),
        _ => ("file", "application/octet-stream"),
    }
}

/// Text is UTF-8 without NUL bytes (a multi-byte character cut at the end of the probe is allowed).
pub fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > head.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_wins_over_the_name() {
        assert_eq!(sniff(Path::new("a.txt"), b"%PDF-1.7\n"), ("pdf", "application/pdf"));
        assert_eq!(sniff(Path::new("a.dat"), b"\x89HDF\r\n\x1a\n\0\0"), ("hdf5", "application/x-hdf5"));
        assert_eq!(sniff(Path::new("a.dat"), b"SIMPLE  =                    T"), ("fits", "application/fits"));
        assert_eq!(sniff(Path::new("a"), &[0u8, 1, 2, 3, 255]), ("file", "application/octet-stream"));
    }

    #[test]
    fn names_decide_for_text() {
        assert_eq!(sniff(Path::new("a.yaml"), b"a: 1\n"), ("yaml", "application/yaml"));
        assert_eq!(sniff(Path::new("README"), "héllo".as_bytes()), ("text", "text/plain"));
        // A probe that ends inside a multi-byte character is still text.
        assert!(looks_like_text(&"aé".as_bytes()[..2]));
        assert!(!looks_like_text(b"a\0b"));
    }
}
