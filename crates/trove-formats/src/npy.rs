//! numpy's `.npy`: one n-d array after a small text header.
//!
//! Reads versions 1.0, 2.0 and 3.0, either byte order, C or Fortran order; writes exactly what `numpy.save`
//! writes for a C-ordered little-endian array (version 1.0, or 2.0 when the header needs it), so an array that
//! comes from numpy, goes through trove and back out is the same file byte for byte.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde_json::{Value, json};

use crate::array::{self, ArrayInfo, ArraySource, DType, RawArray, Region, SLAB_BYTES, Slice, fmt_shape};
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
    elements: Elements,
    /// The header's `descr` as the Python literal it was (`'<M8[ns]'`, `[('x', '<f4')]`), to write it back.
    descr: String,
    fortran_order: bool,
    shape: Vec<u64>,
    /// Where the data starts.
    data_offset: u64,
}

/// What an `.npy` file's elements are: a type trove reads as an array, or any other numpy type, which is
/// stored byte for byte and described, but not sliced or converted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Elements {
    Array {
        dtype: DType,
        big_endian: bool,
    },
    Other {
        /// As numpy prints the dtype: `datetime64[ns]`, `<U5`, `[('x', '<f4'), ('y', '<i8')]`, `object`.
        name: String,
        /// Bytes per element; `None` for object arrays, whose data is a pickle.
        itemsize: Option<u64>,
    },
}

impl Elements {
    fn name(&self) -> String {
        match self {
            Elements::Array { dtype, big_endian: false } => dtype.name().to_string(),
            // numpy prints a big-endian type by its type string (`>f8`).
            Elements::Array { dtype, big_endian: true } => dtype.numpy_descr().replacen('<', ">", 1),
            Elements::Other { name, .. } => name.clone(),
        }
    }

    fn itemsize(&self) -> Option<u64> {
        match self {
            Elements::Array { dtype, .. } => Some(dtype.size() as u64),
            Elements::Other { itemsize, .. } => *itemsize,
        }
    }

    /// The array type, or why this file cannot be read as an array.
    fn dtype(&self, path: &Path) -> Result<(DType, bool)> {
        match self {
            Elements::Array { dtype, big_endian } => Ok((*dtype, *big_endian)),
            Elements::Other { name, itemsize: None } => Err(FormatError::malformed(
                path,
                format!(
                    "an {name} array holds pickled Python objects, which trove never unpickles: it is stored and \
                         returned as it is, but not sliced, previewed or converted"
                ),
            )),
            Elements::Other { name, .. } => Err(FormatError::malformed(
                path,
                format!(
                    "{name} elements cannot be previewed or converted (trove reads bool, integer, float16/32/64, \
                         complex, datetime64, timedelta64 and unicode arrays): the file is stored and returned byte \
                         for byte, and slices of it are cut from its bytes"
                ),
            )),
        }
    }
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
        // The whole file is checked (a truncated one is refused); the summary is its header's.
        let (mut file, _) = open(stored)?;
        file.seek(SeekFrom::Start(0)).map_err(FormatError::io(stored))?;
        header_summary(&mut file, stored)
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
        Ok(ArrayInfo::new(header.elements.dtype(path)?.0, header.shape))
    }

    fn read(&self, path: &Path, region: &Region) -> Result<RawArray> {
        let (mut file, header) = open(path)?;
        region.check_within(&header.shape)?;
        let (dtype, big_endian) = header.elements.dtype(path)?;
        let mut bytes = read_region(&mut file, path, &header, dtype.size(), region)?;
        if big_endian {
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
    header_with_descr(&format!("'{}'", dtype.numpy_descr()), shape)
}

/// [`header_bytes`] for a `descr` given as its Python literal (any numpy type, records included).
fn header_with_descr(descr: &str, shape: &[u64]) -> Result<Vec<u8>> {
    let mut dict = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {}, }}", fmt_shape(shape));
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
    // An object array's data is a pickle of no fixed size.
    let Some(itemsize) = header.elements.itemsize() else { return Ok((file, header)) };
    let data = (header.shape.iter().fold(1u128, |n, &d| n * u128::from(d))) * u128::from(itemsize);
    let available = size.saturating_sub(header.data_offset);
    if u128::from(available) < data {
        return Err(FormatError::malformed(
            path,
            format!(
                "truncated npy file: the header promises {data} bytes of {} {} data, the file holds {available}",
                header.elements.name(),
                fmt_shape(&header.shape)
            ),
        ));
    }
    Ok((file, header))
}

/// The summary of one `.npy` stream (a file, or a member of an `.npz`), from its header alone: dtype as numpy
/// prints it, shape, order, bytes per element.
pub(crate) fn header_summary(reader: &mut impl Read, path: &Path) -> Result<Value> {
    let header = read_header(reader, path)?;
    let mut summary = json!({
        "dtype": header.elements.name(),
        "shape": header.shape,
        "order": if header.fortran_order { "F" } else { "C" },
    });
    if let Some(size) = header.elements.itemsize() {
        summary["itemsize"] = json!(size);
    }
    Ok(summary)
}

fn read_header(file: &mut impl Read, path: &Path) -> Result<Header> {
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
    let descr = python_literal(get("descr")?);
    let elements = match get("descr")? {
        Literal::Str(descr) => match DType::from_numpy_descr(descr) {
            Some((dtype, big_endian)) => Elements::Array { dtype, big_endian },
            None => {
                let (name, itemsize) = describe(descr).map_err(|e| malformed(format!("npy 'descr' {descr:?}: {e}")))?;
                Elements::Other { name, itemsize }
            }
        },
        Literal::List(fields) => {
            let (name, itemsize) = describe_fields(fields, 0).map_err(|e| malformed(format!("npy 'descr': {e}")))?;
            Elements::Other { name, itemsize }
        }
        other => return Err(malformed(format!("npy 'descr' is {other:?}, not a type string or a list of fields"))),
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
    Ok(Header { elements, descr, fortran_order, shape, data_offset })
}

/// A literal as Python writes it (`'<f4'`, `('x', '<f4', (2,))`, `[...]`), for a header trove writes again.
fn python_literal(literal: &Literal) -> String {
    let join = |items: &[Literal]| items.iter().map(python_literal).collect::<Vec<_>>().join(", ");
    match literal {
        // The parser keeps a string's text as it stood between its quotes (no escapes): write it back so.
        Literal::Str(s) if s.contains('\'') => format!("\"{s}\""),
        Literal::Str(s) => format!("'{s}'"),
        Literal::Int(n) => n.to_string(),
        Literal::Bool(true) => "True".into(),
        Literal::Bool(false) => "False".into(),
        Literal::None => "None".into(),
        Literal::Tuple(items) if items.len() == 1 => format!("({},)", join(items)),
        Literal::Tuple(items) => format!("({})", join(items)),
        Literal::List(items) => format!("[{}]", join(items)),
    }
}

/// A numpy type string trove does not read as an array (`<M8[ns]`, `<U5`, `|S3`, `|V8`, `|O`, `<f16`): the
/// name numpy prints for it and its size in bytes (`None` for objects).
fn describe(descr: &str) -> std::result::Result<(String, Option<u64>), String> {
    let (order, code) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('|', descr),
    };
    let kind = code.chars().next().ok_or("an empty type string")?;
    let rest = &code[kind.len_utf8()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let unit = &rest[digits.len()..];
    let n: Option<u64> = digits.parse().ok();
    let bad = || format!("{descr:?} is not a numpy type string");
    let little = order != '>';
    match kind {
        'O' if digits.is_empty() || digits == "8" => Ok(("object".to_string(), None)),
        'M' | 'm' if n == Some(8) && (unit.is_empty() || (unit.starts_with('[') && unit.ends_with(']'))) => {
            let word = if kind == 'M' { "datetime64" } else { "timedelta64" };
            let name = if little { format!("{word}{unit}") } else { descr.to_string() };
            Ok((name, Some(8)))
        }
        'U' if unit.is_empty() => {
            Ok((format!("{}U{}", if little { '<' } else { '>' }, n.ok_or_else(bad)?), Some(4 * n.ok_or_else(bad)?)))
        }
        'S' | 'a' | 'V' if unit.is_empty() => {
            let size = n.ok_or_else(bad)?;
            Ok((format!("|{}{size}", if kind == 'V' { 'V' } else { 'S' }), Some(size)))
        }
        'f' | 'c' | 'i' | 'u' if unit.is_empty() => {
            let size = n.ok_or_else(bad)?;
            let word = match kind {
                'f' => "float",
                'c' => "complex",
                'i' => "int",
                _ => "uint",
            };
            let name = if little { format!("{word}{}", size * 8) } else { descr.to_string() };
            Ok((name, Some(size)))
        }
        _ => Err(bad()),
    }
}

/// A structured dtype's field list (`[('x', '<f4'), ('y', '<i8', (2,))]`), printed as numpy prints it, and its
/// size: the sum of its fields' (numpy writes any padding as fields of its own).
fn describe_fields(fields: &[Literal], depth: usize) -> std::result::Result<(String, Option<u64>), String> {
    if depth > 32 {
        return Err("structured fields nest too deeply".into());
    }
    let mut parts = Vec::with_capacity(fields.len());
    let mut total = Some(0u64);
    for field in fields {
        let (Literal::Tuple(items) | Literal::List(items)) = field else {
            return Err(format!("a field is {field:?}, not a (name, type) tuple"));
        };
        let (name, ty, shape) = match items.as_slice() {
            [Literal::Str(name), ty] => (name, ty, None),
            [Literal::Str(name), ty, Literal::Tuple(shape)] => (name, ty, Some(shape)),
            _ => return Err(format!("a field is {field:?}, not (name, type) or (name, type, shape)")),
        };
        let (type_text, size) = match ty {
            Literal::Str(descr) => {
                let size = match DType::from_numpy_descr(descr) {
                    Some((dtype, _)) => Some(dtype.size() as u64),
                    None => describe(descr)?.1,
                };
                (format!("'{descr}'"), size)
            }
            Literal::List(inner) => describe_fields(inner, depth + 1)?,
            other => return Err(format!("field '{name}' has the type {other:?}")),
        };
        let count = match shape {
            None => 1,
            Some(dims) => dims.iter().try_fold(1u64, |n, d| match d {
                Literal::Int(d) => u64::try_from(*d).ok().and_then(|d| n.checked_mul(d)).ok_or("a bad field shape"),
                _ => Err("a bad field shape"),
            })?,
        };
        let shape_text = match shape {
            None => String::new(),
            Some(dims) => {
                let dims: Vec<String> =
                    dims.iter().map(|d| if let Literal::Int(d) = d { d.to_string() } else { String::new() }).collect();
                if dims.len() == 1 { format!(", ({},)", dims[0]) } else { format!(", ({})", dims.join(", ")) }
            }
        };
        parts.push(format!("('{name}', {type_text}{shape_text})"));
        total = match (total, size) {
            (Some(t), Some(s)) => s.checked_mul(count).and_then(|s| t.checked_add(s)),
            _ => None,
        };
    }
    Ok((format!("[{}]", parts.join(", ")), total))
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

/// The bytes of a region's elements (`size` bytes each) in C order, as they are in the file.
fn read_region(file: &mut File, path: &Path, header: &Header, size: usize, region: &Region) -> Result<Vec<u8>> {
    if header.fortran_order {
        // A Fortran-ordered array is the C-ordered array of the reversed shape: read the reversed region,
        // then reverse its axes back.
        let shape: Vec<u64> = header.shape.iter().rev().copied().collect();
        let reversed = Region(region.0.iter().rev().cloned().collect());
        let bytes = read_c_region(file, path, header.data_offset, &shape, size, &reversed)?;
        reverse_axes(bytes, &reversed.shape(), size)
    } else {
        read_c_region(file, path, header.data_offset, &header.shape, size, region)
    }
}

/// Writes part of an `.npy` (`trove get REF --slice S`) to `dest` as an `.npy` of the same dtype, byte for
/// byte: any numpy type of fixed size (datetime64, strings, records, big-endian numbers too), read a slab at
/// a time. Object arrays, whose data is a pickle, cannot be sliced.
pub fn write_slice(stored: &Path, slice: &Slice, dest: &Path) -> Result<()> {
    let (mut file, header) = open(stored)?;
    let Some(size) = header.elements.itemsize() else {
        return Err(header
            .elements
            .dtype(stored)
            .err()
            .unwrap_or_else(|| FormatError::malformed(stored, "no itemsize")));
    };
    let size = array::to_usize(size, "an element size")?;
    let selection = slice.resolve(&header.shape)?;
    let out_file = File::create(dest).map_err(FormatError::io(dest))?;
    let mut out = BufWriter::with_capacity(1 << 20, out_file);
    out.write_all(&header_with_descr(&header.descr, &selection.shape())?).map_err(FormatError::io(dest))?;
    for part in selection.slabs_sized(size.max(1), None, SLAB_BYTES) {
        let region = part.region();
        let bytes = read_region(&mut file, stored, &header, size, &region)?;
        out.write_all(&part.pick(&region.shape(), bytes, size)?).map_err(FormatError::io(dest))?;
    }
    out.flush().map_err(FormatError::io(dest))
}

/// Writes part of an array of any [`ArrayFormat`] (a Zarr slice) to `dest` as an `.npy`, a slab at a time,
/// reading only the chunks the slice touches.
pub fn write_selection(format: &dyn ArrayFormat, stored: &Path, slice: &Slice, dest: &Path) -> Result<()> {
    let info = format.info(stored)?;
    let selection = slice.resolve(&info.shape)?;
    let out_file = File::create(dest).map_err(FormatError::io(dest))?;
    let mut out = BufWriter::with_capacity(1 << 20, out_file);
    out.write_all(&header_bytes(info.dtype, &selection.shape())?).map_err(FormatError::io(dest))?;
    for part in selection.slabs_sized(info.dtype.size().max(1), info.chunks.as_deref(), SLAB_BYTES) {
        let raw = part.apply(format.read(stored, &part.region())?)?;
        out.write_all(&raw.bytes).map_err(FormatError::io(dest))?;
    }
    out.flush().map_err(FormatError::io(dest))
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
