"""The notes as a web page: LaTeX to MathML, the page itself, and a real headless browser.

``browser_probe`` loads a page in Debian's ``chromium`` (headless) with a small script
appended that reports, once the page has loaded, how many images decoded, how many
``<math>`` elements the browser lays out as MathML, whether a fraction is stacked, and
the rendered text; the tests on built notes (test_notes_fast.py, test_notes_build.py)
use it. Without chromium those tests skip, saying what to install.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ntksym.derive.text import Tex, Text
from ntksym.errors import GeneratedFileError, NotesBuildError
from ntksym.notes.build import refuse_foreign
from ntksym.notes.html import html_prose, html_text, png_data_uri
from ntksym.notes.mathml import to_mathml

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)

#: Appended to a copy of the page: reports what the browser rendered, in <pre id=probe>.
PROBE = """<script>
window.addEventListener("load", () => {
  const maths = [...document.querySelectorAll("math")];
  const imgs = [...document.images];
  const frac = document.querySelector("mfrac");
  let stacked = false;
  if (frac) {
    const a = frac.children[0].getBoundingClientRect();
    const b = frac.children[1].getBoundingClientRect();
    stacked = a.bottom <= b.top + 1 && a.height > 0 && b.height > 0;
  }
  const report = {
    images: imgs.length,
    decoded: imgs.filter((i) => i.complete && i.naturalWidth > 0).length,
    math: maths.length,
    laid_out: maths.filter((m) => getComputedStyle(m).display.includes("math")).length,
    empty: maths.filter((m) => m.getBoundingClientRect().width === 0).length,
    stacked: stacked,
    boxed: [...document.querySelectorAll(".hl")].filter(
      (e) => getComputedStyle(e).borderTopStyle === "solid").length,
    text: document.body.innerText,
  };
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(report);
  document.body.appendChild(pre);
});
</script>
"""


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def browser_probe(page: Path, workdir: Path) -> dict:
    """Load ``page`` in headless chromium and return what :data:`PROBE` reports."""
    probe = workdir / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    proc = _chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    m = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"the page did not finish loading in chromium: {proc.stderr[-800:]}"
    return json.loads(html.unescape(m.group(1)))


def screenshot(page: Path, png: Path, height: int = 2400) -> Path:
    """A screenshot of the top of ``page`` (1000 px wide), written to ``png``."""
    _chromium(f"--window-size=1000,{height}", f"--screenshot={png}", page.as_uri())
    assert png.is_file(), "chromium wrote no screenshot"
    return png


def ink(png: Path) -> float:
    """The fraction of a screenshot's pixels that are not near-white (0 for a blank page)."""
    import matplotlib.image

    rgb = matplotlib.image.imread(png)[..., :3]
    return float((rgb.min(axis=-1) < 0.8).mean())


def problems(report: dict, images: int) -> list[str]:
    """What is wrong with a rendered page: formulas not laid out, TeX left, figures missing."""
    found = []
    if report["laid_out"] != report["math"]:
        found.append("some <math> is not laid out as MathML")
    if report["empty"]:
        found.append("some formula rendered with zero width")
    if not report["stacked"]:
        found.append("a fraction is not stacked: MathML is not rendered natively")
    if report["images"] != images or report["decoded"] != images:
        found.append(f"{report['decoded']} of {report['images']} images decoded, {images} expected")
    tex = re.findall(r".{0,30}(?:\\[A-Za-z]+|\\[{}\[\]()]).{0,30}", report["text"])
    if tex:
        found.append(f"raw TeX in the rendered text: {tex[:3]}")
    if "$" in report["text"]:
        found.append("a dollar sign in the rendered text")
    return found


# ---------------------------------------------------------------- the converter
@pytest.mark.parametrize(
    ("tex", "mathml"),
    [
        ("x_i", "<msub><mi>x</mi><mi>i</mi></msub>"),
        ("x'_i", "<msubsup><mi>x</mi><mi>i</mi><mo>′</mo></msubsup>"),
        (r"\tfrac12", '<mstyle displaystyle="false"><mfrac><mn>1</mn><mn>2</mn></mfrac></mstyle>'),
        (r"\sqrt[3]{y}", "<mroot><mi>y</mi><mn>3</mn></mroot>"),
        (r"\mathbb{E}\mathcal{L}\mathsf{T}", "<mi>𝔼</mi><mi>ℒ</mi><mi>𝖳</mi>"),
        (r"\Sigma\sigma", '<mi mathvariant="normal">Σ</mi><mi>σ</mi>'),
        ("a<b", "<mi>a</mi><mo>&lt;</mo><mi>b</mi>"),
        (r"\text{as } n", "<mtext>as\u00a0</mtext><mi>n</mi>"),
        ("(x)", '<mo stretchy="false">(</mo><mi>x</mi><mo stretchy="false">)</mo>'),
        (r"\dot{\sigma}", '<mover accent="true"><mi>σ</mi><mo stretchy="false">˙</mo></mover>'),
        (r"\hl{k}", '<mrow class="hl"><mi>k</mi></mrow>'),
    ],
)
def test_small_formulas_convert_as_written_by_hand(tex, mathml):
    assert to_mathml(tex) == f"<math>{mathml}</math>"


def test_sums_take_limits_below_and_above_and_fences_stretch_only_with_left():
    out = to_mathml(r"\sum_{i=1}^{n} \left(a_i\right)", display=True)
    assert out.startswith('<math display="block"><munderover><mo largeop="true"')
    assert '<mo stretchy="true" fence="true" lspace="0em" rspace="0em">(</mo>' in out
    line = to_mathml(r"\max(0, u)", display="line")
    assert line.startswith('<math displaystyle="true">')


def test_environments_become_tables():
    out = to_mathml(r"\begin{bmatrix}a \\ \vdots \\ b\end{bmatrix}")
    assert out.count("<mtr>") == 3 and "[</mo>" in out and "]</mo>" in out
    cases = to_mathml(r"\begin{cases} 1 & \text{for}\: u>0 \\ 0 & \text{otherwise}\end{cases}")
    assert cases.count("<mtr>") == 2 and cases.count("<mtd") == 4


@pytest.mark.parametrize(
    ("tex", "named"),
    [
        (r"\frobnicate{x}", r"\frobnicate"),
        (r"\frac{1}{2", "ends too early"),
        ("a}", "'}'"),
        (r"\begin{tabular}{c}x\end{tabular}", "tabular"),
        (r"\text{$x$}", "math inside"),
    ],
)
def test_formulas_outside_the_subset_are_refused_by_name(tex, named):
    with pytest.raises(NotesBuildError) as err:
        to_mathml(tex)
    assert named in str(err.value)
    assert "subset" in str(err.value) or "ends" in str(err.value)


def test_text_words_are_escaped_and_formulas_are_mathml():
    out = html_text(Text("a < b & ``code``, ", Tex(r"\alpha_k", "alpha_k")))
    assert out.startswith("a &lt; b &amp; <code>code</code>, <math>")
    assert "<msub><mi>α</mi><mi>k</mi></msub>" in out
    assert html_text("cost $5") == "cost $5"  # a plain string is never mathematics
    prose = html_prose("<p>for $x^2$ and $y$</p>")
    assert prose.count("<math>") == 2 and prose.startswith("<p>for ")
    with pytest.raises(NotesBuildError, match="unbalanced"):
        html_prose("one $x")


def test_figures_must_be_png(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nrest")  # the PNG signature, then "rest"
    assert png_data_uri(png).startswith("data:image/png;base64,iVBORw0KGgpyZXN0")
    bad = tmp_path / "b.png"
    bad.write_bytes(b"GIF89a")
    with pytest.raises(NotesBuildError, match="not a PNG"):
        png_data_uri(bad)


def test_a_file_the_notes_did_not_write_is_refused(tmp_path):
    ours = tmp_path / "ntk_notes.html"
    ours.write_text("<!DOCTYPE html>\n<!-- Autogenerated by ntksym 0.1 -->\n")
    theirs = tmp_path / "index.html"
    theirs.write_text("<html>my own page</html>")
    refuse_foreign([ours, tmp_path / "missing.html"])  # ours, or absent: fine
    with pytest.raises(GeneratedFileError, match="index.html.*--force"):
        refuse_foreign([ours, theirs])
    with pytest.raises(GeneratedFileError, match="not written by ntksym"):
        refuse_foreign([tmp_path])  # a directory is not ours either


# ---------------------------------------------------------------- the browser
@needs_chromium
def test_the_browser_checks_can_fail(tmp_path):
    """The probe reports raw TeX and a broken image; a blank screenshot has no ink."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><p>see $\\alpha$</p>"
        '<img src="missing.png"><math><mfrac><mn>1</mn><mn>2</mn></mfrac></math></body></html>'
    )
    report = browser_probe(bad, tmp_path)
    assert report["stacked"] and report["laid_out"] == report["math"] == 1
    found = problems(report, images=1)
    assert len(found) == 3, found
    assert "0 of 1 images" in found[0] and "raw TeX" in found[1] and "dollar" in found[2]
    blank = tmp_path / "blank.html"  # and the screenshot check tells a blank page
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    assert ink(screenshot(blank, tmp_path / "blank.png", height=300)) == 0.0


def test_cli_refuses_bad_jobs_and_a_foreign_page_before_any_work(tmp_path, capsys):
    from ntksym.cli import main
    from ntksym.derive.loader import package_derivations_dir

    seed = str(package_derivations_dir() / "seed.py")
    assert main(["notes", seed, "-o", str(tmp_path), "--jobs", "0"]) == 2
    assert "--jobs must be a positive" in capsys.readouterr().err
    page = tmp_path / "ntk_notes.html"
    page.write_text("<html>someone's page</html>")
    assert main(["notes", seed, "-o", str(tmp_path), "--html", "--quick"]) == 2
    assert "--force" in capsys.readouterr().err
    assert page.read_text() == "<html>someone's page</html>"  # left as it was
    assert not (tmp_path / "figures").exists()  # refused before any work
