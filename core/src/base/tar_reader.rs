//! A tar reader for bases (archives and layers) whose memory stays bounded on any input.
//!
//! It reads what Docker, Go, GNU tar and BSD tar write: ustar, GNU (long names and links,
//! base-256 numbers, old sparse headers) and PAX (`path`, `linkpath` and `size` records). Header
//! extensions (PAX records, GNU long names and links) are refused above
//! [`MAX_HEADER_EXTENSION`] bytes, as Go's `archive/tar` does; entry data is never held, only
//! skipped or located.

use std::io::{self, Read, Seek, SeekFrom};

/// The largest PAX header or GNU long name or link read (1 MiB, Go's `maxSpecialFileSize`).
pub(crate) const MAX_HEADER_EXTENSION: u64 = 1 << 20;

const BLOCK: u64 = 512;

/// What kind of entry a header describes (the parts of the type flag bases care about).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular (or contiguous) file.
    File,
    /// An old GNU sparse file.
    Sparse,
    Dir,
    Symlink,
    Hardlink,
    /// Devices, FIFOs and unknown types.
    Other,
}

/// One entry: its name and link target (raw bytes, as stored), its kind, and where its data is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Kind,
    /// Bytes of data stored in the archive after the header.
    pub size: u64,
    /// Offset of the data from the start of the stream.
    pub data_offset: u64,
}

/// Why an archive could not be read.
#[derive(Debug)]
pub(crate) enum TarError {
    /// Reading the underlying stream failed.
    Io(io::Error),
    /// The archive is malformed (or hostile), with a reason for messages.
    Malformed(String),
}

impl From<io::Error> for TarError {
    fn from(e: io::Error) -> Self {
        TarError::Io(e)
    }
}

impl std::fmt::Display for TarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TarError::Io(e) => e.fmt(f),
            TarError::Malformed(reason) => f.write_str(reason),
        }
    }
}

fn malformed(reason: impl Into<String>) -> TarError {
    TarError::Malformed(reason.into())
}

/// A stream the reader can move forward in: by seeking (files) or by reading (pipes, gzip).
pub(crate) trait Skip: Read {
    fn skip(&mut self, n: u64) -> io::Result<()>;
}

/// Skips by reading (and discarding) the bytes.
#[derive(Debug)]
pub(crate) struct Streamed<R>(pub R);

impl<R: Read> Read for Streamed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Skip for Streamed<R> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut (&mut self.0).take(n), &mut io::sink())?;
        if copied < n {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the archive ends inside an entry"));
        }
        Ok(())
    }
}

/// Skips by seeking; the end of an entry past the end of the file shows at the next read.
#[derive(Debug)]
pub(crate) struct Seekable<R>(pub R);

impl<R: Read> Read for Seekable<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read + Seek> Skip for Seekable<R> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let n = i64::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "entry too large"))?;
        self.0.seek(SeekFrom::Current(n)).map(|_| ())
    }
}

/// Reads entry headers one after another; see the module documentation.
#[derive(Debug)]
pub(crate) struct TarReader<R> {
    inner: R,
    /// Stream offset of what `inner` reads next.
    pos: u64,
    /// Stream offset of the next header.
    next: u64,
    done: bool,
}

impl<R: Skip> TarReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        TarReader { inner, pos: 0, next: 0, done: false }
    }

    /// The stream, positioned somewhere after the last header read.
    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry, or `None` at the end-of-archive block (or at the end of the stream).
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_entry();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn read_entry(&mut self) -> Result<Option<Entry>, TarError> {
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Vec<PaxRecord> = Vec::new();
        let mut extended = false;
        loop {
            let Some(header) = self.read_header()? else {
                if extended {
                    return Err(malformed("the archive ends after a header extension, without its entry"));
                }
                return Ok(None);
            };
            let flag = header[156];
            let mut size = number(&header[124..136]).ok_or_else(|| malformed("an entry header has a bad size"))?;
            match flag {
                b'L' | b'K' | b'x' | b'g' => {
                    extended = true;
                    if size > MAX_HEADER_EXTENSION {
                        return Err(malformed(format!(
                            "a header extension ({}) is {size} bytes, more than the {MAX_HEADER_EXTENSION} allowed",
                            match flag {
                                b'L' => "GNU long name",
                                b'K' => "GNU long link",
                                _ => "PAX records",
                            }
                        )));
                    }
                    let data = self.read_data(size)?;
                    match flag {
                        b'L' => long_name = Some(until_nul(&data).to_vec()),
                        b'K' => long_link = Some(until_nul(&data).to_vec()),
                        b'x' => pax = parse_pax(&data)?,
                        _ => {} // global PAX records: nothing bases need
                    }
                    continue;
                }
                _ => {}
            }
            let mut path = header_path(&header);
            let mut link = until_nul(&header[157..257]).to_vec();
            if let Some(name) = long_name {
                path = name;
            }
            if let Some(target) = long_link {
                link = target;
            }
            for (key, value) in pax {
                match key.as_slice() {
                    b"path" => path = value,
                    b"linkpath" => link = value,
                    b"size" => {
                        size = std::str::from_utf8(&value)
                            .ok()
                            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(|| malformed("a PAX size record is not a number"))?;
                    }
                    _ => {}
                }
            }
            let kind = match flag {
                b'0' | b'7' => Kind::File,
                0 if path.ends_with(b"/") => Kind::Dir,
                0 => Kind::File,
                b'5' => Kind::Dir,
                b'2' => Kind::Symlink,
                b'1' => Kind::Hardlink,
                b'S' => Kind::Sparse,
                _ => Kind::Other,
            };
            if kind == Kind::Sparse && header[482] != 0 {
                // Old GNU sparse: more sparse maps follow in whole blocks, each flagging the next.
                loop {
                    let block = self.read_block()?.ok_or_else(|| malformed("the archive ends inside a sparse map"))?;
                    if block[504] == 0 {
                        break;
                    }
                }
            }
            let data_offset = self.pos;
            self.next = data_offset
                .checked_add(size)
                .and_then(|end| end.checked_next_multiple_of(BLOCK))
                .ok_or_else(|| malformed("an entry size overflows"))?;
            return Ok(Some(Entry { path, link, kind, size, data_offset }));
        }
    }

    /// The next header block, after skipping to it; `None` at an all-zero block or the end.
    fn read_header(&mut self) -> Result<Option<[u8; 512]>, TarError> {
        if self.next > self.pos {
            self.inner.skip(self.next - self.pos)?;
            self.pos = self.next;
        }
        let Some(block) = self.read_block()? else { return Ok(None) };
        if block.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        let stored = number(&block[148..156]).ok_or_else(|| malformed("an entry header has a bad checksum field"))?;
        let unsigned: u64 =
            block.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { *b as u64 }).sum();
        let signed: i64 =
            block.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { *b as i8 as i64 }).sum();
        if stored != unsigned && stored as i64 != signed {
            return Err(malformed("an entry header has a wrong checksum (not a tar archive, or corrupt)"));
        }
        self.next = self.pos;
        Ok(Some(block))
    }

    /// One block; `None` when the stream ends before it starts.
    fn read_block(&mut self) -> Result<Option<[u8; 512]>, TarError> {
        let mut block = [0u8; 512];
        let mut filled = 0;
        while filled < block.len() {
            match self.inner.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.pos += filled as u64;
        match filled {
            0 => Ok(None),
            512 => Ok(Some(block)),
            _ => Err(malformed("the archive ends inside a header")),
        }
    }

    /// The data of an extension entry (at most [`MAX_HEADER_EXTENSION`] bytes), padding skipped.
    fn read_data(&mut self, size: u64) -> Result<Vec<u8>, TarError> {
        let mut data = Vec::with_capacity(size as usize);
        (&mut self.inner).take(size).read_to_end(&mut data)?;
        self.pos += data.len() as u64;
        if (data.len() as u64) < size {
            return Err(malformed("the archive ends inside a header extension"));
        }
        self.next = self.pos.next_multiple_of(BLOCK);
        Ok(data)
    }
}

/// A header's name: `prefix/name` for POSIX ustar headers, `name` otherwise.
fn header_path(header: &[u8; 512]) -> Vec<u8> {
    let name = until_nul(&header[0..100]);
    if &header[257..263] == b"ustar\0" {
        let prefix = until_nul(&header[345..500]);
        if !prefix.is_empty() {
            let mut path = prefix.to_vec();
            path.push(b'/');
            path.extend_from_slice(name);
            return path;
        }
    }
    name.to_vec()
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes.iter().position(|b| *b == 0).map_or(bytes, |end| &bytes[..end])
}

/// A numeric header field: octal (space or NUL padded), or GNU base-256 (non-negative).
fn number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut value: u64 = (field[0] & 0x3f) as u64;
        for b in &field[1..] {
            value = value.checked_mul(256)?.checked_add(*b as u64)?;
        }
        return Some(value);
    }
    let text = until_nul(field);
    let text = std::str::from_utf8(text).ok()?.trim_matches(' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// One PAX record: key and value.
pub(crate) type PaxRecord = (Vec<u8>, Vec<u8>);

/// PAX records: `LEN KEY=VALUE\n`, each LEN bytes long (LEN counting itself).
pub(crate) fn parse_pax(mut data: &[u8]) -> Result<Vec<PaxRecord>, TarError> {
    let bad = || malformed("a PAX header has a malformed record");
    let mut records = Vec::new();
    // Some writers pad the records with NULs.
    while !data.is_empty() && data[0] != 0 {
        let space = data.iter().take(20).position(|b| *b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(bad());
        }
        let record = &data[space + 1..len - 1];
        let equals = record.iter().position(|b| *b == b'=').filter(|i| *i > 0).ok_or_else(bad)?;
        records.push((record[..equals].to_vec(), record[equals + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Archives written by the `tar` crate (GNU long names, PAX records), read back.
    fn entries(bytes: &[u8]) -> Result<Vec<Entry>, TarError> {
        let mut reader = TarReader::new(Streamed(bytes));
        let mut out = Vec::new();
        while let Some(entry) = reader.next_entry()? {
            out.push(entry);
        }
        Ok(out)
    }

    fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_path(name).unwrap();
        h.set_cksum();
        h
    }

    #[test]
    fn reads_long_names_links_pax_and_offsets() {
        let long = format!("{}/file", "d".repeat(300));
        let target = format!("{}/target", "t".repeat(200));
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_data(&mut header("x", tar::EntryType::Regular, 3), &long, &b"abc"[..]).unwrap();
        let mut link = header("l", tar::EntryType::Symlink, 0);
        builder.append_link(&mut link, "link", &target).unwrap();
        builder.append_pax_extensions([("path", &b"pax/name"[..])]).unwrap();
        builder.append(&header("short", tar::EntryType::Directory, 0), &[][..]).unwrap();
        let bytes = builder.into_inner().unwrap();
        let got = entries(&bytes).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].path, long.as_bytes());
        assert_eq!(got[0].kind, Kind::File);
        assert_eq!(&bytes[got[0].data_offset as usize..][..3], b"abc");
        assert_eq!(got[1].link, target.as_bytes());
        assert_eq!(got[1].kind, Kind::Symlink);
        assert_eq!(got[2].path, b"pax/name");
        assert_eq!(got[2].kind, Kind::Dir);
    }

    #[test]
    fn refuses_huge_extensions_without_reading_them() {
        for flag in [tar::EntryType::GNULongName, tar::EntryType::GNULongLink, tar::EntryType::XHeader] {
            // The header claims 1 GiB; the stream has none of it, so nothing is read or held.
            let h = header("././@LongLink", flag, 1 << 30);
            let err = entries(h.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("more than the 1048576 allowed"), "{err}");
        }
        // At the limit it is read.
        let mut bytes = header("././@LongLink", tar::EntryType::GNULongName, MAX_HEADER_EXTENSION).as_bytes().to_vec();
        bytes.extend(std::iter::repeat_n(b'a', MAX_HEADER_EXTENSION as usize));
        bytes.extend(header("short", tar::EntryType::Regular, 0).as_bytes());
        let got = entries(&bytes).unwrap();
        assert_eq!(got[0].path.len(), MAX_HEADER_EXTENSION as usize);
    }

    #[test]
    fn refuses_garbage() {
        let mut h = header("a", tar::EntryType::Regular, 0).as_bytes().to_vec();
        h[0] = b'b'; // checksum now wrong
        assert!(entries(&h).is_err());
        assert!(entries(&[1u8; 100]).is_err());
        assert_eq!(entries(&[0u8; 1024]).unwrap(), vec![]);
        assert!(parse_pax(b"5 a=b\n").is_err());
        assert!(parse_pax(b"99999999999999999999999 a=b\n").is_err());
        assert_eq!(parse_pax(b"6 a=b\n").unwrap(), vec![(b"a".to_vec(), b"b".to_vec())]);
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(number(b"0000644\0"), Some(0o644));
        assert_eq!(number(&[0xff; 12]), None);
    }
}
