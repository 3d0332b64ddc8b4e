"""The address `serve` prints, as a QR code in the terminal: a phone opens the page by pointing
its camera at the screen instead of typing a token. Uses segno (the [serve] extra) when present."""

from __future__ import annotations

QUIET = 4  # light modules around the code, as the QR standard asks (scanners need the margin)
UPPER_HALF = "\u2580"  # one character cell shows two modules: upper in the foreground colour
_FG = {True: "30", False: "97"}  # ANSI black / bright white, whatever the terminal's theme
_BG = {True: "40", False: "107"}


def modules(text: str) -> list[list[bool]] | None:
    """The code's modules (True = dark) with the quiet zone, or None without segno."""
    try:
        import segno
    except ImportError:
        return None
    code = segno.make_qr(text, error="m")
    width = len(code.matrix[0]) + 2 * QUIET
    blank = [False] * width
    rows = [[False] * QUIET + [bool(m) for m in row] + [False] * QUIET for row in code.matrix]
    return [list(blank) for _ in range(QUIET)] + rows + [list(blank) for _ in range(QUIET)]


def terminal(text: str) -> str | None:
    """The code as lines of half blocks with explicit colours (two rows of modules per line)."""
    grid = modules(text)
    if grid is None:
        return None
    if len(grid) % 2:
        grid.append([False] * len(grid[0]))
    lines = []
    for top, bottom in zip(grid[::2], grid[1::2], strict=True):
        cells = "".join(f"\x1b[{_FG[t]};{_BG[b]}m{UPPER_HALF}" for t, b in zip(top, bottom, strict=True))
        lines.append(cells + "\x1b[0m")
    return "\n".join(lines)
