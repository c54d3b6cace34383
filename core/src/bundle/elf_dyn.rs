//! The dynamic-linking facts of an ELF file that a loader acts on: class, byte order, machine,
//! `PT_INTERP`, and from `PT_DYNAMIC` the `DT_NEEDED`, `DT_RPATH`, `DT_RUNPATH` and `DT_SONAME`
//! strings (found through `DT_STRTAB`, mapped to a file offset by the `PT_LOAD` segments).
//!
//! Kept apart from [`crate::elf`], which only classifies programs. Every size and offset read
//! from the file is bounded and checked against the file's length: hostile input gives
//! `Ok(None)` (not an ELF file we can use) or missing fields, never a panic or a huge allocation.

use std::io::{self, Read, Seek, SeekFrom};

/// What the loader reads from an ELF file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DynInfo {
    /// 64-bit (`ELFCLASS64`).
    pub is_64: bool,
    /// Little-endian (`ELFDATA2LSB`).
    pub little_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    /// `e_type` (2 executable, 3 shared object or PIE).
    pub elf_type: u16,
    /// `PT_INTERP`.
    pub interpreter: Option<String>,
    /// Whether the file has a `PT_DYNAMIC` segment.
    pub has_dynamic: bool,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_RPATH`.
    pub rpath: Option<String>,
    /// `DT_RUNPATH`.
    pub runpath: Option<String>,
    /// `DT_SONAME`.
    pub soname: Option<String>,
    /// Whether the string table holds `GLIBC_2.34` (a glibc that defines that version has the
    /// `files` and `dns` NSS modules built into libc).
    pub defines_glibc_2_34: bool,
}

impl DynInfo {
    /// Whether `other` can be loaded into the same process (same class, byte order, machine).
    pub fn same_kind(&self, other: &DynInfo) -> bool {
        self.is_64 == other.is_64 && self.little_endian == other.little_endian && self.machine == other.machine
    }

    /// Whether running this file needs a loader or shared libraries.
    pub fn is_dynamic(&self) -> bool {
        self.interpreter.is_some() || !self.needed.is_empty()
    }
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

const MAX_PROGRAM_HEADERS: usize = 4096;
const MAX_INTERP_BYTES: u64 = 4096;
const MAX_DYNAMIC_BYTES: u64 = 1 << 20;
const MAX_STRTAB_BYTES: u64 = 64 << 20;
const MAX_NEEDED: usize = 4096;

/// Read the dynamic-linking facts of the ELF file `file`. `Ok(None)` when it is not an ELF
/// file (or its header is malformed); `Err` only for read errors.
pub(crate) fn read<R: Read + Seek>(file: &mut R) -> io::Result<Option<DynInfo>> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut head = [0u8; 64];
    file.seek(SeekFrom::Start(0))?;
    let n = read_up_to(file, &mut head)?;
    if n < 52 || !head.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    let is_64 = match head[4] {
        1 => false,
        2 if n >= 64 => true,
        _ => return Ok(None),
    };
    let little_endian = match head[5] {
        1 => true,
        2 => false,
        _ => return Ok(None),
    };
    let rd = Endian { little: little_endian, wide: is_64 };
    let mut info = DynInfo {
        is_64,
        little_endian,
        machine: rd.u16(&head[18..]),
        elf_type: rd.u16(&head[16..]),
        ..DynInfo::default()
    };
    let (phoff, phentsize, phnum) = if is_64 {
        (rd.u64(&head[32..]), rd.u16(&head[54..]) as usize, rd.u16(&head[56..]) as usize)
    } else {
        (rd.u32(&head[28..]) as u64, rd.u16(&head[42..]) as usize, rd.u16(&head[44..]) as usize)
    };
    let min_entsize = if is_64 { 56 } else { 32 };
    if phnum == 0 || phnum > MAX_PROGRAM_HEADERS || phentsize < min_entsize || phentsize > 1024 {
        return Ok(Some(info));
    }
    let fits = |offset: u64, size: u64| offset.checked_add(size).is_some_and(|end| end <= len);
    let table_len = (phnum * phentsize) as u64;
    if !fits(phoff, table_len) {
        return Ok(Some(info));
    }
    let table = read_at(file, phoff, table_len)?;

    // (vaddr, filesz, offset) of each PT_LOAD, and where PT_DYNAMIC is.
    let mut loads = Vec::new();
    let mut dynamic = None;
    for entry in table.chunks_exact(phentsize) {
        let p_type = rd.u32(entry);
        let (offset, vaddr, filesz) = if is_64 {
            (rd.u64(&entry[8..]), rd.u64(&entry[16..]), rd.u64(&entry[32..]))
        } else {
            (rd.u32(&entry[4..]) as u64, rd.u32(&entry[8..]) as u64, rd.u32(&entry[16..]) as u64)
        };
        match p_type {
            PT_LOAD => loads.push((vaddr, filesz, offset)),
            PT_INTERP if filesz <= MAX_INTERP_BYTES && fits(offset, filesz) => {
                let bytes = read_at(file, offset, filesz)?;
                info.interpreter = Some(c_string(&bytes));
            }
            PT_DYNAMIC => {
                info.has_dynamic = true;
                if filesz <= MAX_DYNAMIC_BYTES && fits(offset, filesz) {
                    dynamic = Some((offset, filesz));
                }
            }
            _ => {}
        }
    }
    let Some((dyn_offset, dyn_size)) = dynamic else { return Ok(Some(info)) };
    let bytes = read_at(file, dyn_offset, dyn_size)?;
    let entsize = if is_64 { 16 } else { 8 };
    let (mut strtab, mut strsz) = (None, None);
    let (mut needed, mut rpath, mut runpath, mut soname) = (Vec::new(), None, None, None);
    for entry in bytes.chunks_exact(entsize) {
        let (tag, value) = (rd.word(entry), rd.word(&entry[entsize / 2..]));
        match tag {
            DT_NULL => break,
            DT_NEEDED if needed.len() < MAX_NEEDED => needed.push(value),
            DT_STRTAB => strtab = Some(value),
            DT_STRSZ => strsz = Some(value),
            DT_SONAME => soname = Some(value),
            DT_RPATH => rpath = Some(value),
            DT_RUNPATH => runpath = Some(value),
            _ => {}
        }
    }
    let (Some(strtab), Some(strsz)) = (strtab, strsz) else { return Ok(Some(info)) };
    // The string table's address → file offset, through the segment that maps it.
    let offset = loads.iter().find_map(|&(vaddr, filesz, offset)| {
        let end = vaddr.checked_add(filesz)?;
        (strtab >= vaddr && strtab < end).then(|| (offset + (strtab - vaddr), end - strtab))
    });
    let Some((str_offset, mapped)) = offset else { return Ok(Some(info)) };
    let str_size = strsz.min(mapped).min(MAX_STRTAB_BYTES);
    if !fits(str_offset, str_size) {
        return Ok(Some(info));
    }
    let table = read_at(file, str_offset, str_size)?;
    let string = |index: u64| -> Option<String> {
        let start = usize::try_from(index).ok().filter(|&i| i < table.len())?;
        Some(c_string(&table[start..]))
    };
    info.needed = needed.into_iter().filter_map(string).filter(|s| !s.is_empty()).collect();
    info.rpath = rpath.and_then(string);
    info.runpath = runpath.and_then(string);
    info.soname = soname.and_then(string);
    info.defines_glibc_2_34 = table.windows(11).any(|w| w == b"GLIBC_2.34\0");
    Ok(Some(info))
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn read_at<R: Read + Seek>(file: &mut R, offset: u64, size: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; size as usize];
    file.seek(SeekFrom::Start(offset))?;
    let n = read_up_to(file, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[derive(Clone, Copy)]
struct Endian {
    little: bool,
    wide: bool,
}

impl Endian {
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.little {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    }
    fn u64(self, b: &[u8]) -> u64 {
        let a = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
        if self.little {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        }
    }
    /// An address-sized word (`Elf64_Xword` or `Elf32_Word`).
    fn word(self, b: &[u8]) -> u64 {
        if self.wide {
            self.u64(b)
        } else {
            self.u32(b) as u64
        }
    }
}

/// Builds small ELF files for tests: a header, PT_INTERP, one PT_LOAD covering the file, and
/// a PT_DYNAMIC with the given entries.
#[cfg(test)]
pub(crate) mod fixture {
    /// A 64-bit little-endian shared object or executable.
    #[derive(Default)]
    pub(crate) struct Elf<'a> {
        pub machine: u16,
        pub is_32: bool,
        pub interp: Option<&'a str>,
        pub needed: Vec<&'a str>,
        pub soname: Option<&'a str>,
        pub runpath: Option<&'a str>,
        pub rpath: Option<&'a str>,
        pub extra_strings: Vec<&'a str>,
    }

    impl Elf<'_> {
        pub(crate) fn bytes(&self) -> Vec<u8> {
            let wide = !self.is_32;
            let (ehsize, phentsize) = if wide { (64usize, 56usize) } else { (52, 32) };
            let phnum = 3;
            let interp_off = ehsize + phentsize * phnum;
            let interp = self.interp.map(|s| format!("{s}\0")).unwrap_or_default();
            // String table.
            let mut strtab = vec![0u8];
            let mut add = |s: &str| {
                let at = strtab.len() as u64;
                strtab.extend(s.as_bytes());
                strtab.push(0);
                at
            };
            let mut dynamic: Vec<(u64, u64)> = Vec::new();
            for n in &self.needed {
                dynamic.push((super::DT_NEEDED, add(n)));
            }
            if let Some(s) = self.soname {
                dynamic.push((super::DT_SONAME, add(s)));
            }
            if let Some(s) = self.runpath {
                dynamic.push((super::DT_RUNPATH, add(s)));
            }
            if let Some(s) = self.rpath {
                dynamic.push((super::DT_RPATH, add(s)));
            }
            for s in &self.extra_strings {
                add(s);
            }
            let str_off = interp_off + interp.len();
            let dyn_off = str_off + strtab.len();
            // Addresses equal file offsets plus 0x1000, to exercise the PT_LOAD mapping.
            let base = 0x1000u64;
            dynamic.push((super::DT_STRTAB, base + str_off as u64));
            dynamic.push((super::DT_STRSZ, strtab.len() as u64));
            dynamic.push((0, 0));
            let entsize = if wide { 16 } else { 8 };
            let total = dyn_off + dynamic.len() * entsize;

            let word = |v: u64, out: &mut Vec<u8>| {
                if wide {
                    out.extend(v.to_le_bytes())
                } else {
                    out.extend((v as u32).to_le_bytes())
                }
            };
            let mut f = Vec::new();
            f.extend(b"\x7fELF");
            f.extend([if wide { 2 } else { 1 }, 1, 1]);
            f.resize(16, 0);
            f.extend(3u16.to_le_bytes()); // ET_DYN
            f.extend(self.machine.to_le_bytes());
            f.extend(1u32.to_le_bytes());
            word(0, &mut f); // entry
            word(ehsize as u64, &mut f); // phoff
            word(0, &mut f); // shoff
            f.extend(0u32.to_le_bytes()); // flags
            f.extend((ehsize as u16).to_le_bytes());
            f.extend((phentsize as u16).to_le_bytes());
            f.extend((phnum as u16).to_le_bytes());
            f.extend([0u8; 6]);
            assert_eq!(f.len(), ehsize);
            let ph = |f: &mut Vec<u8>, p_type: u32, offset: u64, vaddr: u64, size: u64| {
                let start = f.len();
                f.extend(p_type.to_le_bytes());
                if wide {
                    f.extend(0u32.to_le_bytes()); // flags
                    f.extend(offset.to_le_bytes());
                    f.extend(vaddr.to_le_bytes());
                    f.extend(vaddr.to_le_bytes());
                    f.extend(size.to_le_bytes());
                    f.extend(size.to_le_bytes());
                    f.extend(0x1000u64.to_le_bytes());
                } else {
                    for v in [offset, vaddr, vaddr, size, size, 0, 0x1000] {
                        f.extend((v as u32).to_le_bytes());
                    }
                }
                f.resize(start + phentsize, 0);
            };
            let (itype, isize) = if interp.is_empty() { (6, 0) } else { (super::PT_INTERP, interp.len() as u64) };
            ph(&mut f, itype, interp_off as u64, base + interp_off as u64, isize);
            ph(&mut f, super::PT_LOAD, 0, base, total as u64);
            let dyn_size = (dynamic.len() * entsize) as u64;
            ph(&mut f, super::PT_DYNAMIC, dyn_off as u64, base + dyn_off as u64, dyn_size);
            f.extend(interp.as_bytes());
            f.extend(&strtab);
            for (tag, value) in dynamic {
                word(tag, &mut f);
                word(value, &mut f);
            }
            assert_eq!(f.len(), total);
            f
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::Elf;
    use super::*;
    use std::io::Cursor;

    fn parse(bytes: Vec<u8>) -> Option<DynInfo> {
        read(&mut Cursor::new(bytes)).unwrap()
    }

    #[test]
    fn reads_dynamic_strings() {
        for is_32 in [false, true] {
            let elf = Elf {
                machine: 62,
                is_32,
                interp: Some("/lib64/ld-linux-x86-64.so.2"),
                needed: vec!["libz.so.1", "libc.so.6"],
                soname: Some("libfoo.so.1"),
                runpath: Some("$ORIGIN/../lib"),
                rpath: Some("/opt/x"),
                extra_strings: vec!["GLIBC_2.34"],
            };
            let info = parse(elf.bytes()).unwrap();
            assert_eq!(info.is_64, !is_32);
            assert_eq!(info.machine, 62);
            assert_eq!(info.interpreter.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
            assert_eq!(info.needed, ["libz.so.1", "libc.so.6"]);
            assert_eq!(info.soname.as_deref(), Some("libfoo.so.1"));
            assert_eq!(info.runpath.as_deref(), Some("$ORIGIN/../lib"));
            assert_eq!(info.rpath.as_deref(), Some("/opt/x"));
            assert!(info.defines_glibc_2_34);
            assert!(info.is_dynamic());
        }
    }

    #[test]
    fn reads_real_files() {
        let exe = std::env::current_exe().unwrap();
        let info = read(&mut std::fs::File::open(exe).unwrap()).unwrap().unwrap();
        // Test binaries of the default gnu target are dynamically linked against libc.
        if info.interpreter.is_some() {
            assert!(info.needed.iter().any(|n| n.starts_with("libc.so")), "{info:?}");
        }
    }

    #[test]
    fn not_elf() {
        for junk in [&b""[..], b"hello world", b"\x7fELF", &[0x7f, b'E', b'L', b'F', 3, 1, 1][..]] {
            assert_eq!(parse(junk.to_vec()), None);
        }
    }

    #[test]
    fn hostile_input_never_panics() {
        let good = Elf { machine: 62, interp: Some("/ld.so"), needed: vec!["liba.so"], ..Elf::default() }.bytes();
        // Flip every byte of the headers and tables to a few hostile values, one at a time,
        // and truncate at every length: no panic, no error (it is all in memory).
        for i in 0..good.len() {
            for value in [0x00, 0xff, 0x7f, 0x80] {
                let mut bad = good.clone();
                bad[i] = value;
                let _ = parse(bad);
            }
            let _ = parse(good[..i].to_vec());
        }
    }
}
