//! Programs to put into images: the `hello` test program built static, dynamic, or for
//! arm64, and hand-made ELF headers of foreign architectures.
//!
//! `hello` (source: `tests/fixtures/hello.c`) always prints [`HELLO_LINE`] first, then
//! handles its arguments in order, one output line each:
//!
//! | argument      | prints                                                   |
//! |---------------|----------------------------------------------------------|
//! | `--uid`       | `uid=<getuid> gid=<getgid>`                              |
//! | `--env NAME`  | `env NAME=<value>` or `env NAME is unset`                |
//! | `--cat FILE`  | the bytes of FILE, or `error: cat FILE: <reason>`        |
//! | `--write P`   | `wrote P` (after writing a line to P), or `error: write P: <reason>` |
//! | `--tz`        | `tz=<zone name> offset=<+hhmm>` of the local time now    |
//! | `--cwd`       | `cwd=<working directory>`                                |
//! | `--argv0`     | `argv0=<argv[0]>`                                        |
//! | `--uname`     | `machine=<uname -m>` (`aarch64` under QEMU for arm64)    |
//! | `--exit N`    | nothing; exits with status N at once                     |
//! | anything else | `arg=<argument>`                                         |
//!
//! Errors are printed on stdout too and make the exit status 1.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{exec_ok, require_tool};

/// The first line `hello` always prints.
pub const HELLO_LINE: &str = "hello from zeroimage";

/// The C source of `hello`.
pub const HELLO_SOURCE: &str = include_str!("../fixtures/hello.c");

/// How to build `hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloBuild {
    /// `gcc -static -O2`: runs on scratch images (x86_64 host).
    Static,
    /// Plain `gcc -O2`: dynamically linked against glibc (`PT_INTERP`, `DT_NEEDED libc.so.6`).
    Dynamic,
    /// `aarch64-linux-gnu-gcc -static -O2` (Debian package `gcc-aarch64-linux-gnu`).
    StaticArm64,
    /// `arm-linux-gnueabihf-gcc -static -O2` (Debian package `gcc-arm-linux-gnueabihf`): an
    /// ARMv7 hard-float program (`Tag_CPU_arch: v7`).
    StaticArmhf,
}

impl HelloBuild {
    fn compiler(self) -> &'static str {
        match self {
            HelloBuild::Static | HelloBuild::Dynamic => "gcc",
            HelloBuild::StaticArm64 => "aarch64-linux-gnu-gcc",
            HelloBuild::StaticArmhf => "arm-linux-gnueabihf-gcc",
        }
    }

    fn is_static(self) -> bool {
        self != HelloBuild::Dynamic
    }
}

/// Compiles `hello` to exactly `out` (mode 0755) and returns `out`.
pub fn build_hello(out: &Path, build: HelloBuild) -> PathBuf {
    let compiler = build.compiler();
    require_tool(compiler);
    let src_dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let source = src_dir.path().join("hello.c");
    fs::write(&source, HELLO_SOURCE).expect("cannot write hello.c");
    let mut cmd = Command::new(compiler);
    if build.is_static() {
        cmd.arg("-static");
    }
    cmd.args(["-O2", "-Wall", "-o"]).arg(out).arg(&source);
    exec_ok(&mut cmd);
    set_mode(out, 0o755);
    out.to_path_buf()
}

/// `DIR/hello`, built static for x86_64: the program most tests put into a scratch image.
pub fn static_hello(dir: &Path) -> PathBuf {
    build_hello(&dir.join("hello"), HelloBuild::Static)
}

/// `DIR/hello-dynamic`, dynamically linked: must be refused on a scratch base.
pub fn dynamic_hello(dir: &Path) -> PathBuf {
    build_hello(&dir.join("hello-dynamic"), HelloBuild::Dynamic)
}

/// `DIR/hello-arm64`, built static for aarch64 (does not run on the x86_64 host).
pub fn static_hello_arm64(dir: &Path) -> PathBuf {
    build_hello(&dir.join("hello-arm64"), HelloBuild::StaticArm64)
}

/// `DIR/hello-armhf`, static, for linux/arm/v7.
pub fn static_hello_armhf(dir: &Path) -> PathBuf {
    build_hello(&dir.join("hello-armhf"), HelloBuild::StaticArmhf)
}

/// Make sure the kernel runs arm64 and arm programs through QEMU user emulation
/// (binfmt_misc, with the F flag so that containers can use it too): mount binfmt_misc when
/// a fresh machine has not, and enable Debian's `qemu-user-static` registrations. Once per
/// process; panics with advice when it cannot.
pub fn ensure_qemu() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        require_tool("update-binfmts");
        let binfmt = Path::new("/proc/sys/fs/binfmt_misc");
        if !binfmt.join("register").exists() {
            exec_ok(Command::new("mount").args(["-t", "binfmt_misc", "binfmt_misc"]).arg(binfmt));
        }
        for name in ["qemu-aarch64", "qemu-arm"] {
            if !binfmt.join(name).exists() {
                exec_ok(Command::new("update-binfmts").args(["--enable", name]));
            }
        }
    });
}

/// Architectures [`tiny_elf`] can write a header for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfMachine {
    /// `EM_X86_64` (62), 64-bit little-endian.
    X86_64,
    /// `EM_AARCH64` (183), 64-bit little-endian.
    Aarch64,
    /// `EM_RISCV` (243), 64-bit little-endian.
    Riscv64,
    /// `EM_PPC64` (21), 64-bit little-endian (ppc64le).
    Ppc64le,
    /// `EM_S390` (22), 64-bit big-endian (s390x).
    S390x,
    /// `EM_ARM` (40), 32-bit little-endian, EABI5.
    Arm,
    /// `EM_386` (3), 32-bit little-endian.
    I386,
}

impl ElfMachine {
    /// The `e_machine` value.
    pub fn e_machine(self) -> u16 {
        match self {
            ElfMachine::X86_64 => 62,
            ElfMachine::Aarch64 => 183,
            ElfMachine::Riscv64 => 243,
            ElfMachine::Ppc64le => 21,
            ElfMachine::S390x => 22,
            ElfMachine::Arm => 40,
            ElfMachine::I386 => 3,
        }
    }

    /// The OCI `architecture` this machine maps to.
    pub fn oci_arch(self) -> &'static str {
        match self {
            ElfMachine::X86_64 => "amd64",
            ElfMachine::Aarch64 => "arm64",
            ElfMachine::Riscv64 => "riscv64",
            ElfMachine::Ppc64le => "ppc64le",
            ElfMachine::S390x => "s390x",
            ElfMachine::Arm => "arm",
            ElfMachine::I386 => "386",
        }
    }

    fn is_64bit(self) -> bool {
        !matches!(self, ElfMachine::Arm | ElfMachine::I386)
    }

    fn is_big_endian(self) -> bool {
        self == ElfMachine::S390x
    }

    fn e_flags(self) -> u32 {
        match self {
            ElfMachine::Arm => 0x0500_0000, // EABI version 5
            ElfMachine::Ppc64le => 2,       // ELFv2 ABI
            _ => 0,
        }
    }
}

/// Writes a tiny, well-formed static ELF executable header for `machine` to `path`
/// (mode 0755): an ELF header, one `PT_LOAD` program header, no `PT_INTERP`, eight bytes
/// of filler instead of code. Enough for architecture checks; it never runs.
pub fn tiny_elf(path: &Path, machine: ElfMachine) -> PathBuf {
    const BASE: u64 = 0x40_0000;
    let (ehsize, phentsize) = if machine.is_64bit() { (64u16, 56u16) } else { (52, 32) };
    let code_len = 8u64;
    let total = u64::from(ehsize) + u64::from(phentsize) + code_len;
    let entry = BASE + u64::from(ehsize) + u64::from(phentsize);

    let mut w = ElfWriter { bytes: Vec::new(), big: machine.is_big_endian(), wide: machine.is_64bit() };
    // e_ident
    w.bytes.extend_from_slice(b"\x7fELF");
    w.bytes.push(if machine.is_64bit() { 2 } else { 1 }); // EI_CLASS
    w.bytes.push(if machine.is_big_endian() { 2 } else { 1 }); // EI_DATA
    w.bytes.push(1); // EI_VERSION
    w.bytes.push(0); // EI_OSABI: System V
    w.bytes.extend_from_slice(&[0; 8]); // EI_ABIVERSION + padding
    w.u16(2); // e_type: ET_EXEC
    w.u16(machine.e_machine());
    w.u32(1); // e_version
    w.addr(entry); // e_entry
    w.addr(u64::from(ehsize)); // e_phoff
    w.addr(0); // e_shoff
    w.u32(machine.e_flags());
    w.u16(ehsize);
    w.u16(phentsize);
    w.u16(1); // e_phnum
    w.u16(if machine.is_64bit() { 64 } else { 40 }); // e_shentsize
    w.u16(0); // e_shnum
    w.u16(0); // e_shstrndx
    debug_assert_eq!(w.bytes.len(), usize::from(ehsize));

    // One PT_LOAD covering the file, readable + executable.
    if machine.is_64bit() {
        w.u32(1); // p_type
        w.u32(5); // p_flags: R + X
        w.addr(0); // p_offset
        w.addr(BASE); // p_vaddr
        w.addr(BASE); // p_paddr
        w.addr(total); // p_filesz
        w.addr(total); // p_memsz
        w.addr(0x1000); // p_align
    } else {
        w.u32(1); // p_type
        w.addr(0); // p_offset
        w.addr(BASE); // p_vaddr
        w.addr(BASE); // p_paddr
        w.addr(total); // p_filesz
        w.addr(total); // p_memsz
        w.u32(5); // p_flags
        w.addr(0x1000); // p_align
    }
    w.bytes.extend_from_slice(&[0; 8]);
    debug_assert_eq!(w.bytes.len() as u64, total);

    fs::write(path, &w.bytes).unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
    set_mode(path, 0o755);
    path.to_path_buf()
}

struct ElfWriter {
    bytes: Vec<u8>,
    big: bool,
    wide: bool,
}

impl ElfWriter {
    fn u16(&mut self, v: u16) {
        let b = if self.big { v.to_be_bytes() } else { v.to_le_bytes() };
        self.bytes.extend_from_slice(&b);
    }

    fn u32(&mut self, v: u32) {
        let b = if self.big { v.to_be_bytes() } else { v.to_le_bytes() };
        self.bytes.extend_from_slice(&b);
    }

    /// An address or offset: 8 bytes in ELF64, 4 in ELF32.
    fn addr(&mut self, v: u64) {
        if self.wide {
            let b = if self.big { v.to_be_bytes() } else { v.to_le_bytes() };
            self.bytes.extend_from_slice(&b);
        } else {
            let v = u32::try_from(v).expect("address fits ELF32");
            self.u32(v);
        }
    }
}

/// Writes an executable shell script (`#!/bin/sh`) to `DIR/script.sh`: not an ELF at all,
/// so a scratch image cannot run it.
pub fn shell_script(dir: &Path) -> PathBuf {
    let path = dir.join("script.sh");
    fs::write(&path, "#!/bin/sh\necho hello from a script\n").expect("cannot write script.sh");
    set_mode(&path, 0o755);
    path
}

/// Sets a file's permission bits.
pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|err| panic!("cannot chmod {}: {err}", path.display()));
}
