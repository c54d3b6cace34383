//! What kind of program a file is: an ELF executable (its architecture, whether it is
//! dynamically linked), a script, or something else. Only headers are read.

use std::io::{self, Read, Seek, SeekFrom};

/// What the first bytes of a program say it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramKind {
    /// An ELF file.
    Elf(ElfInfo),
    /// A script starting with `#!`; the interpreter line.
    Script(String),
    /// Anything else.
    Unknown,
}

/// The facts zeroimage needs from an ELF header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// `e_machine`.
    pub machine: u16,
    /// 64-bit (`ELFCLASS64`).
    pub is_64: bool,
    /// Little-endian (`ELFDATA2LSB`).
    pub little_endian: bool,
    /// `e_type`: 2 = executable, 3 = shared object (PIE executables are 3).
    pub elf_type: u16,
    /// The `PT_INTERP` path, for dynamically linked programs.
    pub interpreter: Option<String>,
    /// Whether the dynamic section lists `DT_NEEDED` libraries.
    pub needs_libraries: bool,
    /// For 32-bit ARM: the variant its `.ARM.attributes` section declares (`Tag_CPU_arch`:
    /// `v5`, `v6`, `v7`, `v8`), when it has one.
    pub arm_variant: Option<&'static str>,
}

impl ElfInfo {
    /// The OCI architecture (`amd64`, `arm64`, …) and default variant, when known.
    pub fn architecture(&self) -> Option<(&'static str, Option<&'static str>)> {
        Some(match (self.machine, self.is_64, self.little_endian) {
            (62, true, _) => ("amd64", None),
            (183, true, true) => ("arm64", None),
            (40, false, true) => ("arm", Some(self.arm_variant.unwrap_or("v7"))),
            (3, false, _) => ("386", None),
            (21, true, true) => ("ppc64le", None),
            (21, true, false) => ("ppc64", None),
            (22, true, _) => ("s390x", None),
            (243, true, _) => ("riscv64", None),
            (8, true, true) => ("mips64le", None),
            (8, true, false) => ("mips64", None),
            (258, true, _) => ("loong64", None),
            _ => return None,
        })
    }

    /// A human name for the machine, for error messages about unknown architectures.
    pub fn machine_name(&self) -> String {
        match self.architecture() {
            Some((arch, _)) => arch.to_string(),
            None => format!("ELF machine {}", self.machine),
        }
    }

    /// Whether running this program needs a dynamic loader and shared libraries.
    pub fn is_dynamic(&self) -> bool {
        self.interpreter.is_some() || self.needs_libraries
    }

    /// Whether the file is something a kernel can execute (not an object file or core dump).
    pub fn is_executable(&self) -> bool {
        matches!(self.elf_type, 2 | 3)
    }
}

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NEEDED: u64 = 1;
/// Headers we are willing to read from an untrusted file.
const MAX_PROGRAM_HEADERS: usize = 4096;
const MAX_DYNAMIC_BYTES: u64 = 1 << 20;
const MAX_INTERP_BYTES: u64 = 4096;

/// Inspect the start of a program file. `Err` only for read errors; a short or malformed ELF
/// header is reported as [`ProgramKind::Unknown`].
pub fn inspect<R: Read + Seek>(file: &mut R) -> io::Result<ProgramKind> {
    let mut ident = [0u8; 64];
    let n = read_up_to(file, &mut ident)?;
    let head = &ident[..n];
    if head.starts_with(b"#!") {
        let line = head[2..].split(|&b| b == b'\n').next().unwrap_or_default();
        return Ok(ProgramKind::Script(String::from_utf8_lossy(line).trim().to_string()));
    }
    if !head.starts_with(b"\x7fELF") || n < 52 {
        return Ok(ProgramKind::Unknown);
    }
    let is_64 = match head[4] {
        1 => false,
        2 => true,
        _ => return Ok(ProgramKind::Unknown),
    };
    let little_endian = match head[5] {
        1 => true,
        2 => false,
        _ => return Ok(ProgramKind::Unknown),
    };
    if is_64 && n < 64 {
        return Ok(ProgramKind::Unknown);
    }
    let rd = Endian(little_endian);
    let elf_type = rd.u16(&head[16..]);
    let machine = rd.u16(&head[18..]);
    let (phoff, phentsize, phnum) = if is_64 {
        (rd.u64(&head[32..]), rd.u16(&head[54..]) as usize, rd.u16(&head[56..]) as usize)
    } else {
        (rd.u32(&head[28..]) as u64, rd.u16(&head[42..]) as usize, rd.u16(&head[44..]) as usize)
    };
    let mut info = ElfInfo {
        machine,
        is_64,
        little_endian,
        elf_type,
        interpreter: None,
        needs_libraries: false,
        arm_variant: None,
    };
    if machine == EM_ARM && !is_64 {
        info.arm_variant = arm_variant(file, head, rd)?;
    }
    let min_entsize = if is_64 { 56 } else { 32 };
    if phnum == 0 || phnum > MAX_PROGRAM_HEADERS || phentsize < min_entsize {
        return Ok(ProgramKind::Elf(info));
    }
    let len = file.seek(SeekFrom::End(0))?;
    let fits = |offset: u64, size: u64| offset.checked_add(size).is_some_and(|end| end <= len);
    if !fits(phoff, (phnum * phentsize) as u64) {
        return Ok(ProgramKind::Elf(info));
    }
    let mut table = vec![0u8; phnum * phentsize];
    file.seek(SeekFrom::Start(phoff))?;
    if read_up_to(file, &mut table)? < table.len() {
        return Ok(ProgramKind::Elf(info));
    }
    for entry in table.chunks_exact(phentsize) {
        let p_type = rd.u32(entry);
        let (offset, filesz) = if is_64 {
            (rd.u64(&entry[8..]), rd.u64(&entry[32..]))
        } else {
            (rd.u32(&entry[4..]) as u64, rd.u32(&entry[16..]) as u64)
        };
        match p_type {
            PT_INTERP if filesz <= MAX_INTERP_BYTES && fits(offset, filesz) => {
                let mut buf = vec![0u8; filesz as usize];
                file.seek(SeekFrom::Start(offset))?;
                let n = read_up_to(file, &mut buf)?;
                let path = buf[..n].split(|&b| b == 0).next().unwrap_or_default();
                info.interpreter = Some(String::from_utf8_lossy(path).into_owned());
            }
            PT_DYNAMIC if filesz <= MAX_DYNAMIC_BYTES && fits(offset, filesz) => {
                let mut buf = vec![0u8; filesz as usize];
                file.seek(SeekFrom::Start(offset))?;
                let n = read_up_to(file, &mut buf)?;
                let entsize = if is_64 { 16 } else { 8 };
                for dyn_entry in buf[..n].chunks_exact(entsize) {
                    let tag = if is_64 { rd.u64(dyn_entry) } else { rd.u32(dyn_entry) as u64 };
                    if tag == 0 {
                        break;
                    }
                    if tag == DT_NEEDED {
                        info.needs_libraries = true;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(ProgramKind::Elf(info))
}

const EM_ARM: u16 = 40;
const SHT_ARM_ATTRIBUTES: u32 = 0x7000_0003;
const MAX_SECTION_HEADERS: usize = 65_535;
const MAX_ATTRIBUTES_BYTES: u64 = 1 << 16;

/// The architecture variant a 32-bit ARM ELF's `.ARM.attributes` section declares: the
/// `aeabi` subsection's `Tag_CPU_arch` (ARM IHI 0045), as Docker and containerd name it.
fn arm_variant<R: Read + Seek>(file: &mut R, head: &[u8], rd: Endian) -> io::Result<Option<&'static str>> {
    let (shoff, shentsize, shnum) =
        (rd.u32(&head[32..]) as u64, rd.u16(&head[46..]) as usize, rd.u16(&head[48..]) as usize);
    if shoff == 0 || shnum == 0 || shnum > MAX_SECTION_HEADERS || shentsize < 40 {
        return Ok(None);
    }
    let len = file.seek(SeekFrom::End(0))?;
    let fits = |offset: u64, size: u64| offset.checked_add(size).is_some_and(|end| end <= len);
    if !fits(shoff, (shnum * shentsize) as u64) {
        return Ok(None);
    }
    let mut table = vec![0u8; shnum * shentsize];
    file.seek(SeekFrom::Start(shoff))?;
    if read_up_to(file, &mut table)? < table.len() {
        return Ok(None);
    }
    let Some(section) = table.chunks_exact(shentsize).find(|s| rd.u32(&s[4..]) == SHT_ARM_ATTRIBUTES) else {
        return Ok(None);
    };
    let (offset, size) = (rd.u32(&section[16..]) as u64, rd.u32(&section[20..]) as u64);
    if size > MAX_ATTRIBUTES_BYTES || !fits(offset, size) {
        return Ok(None);
    }
    let mut buf = vec![0u8; size as usize];
    file.seek(SeekFrom::Start(offset))?;
    let n = read_up_to(file, &mut buf)?;
    Ok(cpu_arch(&buf[..n], rd).map(|arch| match arch {
        0..=5 => "v5",
        6..=9 | 11 | 12 => "v6",
        10 | 13 => "v7",
        _ => "v8",
    }))
}

/// `Tag_CPU_arch` from the bytes of an `.ARM.attributes` section, if it is there.
fn cpu_arch(section: &[u8], rd: Endian) -> Option<u64> {
    let mut rest = section.strip_prefix(b"A")?;
    while rest.len() >= 4 {
        let length = (rd.u32(rest) as usize).min(rest.len());
        if length < 4 {
            return None;
        }
        let (subsection, next) = rest.split_at(length);
        rest = next;
        let body = &subsection[4..];
        let vendor_end = body.iter().position(|&b| b == 0)?;
        if &body[..vendor_end] != b"aeabi" {
            continue;
        }
        let mut attrs = &body[vendor_end + 1..];
        while attrs.len() >= 5 {
            let tag = attrs[0];
            let size = (rd.u32(&attrs[1..]) as usize).min(attrs.len());
            if size < 5 {
                return None;
            }
            if tag == 1 {
                // Tag_File: the attributes of the whole file.
                let mut data = &attrs[5..size];
                while !data.is_empty() {
                    let (tag, used) = uleb(data)?;
                    data = &data[used..];
                    if tag == 6 {
                        return uleb(data).map(|(value, _)| value);
                    }
                    // Tags 4, 5 and 67, and odd tags above 32, hold strings; the rest numbers.
                    if tag == 4 || tag == 5 || tag == 67 || (tag > 32 && tag % 2 == 1) {
                        let end = data.iter().position(|&b| b == 0)?;
                        data = &data[end + 1..];
                    } else {
                        let (_, used) = uleb(data)?;
                        data = &data[used..];
                    }
                }
            }
            attrs = &attrs[size..];
        }
    }
    None
}

fn uleb(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
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
struct Endian(bool);

impl Endian {
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.0 {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.0 {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    }
    fn u64(self, b: &[u8]) -> u64 {
        let a = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
        if self.0 {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A minimal 64-bit little-endian ELF with the given machine and optional PT_INTERP.
    pub(crate) fn tiny_elf(machine: u16, interp: Option<&str>) -> Vec<u8> {
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little-endian
        f[6] = 1;
        f[16..18].copy_from_slice(&2u16.to_le_bytes());
        f[18..20].copy_from_slice(&machine.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        f[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        let phnum: u16 = if interp.is_some() { 1 } else { 0 };
        f[56..58].copy_from_slice(&phnum.to_le_bytes());
        if let Some(path) = interp {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&PT_INTERP.to_le_bytes());
            let off = 64 + 56;
            ph[8..16].copy_from_slice(&(off as u64).to_le_bytes());
            ph[32..40].copy_from_slice(&(path.len() as u64 + 1).to_le_bytes());
            f.extend(ph);
            f.extend(path.as_bytes());
            f.push(0);
        }
        f
    }

    #[test]
    fn reads_machine_and_interpreter() {
        let elf = tiny_elf(183, Some("/lib/ld-linux-aarch64.so.1"));
        let ProgramKind::Elf(info) = inspect(&mut Cursor::new(elf)).unwrap() else { panic!() };
        assert_eq!(info.architecture(), Some(("arm64", None)));
        assert_eq!(info.interpreter.as_deref(), Some("/lib/ld-linux-aarch64.so.1"));
        assert!(info.is_dynamic());

        let ProgramKind::Elf(info) = inspect(&mut Cursor::new(tiny_elf(62, None))).unwrap() else { panic!() };
        assert_eq!(info.architecture(), Some(("amd64", None)));
        assert!(!info.is_dynamic());
        assert!(info.is_executable());
    }

    #[test]
    fn recognises_scripts_and_junk() {
        let script = inspect(&mut Cursor::new(b"#!/bin/sh\necho hi\n".to_vec())).unwrap();
        assert_eq!(script, ProgramKind::Script("/bin/sh".into()));
        for junk in [&b""[..], b"hello", b"\x7fELF", b"\x7fELF\x03\x01"] {
            assert_eq!(inspect(&mut Cursor::new(junk.to_vec())).unwrap(), ProgramKind::Unknown);
        }
    }

    #[test]
    fn hostile_headers_do_not_panic() {
        let mut elf = tiny_elf(62, Some("/lib/ld.so"));
        elf[32..40].copy_from_slice(&u64::MAX.to_le_bytes()); // phoff far away
        assert!(inspect(&mut Cursor::new(elf)).is_ok());
        let mut elf = tiny_elf(62, Some("/lib/ld.so"));
        elf[64 + 32..64 + 40].copy_from_slice(&u64::MAX.to_le_bytes()); // huge interp
        assert!(inspect(&mut Cursor::new(elf)).is_ok());
    }

    #[test]
    fn reads_the_arm_architecture_version() {
        // aeabi, Tag_File: Tag_CPU_name "6", Tag_CPU_arch 6 (v6), Tag_ARM_ISA_use 1.
        let mut file = vec![1u8, 0, 0, 0, 0];
        file.extend(b"\x05ARM6\x00\x06\x06\x08\x01");
        let size = file.len() as u32;
        file[1..5].copy_from_slice(&size.to_le_bytes());
        let mut sub = vec![0u8; 4];
        sub.extend(b"aeabi\x00");
        sub.extend(&file);
        let len = sub.len() as u32;
        sub[..4].copy_from_slice(&len.to_le_bytes());
        let mut section = b"A".to_vec();
        section.extend(&sub);
        assert_eq!(cpu_arch(&section, Endian(true)), Some(6));
        assert_eq!(cpu_arch(b"A\xff\xff", Endian(true)), None);
        assert_eq!(cpu_arch(b"", Endian(true)), None);
    }

    #[test]
    fn reads_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let kind = inspect(&mut std::fs::File::open(exe).unwrap()).unwrap();
        let ProgramKind::Elf(info) = kind else { panic!("{kind:?}") };
        assert!(info.is_executable());
        assert!(info.architecture().is_some());
    }
}
