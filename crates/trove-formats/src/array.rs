//! N-d arrays: element types, shapes, regions, slices, the typed `ndarray` bridge, and the preview shared by the
//! array formats (npy, Zarr v3).
//!
//! Every array format moves data as [`RawArray`]s: elements in C order, little-endian, whatever the format keeps
//! on disk. Conversions stream through an [`ArraySource`] a block at a time, so memory stays bounded by
//! [`SLAB_BYTES`]-sized blocks rather than by the array.

use std::fmt;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ndarray::{ArrayD, Axis, IxDyn};
use num_complex::Complex;

use crate::{ArrayFormat, Format, FormatError, PreviewOptions, Result, WriteOptions};

/// Arrays whose data is larger than this are stored as Zarr rather than as the `.npy` they came in.
///
/// 256 MiB: below it a whole `.npy` reads in well under a second and keeping the user's file byte for byte is
/// worth more than chunking; above it, reading a slice without touching the rest, parallel compression and
/// chunk-sized pieces pay for themselves.
pub const ZARR_THRESHOLD_BYTES: u64 = 256 << 20;

/// The most bytes a streamed conversion or read holds in one block. Large enough that a block spans many
/// chunks (so zarrs compresses them in parallel), small enough that memory does not grow with the array.
pub const SLAB_BYTES: u64 = 64 << 20;

// ---------------------------------------------------------------------------------------------------------
// Element types
// ---------------------------------------------------------------------------------------------------------

/// Element types trove stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// IEEE half precision (numpy's `float16`).
    F16,
    F32,
    F64,
    /// Two `f32`s: real, imaginary.
    C64,
    /// Two `f64`s: real, imaginary.
    C128,
    /// numpy's `datetime64[unit]`: an `i64` count of units since 1970-01-01T00:00, `i64::MIN` is NaT.
    DateTime64(TimeUnit),
    /// numpy's `timedelta64[unit]`: an `i64` count of units, `i64::MIN` is NaT.
    TimeDelta64(TimeUnit),
    /// numpy's `<U n`: n UTF-32 code units, padded with NUL.
    Utf32(u32),
}

/// A numpy time unit with its multiple: `ns`, `10s`, or `generic` (no unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeUnit {
    /// One of numpy's unit codes ([`TimeUnit::CODES`]).
    pub code: &'static str,
    pub scale: u32,
}

impl TimeUnit {
    /// numpy's unit codes, coarsest first; `generic` is a datetime64 without a unit.
    pub const CODES: [&'static str; 14] =
        ["generic", "Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"];

    /// Parses what numpy writes after `datetime64` or `M8`: `""` (generic), `[ns]`, `[10s]`, `[μs]`.
    pub fn parse(bracketed: &str) -> Option<TimeUnit> {
        if bracketed.is_empty() {
            return Some(TimeUnit { code: "generic", scale: 1 });
        }
        let inner = bracketed.strip_prefix('[')?.strip_suffix(']')?;
        let digits = inner.chars().take_while(char::is_ascii_digit).count();
        let scale = if digits == 0 { 1 } else { inner[..digits].parse().ok().filter(|&n: &u32| n > 0)? };
        let code = match &inner[digits..] {
            "μs" => "us",
            code => *TimeUnit::CODES.iter().find(|c| **c == code)?,
        };
        Some(TimeUnit { code, scale })
    }

    /// What numpy writes after `datetime64` or `M8`: `[ns]`, `[10s]`, nothing for generic.
    pub fn bracketed(self) -> String {
        match (self.code, self.scale) {
            ("generic", _) => String::new(),
            (code, 1) => format!("[{code}]"),
            (code, scale) => format!("[{scale}{code}]"),
        }
    }
}

impl DType {
    /// Every element type, in a stable order.
    pub const ALL: [DType; 14] = [
        DType::Bool,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F16,
        DType::F32,
        DType::F64,
        DType::C64,
        DType::C128,
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 | DType::F16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 | DType::C64 | DType::DateTime64(_) | DType::TimeDelta64(_) => 8,
            DType::C128 => 16,
            DType::Utf32(n) => 4 * n as usize,
        }
    }

    /// Bytes of the scalar that byte order applies to: a complex number is two floats, each swapped alone.
    fn unit(self) -> usize {
        match self {
            DType::C64 | DType::C128 => self.size() / 2,
            DType::Utf32(_) => 4,
            _ => self.size(),
        }
    }

    /// The name used in summaries (`float64`, `int32`, `complex128`, `datetime64[ns]`, `<U5`), which is also
    /// numpy's name for the type and, for numbers, Zarr v3's.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self {
            DType::DateTime64(unit) => format!("datetime64{}", unit.bracketed()).into(),
            DType::TimeDelta64(unit) => format!("timedelta64{}", unit.bracketed()).into(),
            DType::Utf32(n) => format!("<U{n}").into(),
            numeric => numeric.numeric_name().into(),
        }
    }

    fn numeric_name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::F16 => "float16",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::C64 => "complex64",
            DType::C128 => "complex128",
            DType::DateTime64(_) | DType::TimeDelta64(_) | DType::Utf32(_) => "",
        }
    }

    /// The type with this [`name`](DType::name).
    pub fn from_name(name: &str) -> Option<DType> {
        if let Some(unit) = name.strip_prefix("datetime64") {
            return TimeUnit::parse(unit).map(DType::DateTime64);
        }
        if let Some(unit) = name.strip_prefix("timedelta64") {
            return TimeUnit::parse(unit).map(DType::TimeDelta64);
        }
        if name.starts_with("<U") {
            return DType::from_numpy_descr(name).map(|(d, _)| d);
        }
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The little-endian numpy type string written in `.npy` headers (`<f8`, `|b1`, `<M8[ns]`, `<U5`).
    pub fn numpy_descr(self) -> std::borrow::Cow<'static, str> {
        match self {
            DType::DateTime64(unit) => format!("<M8{}", unit.bracketed()).into(),
            DType::TimeDelta64(unit) => format!("<m8{}", unit.bracketed()).into(),
            DType::Utf32(n) => format!("<U{n}").into(),
            numeric => numeric.numeric_descr().into(),
        }
    }

    fn numeric_descr(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
            DType::I8 => "|i1",
            DType::I16 => "<i2",
            DType::I32 => "<i4",
            DType::I64 => "<i8",
            DType::U8 => "|u1",
            DType::U16 => "<u2",
            DType::U32 => "<u4",
            DType::U64 => "<u8",
            DType::F16 => "<f2",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
            DType::C64 => "<c8",
            DType::C128 => "<c16",
            DType::DateTime64(_) | DType::TimeDelta64(_) | DType::Utf32(_) => "",
        }
    }

    /// Parses a numpy type string (`<f8`, `>i4`, `|b1`, `=u2`): the type and whether its bytes are big-endian.
    pub fn from_numpy_descr(descr: &str) -> Option<(DType, bool)> {
        let (big_endian, code) = match descr.as_bytes().first()? {
            b'>' => (true, &descr[1..]),
            // '=' is the writer's native order; every machine trove runs on and nearly every numpy is
            // little-endian, and '|' marks one-byte types where order does not apply.
            b'<' | b'|' | b'=' => (false, &descr[1..]),
            _ => (false, descr),
        };
        let dtype = match code {
            "b1" | "?" => DType::Bool,
            "i1" => DType::I8,
            "i2" => DType::I16,
            "i4" => DType::I32,
            "i8" => DType::I64,
            "u1" => DType::U8,
            "u2" => DType::U16,
            "u4" => DType::U32,
            "u8" => DType::U64,
            "f2" => DType::F16,
            "f4" => DType::F32,
            "f8" => DType::F64,
            "c8" => DType::C64,
            "c16" => DType::C128,
            _ if code.starts_with("M8") => DType::DateTime64(TimeUnit::parse(&code[2..])?),
            _ if code.starts_with("m8") => DType::TimeDelta64(TimeUnit::parse(&code[2..])?),
            // A zero-width string type holds nothing to slice or convert; it is kept as it is.
            _ if code.starts_with('U') => DType::Utf32(code[1..].parse().ok().filter(|&n: &u32| n > 0 && n < 1 << 28)?),
            _ => return None,
        };
        Some((dtype, big_endian && dtype.unit() > 1))
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for DType {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<DType> {
        DType::from_name(s).ok_or_else(|| {
            let names: Vec<&str> = DType::ALL.iter().map(|d| d.numeric_name()).collect();
            FormatError::Invalid(format!("unknown dtype {s:?} (one of: {})", names.join(", ")))
        })
    }
}

/// Reverses the byte order of every scalar in `bytes` (each half of a complex number alone).
pub(crate) fn swap_byte_order(bytes: &mut [u8], dtype: DType) {
    let unit = dtype.unit();
    if unit > 1 {
        bytes.chunks_exact_mut(unit).for_each(<[u8]>::reverse);
    }
}

/// Turns little-endian element bytes into this machine's order (a no-op on little-endian machines), for
/// libraries such as zarrs that work in native order.
pub(crate) fn le_to_native(bytes: &mut [u8], dtype: DType) {
    if cfg!(target_endian = "big") {
        swap_byte_order(bytes, dtype);
    }
}

/// The inverse of [`le_to_native`] (the same swap).
pub(crate) fn native_to_le(bytes: &mut [u8], dtype: DType) {
    le_to_native(bytes, dtype);
}

// ---------------------------------------------------------------------------------------------------------
// Arrays, regions
// ---------------------------------------------------------------------------------------------------------

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

impl ArrayInfo {
    /// An unchunked array.
    pub fn new(dtype: DType, shape: Vec<u64>) -> ArrayInfo {
        ArrayInfo { dtype, shape, chunks: None, compression: None }
    }

    /// How many elements the array holds.
    pub fn elements(&self) -> u64 {
        elements(&self.shape)
    }

    /// How many bytes its elements take uncompressed.
    pub fn nbytes(&self) -> u64 {
        self.elements().saturating_mul(self.dtype.size() as u64)
    }
}

/// The number of elements of a shape (saturating: no real array comes near `u64::MAX`).
pub(crate) fn elements(shape: &[u64]) -> u64 {
    shape.iter().fold(1u64, |n, &d| n.saturating_mul(d))
}

/// Elements in C order, little-endian.
#[derive(Debug, Clone, PartialEq)]
pub struct RawArray {
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub bytes: Vec<u8>,
}

impl RawArray {
    /// An array from its parts, checking that `bytes` holds exactly the elements of `shape`.
    pub fn new(dtype: DType, shape: Vec<u64>, bytes: Vec<u8>) -> Result<RawArray> {
        let expected = elements(&shape).saturating_mul(dtype.size() as u64);
        if bytes.len() as u64 != expected {
            return Err(FormatError::Invalid(format!(
                "{} bytes do not make a {dtype} array of shape {}: expected {expected}",
                bytes.len(),
                fmt_shape(&shape)
            )));
        }
        Ok(RawArray { dtype, shape, bytes })
    }

    /// How many elements it holds.
    pub fn elements(&self) -> u64 {
        elements(&self.shape)
    }
}

/// A rectangular part of an array: one range per axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region(pub Vec<Range<u64>>);

impl Region {
    /// The whole of an array of this shape.
    pub fn full(shape: &[u64]) -> Region {
        Region(shape.iter().map(|&n| 0..n).collect())
    }

    /// The shape of the part.
    pub fn shape(&self) -> Vec<u64> {
        self.0.iter().map(|r| r.end.saturating_sub(r.start)).collect()
    }

    /// How many elements the part holds.
    pub fn elements(&self) -> u64 {
        elements(&self.shape())
    }

    /// An error unless the region has one well-formed range per axis of `shape`, each within it.
    pub fn check_within(&self, shape: &[u64]) -> Result<()> {
        let fits =
            self.0.len() == shape.len() && self.0.iter().zip(shape).all(|(r, &n)| r.start <= r.end && r.end <= n);
        if fits {
            Ok(())
        } else {
            Err(FormatError::Invalid(format!("region {self} is outside an array of shape {}", fmt_shape(shape))))
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|r| format!("{}:{}", r.start, r.end)).collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

/// A shape as Python writes it: `()`, `(3,)`, `(2, 3)`.
pub fn fmt_shape(shape: &[u64]) -> String {
    match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// Converts a `u64` count to `usize`, failing clearly on a machine where it does not fit.
pub(crate) fn to_usize(n: u64, what: &str) -> Result<usize> {
    usize::try_from(n).map_err(|_| FormatError::Invalid(format!("{what} of {n} is too large for this machine")))
}

// ---------------------------------------------------------------------------------------------------------
// Blocks: how streamed reads and writes cut an array
// ---------------------------------------------------------------------------------------------------------

/// The regions of a regular grid of `block`-shaped blocks over `shape`, in C order (the last block along each
/// axis clipped to the array). An array with a zero-length axis has no blocks; a 0-d array has one.
pub(crate) fn blocks(shape: &[u64], block: &[u64]) -> impl Iterator<Item = Region> + use<> {
    let shape = shape.to_vec();
    let block: Vec<u64> = block.iter().map(|&b| b.max(1)).collect();
    let mut next = (!shape.contains(&0)).then(|| vec![0u64; shape.len()]);
    std::iter::from_fn(move || {
        let index = next.take()?;
        let region =
            Region(index.iter().zip(&block).zip(&shape).map(|((&i, &b), &n)| i * b..(i * b + b).min(n)).collect());
        // Advance the odometer, last axis fastest.
        let mut following = index;
        for axis in (0..shape.len()).rev() {
            following[axis] += 1;
            if following[axis] * block[axis] < shape[axis] {
                next = Some(following);
                break;
            }
            following[axis] = 0;
        }
        Some(region)
    })
}

/// A block shape whose blocks, taken in C order, are consecutive runs of the array in C order (so a writer of
/// C-ordered files can append them) and hold at most about `max_elements`. Where the source is chunked, a
/// block spans whole chunks along its partial axis when it can, so no chunk is decoded twice.
pub(crate) fn contiguous_block(shape: &[u64], chunks: Option<&[u64]>, max_elements: u64) -> Vec<u64> {
    let mut block = shape.to_vec();
    let mut inner = 1u64;
    for axis in (0..shape.len()).rev() {
        if inner.saturating_mul(shape[axis]) <= max_elements {
            inner = inner.saturating_mul(shape[axis]);
            continue;
        }
        let mut step = (max_elements / inner.max(1)).max(1);
        if let Some(chunk) = chunks.and_then(|c| c.get(axis)).copied().filter(|&c| c >= 1 && c <= step) {
            step = step / chunk * chunk;
        }
        block[axis] = step;
        block[..axis].iter_mut().for_each(|b| *b = 1);
        break;
    }
    block
}

/// A block shape made of whole chunks (clipped to the array) that holds at most about `max_elements`: whole
/// chunk-rows along the first axis when they fit, otherwise fewer chunks along the next axes.
pub(crate) fn chunk_block(shape: &[u64], chunks: &[u64], max_elements: u64) -> Vec<u64> {
    let mut block = shape.to_vec();
    for axis in 0..shape.len() {
        if elements(&block) <= max_elements {
            break;
        }
        let chunk = chunks.get(axis).copied().unwrap_or(1).max(1);
        let one_chunk = elements(&block[..axis]).saturating_mul(chunk).saturating_mul(elements(&shape[axis + 1..]));
        let count = (max_elements / one_chunk.max(1)).max(1);
        block[axis] = count.saturating_mul(chunk).min(shape[axis]);
    }
    block
}

// ---------------------------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------------------------

/// Where an array's data comes from when it is written: writers pull it one rectangular block at a time, in the
/// order that suits them, so memory stays bounded by a block.
pub trait ArraySource {
    /// Element type and shape (and chunking, which writers use to cut blocks along chunk boundaries).
    fn info(&self) -> &ArrayInfo;
    /// The elements of one region, which lies within [`info`](ArraySource::info)'s shape.
    fn read(&mut self, region: &Region) -> Result<RawArray>;
}

/// An [`ArraySource`] over a stored array of any [`ArrayFormat`].
pub struct FormatSource<'a> {
    format: &'a dyn ArrayFormat,
    path: PathBuf,
    info: ArrayInfo,
}

impl<'a> FormatSource<'a> {
    /// Reads the array's info; its data is read only as writers ask for it.
    pub fn open(format: &'a dyn ArrayFormat, path: &Path) -> Result<FormatSource<'a>> {
        Ok(FormatSource { format, path: path.to_path_buf(), info: format.info(path)? })
    }
}

impl ArraySource for FormatSource<'_> {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }
    fn read(&mut self, region: &Region) -> Result<RawArray> {
        self.format.read(&self.path, region)
    }
}

/// An [`ArraySource`] over an in-memory `ndarray` of any memory layout.
pub struct NdArraySource<'a, T: Element> {
    array: &'a ArrayD<T>,
    info: ArrayInfo,
}

impl<'a, T: Element> NdArraySource<'a, T> {
    /// A source that reads `array`.
    pub fn new(array: &'a ArrayD<T>) -> NdArraySource<'a, T> {
        let shape = array.shape().iter().map(|&n| n as u64).collect();
        NdArraySource { array, info: ArrayInfo::new(T::DTYPE, shape) }
    }
}

impl<T: Element> ArraySource for NdArraySource<'_, T> {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }
    fn read(&mut self, region: &Region) -> Result<RawArray> {
        region.check_within(&self.info.shape)?;
        // Region bounds fit in usize: they lie within the shape of an array that is in memory.
        let part = self.array.slice_each_axis(|ax| {
            let r = &region.0[ax.axis.index()];
            ndarray::Slice::from(r.start as usize..r.end as usize)
        });
        let mut bytes = Vec::with_capacity(part.len() * T::DTYPE.size());
        // `iter` walks logical C order whatever the memory layout (transposed, sliced, Fortran).
        part.iter().for_each(|v| v.extend_le(&mut bytes));
        RawArray::new(T::DTYPE, region.shape(), bytes)
    }
}

// ---------------------------------------------------------------------------------------------------------
// The typed bridge
// ---------------------------------------------------------------------------------------------------------

mod sealed {
    pub trait Sealed {}
}

/// A Rust element type with a [`DType`]: `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `Complex<f32>`,
/// `Complex<f64>`. Sealed: these are the types trove stores.
pub trait Element: Copy + Send + Sync + fmt::Debug + 'static + sealed::Sealed {
    /// The element type this Rust type holds.
    const DTYPE: DType;
    /// Reads one element from exactly `DTYPE.size()` little-endian bytes.
    fn from_le_slice(bytes: &[u8]) -> Self;
    /// Appends the element's little-endian bytes.
    fn extend_le(self, out: &mut Vec<u8>);
}

macro_rules! element {
    ($($t:ty => $d:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            fn from_le_slice(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
            fn extend_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
element!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    f16 => F16, f32 => F32, f64 => F64);

/// numpy's `float16`, as arrays of it are read and written.
pub use half::f16;

impl sealed::Sealed for bool {}
impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn from_le_slice(bytes: &[u8]) -> Self {
        // numpy writes 0 and 1; anything else non-zero is true, as numpy reads it.
        bytes[0] != 0
    }
    fn extend_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

macro_rules! complex_element {
    ($($f:ty => $d:ident),*) => {$(
        impl sealed::Sealed for Complex<$f> {}
        impl Element for Complex<$f> {
            const DTYPE: DType = DType::$d;
            fn from_le_slice(bytes: &[u8]) -> Self {
                let half = bytes.len() / 2;
                Complex::new(<$f>::from_le_slice(&bytes[..half]), <$f>::from_le_slice(&bytes[half..]))
            }
            fn extend_le(self, out: &mut Vec<u8>) {
                self.re.extend_le(out);
                self.im.extend_le(out);
            }
        }
    )*};
}
complex_element!(f32 => C64, f64 => C128);

/// The error for reading an array as the wrong Rust type.
fn dtype_mismatch(held: DType, wanted: DType) -> FormatError {
    FormatError::Invalid(format!("the array holds {held}, not {wanted}"))
}

/// Appends the elements of little-endian `bytes` to `out`.
fn extend_typed<T: Element>(out: &mut Vec<T>, bytes: &[u8]) {
    out.extend(bytes.chunks_exact(T::DTYPE.size()).map(T::from_le_slice));
}

/// A [`RawArray`] as an `ndarray` of `T`; an error if the array holds another element type.
pub fn to_ndarray<T: Element>(raw: RawArray) -> Result<ArrayD<T>> {
    if raw.dtype != T::DTYPE {
        return Err(dtype_mismatch(raw.dtype, T::DTYPE));
    }
    let shape = raw.shape.iter().map(|&n| to_usize(n, "an axis")).collect::<Result<Vec<_>>>()?;
    let mut data = Vec::with_capacity(raw.bytes.len() / T::DTYPE.size());
    extend_typed(&mut data, &raw.bytes);
    ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| FormatError::Invalid(format!("array shape: {e}")))
}

/// An `ndarray` of any memory layout as a [`RawArray`] (C order, little-endian).
pub fn from_ndarray<T: Element>(array: &ArrayD<T>) -> RawArray {
    let mut bytes = Vec::with_capacity(array.len() * T::DTYPE.size());
    array.iter().for_each(|v| v.extend_le(&mut bytes));
    RawArray { dtype: T::DTYPE, shape: array.shape().iter().map(|&n| n as u64).collect(), bytes }
}

fn array_format(format: &dyn Format) -> Result<&dyn ArrayFormat> {
    format.as_array().ok_or_else(|| {
        FormatError::Invalid(format!("{} is not an array format (array formats: npy, zarr)", format.name()))
    })
}

/// Reads a stored array, or the part of it that `slice` selects, as an `ndarray` of `T`.
///
/// Reads in blocks of at most [`SLAB_BYTES`] (cut along chunk boundaries of a chunked array), each touching
/// only the chunks or bytes it needs, so memory is the result plus one block.
pub fn read_array<T: Element>(format: &dyn Format, path: &Path, slice: Option<&Slice>) -> Result<ArrayD<T>> {
    let format = array_format(format)?;
    let info = format.info(path)?;
    if info.dtype != T::DTYPE {
        return Err(dtype_mismatch(info.dtype, T::DTYPE));
    }
    let selection = match slice {
        Some(slice) => slice.resolve(&info.shape)?,
        None => Selection::full(&info.shape),
    };
    let shape = selection.shape().iter().map(|&n| to_usize(n, "an axis")).collect::<Result<Vec<_>>>()?;
    let mut data: Vec<T> = Vec::with_capacity(to_usize(elements(&selection.shape()), "an array")?);
    for part in selection.slabs(&info, SLAB_BYTES) {
        let raw = part.apply(format.read(path, &part.region())?)?;
        extend_typed(&mut data, &raw.bytes);
    }
    ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| FormatError::Invalid(format!("array shape: {e}")))
}

/// Writes an `ndarray` as a new stored array at `dest` in an array format (npy, zarr).
pub fn write_array<T: Element>(
    format: &dyn Format,
    array: &ArrayD<T>,
    dest: &Path,
    options: &WriteOptions,
) -> Result<()> {
    array_format(format)?.write(&mut NdArraySource::new(array), dest, options)
}

// ---------------------------------------------------------------------------------------------------------
// Slices
// ---------------------------------------------------------------------------------------------------------

/// One comma-separated part of a [`Slice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceItem {
    /// One position, which drops its axis (`3`, `-1`).
    Index(i64),
    /// `start:stop:step`, each part optional, negatives counting from the end, as in numpy.
    Range { start: Option<i64>, stop: Option<i64>, step: Option<i64> },
    /// `...`: as many whole axes as the other items leave.
    Ellipsis,
}

/// A parsed `--slice`, numpy-style: `"0:5, :, 3"`, `"-10:"`, `"::2"`, `"..., 0"`. Axes it does not name are
/// taken whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    text: String,
    items: Vec<SliceItem>,
}

impl Slice {
    /// Parses slice text; the error names the bad part and its column.
    pub fn parse(text: &str) -> Result<Slice> {
        let fail = |column: usize, message: &str| {
            FormatError::Invalid(format!("invalid slice {text:?}: {message} at column {column}"))
        };
        let chars: Vec<char> = text.chars().collect();
        let mut items = Vec::new();
        if chars.iter().all(|c| c.is_whitespace()) {
            return Ok(Slice { text: text.to_string(), items });
        }
        // Split on commas, keeping each part's 0-based char offset for error columns.
        let mut parts: Vec<(usize, &[char])> = Vec::new();
        let mut start = 0;
        for (i, &c) in chars.iter().enumerate() {
            if c == ',' {
                parts.push((start, &chars[start..i]));
                start = i + 1;
            }
        }
        parts.push((start, &chars[start..]));
        let count = parts.len();
        for (n, (offset, part)) in parts.into_iter().enumerate() {
            let (lead, body) = trim(part);
            let column = offset + lead + 1;
            if body.is_empty() {
                // A trailing comma is allowed, as in a Python tuple (`"3,"`).
                if n + 1 == count && n > 0 {
                    break;
                }
                return Err(fail(column, "expected an index, a range (start:stop:step) or ..."));
            }
            if body.iter().collect::<String>() == "..." {
                if items.contains(&SliceItem::Ellipsis) {
                    return Err(fail(column, "only one ... is allowed"));
                }
                items.push(SliceItem::Ellipsis);
                continue;
            }
            // Split the item on colons.
            let mut fields: Vec<(usize, &[char])> = Vec::new();
            let mut field_start = 0;
            for (i, &c) in body.iter().enumerate() {
                if c == ':' {
                    fields.push((field_start, &body[field_start..i]));
                    field_start = i + 1;
                }
            }
            fields.push((field_start, &body[field_start..]));
            if fields.len() > 3 {
                let third_colon = fields[3].0 - 1;
                return Err(fail(column + third_colon, "too many ':' (at most start:stop:step)"));
            }
            let mut values = Vec::with_capacity(fields.len());
            for &(at, field) in &fields {
                values.push(parse_int(field).map_err(|(bad, message)| fail(column + at + bad, message))?);
            }
            let item = match values[..] {
                [Some(index)] => SliceItem::Index(index),
                [None] => return Err(fail(column, "expected an integer")),
                [start, stop] => SliceItem::Range { start, stop, step: None },
                [start, stop, step] => {
                    if step == Some(0) {
                        let (lead, _) = trim(fields[2].1);
                        return Err(fail(column + fields[2].0 + lead, "a slice step cannot be zero"));
                    }
                    SliceItem::Range { start, stop, step }
                }
                _ => return Err(fail(column, "expected an index or a range")),
            };
            items.push(item);
        }
        Ok(Slice { text: text.to_string(), items })
    }

    /// The parsed items, in order.
    pub fn items(&self) -> &[SliceItem] {
        &self.items
    }

    /// The text it was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// What the slice selects in an array of `shape`: an error if it names more axes than the array has or an
    /// index outside an axis. Ranges are clipped to the axis, as numpy does.
    pub fn resolve(&self, shape: &[u64]) -> Result<Selection> {
        let named = self.items.iter().filter(|i| **i != SliceItem::Ellipsis).count();
        if named > shape.len() {
            return Err(FormatError::Invalid(format!(
                "slice {:?} indexes {named} axes but the array has {} (shape {})",
                self.text,
                shape.len(),
                fmt_shape(shape)
            )));
        }
        let whole = SliceItem::Range { start: None, stop: None, step: None };
        let mut expanded = Vec::with_capacity(shape.len());
        for item in &self.items {
            if *item == SliceItem::Ellipsis {
                expanded.extend(std::iter::repeat_n(whole, shape.len() - named));
            } else {
                expanded.push(*item);
            }
        }
        expanded.resize(shape.len(), whole);
        let axes = expanded
            .iter()
            .zip(shape)
            .enumerate()
            .map(|(axis, (item, &n))| resolve_axis(*item, n, axis))
            .collect::<Result<Vec<_>>>()?;
        Ok(Selection { axes })
    }
}

impl fmt::Display for Slice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Slice {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Slice> {
        Slice::parse(s)
    }
}

/// Splits leading whitespace off `chars` and trailing whitespace away: (leading count, the rest).
fn trim(chars: &[char]) -> (usize, &[char]) {
    let lead = chars.iter().take_while(|c| c.is_whitespace()).count();
    let rest = &chars[lead..];
    let tail = rest.iter().rev().take_while(|c| c.is_whitespace()).count();
    (lead, &rest[..rest.len() - tail])
}

/// Parses an optional integer field (blank means absent). On error: the 0-based offset of the bad char within
/// the field and what was expected.
fn parse_int(field: &[char]) -> std::result::Result<Option<i64>, (usize, &'static str)> {
    let (lead, body) = trim(field);
    if body.is_empty() {
        return Ok(None);
    }
    let digits_from = usize::from(matches!(body[0], '+' | '-'));
    if body.len() == digits_from {
        return Err((lead + digits_from, "expected an integer"));
    }
    if let Some(bad) = body[digits_from..].iter().position(|c| !c.is_ascii_digit()) {
        // Point at the field when it is not a number at all, at the stray char when it starts like one.
        let at = if bad == 0 { 0 } else { digits_from + bad };
        return Err((lead + at, "expected an integer"));
    }
    body.iter().collect::<String>().parse::<i64>().map(Some).map_err(|_| (lead, "integer too large"))
}

/// What a slice selects along one axis: `len` positions `start`, `start + step`, ... (`step` may be negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AxisSelection {
    start: u64,
    step: i64,
    len: u64,
    /// False for an integer index, whose axis is dropped from the result.
    keep: bool,
}

fn resolve_axis(item: SliceItem, n: u64, axis: usize) -> Result<AxisSelection> {
    let size = i128::from(n);
    match item {
        SliceItem::Index(i) => {
            let index = if i < 0 { i128::from(i) + size } else { i128::from(i) };
            if index < 0 || index >= size {
                return Err(FormatError::Invalid(format!("index {i} is out of bounds for axis {axis} with size {n}")));
            }
            Ok(AxisSelection { start: index as u64, step: 1, len: 1, keep: false })
        }
        SliceItem::Range { start, stop, step } => {
            // Python's slice.indices(), in i128 so no input overflows.
            let step = i128::from(step.unwrap_or(1));
            let (lower, upper) = if step > 0 { (0, size) } else { (-1, size - 1) };
            let clip = |v: Option<i64>, default: i128| match v {
                None => default,
                Some(v) if v < 0 => (i128::from(v) + size).max(lower),
                Some(v) => i128::from(v).min(upper),
            };
            let first = clip(start, if step > 0 { lower } else { upper });
            let stop = clip(stop, if step > 0 { upper } else { lower });
            let len = if step > 0 && stop > first {
                (stop - first + step - 1) / step
            } else if step < 0 && first > stop {
                (first - stop - step - 1) / -step
            } else {
                0
            };
            // Steps come from i64 and lengths are at most the axis size, so these fit.
            let start = if len == 0 { 0 } else { first as u64 };
            Ok(AxisSelection { start, step: step as i64, len: len as u64, keep: true })
        }
        // `resolve` expands ellipses before this is called; a stray one means the whole axis.
        SliceItem::Ellipsis => Ok(AxisSelection { start: 0, step: 1, len: n, keep: true }),
    }
}

/// A slice resolved against a shape: the region to read and what to do with it after (steps, dropped axes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    axes: Vec<AxisSelection>,
}

impl Selection {
    /// All of an array of this shape.
    pub fn full(shape: &[u64]) -> Selection {
        Selection { axes: shape.iter().map(|&n| AxisSelection { start: 0, step: 1, len: n, keep: true }).collect() }
    }

    /// The shape of the result (integer-indexed axes dropped).
    pub fn shape(&self) -> Vec<u64> {
        self.axes.iter().filter(|a| a.keep).map(|a| a.len).collect()
    }

    /// The smallest region that holds every selected element.
    pub fn region(&self) -> Region {
        if self.axes.iter().any(|a| a.len == 0) {
            return Region(self.axes.iter().map(|_| 0..0).collect());
        }
        Region(
            self.axes
                .iter()
                .map(|a| {
                    let span = (a.len - 1) * a.step.unsigned_abs();
                    if a.step > 0 { a.start..a.start + span + 1 } else { a.start - span..a.start + 1 }
                })
                .collect(),
        )
    }

    /// Picks the selected elements out of the data of [`region`](Selection::region): steps, reversal, dropped
    /// axes.
    pub fn apply(&self, raw: RawArray) -> Result<RawArray> {
        let region = self.region();
        if raw.shape != region.shape() {
            return Err(FormatError::Invalid(format!(
                "selection expected data of shape {}, got {}",
                fmt_shape(&region.shape()),
                fmt_shape(&raw.shape)
            )));
        }
        let bytes = self.pick(&raw.shape, raw.bytes, raw.dtype.size())?;
        RawArray::new(raw.dtype, self.shape(), bytes)
    }

    /// [`apply`](Selection::apply) on the bytes of elements of any fixed size (an `.npy` of records or
    /// datetimes is sliced this way, byte for byte), given the shape of the region they fill.
    pub(crate) fn pick(&self, region_shape: &[u64], bytes: Vec<u8>, size: usize) -> Result<Vec<u8>> {
        if self.axes.iter().all(|a| a.step == 1) || bytes.is_empty() {
            // Unit steps: the region is the selection; dropping length-1 axes leaves the bytes as they are.
            return Ok(bytes);
        }
        // View the bytes with one more axis for the bytes of each element, then step through it.
        let mut dims = region_shape.iter().map(|&n| to_usize(n, "an axis")).collect::<Result<Vec<_>>>()?;
        dims.push(size);
        let view = ndarray::ArrayViewD::from_shape(IxDyn(&dims), &bytes)
            .map_err(|e| FormatError::Invalid(format!("selection: {e}")))?;
        let mut view = view.slice_each_axis(|ax| match self.axes.get(ax.axis.index()) {
            // A negative step walks the region from its end, which is where the selection starts.
            Some(a) => ndarray::Slice::new(0, None, a.step as isize),
            None => ndarray::Slice::from(..),
        });
        for (axis, a) in self.axes.iter().enumerate().rev() {
            if !a.keep {
                view.index_axis_inplace(Axis(axis), 0);
            }
        }
        Ok(view.iter().copied().collect())
    }

    /// The same selection cut to at most `caps[i]` elements along result axis `i` (its first elements).
    pub fn limit(&self, caps: &[u64]) -> Selection {
        let mut caps = caps.iter();
        let axes = self
            .axes
            .iter()
            .map(|a| match (a.keep, caps.next()) {
                (true, Some(&cap)) => AxisSelection { len: a.len.min(cap), ..*a },
                _ => *a,
            })
            .collect();
        Selection { axes }
    }

    /// The part of the selection made of result rows `rows` along the first axis (unchanged if that axis is
    /// dropped or absent).
    fn rows(&self, rows: Range<u64>) -> Selection {
        let mut axes = self.axes.clone();
        if let Some(first) = axes.first_mut().filter(|a| a.keep) {
            let start = i128::from(first.start) + i128::from(rows.start) * i128::from(first.step);
            // Within the axis whenever rows lie within the selection, which is how this is called.
            first.start = start.max(0) as u64;
            first.len = rows.end.saturating_sub(rows.start);
        }
        Selection { axes }
    }

    /// The selection cut into parts along its first axis, each reading at most about `max_bytes`, whose results
    /// concatenate to the whole. With unit steps, parts start on chunk-row boundaries of a chunked array so no
    /// chunk is decoded twice.
    fn slabs(&self, info: &ArrayInfo, max_bytes: u64) -> Vec<Selection> {
        self.slabs_sized(info.dtype.size(), info.chunks.as_deref(), max_bytes)
    }

    /// [`slabs`](Selection::slabs) for elements of `size` bytes in an array chunked by `chunks`, if at all.
    pub(crate) fn slabs_sized(&self, size: usize, chunks: Option<&[u64]>, max_bytes: u64) -> Vec<Selection> {
        let Some(first) = self.axes.first().filter(|a| a.keep && a.len > 0) else {
            return vec![self.clone()];
        };
        let region = self.region();
        let row_bytes = elements(&region.shape()[1..]).saturating_mul(size as u64).max(1);
        let region_rows_per_slab = (max_bytes / row_bytes).max(1);
        let stride = first.step.unsigned_abs();
        let mut rows = (region_rows_per_slab / stride).max(1);
        let chunk = chunks.and_then(|c| c.first()).copied().filter(|&c| c > 0);
        let mut parts = Vec::new();
        let mut done = 0;
        if let (Some(chunk), 1) = (chunk, first.step) {
            rows = (rows / chunk).max(1) * chunk;
            // Cut where the original index crosses a multiple of `rows`, itself a multiple of the chunk.
            while done < first.len {
                let at = first.start + done;
                let end = ((at / rows + 1) * rows - first.start).min(first.len);
                parts.push(self.rows(done..end));
                done = end;
            }
        } else {
            while done < first.len {
                let end = (done + rows).min(first.len);
                parts.push(self.rows(done..end));
                done = end;
            }
        }
        parts
    }
}

// ---------------------------------------------------------------------------------------------------------
// Preview
// ---------------------------------------------------------------------------------------------------------

/// Print every element when the selection holds at most this many, as numpy does.
const PREVIEW_ALL: u64 = 1000;
/// Elements shown along the first axis by default.
const PREVIEW_ROWS: u64 = 10;
/// Elements shown along the last axis of a truncated preview.
const PREVIEW_COLUMNS: u64 = 8;
/// Elements shown along the middle axes of a truncated preview.
const PREVIEW_MIDDLE: u64 = 3;

/// Writes the preview every array format shares: dtype, shape (and chunks and compression), then the values,
/// nested like numpy's. `head` caps the first axis; an array of more than a thousand elements shows its
/// leading corner with `…` for the rest; `slice` picks the part to show. Reads only the part it prints.
pub fn write_preview(
    format: &dyn ArrayFormat,
    path: &Path,
    options: &PreviewOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let info = format.info(path)?;
    let mut header = format!("dtype: {}  shape: {}", info.dtype, fmt_shape(&info.shape));
    if let Some(chunks) = &info.chunks {
        header.push_str(&format!("  chunks: {}", fmt_shape(chunks)));
    }
    if let Some(compression) = &info.compression {
        header.push_str(&format!("  compression: {compression}"));
    }
    let selection = match &options.slice {
        Some(slice) => {
            let selection = slice.resolve(&info.shape)?;
            header.push_str(&format!("\nslice: {slice}  → shape: {}", fmt_shape(&selection.shape())));
            selection
        }
        None => Selection::full(&info.shape),
    };
    let full = selection.shape();
    let mut caps: Vec<u64> = full.clone();
    if let (Some(head), Some(first)) = (options.head, caps.first_mut()) {
        *first = (*first).min(head as u64);
    }
    if elements(&caps) > PREVIEW_ALL {
        let rank = caps.len();
        for (axis, cap) in caps.iter_mut().enumerate() {
            let limit = match axis {
                0 => options.head.map_or(PREVIEW_ROWS, |h| h as u64),
                _ if axis + 1 == rank => PREVIEW_COLUMNS,
                _ => PREVIEW_MIDDLE,
            };
            *cap = (*cap).min(limit);
        }
    }
    let shown = selection.limit(&caps);
    // In slabs, so a large step along the first axis reads only the rows it shows.
    let mut bytes = Vec::new();
    for part in shown.slabs(&info, SLAB_BYTES) {
        bytes.extend_from_slice(&part.apply(format.read(path, &part.region())?)?.bytes);
    }
    let raw = RawArray::new(info.dtype, shown.shape(), bytes)?;
    let text = format_values(&raw, &full);
    writeln!(out, "{header}\n{text}").map_err(FormatError::io(Path::new("<output>")))?;
    Ok(())
}

/// One element as text: `True`, `-3`, `1.5`, `nan`, `1.0+2.0j`.
fn format_element(dtype: DType, b: &[u8]) -> String {
    fn float(v: f64) -> String {
        if v.is_nan() {
            "nan".to_string()
        } else if v.is_infinite() {
            if v > 0.0 { "inf" } else { "-inf" }.to_string()
        } else {
            format!("{v:?}")
        }
    }
    fn float32(v: f32) -> String {
        if v.is_finite() { format!("{v:?}") } else { float(f64::from(v)) }
    }
    fn complex(re: String, im: String) -> String {
        match im.strip_prefix('-') {
            Some(abs) => format!("{re}-{abs}j"),
            None => format!("{re}+{im}j"),
        }
    }
    match dtype {
        DType::Bool => if b[0] != 0 { "True" } else { "False" }.to_string(),
        DType::I8 => i8::from_le_slice(b).to_string(),
        DType::I16 => i16::from_le_slice(b).to_string(),
        DType::I32 => i32::from_le_slice(b).to_string(),
        DType::I64 => i64::from_le_slice(b).to_string(),
        DType::U8 => b[0].to_string(),
        DType::U16 => u16::from_le_slice(b).to_string(),
        DType::U32 => u32::from_le_slice(b).to_string(),
        DType::U64 => u64::from_le_slice(b).to_string(),
        DType::F16 => float32(f16::from_le_slice(b).to_f32()),
        DType::F32 => float32(f32::from_le_slice(b)),
        DType::F64 => float(f64::from_le_slice(b)),
        DType::C64 => {
            let c = Complex::<f32>::from_le_slice(b);
            complex(float32(c.re), float32(c.im))
        }
        DType::C128 => {
            let c = Complex::<f64>::from_le_slice(b);
            complex(float(c.re), float(c.im))
        }
        DType::DateTime64(unit) => match i64::from_le_slice(b) {
            i64::MIN => "NaT".to_string(),
            v => format!("'{}'", format_datetime(v, unit)),
        },
        DType::TimeDelta64(unit) => match i64::from_le_slice(b) {
            i64::MIN => "NaT".to_string(),
            v if unit.code == "generic" => v.to_string(),
            v => format!("{v} {}{}", if unit.scale == 1 { String::new() } else { unit.scale.to_string() }, unit.code),
        },
        DType::Utf32(_) => {
            // numpy drops trailing NULs; a code unit that is not a character shows as U+FFFD.
            let mut units: Vec<u32> = b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            while units.last() == Some(&0) {
                units.pop();
            }
            let text: String =
                units.into_iter().map(|c| char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER)).collect();
            format!("'{}'", text.escape_debug())
        }
    }
}

/// A datetime64 value as numpy prints it: ISO 8601 to the precision of its unit (`2024-05-01`,
/// `2024-05-01T12:00:00.123456789`), proleptic Gregorian, UTC.
fn format_datetime(value: i64, unit: TimeUnit) -> String {
    let v = i128::from(value) * i128::from(unit.scale);
    // Months and years count from 1970 directly; everything else is days and a time of day.
    match unit.code {
        "Y" => return format!("{}", 1970 + v),
        "M" => return format!("{}-{:02}", 1970 + v.div_euclid(12), v.rem_euclid(12) + 1),
        _ => {}
    }
    let per_day: i128 = match unit.code {
        "D" | "generic" => 1,
        "h" => 24,
        "m" => 24 * 60,
        "s" => 86_400,
        "ms" => 86_400_000,
        "us" => 86_400_000_000,
        "ns" => 86_400_000_000_000,
        "ps" => 86_400_000_000_000_000,
        "fs" => 86_400_000_000_000_000_000,
        _ => 86_400_000_000_000_000_000_000,
    };
    let (days, within) = if unit.code == "W" { (v * 7, 0) } else { (v.div_euclid(per_day), v.rem_euclid(per_day)) };
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    let date = format!("{year:04}-{month:02}-{day:02}");
    let (digits, per_second): (usize, i128) = match unit.code {
        "W" | "D" | "generic" => return date,
        "h" => return format!("{date}T{:02}", within),
        "m" => return format!("{date}T{:02}:{:02}", within / 60, within % 60),
        "s" => (0, 1),
        "ms" => (3, 1_000),
        "us" => (6, 1_000_000),
        "ns" => (9, 1_000_000_000),
        "ps" => (12, 1_000_000_000_000),
        "fs" => (15, 1_000_000_000_000_000),
        _ => (18, 1_000_000_000_000_000_000),
    };
    let (seconds, fraction) = (within / per_second, within % per_second);
    let clock = format!("{date}T{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
    if digits == 0 { clock } else { format!("{clock}.{fraction:0digits$}") }
}

/// Nested, right-aligned text of `raw`, part of an array of shape `full`: `…` marks each axis cut short.
fn format_values(raw: &RawArray, full: &[u64]) -> String {
    let size = raw.dtype.size();
    let values: Vec<String> = raw.bytes.chunks_exact(size).map(|b| format_element(raw.dtype, b)).collect();
    let width = values.iter().map(|v| v.chars().count()).max().unwrap_or(0);
    let mut text = String::new();
    nest(&mut text, &values, &raw.shape, full, width, 0);
    text
}

fn nest(text: &mut String, values: &[String], shape: &[u64], full: &[u64], width: usize, depth: usize) {
    let Some((&n, inner)) = shape.split_first() else {
        text.push_str(values.first().map_or("", String::as_str));
        return;
    };
    let cut = full.first().is_some_and(|&f| f > n);
    let per_item = elements(inner) as usize;
    text.push('[');
    if inner.is_empty() {
        let items: Vec<String> = values.iter().map(|v| format!("{v:>width$}")).collect();
        text.push_str(&items.join(", "));
        if cut {
            text.push_str(if items.is_empty() { "…" } else { ", …" });
        }
    } else {
        // Between blocks: a newline, one blank line per axis beyond the innermost two (as numpy), and indent.
        let separator = format!(",\n{}{}", "\n".repeat(inner.len() - 1), " ".repeat(depth + 1));
        for i in 0..n as usize {
            if i > 0 {
                text.push_str(&separator);
            }
            let start = (i * per_item).min(values.len());
            let end = ((i + 1) * per_item).min(values.len());
            nest(text, &values[start..end], inner, &full[1.min(full.len())..], width, depth + 1);
        }
        if cut {
            if n > 0 {
                text.push_str(&separator);
            }
            text.push('…');
        }
    }
    text.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numpy_descrs_round_trip() {
        let ns = TimeUnit { code: "ns", scale: 1 };
        let ten_s = TimeUnit { code: "s", scale: 10 };
        let generic = TimeUnit { code: "generic", scale: 1 };
        let more = [DType::DateTime64(ns), DType::TimeDelta64(ten_s), DType::DateTime64(generic), DType::Utf32(5)];
        for d in DType::ALL.into_iter().chain(more) {
            assert_eq!(DType::from_numpy_descr(&d.numpy_descr()), Some((d, false)), "{d}");
            assert_eq!(DType::from_name(&d.name()), Some(d), "{d}");
        }
        assert_eq!(DType::from_numpy_descr(">f8"), Some((DType::F64, true)));
        assert_eq!(DType::from_numpy_descr(">i1"), Some((DType::I8, false)));
        assert_eq!(DType::from_numpy_descr("<U5"), Some((DType::Utf32(5), false)));
        assert_eq!(DType::from_numpy_descr(">U5"), Some((DType::Utf32(5), true)));
        assert_eq!(
            DType::from_numpy_descr("<M8[μs]"),
            Some((DType::DateTime64(TimeUnit { code: "us", scale: 1 }), false))
        );
        assert_eq!(DType::DateTime64(ns).name(), "datetime64[ns]");
        assert_eq!(DType::TimeDelta64(ten_s).numpy_descr(), "<m8[10s]");
        // Zero-width strings, unknown units and zero scales are not array types (kept byte for byte as others).
        for descr in ["<U0", "<M8[xs]", "<M8[0s]", "<M8[ns", "|S3", "|V8"] {
            assert_eq!(DType::from_numpy_descr(descr), None, "{descr}");
        }
    }

    #[test]
    fn datetimes_print_as_numpy_prints_them() {
        let unit = |code| TimeUnit { code, scale: 1 };
        assert_eq!(format_datetime(0, unit("D")), "1970-01-01");
        assert_eq!(format_datetime(-1, unit("D")), "1969-12-31");
        assert_eq!(format_datetime(19_723, unit("D")), "2024-01-01");
        assert_eq!(format_datetime(1_704_067_200_123_456_789, unit("ns")), "2024-01-01T00:00:00.123456789");
        assert_eq!(format_datetime(-1, unit("s")), "1969-12-31T23:59:59");
        assert_eq!(format_datetime(54 * 12 + 4, unit("M")), "2024-05");
        assert_eq!(format_datetime(54, unit("Y")), "2024");
        assert_eq!(format_datetime(1, unit("W")), "1970-01-08");
        assert_eq!(format_datetime(25, unit("h")), "1970-01-02T01");
        assert_eq!(format_datetime(3, TimeUnit { code: "m", scale: 20 }), "1970-01-01T01:00");
        assert_eq!(format_datetime(i64::MAX, unit("ns")), "2262-04-11T23:47:16.854775807");
        assert_eq!(format_datetime(i64::MIN + 1, unit("D")).len(), "-25252734927764585-06-07".len());
        assert_eq!(format_element(DType::DateTime64(unit("D")), &i64::MIN.to_le_bytes()), "NaT");
        let text: Vec<u8> = "é\0'".chars().chain(['\0']).flat_map(|c| (c as u32).to_le_bytes()).collect();
        assert_eq!(format_element(DType::Utf32(4), &text), "'é\\0\\''");
    }

    #[test]
    fn parses_slices() {
        let s = Slice::parse("0:5, :, 3").unwrap();
        assert_eq!(
            s.items(),
            &[
                SliceItem::Range { start: Some(0), stop: Some(5), step: None },
                SliceItem::Range { start: None, stop: None, step: None },
                SliceItem::Index(3)
            ]
        );
        assert_eq!(
            Slice::parse("-10:").unwrap().items(),
            &[SliceItem::Range { start: Some(-10), stop: None, step: None }]
        );
        assert_eq!(
            Slice::parse("::2").unwrap().items(),
            &[SliceItem::Range { start: None, stop: None, step: Some(2) }]
        );
        assert_eq!(Slice::parse("..., 0").unwrap().items(), &[SliceItem::Ellipsis, SliceItem::Index(0)]);
        assert_eq!(Slice::parse("3,").unwrap().items(), &[SliceItem::Index(3)]);
        assert!(Slice::parse("").unwrap().items().is_empty());
    }

    #[test]
    fn slice_errors_point_at_the_bad_part() {
        let err = |s: &str| Slice::parse(s).unwrap_err().to_string();
        assert_eq!(err("0:x"), r#"invalid slice "0:x": expected an integer at column 3"#);
        assert_eq!(err("0:5x"), r#"invalid slice "0:5x": expected an integer at column 4"#);
        assert_eq!(
            err("1, ,2"),
            r#"invalid slice "1, ,2": expected an index, a range (start:stop:step) or ... at column 4"#
        );
        assert_eq!(err("::0"), r#"invalid slice "::0": a slice step cannot be zero at column 3"#);
        assert_eq!(err("1:2:3:4"), r#"invalid slice "1:2:3:4": too many ':' (at most start:stop:step) at column 6"#);
        assert_eq!(err("..., ..."), r#"invalid slice "..., ...": only one ... is allowed at column 6"#);
        assert_eq!(err("-"), r#"invalid slice "-": expected an integer at column 2"#);
        assert!(err("99999999999999999999").contains("integer too large at column 1"));
    }

    #[test]
    fn resolves_like_numpy() {
        let sel = Slice::parse("0:5, :, 3").unwrap().resolve(&[10, 4, 6]).unwrap();
        assert_eq!(sel.shape(), vec![5, 4]);
        assert_eq!(sel.region(), Region(vec![0..5, 0..4, 3..4]));
        let sel = Slice::parse("-3:").unwrap().resolve(&[10]).unwrap();
        assert_eq!(sel.region(), Region(vec![Range { start: 7, end: 10 }]));
        let sel = Slice::parse("::-3").unwrap().resolve(&[10]).unwrap();
        assert_eq!((sel.shape(), sel.region()), (vec![4], Region::full(&[10])));
        let sel = Slice::parse("...,-1").unwrap().resolve(&[2, 3]).unwrap();
        assert_eq!((sel.shape(), sel.region()), (vec![2], Region(vec![0..2, 2..3])));
        assert_eq!(Slice::parse("5:2").unwrap().resolve(&[10]).unwrap().shape(), vec![0]);
        let err = Slice::parse("0, 9").unwrap().resolve(&[3, 4]).unwrap_err().to_string();
        assert_eq!(err, "index 9 is out of bounds for axis 1 with size 4");
        let err = Slice::parse("0,0,0").unwrap().resolve(&[3, 4]).unwrap_err().to_string();
        assert_eq!(err, r#"slice "0,0,0" indexes 3 axes but the array has 2 (shape (3, 4))"#);
    }

    #[test]
    fn applies_steps_and_drops_axes() {
        let a = ArrayD::from_shape_vec(IxDyn(&[4, 5]), (0..20i32).collect()).unwrap();
        let raw = from_ndarray(&a);
        for (text, expected) in [
            ("::2, ::-2", vec![4, 2, 0, 14, 12, 10]),
            ("-1, 1:4", vec![16, 17, 18]),
            ("1:3, -1", vec![9, 14]),
            ("::-1, 0", vec![15, 10, 5, 0]),
        ] {
            let sel = Slice::parse(text).unwrap().resolve(&[4, 5]).unwrap();
            let region = sel.region();
            let part = NdArraySource::new(&a).read(&region).unwrap();
            let got = to_ndarray::<i32>(sel.apply(part).unwrap()).unwrap();
            assert_eq!(got.iter().copied().collect::<Vec<_>>(), expected, "{text}");
        }
        assert_eq!(raw.shape, vec![4, 5]);
    }

    #[test]
    fn blocks_cover_arrays_in_c_order() {
        let regions: Vec<Region> = blocks(&[5, 3], &[2, 3]).collect();
        assert_eq!(regions, vec![Region(vec![0..2, 0..3]), Region(vec![2..4, 0..3]), Region(vec![4..5, 0..3])]);
        assert_eq!(blocks(&[], &[]).count(), 1);
        assert_eq!(blocks(&[3, 0], &[1, 1]).count(), 0);
        assert_eq!(contiguous_block(&[100, 10], None, 250), vec![25, 10]);
        assert_eq!(contiguous_block(&[100, 10], Some(&[10, 10]), 250), vec![20, 10]);
        assert_eq!(contiguous_block(&[4, 100, 10], None, 50), vec![1, 5, 10]);
        assert_eq!(contiguous_block(&[4, 10], None, 1000), vec![4, 10]);
        assert_eq!(chunk_block(&[100, 100], &[10, 10], 2500), vec![20, 100]);
        assert_eq!(chunk_block(&[100, 100], &[10, 10], 150), vec![10, 10]);
        assert_eq!(chunk_block(&[100, 100], &[10, 10], 10), vec![10, 10]);
    }

    #[test]
    fn typed_bridge_checks_dtype_and_layout() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let t = a.clone().reversed_axes();
        let raw = from_ndarray(&t);
        assert_eq!(raw.shape, vec![3, 2]);
        let back = to_ndarray::<f64>(raw.clone()).unwrap();
        assert_eq!(back, t);
        let err = to_ndarray::<i32>(raw).unwrap_err().to_string();
        assert_eq!(err, "the array holds float64, not int32");
    }

    #[test]
    fn formats_values_like_numpy() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.5f64, -2.0, f64::NAN, 10.0]).unwrap();
        assert_eq!(format_values(&from_ndarray(&a), &[2, 2]), "[[ 1.5, -2.0],\n [ nan, 10.0]]");
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1i8, 2, 3, 4]).unwrap();
        assert_eq!(format_values(&from_ndarray(&a), &[3, 5]), "[[1, 2, …],\n [3, 4, …],\n …]");
        let a = ArrayD::from_shape_vec(IxDyn(&[]), vec![Complex::new(1.0f32, -2.0)]).unwrap();
        assert_eq!(format_values(&from_ndarray(&a), &[]), "1.0-2.0j");
        let a = ArrayD::from_shape_vec(IxDyn(&[1, 2, 1]), vec![true, false]).unwrap();
        assert_eq!(format_values(&from_ndarray(&a), &[1, 2, 1]), "[[[ True],\n  [False]]]");
        let a = ArrayD::<u8>::from_shape_vec(IxDyn(&[2, 0]), vec![]).unwrap();
        assert_eq!(format_values(&from_ndarray(&a), &[2, 0]), "[[],\n []]");
    }

    /// Python's `range(*slice(start, stop, step).indices(n))`, computed the slow, obvious way.
    fn reference(n: i64, start: Option<i64>, stop: Option<i64>, step: Option<i64>) -> Vec<i64> {
        let step = step.unwrap_or(1);
        let norm = |v: i64| if v < 0 { v + n } else { v };
        let mut selected: Vec<i64> = (0..n)
            .filter(|&i| {
                let after_start = match start {
                    None => true,
                    Some(s) if step > 0 => i >= norm(s),
                    Some(s) => i <= norm(s),
                };
                let before_stop = match stop {
                    None => true,
                    Some(s) if step > 0 => i < norm(s),
                    Some(s) => i > norm(s),
                };
                let first = match (start, step > 0) {
                    (Some(s), true) => norm(s).max(0),
                    (None, true) => 0,
                    (Some(s), false) => norm(s).min(n - 1),
                    (None, false) => n - 1,
                };
                after_start && before_stop && (i - first) % step == 0
            })
            .collect();
        if step < 0 {
            selected.reverse();
        }
        selected
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,24}") {
            let _ = Slice::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_slice_like_text(text in "[-+0-9:., ]{0,24}") {
            if let Ok(slice) = Slice::parse(&text) {
                let _ = slice.resolve(&[3, 0, 7]);
            }
        }

        #[test]
        fn ranges_select_what_python_selects(
            n in 0i64..20,
            start in proptest::option::of(-25i64..25),
            stop in proptest::option::of(-25i64..25),
            step in proptest::option::of(prop_oneof![-7i64..0, 1i64..8]),
        ) {
            let text = format!(
                "{}:{}:{}",
                start.map_or(String::new(), |v| v.to_string()),
                stop.map_or(String::new(), |v| v.to_string()),
                step.map_or(String::new(), |v| v.to_string()),
            );
            let sel = Slice::parse(&text).unwrap().resolve(&[n as u64]).unwrap();
            let expected = reference(n, start, stop, step);
            prop_assert_eq!(sel.shape(), vec![expected.len() as u64]);
            let region = sel.region();
            prop_assert!(region.check_within(&[n as u64]).is_ok());
            let a = ArrayD::from_shape_vec(IxDyn(&[n as usize]), (0..n).collect()).unwrap();
            let part = NdArraySource::new(&a).read(&region).unwrap();
            let got = to_ndarray::<i64>(sel.apply(part).unwrap()).unwrap();
            prop_assert_eq!(got.iter().copied().collect::<Vec<_>>(), expected);
        }

        #[test]
        fn valid_slices_resolve_within_bounds(
            shape in proptest::collection::vec(0u64..6, 0..4),
            items in proptest::collection::vec((proptest::option::of(-8i64..8), proptest::option::of(-8i64..8),
                proptest::option::of(prop_oneof![-3i64..0, 1i64..4]), any::<bool>()), 0..4),
        ) {
            let text: Vec<String> = items.iter().map(|(a, b, c, index)| match (index, a) {
                (true, Some(i)) => i.to_string(),
                _ => format!("{}:{}:{}", a.map_or(String::new(), |v| v.to_string()),
                    b.map_or(String::new(), |v| v.to_string()), c.map_or(String::new(), |v| v.to_string())),
            }).collect();
            let slice = Slice::parse(&text.join(",")).unwrap();
            if let Ok(sel) = slice.resolve(&shape) {
                let region = sel.region();
                prop_assert!(region.check_within(&shape).is_ok());
                let a = ArrayD::from_shape_vec(
                    IxDyn(&shape.iter().map(|&n| n as usize).collect::<Vec<_>>()),
                    (0..elements(&shape) as i32).collect(),
                ).unwrap();
                let part = NdArraySource::new(&a).read(&region).unwrap();
                let got = sel.apply(part).unwrap();
                prop_assert_eq!(got.elements(), elements(&sel.shape()));
            }
        }
    }
}
