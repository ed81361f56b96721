"""Bring the benchmark results (``benchmarks/README.md`` and plots) into the docs.

The benchmark scripts write their tables to ``benchmarks/README.md`` and their
plots as PNG files beside it. At each build, :func:`write_benchmark_include`
copies the tables into ``doc/generated/benchmarks.md.inc`` (image links
rewritten relative to ``doc/``), lists every plot the README does not show
already in ``doc/generated/benchmark_plots.rst.inc`` and every script with its
summary line in ``doc/generated/benchmark_scripts.rst.inc``; ``performance.rst``
includes them, so the page always shows the latest results without editing.
"""

import ast
import re
from pathlib import Path

_IMAGE = re.compile(r"(!\[[^\]]*\]\()([^)\s]+)(\))")
_HEADING = re.compile(r"^(#{1,5}) ", flags=re.MULTILINE)


def _rewrite_markdown(text, bench_dir):
    """Rewrite image links for ``doc/`` and drop the README's own title."""

    def _fix(match):
        target = match.group(2)
        if "://" in target or target.startswith("/"):
            return match.group(0)
        return f"{match.group(1)}../{bench_dir.name}/{target}{match.group(3)}"

    text = _IMAGE.sub(_fix, text)
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]  # the page has its own title
    text = "\n".join(lines) + "\n"
    # MyST wants an included file's headings to start at level 1.
    levels = [len(m.group(1)) for m in _HEADING.finditer(text)]
    shift = min(levels, default=1) - 1
    return _HEADING.sub(lambda m: "#" * (len(m.group(1)) - shift) + " ", text)


def _scripts_block(bench_dir):
    """A console block listing each benchmark script with its one-line summary."""
    lines = []
    for script in sorted(bench_dir.glob("*.py")):
        doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
        summary = doc.strip().splitlines()[0].replace("``", "") if doc else ""
        if summary:
            lines.append(f"    # {summary}")
        lines.append(f"    python3 benchmarks/{script.name}")
    if not lines:
        return "No benchmark scripts found.\n"
    return ".. code-block:: bash\n\n" + "\n".join(lines) + "\n"


def write_benchmark_include(bench_dir, out_dir):
    """Write the include files for the performance page.

    Parameters
    ----------
    bench_dir : pathlib.Path
        The ``benchmarks`` folder of the repository.
    out_dir : pathlib.Path
        Where to write ``benchmarks.md.inc`` and ``benchmark_plots.rst.inc``.
    """
    bench_dir = Path(bench_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    readme = bench_dir / "README.md"
    if readme.is_file():
        text = _rewrite_markdown(readme.read_text(encoding="utf-8"), bench_dir)
    else:
        text = (
            "*No benchmark results yet: run the scripts in `benchmarks/` "
            "(see below) and rebuild the documentation.*\n"
        )
    (out_dir / "benchmarks.md.inc").write_text(text, encoding="utf-8")
    (out_dir / "benchmark_scripts.rst.inc").write_text(
        _scripts_block(bench_dir), encoding="utf-8"
    )

    shown = set(re.findall(r"([\w.-]+\.png)", text))
    plots = sorted(p for p in bench_dir.glob("*.png") if p.name not in shown)
    blocks = [
        f".. figure:: ../{bench_dir.name}/{p.name}\n"
        f"   :alt: {p.stem}\n   :width: 90%\n\n"
        f"   ``benchmarks/{p.name}``\n"
        for p in plots
    ]
    (out_dir / "benchmark_plots.rst.inc").write_text(
        "\n".join(blocks) if blocks else "", encoding="utf-8"
    )
