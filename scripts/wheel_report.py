"""Print what a built wheel asks of the user's machine.

    python scripts/wheel_report.py dist/anndataoom-*.whl

Size of the wheel, ``auditwheel show`` (the manylinux policy it satisfies) and
the newest GLIBC symbol version its extension needs (the oldest glibc it runs
on). Exits non-zero if the wheel is not manylinux2014 (glibc 2.17) compatible.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from elftools.elf.elffile import ELFFile  # auditwheel's own dependency

MANYLINUX2014_GLIBC = (2, 17)


def glibc_versions(so: Path) -> set[tuple[int, ...]]:
    """GLIBC_x.y versions named by the imported symbols of one ELF file."""
    found = set()
    with so.open("rb") as fh:
        section = ELFFile(fh).get_section_by_name(".gnu.version_r")
        for _, auxiliaries in section.iter_versions() if section else ():
            for aux in auxiliaries:
                m = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)*)", aux.name)
                if m:
                    found.add(tuple(int(p) for p in m.group(1).split(".")))
    return found


def main(wheel: str) -> int:
    """Report on ``wheel``; 1 if it needs a glibc newer than 2.17."""
    path = Path(wheel)
    print(f"wheel: {path.name}")
    print(f"size:  {path.stat().st_size / 2**20:.1f} MiB")
    subprocess.run([sys.executable, "-m", "auditwheel", "show", str(path)], check=True)
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as zf:
        sos = [n for n in zf.namelist() if n.endswith(".so")]
        versions = set()
        for name in sos:
            versions |= glibc_versions(Path(zf.extract(name, tmp)))
    newest = max(versions)
    print(f"newest GLIBC symbol version needed: GLIBC_{'.'.join(map(str, newest))} "
          f"({', '.join(sos)})")
    if newest > MANYLINUX2014_GLIBC:
        print("error: needs a newer glibc than manylinux2014 (2.17)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
