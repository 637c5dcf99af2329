//! The format word and media type of an imported file, guessed from its extension.

/// `(format, media type)` for a file name, by its extension (case-insensitive).
///
/// ```
/// assert_eq!(trove_model::format::guess("velocity.parquet"), ("parquet", "application/vnd.apache.parquet"));
/// assert_eq!(trove_model::format::guess("notes"), ("file", "application/octet-stream"));
/// ```
pub fn guess(name: &str) -> (&'static str, &'static str) {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "parquet" | "pq" => ("parquet", "application/vnd.apache.parquet"),
        "arrow" | "feather" | "ipc" => ("arrow", "application/vnd.apache.arrow.file"),
        "csv" => ("csv", "text/csv"),
        "tsv" => ("tsv", "text/tab-separated-values"),
        "npy" => ("npy", "application/x-npy"),
        "npz" => ("npz", "application/x-npz"),
        "zarr" => ("zarr", "application/x-zarr"),
        "h5" | "hdf5" | "he5" => ("hdf5", "application/x-hdf5"),
        "nc" | "netcdf" => ("netcdf", "application/x-netcdf"),
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
