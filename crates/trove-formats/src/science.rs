//! Summaries of the files scientists keep as they are (SPEC: data stays in open formats): FITS (HDUs with
//! their type, shape, BITPIX, main header keys and table columns), netCDF classic, 64-bit and netCDF-4
//! (dimensions, variables with type, dimensions, shape and attributes; global attributes; groups), HDF5
//! (groups and datasets with dtype, shape, chunks and attributes), images (width, height, mode), and JSON (its
//! top-level keys). netCDF and HDF5 are read by the pure-Rust `netcdf-reader` and `hdf5-reader`; FITS
//! headers and image headers are simple enough to read here. A compressed single file (`.fits.gz`,
//! `.nc.gz`) is read through its decompressor. Nothing here needs a C library.
//!
//! A summary is what `show` prints and the catalog indexes, so `find` can ask (`@format == "fits"`). A file a
//! parser cannot read gets no summary rather than a wrong one: the file itself is stored either way.

use std::io::{BufRead, Read};
use std::path::Path;

use serde_json::{Map, Value, json};

/// HDUs, variables, keys and columns listed at most; a file with more says how many it has.
const MAX_ITEMS: usize = 1000;
/// JSON files up to this size are parsed for their top-level keys.
const MAX_JSON_BYTES: u64 = 64 << 20;

/// The summary of a stored plain file whose format word is `word`, or `Null` when there is nothing to add
/// to its size and checksum (or it cannot be read as what its bytes claim).
pub fn summary(word: &str, path: &Path, head: &[u8]) -> Value {
    let result = match word {
        "fits" => open(path).and_then(|mut r| fits(&mut r)),
        "netcdf" => netcdf(path, head),
        "hdf5" => hdf5(path, head),
        "image" => image(head),
        "json" => json_keys(path),
        _ => return Value::Null,
    };
    result.unwrap_or(Value::Null)
}

/// Whether an HDF5 file is netCDF-4: netCDF's library (and h5netcdf) write the `_NCProperties` attribute,
/// or dimension scales named by `_Netcdf4Dimid`, near the start of the file.
pub fn is_netcdf4(head: &[u8]) -> bool {
    let find = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    head.starts_with(HDF5_MAGIC) && (find(b"_NCProperties") || find(b"_Netcdf4Dimid"))
}

type Parsed = std::result::Result<Value, String>;

fn open(path: &Path) -> std::result::Result<Box<dyn BufRead + Send>, String> {
    crate::csv::open_decompressed(path).map_err(|e| e.to_string())
}

// ---- FITS ----

/// Header keys a summary keeps besides the structural ones, when an HDU has them.
const FITS_KEYS: &[&str] = &[
    "OBJECT", "TELESCOP", "INSTRUME", "OBSERVER", "DATE-OBS", "DATE", "EXPTIME", "FILTER", "BUNIT", "ORIGIN", "RA",
    "DEC", "EQUINOX", "RADESYS", "CTYPE1", "CTYPE2", "EXTVER",
];

/// Every HDU: its type (`PRIMARY`, `IMAGE`, `BINTABLE`, `TABLE`), BITPIX, shape (numpy's axis order, as
/// astropy gives it), name, the main header keys, and a table's rows and columns.
fn fits(reader: &mut dyn BufRead) -> Parsed {
    let mut hdus = Vec::new();
    let mut count = 0usize;
    loop {
        let Some(cards) = fits_header(reader)? else { break };
        count += 1;
        let get = |key: &str| cards.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let int = |key: &str| get(key).and_then(Value::as_i64);
        let kind = match get("XTENSION").and_then(Value::as_str) {
            Some(x) => x.trim().to_string(),
            None if count == 1 => "PRIMARY".to_string(),
            None => return Err("an HDU after the first lacks XTENSION".into()),
        };
        let bitpix = int("BITPIX").ok_or("an HDU lacks BITPIX")?;
        let naxis = int("NAXIS").ok_or("an HDU lacks NAXIS")?;
        let axes: Vec<i64> = (1..=naxis).map(|i| int(&format!("NAXIS{i}")).unwrap_or(0)).collect();
        let (pcount, gcount) = (int("PCOUNT").unwrap_or(0), int("GCOUNT").unwrap_or(1));
        let elements: i64 = if axes.is_empty() { 0 } else { axes.iter().product() };
        let data = (bitpix.unsigned_abs() / 8) * (gcount.max(0) as u64) * ((pcount.max(0) + elements) as u64);
        skip(reader, data.div_ceil(2880) * 2880)?;
        if hdus.len() >= MAX_ITEMS {
            continue;
        }
        let mut hdu = Map::new();
        hdu.insert("type".into(), json!(kind));
        if let Some(name) = get("EXTNAME") {
            hdu.insert("name".into(), name.clone());
        }
        hdu.insert("bitpix".into(), json!(bitpix));
        if kind == "BINTABLE" || kind == "TABLE" {
            hdu.insert("rows".into(), json!(axes.get(1).copied().unwrap_or(0)));
            let fields = int("TFIELDS").unwrap_or(0).clamp(0, MAX_ITEMS as i64);
            let columns: Vec<Value> = (1..=fields)
                .map(|i| {
                    let mut c = Map::new();
                    for (key, field) in [("TTYPE", "name"), ("TFORM", "format"), ("TUNIT", "unit")] {
                        if let Some(v) = get(&format!("{key}{i}")) {
                            c.insert(field.into(), v.clone());
                        }
                    }
                    Value::Object(c)
                })
                .collect();
            hdu.insert("columns".into(), json!(columns));
        } else {
            hdu.insert("shape".into(), json!(axes.iter().rev().collect::<Vec<_>>()));
        }
        let header: Map<String, Value> =
            FITS_KEYS.iter().filter_map(|k| get(k).map(|v| (k.to_string(), v.clone()))).collect();
        if !header.is_empty() {
            hdu.insert("header".into(), Value::Object(header));
        }
        hdus.push(Value::Object(hdu));
    }
    if hdus.is_empty() {
        return Err("no FITS header".into());
    }
    let mut out = json!({"hdus": hdus});
    if count > MAX_ITEMS {
        out["hdu_count"] = json!(count);
    }
    Ok(out)
}

/// One header's cards (keyword, value) up to `END`; `None` at the end of the file.
fn fits_header(reader: &mut dyn BufRead) -> std::result::Result<Option<Vec<(String, Value)>>, String> {
    let mut cards = Vec::new();
    let mut block = [0u8; 2880];
    let mut first = true;
    loop {
        match reader.read_exact(&mut block) {
            Ok(()) => {}
            // Trailing bytes short of a block after the last HDU are tolerated, as astropy does.
            Err(_) if first => return Ok(None),
            Err(e) => return Err(format!("a FITS header is cut short: {e}")),
        }
        first = false;
        for card in block.chunks_exact(80) {
            // Cards are ASCII by the standard; bytes past it are read leniently, never sliced mid-character.
            let key = String::from_utf8_lossy(&card[..8]).trim_end().to_string();
            if key == "END" {
                return Ok(Some(cards));
            }
            if cards.len() > 100_000 {
                return Err("a FITS header without END".into());
            }
            if &card[8..10] == b"= " {
                cards.push((key, fits_value(&String::from_utf8_lossy(&card[10..]))));
            }
        }
    }
}

/// A card's value: a quoted string (`''` is a quote), `T`/`F`, an integer or a float (`D` exponents too).
fn fits_value(text: &str) -> Value {
    let text = text.trim_start();
    if let Some(rest) = text.strip_prefix('\'') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    out.push('\'');
                    continue;
                }
                break;
            }
            out.push(c);
        }
        return json!(out.trim_end());
    }
    let value = text.split('/').next().unwrap_or("").trim();
    match value {
        "T" => json!(true),
        "F" => json!(false),
        v => v
            .parse::<i64>()
            .map(|i| json!(i))
            .or_else(|_| v.replace(['D', 'd'], "E").parse::<f64>().map(|x| json!(x)))
            .unwrap_or_else(|_| json!(v)),
    }
}

fn skip(reader: &mut dyn BufRead, bytes: u64) -> std::result::Result<(), String> {
    let copied = std::io::copy(&mut reader.take(bytes), &mut std::io::sink()).map_err(|e| e.to_string())?;
    if copied < bytes {
        // The last HDU's data may be cut short in files others wrote: what was read is still summarised.
        return Ok(());
    }
    Ok(())
}

// ---- netCDF and HDF5 ----

/// Largest compressed netCDF or HDF5 file (`run.nc.gz`) inflated in memory for a summary.
const MAX_INFLATED_BYTES: u64 = 512 << 20;
/// Attribute values longer than this are summarised by their type and shape, not listed.
const MAX_ATTRIBUTE_VALUES: usize = 64;

/// A netCDF file (classic, 64-bit offset, CDF-5 or netCDF-4) read by `netcdf-reader`: format, dimensions,
/// unlimited dimensions, variables with type, dimension names, shape and attributes, global attributes, and
/// sub-groups. A netCDF-4 file that the reader cannot map to netCDF's model is summarised as HDF5.
fn netcdf(path: &Path, head: &[u8]) -> Parsed {
    let file = match inflated(path, head)? {
        Some(bytes) => netcdf_reader::NcFile::from_vec(bytes),
        None => netcdf_reader::NcFile::open(path),
    };
    let file = match file {
        Ok(file) => file,
        Err(e) if head.starts_with(HDF5_MAGIC) || crate::csv::is_compressed(head) => {
            let mut summary = hdf5(path, head).map_err(|h| format!("{e}; as HDF5: {h}"))?;
            summary["netcdf"] = json!("netCDF-4 (HDF5)");
            return Ok(summary);
        }
        Err(e) => return Err(e.to_string()),
    };
    use netcdf_reader::NcFormat;
    let format = match file.format() {
        NcFormat::Classic => "classic",
        NcFormat::Offset64 => "64-bit offset",
        NcFormat::Cdf5 => "64-bit data (CDF-5)",
        NcFormat::Nc4 => "netCDF-4",
        NcFormat::Nc4Classic => "netCDF-4 classic model",
    };
    let records = file.as_classic().map(|c| c.numrecs());
    let root = file.root_group().map_err(|e| e.to_string())?;
    let mut budget = MAX_ITEMS;
    let mut out = nc_group(root, records, &mut budget);
    out.insert("netcdf".into(), json!(format));
    if let Some(records) = records {
        out.insert("records".into(), json!(records));
    }
    if budget == 0 {
        out.insert("truncated".into(), json!(format!("only the first {MAX_ITEMS} variables and groups are listed")));
    }
    Ok(Value::Object(out))
}

/// One netCDF group: its dimensions, unlimited dimensions, attributes, variables and sub-groups, while the
/// budget of listed variables and groups lasts.
fn nc_group(group: &netcdf_reader::NcGroup, records: Option<u64>, budget: &mut usize) -> Map<String, Value> {
    // A classic file's unlimited dimension has as many entries as the file has records.
    let length = |d: &netcdf_reader::NcDimension| match records {
        Some(n) if d.is_unlimited => n,
        _ => d.size,
    };
    let mut out = Map::new();
    out.insert("dimensions".into(), group.dimensions.iter().map(|d| (d.name.clone(), json!(length(d)))).collect());
    let unlimited: Vec<&str> = group.dimensions.iter().filter(|d| d.is_unlimited).map(|d| d.name.as_str()).collect();
    if !unlimited.is_empty() {
        out.insert("unlimited".into(), json!(unlimited));
    }
    out.insert("attributes".into(), nc_attributes(&group.attributes));
    let mut variables = Vec::new();
    for v in &group.variables {
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        variables.push(json!({
            "name": v.name,
            "dtype": nc_type(&v.dtype),
            "dimensions": v.dimensions.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            "shape": v.dimensions.iter().map(length).collect::<Vec<_>>(),
            "attributes": nc_attributes(&v.attributes),
        }));
    }
    out.insert("variables".into(), json!(variables));
    let mut groups = Vec::new();
    for g in &group.groups {
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        let mut child = nc_group(g, records, budget);
        child.insert("name".into(), json!(g.name));
        groups.push(Value::Object(child));
    }
    if !groups.is_empty() {
        out.insert("groups".into(), json!(groups));
    }
    out
}

/// numpy's name for a netCDF type (`char` is netCDF's single character, `str` a variable-length string).
fn nc_type(t: &netcdf_reader::NcType) -> String {
    use netcdf_reader::NcType as T;
    match t {
        T::Byte => "int8".into(),
        T::Char => "char".into(),
        T::Short => "int16".into(),
        T::Int => "int32".into(),
        T::Float => "float32".into(),
        T::Double => "float64".into(),
        T::UByte => "uint8".into(),
        T::UShort => "uint16".into(),
        T::UInt => "uint32".into(),
        T::Int64 => "int64".into(),
        T::UInt64 => "uint64".into(),
        T::String => "str".into(),
        T::Enum { base, .. } => format!("enum({})", nc_type(base)),
        T::Compound { fields, .. } => {
            let fields: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.name, nc_type(&f.dtype))).collect();
            format!("compound({})", fields.join(", "))
        }
        T::Opaque { size, .. } => format!("opaque({size})"),
        T::Array { base, dims } => format!("{}{dims:?}", nc_type(base)),
        T::VLen { base } => format!("vlen({})", nc_type(base)),
    }
}

fn nc_attributes(attributes: &[netcdf_reader::NcAttribute]) -> Value {
    use netcdf_reader::NcAttrValue as A;
    fn list<T: Copy>(values: &[T], one: impl Fn(T) -> Value) -> Value {
        match values {
            [single] => one(*single),
            _ if values.len() > MAX_ATTRIBUTE_VALUES => json!({"values": values.len()}),
            _ => Value::Array(values.iter().map(|v| one(*v)).collect()),
        }
    }
    let float = |v: f64| crate::table::float_json(v);
    attributes
        .iter()
        .take(MAX_ITEMS)
        .map(|a| {
            let value = match &a.value {
                A::Chars(s) => json!(s.trim_end_matches('\0')),
                A::Strings(v) if v.len() == 1 => json!(v[0]),
                A::Strings(v) if v.len() <= MAX_ATTRIBUTE_VALUES => json!(v),
                A::Strings(v) => json!({"values": v.len()}),
                A::Bytes(v) => list(v, |x| json!(x)),
                A::Shorts(v) => list(v, |x| json!(x)),
                A::Ints(v) => list(v, |x| json!(x)),
                A::Int64s(v) => list(v, |x| json!(x)),
                A::UBytes(v) => list(v, |x| json!(x)),
                A::UShorts(v) => list(v, |x| json!(x)),
                A::UInts(v) => list(v, |x| json!(x)),
                A::UInt64s(v) => list(v, |x| json!(x)),
                A::Floats(v) => list(v, |x| float(f64::from(x))),
                A::Doubles(v) => list(v, float),
                A::UserDefined { dtype, values } => json!({"dtype": nc_type(dtype), "values": values.len()}),
            };
            (a.name.clone(), value)
        })
        .collect::<Map<_, _>>()
        .into()
}

const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

/// An HDF5 file read by `hdf5-reader`: every group (path and attributes) and dataset (path, dtype, shape,
/// chunks, attributes), depth first, and the root's attributes.
fn hdf5(path: &Path, head: &[u8]) -> Parsed {
    let file = match inflated(path, head)? {
        Some(bytes) => hdf5_reader::Hdf5File::from_vec(bytes),
        None => hdf5_reader::Hdf5File::open(path),
    }
    .map_err(|e| e.to_string())?;
    let root = file.root_group().map_err(|e| e.to_string())?;
    let mut walk = H5Walk { groups: Vec::new(), datasets: Vec::new(), seen: Vec::new(), listed: 0, total: 0 };
    walk.group(&root, "", 0)?;
    let mut out = json!({
        "attributes": h5_attributes(root.attributes().map_err(|e| e.to_string())?),
        "groups": walk.groups,
        "datasets": walk.datasets,
    });
    if walk.total > walk.listed {
        out["object_count"] = json!(walk.total);
    }
    Ok(out)
}

struct H5Walk {
    groups: Vec<Value>,
    datasets: Vec<Value>,
    /// Groups already visited, by address: hard links can make a group its own descendant.
    seen: Vec<u64>,
    listed: usize,
    total: usize,
}

impl H5Walk {
    fn group(&mut self, group: &hdf5_reader::group::Group, at: &str, depth: usize) -> std::result::Result<(), String> {
        if self.seen.contains(&group.address()) || depth > 64 {
            return Ok(());
        }
        self.seen.push(group.address());
        let (groups, datasets) = group.members().map_err(|e| e.to_string())?;
        for d in datasets {
            self.total += 1;
            if self.listed >= MAX_ITEMS {
                continue;
            }
            self.listed += 1;
            let mut entry = json!({
                "path": format!("{at}/{}", d.name()),
                "dtype": h5_type(d.dtype()),
                "shape": d.shape(),
            });
            if let Some(chunks) = d.chunks() {
                entry["chunks"] = json!(chunks);
            }
            let attributes = d.attributes();
            if !attributes.is_empty() {
                entry["attributes"] = h5_attributes(attributes);
            }
            self.datasets.push(entry);
        }
        for g in groups {
            self.total += 1;
            let path = format!("{at}/{}", g.name());
            if self.listed < MAX_ITEMS {
                self.listed += 1;
                let mut entry = json!({"path": path});
                let attributes = g.attributes().map_err(|e| e.to_string())?;
                if !attributes.is_empty() {
                    entry["attributes"] = h5_attributes(attributes);
                }
                self.groups.push(entry);
            }
            self.group(&g, &path, depth + 1)?;
        }
        Ok(())
    }
}

/// numpy's name for an HDF5 type, as h5py maps it (`S4` fixed bytes, `str` variable-length text, `bool` the
/// FALSE/TRUE enumeration h5py writes).
fn h5_type(t: &hdf5_reader::Datatype) -> String {
    use hdf5_reader::Datatype as D;
    match t {
        D::FixedPoint { size, signed: true, .. } => format!("int{}", u32::from(*size) * 8),
        D::FixedPoint { size, signed: false, .. } => format!("uint{}", u32::from(*size) * 8),
        D::FloatingPoint { size, .. } => format!("float{}", u32::from(*size) * 8),
        D::String { size: hdf5_reader::StringSize::Fixed(n), .. } => format!("S{n}"),
        D::String { .. } => "str".into(),
        D::Compound { fields, .. } => {
            let fields: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.name, h5_type(&f.datatype))).collect();
            format!("compound({})", fields.join(", "))
        }
        D::Array { base, dims } => format!("{}{dims:?}", h5_type(base)),
        D::Enum { members, .. } if members.len() == 2 && members[0].name == "FALSE" && members[1].name == "TRUE" => {
            "bool".into()
        }
        D::Enum { base, .. } => format!("enum({})", h5_type(base)),
        D::VarLen { kind: hdf5_reader::VarLenKind::String, .. } => "str".into(),
        D::VarLen { base, .. } => format!("vlen({})", h5_type(base)),
        D::Opaque { size, .. } => format!("opaque({size})"),
        D::Reference { .. } => "reference".into(),
        D::Bitfield { size, .. } => format!("bitfield{}", u32::from(*size) * 8),
    }
}

/// Attribute values: text, numbers (integers exactly), lists of them; anything else (or longer than
/// [`MAX_ATTRIBUTE_VALUES`]) as its type and shape, never a value it does not have.
fn h5_attributes(attributes: Vec<hdf5_reader::Attribute>) -> Value {
    use hdf5_reader::Datatype as D;
    let mut out = Map::new();
    for a in attributes.into_iter().take(MAX_ITEMS) {
        let count = a.num_elements().unwrap_or(0) as usize;
        let scalar = a.shape.is_empty();
        let values: Option<Vec<Value>> = match &a.datatype {
            _ if count > MAX_ATTRIBUTE_VALUES => None,
            D::String { .. } | D::VarLen { kind: hdf5_reader::VarLenKind::String, .. } => {
                a.read_strings().ok().map(|v| v.into_iter().map(|s| json!(s.trim_end_matches('\0'))).collect())
            }
            D::FixedPoint { size, signed, byte_order } => {
                numbers(&a.raw_data, usize::from(*size), count, *byte_order, |b| match (signed, b.len()) {
                    (true, 1) => json!(b[0] as i8),
                    (true, 2) => json!(i16::from_le_bytes([b[0], b[1]])),
                    (true, 4) => json!(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    (true, 8) => json!(i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
                    (false, 1) => json!(b[0]),
                    (false, 2) => json!(u16::from_le_bytes([b[0], b[1]])),
                    (false, 4) => json!(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    (false, 8) => json!(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
                    _ => Value::Null,
                })
            }
            D::FloatingPoint { size, byte_order } => {
                numbers(&a.raw_data, usize::from(*size), count, *byte_order, |b| match b.len() {
                    4 => crate::table::float_json(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
                    8 => crate::table::float_json(f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
                    _ => Value::Null,
                })
            }
            _ => None,
        };
        let value = match values {
            Some(v) if v.iter().all(|x| !x.is_null()) && scalar && v.len() == 1 => {
                v.into_iter().next().unwrap_or_default()
            }
            Some(v) if v.iter().all(|x| !x.is_null()) => Value::Array(v),
            _ => json!({"dtype": h5_type(&a.datatype), "shape": a.shape}),
        };
        out.insert(a.name, value);
    }
    Value::Object(out)
}

/// `count` numbers of `width` bytes each, turned little-endian before `one` reads them; `None` when the data
/// is shorter than it says.
fn numbers(
    raw: &[u8],
    width: usize,
    count: usize,
    order: hdf5_reader::ByteOrder,
    one: impl Fn(&[u8]) -> Value,
) -> Option<Vec<Value>> {
    if width == 0 || raw.len() < width * count {
        return None;
    }
    let values = raw
        .chunks_exact(width)
        .take(count)
        .map(|b| {
            let mut b = b.to_vec();
            if order == hdf5_reader::ByteOrder::BigEndian {
                b.reverse();
            }
            one(&b)
        })
        .collect();
    Some(values)
}

/// A compressed file's bytes, inflated (up to [`MAX_INFLATED_BYTES`]); `None` for a file that is not
/// compressed, which the readers open (and map) themselves.
fn inflated(path: &Path, head: &[u8]) -> std::result::Result<Option<Vec<u8>>, String> {
    if !crate::csv::is_compressed(head) {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    open(path)?.take(MAX_INFLATED_BYTES + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_INFLATED_BYTES {
        return Err("too large to inflate for a summary".into());
    }
    Ok(Some(bytes))
}

// ---- images ----

/// Width, height and mode (PIL's words: `L`, `LA`, `RGB`, `RGBA`, `P`, `CMYK`, `I;16`) of a PNG, JPEG, GIF,
/// BMP or TIFF, from its first bytes.
fn image(head: &[u8]) -> Parsed {
    let be32 = |b: &[u8], at: usize| b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
    let le16 = |b: &[u8], at: usize| b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    if head.starts_with(b"\x89PNG\r\n\x1a\n") && head.get(12..16) == Some(b"IHDR") {
        let (w, h) = (be32(head, 16).ok_or("short PNG")?, be32(head, 20).ok_or("short PNG")?);
        let (depth, color) = (head.get(24).copied().unwrap_or(8), head.get(25).copied().unwrap_or(0));
        let mode = match (color, depth) {
            (0, 1) => "1",
            (0, 16) => "I;16",
            (0, _) => "L",
            (2, _) => "RGB",
            (3, _) => "P",
            (4, _) => "LA",
            (6, _) => "RGBA",
            _ => "unknown",
        };
        return Ok(json!({"width": w, "height": h, "mode": mode, "bit_depth": depth}));
    }
    if head.starts_with(b"GIF8") {
        let (w, h) = (le16(head, 6).ok_or("short GIF")?, le16(head, 8).ok_or("short GIF")?);
        return Ok(json!({"width": w, "height": h, "mode": "P"}));
    }
    if head.starts_with(b"BM") && head.len() >= 30 {
        let w = i32::from_le_bytes([head[18], head[19], head[20], head[21]]);
        let h = i32::from_le_bytes([head[22], head[23], head[24], head[25]]);
        let mode = match le16(head, 28) {
            Some(32) => "RGBA",
            Some(24) => "RGB",
            Some(8 | 4 | 1) => "P",
            _ => "unknown",
        };
        return Ok(json!({"width": w.unsigned_abs(), "height": h.unsigned_abs(), "mode": mode}));
    }
    if head.starts_with(&[0xFF, 0xD8]) {
        return jpeg(head);
    }
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        return tiff(head);
    }
    Err("an image format without a summary".into())
}

fn jpeg(head: &[u8]) -> Parsed {
    let mut at = 2;
    while at + 9 < head.len() {
        if head[at] != 0xFF {
            return Err("a JPEG marker was expected".into());
        }
        let marker = head[at + 1];
        let len = usize::from(u16::from_be_bytes([head[at + 2], head[at + 3]]));
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC): the frame header holds the size.
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let h = u16::from_be_bytes([head[at + 5], head[at + 6]]);
            let w = u16::from_be_bytes([head[at + 7], head[at + 8]]);
            let mode = match head[at + 9] {
                1 => "L",
                3 => "RGB",
                4 => "CMYK",
                _ => "unknown",
            };
            return Ok(json!({"width": w, "height": h, "mode": mode}));
        }
        at += 2 + len;
    }
    Err("no JPEG frame header in the first bytes".into())
}

fn tiff(head: &[u8]) -> Parsed {
    let big = head.starts_with(b"MM");
    let u16_at = |at: usize| {
        head.get(at..at + 2)
            .map(|b| if big { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) })
    };
    let u32_at = |at: usize| {
        head.get(at..at + 4).map(|b| {
            let b = [b[0], b[1], b[2], b[3]];
            if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
        })
    };
    let ifd = u32_at(4).ok_or("short TIFF")? as usize;
    let entries = usize::from(u16_at(ifd).ok_or("the TIFF directory is past the first bytes")?);
    let (mut w, mut h, mut samples, mut photometric, mut bits) = (None, None, 1u32, None, None);
    for i in 0..entries.min(500) {
        let e = ifd + 2 + i * 12;
        let (Some(tag), Some(kind)) = (u16_at(e), u16_at(e + 2)) else { break };
        let value = if kind == 3 { u16_at(e + 8).map(u32::from) } else { u32_at(e + 8) };
        match tag {
            256 => w = value,
            257 => h = value,
            258 => bits = value,
            262 => photometric = value,
            277 => samples = value.unwrap_or(1),
            _ => {}
        }
    }
    let mode = match (photometric, samples, bits) {
        (Some(0 | 1), 1, Some(16)) => "I;16",
        (Some(0 | 1), 1, _) => "L",
        (Some(2), 3, _) => "RGB",
        (Some(2), 4, _) => "RGBA",
        (Some(3), _, _) => "P",
        (Some(5), 4, _) => "CMYK",
        _ => "unknown",
    };
    Ok(json!({"width": w.ok_or("no TIFF width")?, "height": h.ok_or("no TIFF height")?, "mode": mode}))
}

// ---- JSON ----

/// A JSON document's top-level keys (an object) or length (an array).
fn json_keys(path: &Path) -> Parsed {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_JSON_BYTES {
        return Err("too large to parse for a summary".into());
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let value: Value = serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| e.to_string())?;
    Ok(match value {
        Value::Object(map) => {
            let keys: Vec<&String> = map.keys().take(MAX_ITEMS).collect();
            json!({"keys": keys, "key_count": map.len()})
        }
        Value::Array(items) => json!({"length": items.len()}),
        other => {
            json!({"value_type": match other { Value::String(_) => "string", Value::Number(_) => "number", Value::Bool(_) => "boolean", _ => "null" }})
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAGICS: &[(&str, &[u8])] = &[
        ("hdf5", b"\x89HDF\r\n\x1a\n"),
        ("netcdf", b"CDF\x01"),
        ("netcdf", b"CDF\x02"),
        ("netcdf", b"CDF\x05"),
        ("netcdf", b"\x89HDF\r\n\x1a\n"),
        ("fits", b"SIMPLE  =                    T"),
        ("image", b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"),
        ("image", b"\xff\xd8\xff"),
        ("image", b"II*\0"),
        ("image", b"MM\0*"),
        ("image", b"GIF89a"),
        ("image", b"BM"),
        ("json", b"{"),
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// A file that starts like a science format and goes on as garbage (or stops) gets a summary or none:
        /// never a panic, a hang or an allocation its header asks for.
        #[test]
        fn garbage_after_a_magic_number_never_panics(which in 0..MAGICS.len(), tail in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let (word, magic) = MAGICS[which];
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f");
            let mut bytes = magic.to_vec();
            bytes.extend_from_slice(&tail);
            std::fs::write(&path, &bytes).unwrap();
            let _ = summary(word, &path, &bytes);
        }
    }

    #[test]
    fn empty_and_truncated_files_get_no_summary() {
        let dir = tempfile::tempdir().unwrap();
        for (word, magic) in MAGICS {
            for bytes in [&b""[..], magic] {
                let path = dir.path().join("f");
                std::fs::write(&path, bytes).unwrap();
                assert_eq!(summary(word, &path, bytes), Value::Null, "{word} {bytes:?}");
            }
        }
    }

    #[test]
    fn deeply_nested_json_and_odd_keys_are_summarised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep.json");
        let deep = format!("{{\"a\\u0000b\": {}1{}, \"\": 2}}", "[".repeat(100), "]".repeat(100));
        std::fs::write(&path, &deep).unwrap();
        assert_eq!(summary("json", &path, deep.as_bytes()), json!({"keys": ["a\0b", ""], "key_count": 2}));
        // Past serde_json's recursion limit: no summary, no stack overflow.
        let deeper = format!("{{\"a\": {}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        std::fs::write(&path, &deeper).unwrap();
        assert_eq!(summary("json", &path, deeper.as_bytes()), Value::Null);
    }
}
