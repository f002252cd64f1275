"""Split a MySQL script into statements (no Django: the benches use it too)."""

from __future__ import annotations


def split_sql(text: str) -> list[str]:
    out: list[str] = []
    buf: list[str] = []
    in_str: str | None = None
    i = 0
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    src = "\n".join(lines)
    while i < len(src):
        ch = src[i]
        if in_str:
            buf.append(ch)
            if ch == "\\" and i + 1 < len(src):
                buf.append(src[i + 1])
                i += 2
                continue
            if ch == in_str:
                in_str = None
        elif ch in ("'", '"', "`"):
            in_str = ch
            buf.append(ch)
        elif ch == ";":
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
        else:
            buf.append(ch)
        i += 1
    tail = "".join(buf).strip()
    if tail:
        out.append(tail)
    return out
