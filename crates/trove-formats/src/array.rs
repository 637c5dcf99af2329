//! N-d arrays: element types, shapes, regions, slices, and the typed `ndarray` bridge. (Array helper's module.)

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::{ArrayFormat, Result};

/// Element types trove stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    C64,
    C128,
}

/// What an array is, without its data.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayInfo {
    pub dtype: DType,
    pub shape: Vec<u64>,
    /// The chunk shape of a chunked array.
    pub chunks: Option<Vec<u64>>,
    /// The chunk compression of a chunked array (`zstd`, `none`).
    pub compression: Option<String>,
}

/// Elements in C order, little-endian.
#[derive(Debug, Clone, PartialEq)]
pub struct RawArray {
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub bytes: Vec<u8>,
}

/// A rectangular part of an array: one range per axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region(pub Vec<Range<u64>>);

/// A parsed `--slice` (`"0:5, :, 3"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice;

/// Where an array's data comes from when it is written: slabs of whole rows along the first axis.
pub trait ArraySource {
    fn info(&self) -> &ArrayInfo;
    fn read_rows(&mut self, rows: Range<u64>) -> Result<RawArray>;
}

/// An [`ArraySource`] over a stored array of any [`ArrayFormat`].
pub struct FormatSource<'a> {
    format: &'a dyn ArrayFormat,
    path: PathBuf,
    info: ArrayInfo,
}

impl<'a> FormatSource<'a> {
    pub fn open(format: &'a dyn ArrayFormat, path: &Path) -> Result<FormatSource<'a>> {
        Ok(FormatSource { format, path: path.to_path_buf(), info: format.info(path)? })
    }
}

impl ArraySource for FormatSource<'_> {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }
    fn read_rows(&mut self, rows: Range<u64>) -> Result<RawArray> {
        let mut region: Vec<Range<u64>> = self.info.shape.iter().map(|&n| 0..n).collect();
        if let Some(first) = region.first_mut() {
            *first = rows;
        }
        self.format.read(&self.path, &Region(region))
    }
}
