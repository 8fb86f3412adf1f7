"""Write a tar archive whose members try to escape the restore target, to stdout.

  evil_tar.py dotdot     a member named ../escaped
  evil_tar.py absolute   a member named /OUTSIDE/escaped (OUTSIDE from argv[2])
  evil_tar.py symlink    a symlink `link` to OUTSIDE, then a file link/escaped through it
"""
import io
import sys
import tarfile

case, outside = sys.argv[1], sys.argv[2]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
    def add(name, data=b"pwned\n"):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    add("ok/first.txt")
    if case == "dotdot":
        add("ok/../../escaped")
    elif case == "absolute":
        add(outside.rstrip("/") + "/escaped")
    elif case == "symlink":
        link = tarfile.TarInfo("ok/link")
        link.type = tarfile.SYMTYPE
        link.linkname = outside
        t.addfile(link)
        add("ok/link/escaped")
    else:
        sys.exit(f"unknown case {case}")
sys.stdout.buffer.write(buf.getvalue())
