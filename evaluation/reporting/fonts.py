"""The reports' own copy of Noto Sans CJK SC, cut down to the characters of GB 2312.

WeasyPrint embeds a subset of every font a PDF uses, and it makes that subset from the whole font
file each time: for Debian's Noto Sans CJK (one 19 MB collection holding 65,535 glyphs for Japanese,
Korean and both Chinese scripts), about 0.1 s per document and per weight, and shaping text against
its layout tables is slower too. So `make setup` cuts the Simplified Chinese face down, once, to GB 2312
(6,763 hanzi) with the punctuation, symbols, Latin and full-width forms a report prints: about 3.5 MB
per weight, under templates/fonts/ (git-ignored; WeasyPrint may read nothing outside templates/).

The glyphs are Noto's own (SIL Open Font License 1.1, which allows subsetting and has no reserved
names), so a page looks exactly as before. A character outside the copy (a rare character in a county
or company name) is still printed: the stylesheets name the full "Noto Sans CJK SC" next, and Pango
takes that glyph from it. Without the copy (setup not run), reports use the full font, only slower.

    python -m evaluation.reporting.fonts          # what `make setup` runs (HarfBuzz's hb-subset)
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

FAMILY = "Noto Sans CJK SC GB2312"
FALLBACK = "Noto Sans CJK SC"
FONT_DIR = Path(__file__).resolve().parents[2] / "templates" / "fonts"
WEIGHTS = {"Regular": 400, "Bold": 700}

# Besides the GB 2312 hanzi: ASCII and Latin-1, general punctuation (— … ‰ ※), super/subscripts,
# letterlike symbols and number forms (℃ Ⅲ), arrows (↑ ↗ →), enclosed numbers (①), box drawing and
# geometric shapes (● ■ ▲), CJK symbols and punctuation (、。《》【】), full-width forms (（ ） ：).
RANGES = ((0x20, 0x7E), (0xA0, 0x17F), (0x2000, 0x206F), (0x2070, 0x209F), (0x2100, 0x218F),
          (0x2190, 0x21FF), (0x2200, 0x22FF), (0x2460, 0x24FF), (0x2500, 0x25FF), (0x2600, 0x26FF),
          (0x3000, 0x303F), (0xFF00, 0xFFEF))


def coverage() -> list[int]:
    """The code points of the copy: RANGES plus every character of GB 2312."""
    points = {c for lo, hi in RANGES for c in range(lo, hi + 1)}
    for row in range(0xA1, 0xF8):
        for cell in range(0xA1, 0xFF):
            try:
                points.add(ord(bytes((row, cell)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return sorted(points)


def path(weight: str) -> Path:
    return FONT_DIR / f"NotoSansCJKsc-GB2312-{weight}.otf"


def available() -> bool:
    return all(path(w).is_file() for w in WEIGHTS)


def face_css() -> str:
    """@font-face rules for the copy (nothing when it has not been built)."""
    if not available():
        return ""
    return "".join(f'@font-face {{ font-family: "{FAMILY}"; src: url("fonts/{path(w).name}"); font-weight: {n}; }}\n'
                   for w, n in WEIGHTS.items())


def _source(weight: str) -> tuple[Path, int]:
    """The installed Noto Sans CJK SC file and face index for a weight, from fontconfig."""
    found = subprocess.run(["fc-match", "-f", "%{file}\n%{index}", f"{FALLBACK}:style={weight}"],
                           capture_output=True, text=True, check=True).stdout.split("\n")
    file, index = Path(found[0]), int(found[1] or 0)
    if "NotoSansCJK" not in file.name:
        raise FileNotFoundError(f"{FALLBACK} {weight} is not installed (fc-match found {file})")
    return file, index


def build(force: bool = False) -> list[Path]:
    """Cut each weight down with hb-subset (about 0.2 s each); skipped when the copy is current."""
    tool = shutil.which("hb-subset")
    if tool is None:
        raise FileNotFoundError("hb-subset not found (Debian package libharfbuzz-bin)")
    points = coverage()
    unicodes = ",".join(f"{c:X}" for c in points)
    made = []
    for weight in WEIGHTS:
        source, index = _source(weight)
        stat = source.stat()
        recipe = hashlib.sha256(f"{source}|{index}|{stat.st_size}|{stat.st_mtime_ns}|{unicodes}".encode()).hexdigest()
        target, stamp = path(weight), path(weight).with_suffix(".recipe")
        if not force and target.is_file() and stamp.is_file() and stamp.read_text() == recipe:
            continue
        FONT_DIR.mkdir(parents=True, exist_ok=True)
        listing = FONT_DIR / f".unicodes-{weight}.txt"
        listing.write_text(unicodes)
        partial = target.with_suffix(".partial")
        try:
            subprocess.run([tool, f"--font-file={source}", f"--face-index={index}", f"--unicodes-file={listing}",
                            "--name-IDs=*", f"--output-file={partial}"], capture_output=True, check=True)
            partial.replace(target)
        finally:
            listing.unlink(missing_ok=True)
            partial.unlink(missing_ok=True)
        stamp.write_text(recipe)
        made.append(target)
    return made


def main() -> int:
    try:
        made = build(force="--force" in sys.argv[1:])
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"报告字体子集未生成（报告将使用完整字体，速度较慢）/ font subset not built: {exc}", file=sys.stderr)
        return 1
    for target in made:
        print(f"==> {target.relative_to(FONT_DIR.parents[1])} ({target.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
