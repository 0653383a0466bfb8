"""The ctypes structs mirror include/sembed/*.h exactly: a C program compiled against the headers
prints every size and field offset, which must equal ctypes' (a header change would otherwise
corrupt memory silently)."""
import ctypes
import os
import shutil
import subprocess

import pytest

from sembed import _lib
from conftest import REPO


def test_struct_layouts_match_headers(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        if os.environ.get("CI"):
            pytest.fail("no C compiler for the ABI check")
        pytest.skip("no C compiler")
    inc = os.path.join(REPO, "include")
    if not os.path.isdir(inc):
        pytest.skip("not run from the repository")
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "sembed/sembed.h"', "int main(void) {"]
    expect = []
    for cname, st in _lib.STRUCTS.items():
        lines.append(f'printf("%zu\\n", sizeof(struct {cname}));')
        expect.append((f"sizeof({cname})", ctypes.sizeof(st)))
        for fname, *_ in st._fields_:
            lines.append(f'printf("%zu\\n", offsetof(struct {cname}, {fname}));')
            expect.append((f"{cname}.{fname}", getattr(st, fname).offset))
    lines.append("return 0; }")
    src = tmp_path / "abi.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "abi"
    subprocess.run([cc, "-std=c11", "-I", inc, str(src), "-o", str(exe)], check=True)
    got = subprocess.run([str(exe)], capture_output=True, check=True, text=True).stdout.split()
    assert len(got) == len(expect)
    bad = [f"{name}: C {g}, ctypes {e}" for (name, e), g in zip(expect, got) if int(g) != e]
    assert not bad, "layout mismatch: " + "; ".join(bad)


def test_every_declared_function_is_exported():
    for name in _lib._FUNCS:
        assert hasattr(_lib.lib, name), name
