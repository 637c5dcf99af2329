//! numpy's `.npy`: one n-d array after a small text header.
//!
//! Reads versions 1.0, 2.0 and 3.0, either byte order, C or Fortran order; writes exactly what `numpy.save`
//! writes for a C-ordered little-endian array (version 1.0, or 2.0 when the header needs it), so an array that
//! comes from numpy, goes through trove and back out is the same file byte for byte.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde_json::{Value, json};

use crate::array::{self, ArrayInfo, ArraySource, DType, RawArray, Region, SLAB_BYTES, fmt_shape};
use crate::{ArrayFormat, Format, FormatError, PreviewOptions, Probe, Result, WriteOptions};

/// The `.npy` format.
pub struct Npy;

/// The first bytes of every `.npy` file.
pub const MAGIC: &[u8] = b"\x93NUMPY";

/// numpy aligns the start of the data to this many bytes (so the file can be memory-mapped).
const ALIGN: usize = 64;

/// Room numpy leaves in every header so the length of the growing axis can be rewritten in place.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// No real header comes near this; a larger length means a broken file, not an allocation to attempt.
const MAX_HEADER: u64 = 1 << 24;

/// Reads spanning gaps of at most this many bytes are merged into one, so a strided region (a column of a
/// matrix) costs few system calls without reading much it does not need.
const MERGE_GAP: u64 = 64 << 10;

/// What an `.npy` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    dtype: DType,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<u64>,
    /// Where the data starts.
    data_offset: u64,
}

impl Format for Npy {
    fn name(&self) -> &'static str {
        "npy"
    }
    fn extension(&self) -> &'static str {
        "npy"
    }
    fn media_type(&self) -> &'static str {
        "application/x-npy"
    }
    fn detect(&self, probe: &Probe<'_>) -> bool {
        !probe.is_dir && probe.head.starts_with(MAGIC)
    }
    fn summarise(&self, stored: &Path) -> Result<Value> {
        let (_, header) = open(stored)?;
        Ok(json!({
            "dtype": header.dtype.name(),
            "shape": header.shape,
            "order": if header.fortran_order { "F" } else { "C" },
        }))
    }
    fn preview(&self, stored: &Path, options: &PreviewOptions, out: &mut dyn Write) -> Result<()> {
        array::write_preview(self, stored, options, out)
    }
    fn as_array(&self) -> Option<&dyn ArrayFormat> {
        Some(self)
    }
}

impl ArrayFormat for Npy {
    fn info(&self, path: &Path) -> Result<ArrayInfo> {
        let (_, header) = open(path)?;
        Ok(ArrayInfo::new(header.dtype, header.shape))
    }

    fn read(&self, path: &Path, region: &Region) -> Result<RawArray> {
        let (mut file, header) = open(path)?;
        region.check_within(&header.shape)?;
        let dtype = header.dtype;
        let mut bytes = if header.fortran_order {
            // A Fortran-ordered array is the C-ordered array of the reversed shape: read the reversed region,
            // then reverse its axes back.
            let shape: Vec<u64> = header.shape.iter().rev().copied().collect();
            let reversed = Region(region.0.iter().rev().cloned().collect());
            let bytes = read_c_region(&mut file, path, header.data_offset, &shape, dtype.size(), &reversed)?;
            reverse_axes(bytes, &reversed.shape(), dtype.size())?
        } else {
            read_c_region(&mut file, path, header.data_offset, &header.shape, dtype.size(), region)?
        };
        if header.big_endian {
            array::swap_byte_order(&mut bytes, dtype);
        }
        RawArray::new(dtype, region.shape(), bytes)
    }

    fn write(&self, source: &mut dyn ArraySource, dest: &Path, _options: &WriteOptions) -> Result<()> {
        let info = source.info().clone();
        let file = File::create(dest).map_err(FormatError::io(dest))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header_bytes(info.dtype, &info.shape)?).map_err(FormatError::io(dest))?;
        let max_elements = (SLAB_BYTES / info.dtype.size() as u64).max(1);
        let block = array::contiguous_block(&info.shape, info.chunks.as_deref(), max_elements);
        // Blocks come in C order and each is a run of the array in C order, so appending them writes the file.
        for region in array::blocks(&info.shape, &block) {
            let raw = source.read(&region)?;
            if raw.dtype != info.dtype || raw.shape != region.shape() {
                return Err(FormatError::Invalid(format!(
                    "array source gave {} {} for region {region}, expected {} {}",
                    raw.dtype,
                    fmt_shape(&raw.shape),
                    info.dtype,
                    fmt_shape(&region.shape())
                )));
            }
            out.write_all(&raw.bytes).map_err(FormatError::io(dest))?;
        }
        // Durability is the caller's: it stages, hashes and commits what handlers write.
        out.flush().map_err(FormatError::io(dest))
    }
}

/// The header numpy writes for a C-ordered little-endian array of this type and shape: magic, version, length,
/// then the dict with its keys sorted, growth room, and space padding to a multiple of 64 ending in a newline.
pub fn header_bytes(dtype: DType, shape: &[u64]) -> Result<Vec<u8>> {
    let mut dict =
        format!("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", dtype.numpy_descr(), fmt_shape(shape));
    if let Some(first) = shape.first() {
        dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(first.to_string().len())));
    }
    // Version 1.0 has a 2-byte length; numpy moves to 2.0 (4 bytes) only when the header does not fit.
    for (major, length_bytes) in [(1u8, 2usize), (2, 4)] {
        let prefix = MAGIC.len() + 2 + length_bytes;
        let unpadded = dict.len() + 1;
        let padding = ALIGN - (prefix + unpadded) % ALIGN;
        let length = unpadded + padding;
        if length_bytes == 2 && length > usize::from(u16::MAX) {
            continue;
        }
        let mut bytes = Vec::with_capacity(prefix + length);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&[major, 0]);
        match length_bytes {
            2 => bytes.extend_from_slice(&(length as u16).to_le_bytes()),
            _ => {
                let length = u32::try_from(length)
                    .map_err(|_| FormatError::Invalid(format!("npy header of {length} bytes is too long")))?;
                bytes.extend_from_slice(&length.to_le_bytes());
            }
        }
        bytes.extend_from_slice(dict.as_bytes());
        bytes.extend(std::iter::repeat_n(b' ', padding));
        bytes.push(b'\n');
        return Ok(bytes);
    }
    Err(FormatError::Invalid(format!("npy header of {} bytes is too long", dict.len())))
}

/// Opens an `.npy` file and reads its header, checking that the file holds all the data it promises.
fn open(path: &Path) -> Result<(File, Header)> {
    let mut file = File::open(path).map_err(FormatError::io(path))?;
    let header = read_header(&mut file, path)?;
    let size = file.metadata().map_err(FormatError::io(path))?.len();
    let data = (header.shape.iter().fold(1u128, |n, &d| n * u128::from(d))) * header.dtype.size() as u128;
    let available = size.saturating_sub(header.data_offset);
    if u128::from(available) < data {
        return Err(FormatError::malformed(
            path,
            format!(
                "truncated npy file: the header promises {data} bytes of {} {} data, the file holds {available}",
                header.dtype,
                fmt_shape(&header.shape)
            ),
        ));
    }
    Ok((file, header))
}

fn read_header(file: &mut File, path: &Path) -> Result<Header> {
    let malformed = |message: String| FormatError::malformed(path, message);
    let mut start = [0u8; 8];
    file.read_exact(&mut start).map_err(|_| malformed("not an npy file: it is shorter than the npy magic".into()))?;
    if &start[..6] != MAGIC {
        return Err(malformed("not an npy file: it does not start with \\x93NUMPY".into()));
    }
    let (major, minor) = (start[6], start[7]);
    let length = match major {
        1 => {
            let mut b = [0u8; 2];
            file.read_exact(&mut b).map_err(|_| malformed("truncated npy header".into()))?;
            u64::from(u16::from_le_bytes(b))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            file.read_exact(&mut b).map_err(|_| malformed("truncated npy header".into()))?;
            u64::from(u32::from_le_bytes(b))
        }
        _ => return Err(malformed(format!("unsupported npy version {major}.{minor} (1.0, 2.0 and 3.0 are read)"))),
    };
    if length > MAX_HEADER {
        return Err(malformed(format!("npy header length {length} is implausibly large")));
    }
    let data_offset = if major == 1 { 10 } else { 12 } + length;
    let mut raw = Vec::new();
    Read::by_ref(file).take(length).read_to_end(&mut raw).map_err(FormatError::io(path))?;
    if raw.len() as u64 != length {
        return Err(malformed(format!("truncated npy header: expected {length} bytes, found {}", raw.len())));
    }
    // Versions 1 and 2 are latin-1, version 3 UTF-8; any dict trove can read is ASCII either way.
    let text: String = if major == 3 {
        String::from_utf8(raw).map_err(|_| malformed("npy 3.0 header is not UTF-8".into()))?
    } else {
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let dict = parse_dict(&text).map_err(|e| malformed(format!("bad npy header {:?}: {e}", text.trim_end())))?;
    let get = |key: &str| {
        dict.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| malformed(format!("npy header lacks '{key}'")))
    };
    let (dtype, big_endian) = match get("descr")? {
        Literal::Str(descr) => DType::from_numpy_descr(descr).ok_or_else(|| {
            malformed(format!(
                "unsupported npy dtype '{descr}' (trove reads bool, integers, float32, float64, complex64 and complex128)"
            ))
        })?,
        _ => return Err(malformed("structured npy dtypes are not supported".into())),
    };
    let fortran_order = match get("fortran_order")? {
        Literal::Bool(b) => *b,
        other => return Err(malformed(format!("npy 'fortran_order' is {other:?}, not True or False"))),
    };
    let shape = match get("shape")? {
        Literal::Tuple(items) => items
            .iter()
            .map(|item| match item {
                Literal::Int(n) => {
                    u64::try_from(*n).map_err(|_| malformed(format!("npy shape has a negative axis {n}")))
                }
                other => Err(malformed(format!("npy shape holds {other:?}, not an integer"))),
            })
            .collect::<Result<Vec<u64>>>()?,
        other => return Err(malformed(format!("npy 'shape' is {other:?}, not a tuple"))),
    };
    Ok(Header { dtype, big_endian, fortran_order, shape, data_offset })
}

/// The Python literals an `.npy` header dict holds.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Literal>),
    List(Vec<Literal>),
}

/// Parses the header's Python dict literal (`{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }`).
fn parse_dict(text: &str) -> std::result::Result<Vec<(String, Literal)>, String> {
    let mut p = Parser { chars: text.chars().collect(), at: 0 };
    p.expect('{')?;
    let mut entries = Vec::new();
    loop {
        p.skip_space();
        if p.eat('}') {
            break;
        }
        let Literal::Str(key) = p.literal()? else {
            return Err(format!("expected a string key at offset {}", p.at));
        };
        p.expect(':')?;
        let value = p.literal()?;
        entries.push((key, value));
        p.skip_space();
        if !p.eat(',') {
            p.expect('}')?;
            break;
        }
    }
    p.skip_space();
    if p.at < p.chars.len() {
        return Err(format!("unexpected text after the dict at offset {}", p.at));
    }
    Ok(entries)
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn skip_space(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }
    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        let found = self.chars.get(self.at) == Some(&c);
        if found {
            self.at += 1;
        }
        found
    }
    fn expect(&mut self, c: char) -> std::result::Result<(), String> {
        if self.eat(c) { Ok(()) } else { Err(format!("expected '{c}' at offset {}", self.at)) }
    }
    fn literal(&mut self) -> std::result::Result<Literal, String> {
        self.skip_space();
        let Some(&c) = self.chars.get(self.at) else {
            return Err("unexpected end".to_string());
        };
        match c {
            '\'' | '"' => {
                self.at += 1;
                let start = self.at;
                while self.chars.get(self.at).is_some_and(|&d| d != c) {
                    self.at += 1;
                }
                if self.at >= self.chars.len() {
                    return Err("unterminated string".to_string());
                }
                let s: String = self.chars[start..self.at].iter().collect();
                self.at += 1;
                Ok(Literal::Str(s))
            }
            '(' | '[' => {
                self.at += 1;
                let close = if c == '(' { ')' } else { ']' };
                let mut items = Vec::new();
                loop {
                    if self.eat(close) {
                        break;
                    }
                    items.push(self.literal()?);
                    if !self.eat(',') {
                        self.expect(close)?;
                        break;
                    }
                }
                Ok(if c == '(' { Literal::Tuple(items) } else { Literal::List(items) })
            }
            _ => {
                let start = self.at;
                while self.chars.get(self.at).is_some_and(|d| d.is_ascii_alphanumeric() || *d == '-' || *d == '+') {
                    self.at += 1;
                }
                let word: String = self.chars[start..self.at].iter().collect();
                match word.as_str() {
                    "True" => Ok(Literal::Bool(true)),
                    "False" => Ok(Literal::Bool(false)),
                    "None" => Ok(Literal::None),
                    // Python 2 wrote long integers with an `L` suffix.
                    _ => word
                        .trim_end_matches('L')
                        .parse::<i128>()
                        .map(Literal::Int)
                        .map_err(|_| format!("unexpected {word:?} at offset {start}")),
                }
            }
        }
    }
}

/// Reads a region of a C-ordered array stored at `offset` of `file`, seeking past what it does not need.
fn read_c_region(
    file: &mut File,
    path: &Path,
    offset: u64,
    shape: &[u64],
    size: usize,
    region: &Region,
) -> Result<Vec<u8>> {
    let total = array::to_usize(region.elements().saturating_mul(size as u64), "a region")?;
    let mut out = Vec::with_capacity(total);
    if total == 0 {
        return Ok(out);
    }
    let size = size as u64;
    let rank = shape.len();
    // Element strides of each axis, in C order.
    let mut strides = vec![1u64; rank];
    for axis in (0..rank.saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1] * shape[axis + 1];
    }
    // The innermost axes the region covers whole, plus the one before them, form contiguous runs.
    let mut run_axis = rank.saturating_sub(1);
    while run_axis > 0 && region.0[run_axis] == (0..shape[run_axis]) {
        run_axis -= 1;
    }
    let run = match region.0.get(run_axis) {
        Some(r) => (r.end - r.start) * strides[run_axis] * size,
        None => size,
    };
    // Walk the runs in order (an odometer over the axes before the run axis), merging close ones into spans.
    let outer: Vec<std::ops::Range<u64>> = region.0[..run_axis.min(rank)].to_vec();
    let mut index: Vec<u64> = outer.iter().map(|r| r.start).collect();
    let run_start = region.0.get(run_axis).map_or(0, |r| r.start * strides[run_axis]);
    let mut span: Option<(u64, u64, Vec<u64>)> = None; // (start, end, run starts within it)
    let mut buffer = Vec::new();
    loop {
        let element = index.iter().zip(&strides).map(|(i, s)| i * s).sum::<u64>() + run_start;
        let at = offset + element * size;
        match &mut span {
            Some((start, end, runs)) if at >= *end && at - *end <= MERGE_GAP && at + run - *start <= SLAB_BYTES => {
                runs.push(at);
                *end = at + run;
            }
            _ => {
                if let Some(done) = span.take() {
                    read_span(file, path, done, run, &mut buffer, &mut out)?;
                }
                span = Some((at, at + run, vec![at]));
            }
        }
        // Advance the odometer, last outer axis fastest.
        let mut axis = index.len();
        loop {
            if axis == 0 {
                if let Some(done) = span.take() {
                    read_span(file, path, done, run, &mut buffer, &mut out)?;
                }
                return Ok(out);
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < outer[axis].end {
                break;
            }
            index[axis] = outer[axis].start;
        }
    }
}

/// Reads one merged span and appends the runs in it.
fn read_span(
    file: &mut File,
    path: &Path,
    (start, end, runs): (u64, u64, Vec<u64>),
    run: u64,
    buffer: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<()> {
    file.seek(SeekFrom::Start(start)).map_err(FormatError::io(path))?;
    if runs.len() == 1 {
        let from = out.len();
        out.resize(from + (end - start) as usize, 0);
        return file.read_exact(&mut out[from..]).map_err(FormatError::io(path));
    }
    buffer.resize((end - start) as usize, 0);
    file.read_exact(buffer).map_err(FormatError::io(path))?;
    for at in runs {
        let from = (at - start) as usize;
        out.extend_from_slice(&buffer[from..from + run as usize]);
    }
    Ok(())
}

/// C-ordered elements of `shape` rearranged as the C-ordered elements of the array with its axes reversed.
fn reverse_axes(bytes: Vec<u8>, shape: &[u64], size: usize) -> Result<Vec<u8>> {
    if shape.len() < 2 {
        return Ok(bytes);
    }
    let mut dims = shape.iter().map(|&n| array::to_usize(n, "an axis")).collect::<Result<Vec<_>>>()?;
    dims.push(size);
    let view = ndarray::ArrayViewD::from_shape(ndarray::IxDyn(&dims), &bytes)
        .map_err(|e| FormatError::Invalid(format!("npy transpose: {e}")))?;
    // Reverse the array's axes; the last axis (the bytes of one element) stays where it is.
    let mut order: Vec<usize> = (0..shape.len()).rev().collect();
    order.push(shape.len());
    Ok(view.permuted_axes(order).iter().copied().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_header_numpy_writes() {
        // What numpy 2.x's np.save writes for np.array([1., 2., 3.]): a sorted dict, 21 - len("3") spaces of
        // growth room, then padding to 128 bytes ending in a newline.
        let mut expected = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        expected.extend_from_slice(b"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }");
        expected.resize(127, b' ');
        expected.push(b'\n');
        assert_eq!(header_bytes(DType::F64, &[3]).unwrap(), expected);
        for shape in [&[][..], &[0], &[2, 3], &[123456789, 7, 1]] {
            let h = header_bytes(DType::I16, shape).unwrap();
            assert_eq!(h.len() % 64, 0);
            assert_eq!(h.last(), Some(&b'\n'));
        }
        let h = header_bytes(DType::F64, &[]).unwrap();
        assert_eq!(h.len(), 128);
        assert!(h.starts_with(b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, 'shape': (), } "));
    }

    #[test]
    fn parses_headers() {
        let d = parse_dict("{'descr': '>i4', 'fortran_order': True, 'shape': (2, 3L), }   ").unwrap();
        assert_eq!(d[0], ("descr".to_string(), Literal::Str(">i4".into())));
        assert_eq!(d[1].1, Literal::Bool(true));
        assert_eq!(d[2].1, Literal::Tuple(vec![Literal::Int(2), Literal::Int(3)]));
        assert!(parse_dict("{'descr': [('a', '<i4')], 'shape': ()}").is_ok());
        assert!(parse_dict("{'descr': '<f8'").is_err());
        assert!(parse_dict("{'shape': (1,2}").is_err());
    }
}
