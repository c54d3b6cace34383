#!/usr/bin/env python3
"""Make a deterministic benchmark program of SIZE bytes that compresses like real binaries.

usage: mkinput.py HEAD SIZE OUT

OUT starts with HEAD (a small static executable, so zeroimage accepts OUT as a static program)
and continues with the ELF files found under /usr/bin and /usr/lib, taken in sorted path order
(symlinks and non-ELF files skipped), repeated if needed, truncated to SIZE bytes. Trailing data
after an ELF's segments is ignored by the loader, so OUT still runs as HEAD does.
On one machine the bytes are always the same; on another, they depend on its installed files.
"""
import os
import sys


def elf_files(roots):
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                try:
                    with open(path, "rb") as f:
                        if f.read(4) == b"\x7fELF":
                            yield path
                except OSError:
                    continue


def main():
    head, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(head, "rb") as f:
        data = f.read()
    written = 0
    tmp = out + ".tmp"
    with open(tmp, "wb") as o:
        chunk = data[:size]
        o.write(chunk)
        written += len(chunk)
        while written < size:
            before = written
            for path in elf_files(["/usr/bin", "/usr/lib"]):
                try:
                    with open(path, "rb") as f:
                        chunk = f.read(size - written)
                except OSError:
                    continue
                o.write(chunk)
                written += len(chunk)
                if written >= size:
                    break
            if written == before:
                sys.exit("no ELF files found under /usr/bin and /usr/lib")
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
