"""The PEP 517 build backend of zeroimage's sdist: maturin, minus its silent Rust download.

pip builds the sdist only when no wheel fits the system. maturin then needs cargo, and when cargo
is missing it downloads a whole Rust toolchain (about 890 MB, into ~/.cache/puccinialin) unless
MATURIN_NO_INSTALL_RUST is set. This backend sets it, and stops early with a message that says
what to do instead. ZEROIMAGE_INSTALL_RUST=1 restores maturin's download.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

if not os.environ.get("ZEROIMAGE_INSTALL_RUST"):
    os.environ.setdefault("MATURIN_NO_INSTALL_RUST", "1")

import maturin  # noqa: E402

NO_RUST = """
zeroimage: no prebuilt wheel matches this system, so pip is building zeroimage from its source,
and that needs a Rust toolchain (cargo on PATH, Rust >= 1.85). cargo was not found.
Choose one:
  - install Rust (your system's package manager, or https://rustup.rs), then run pip again;
  - or set ZEROIMAGE_INSTALL_RUST=1 to let maturin download a temporary Rust toolchain
    (about 890 MB, into ~/.cache/puccinialin);
  - or use a system with a prebuilt wheel (Linux x86-64 with glibc >= 2.17, see the README's
    "Supported systems"), or the static zeroimage CLI from the release downloads.
"""


def _need_cargo() -> None:
    if os.environ.get("MATURIN_NO_INSTALL_RUST") and shutil.which("cargo") is None:
        sys.stderr.write(NO_RUST)
        raise SystemExit(1)


def get_requires_for_build_wheel(config_settings: Any = None) -> list[str]:
    _need_cargo()
    return list(maturin.get_requires_for_build_wheel(config_settings))


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Any = None) -> str:
    _need_cargo()
    return str(maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings))


def build_wheel(
    wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None
) -> str:
    _need_cargo()
    return str(maturin.build_wheel(wheel_directory, config_settings, metadata_directory))


def build_editable(
    wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None
) -> str:
    _need_cargo()
    return str(maturin.build_editable(wheel_directory, config_settings, metadata_directory))


def get_requires_for_build_sdist(config_settings: Any = None) -> list[str]:
    return list(maturin.get_requires_for_build_sdist(config_settings))


def build_sdist(sdist_directory: str, config_settings: Any = None) -> str:
    return str(maturin.build_sdist(sdist_directory, config_settings))
