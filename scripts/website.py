"""Build the course website from the stored notebooks, offline, with no execution.

    python scripts/website.py            # build/website/html/index.html, in well under 2 minutes
    python scripts/website.py --tidy     # first drop stored widget state from notebooks/ (docs/authoring.md)

Sphinx with myst-nb and sphinx-book-theme, all from PyPI (docs/website.md says why not mystmd:
its theme is downloaded at build time). This script stages the pages under build/website/src/,
laid out as in the repository so the theme's Colab and Binder buttons point at the real notebook,
and builds them with website/conf.py:

- ``index.md``: the learners' home page, made from the lessons' first cells (:func:`home_page`);
  the README stays the repository's page, for developers;
- ``notebooks/NN_topic.ipynb``: each lesson with its stored outputs, up to its exercises (the Colab
  set-up cell left out: the page's launch buttons do that job);
- ``exercises/NN_topic.md``: each lesson's exercises as the student copy has them (the solution
  replaced by a stub, hidden tests removed: a public website must not give the answers away);
- ``docs/instructors.md``.

A relative link to a file the site does not hold becomes a link to that file on GitHub.
"""
from __future__ import annotations

import argparse
import copy
import functools
import importlib.util
import posixpath
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "website"
CONF = ROOT / "website"
PAGES = {"docs/instructors.md": "docs/instructors.md", "docs/authoring.md": "docs/authoring.md",
         "docs/website.md": "docs/website.md"}  # repository path -> page

sys.path.insert(0, str(ROOT / "scripts"))  # scripts/ is not a package: course.py is found beside this file
import course  # noqa: E402

BADGE = re.compile(r"\[!\[([^\]]*)\]\([^)]*\)\]\(([^)]*)\)")  # [![alt](image)](target): an image from the web
LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def split_at_exercises(nb: nbformat.NotebookNode) -> tuple[list, list]:
    """The lesson's cells before its ``## Exercises`` heading, and from it on (a cell holding the
    heading mid-way is cut in two)."""
    for i, cell in enumerate(nb.cells):
        m = re.search(r"^## Exercises\b", cell.source, re.M) if cell.cell_type == "markdown" else None
        if m:
            before, after = cell.source[: m.start()].strip(), cell.source[m.start():]
            head = [nbformat.v4.new_markdown_cell(before)] if before else []
            return nb.cells[:i] + head, [nbformat.v4.new_markdown_cell(after), *nb.cells[i + 1:]]
    raise ValueError("the lesson has no '## Exercises' heading (docs/authoring.md)")


def links(text: str, source: str, pages: dict[str, str], page: str, repo: str) -> str:
    """Rewrite ``text`` (from repository file ``source``) for the site page ``page``: image badges
    become text links (the images would come from the web), a relative link to a file the site
    holds points at its page, any other relative link at the file on GitHub."""
    text = BADGE.sub(r"[\1](\2)", text)

    def fix(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"[a-z][a-z+.-]*:|#", target):  # a URL, mailto:, an anchor on the same page
            return m.group(0)
        path, _, anchor = target.partition("#")
        path = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
        if path in pages:
            new = posixpath.relpath(pages[path], posixpath.dirname(page) or ".")
        else:
            new = f"{repo}/{'tree' if (ROOT / path).is_dir() else 'blob'}/main/{path}"
        return m.group(1) + new + ("#" + anchor if anchor else "") + m.group(3)

    return LINK.sub(fix, text)


def title(nb: nbformat.NotebookNode) -> str:
    return re.search(r"^# (.+)$", nb.cells[0].source, re.M).group(1).strip()


def summary(nb: nbformat.NotebookNode) -> dict[str, object]:
    """What the home page says of a lesson, read from its first cell: title, first paragraph,
    the "In this lesson you will" list and the learner time it states."""
    first = BADGE.sub("", nb.cells[0].source)
    lead = next(p.strip() for p in re.split(r"\n\s*\n", first) if p.strip() and not p.lstrip().startswith("#"))
    goals = re.split(r"\*\*In this (?:lesson|appendix) you will\*\*", first)[-1].split("\n\n")[0]
    minutes = re.search(r"\*\*Learner time:\*\* about (\d+) minutes", first)
    return {"title": title(nb), "lead": " ".join(lead.split()), "minutes": int(minutes.group(1)),
            "goals": [" ".join(g.split()) for g in re.findall(r"^\d+\. (.+(?:\n(?!\d+\. ).+)*)", goals, re.M)]}


def home_page(lessons: dict[str, nbformat.NotebookNode], repo: str) -> str:
    """The learners' home page: what the course is, for whom, each lesson with its time and goals
    (from the notebooks, so it cannot go stale), and three ways to start."""
    path = repo.removeprefix("https://github.com/")
    first = next(iter(lessons))
    m = [summary(nb)["minutes"] for nb in lessons.values()]
    parts = [
        "# Transfer learning with pretrained models",
        "A hands-on course on reusing networks that someone else trained: what their layers know, how to "
        "extract features, how to fine-tune without destroying what they learned, the same with a BERT-family "
        "text model, how to choose a strategy from measurements, and parameter-efficient and label-free methods. "
        "It runs **offline, on a laptop CPU**, and every number a lesson states is computed in that lesson, on "
        "real data, with a real pretrained model, with a 95% interval where it is compared.",
        "**For whom.** You can write a Python function and a `for` loop over NumPy arrays, and you have seen a "
        "PyTorch training loop (a model, a loss, `backward()`, an optimizer step), or are ready to meet one: "
        "each lesson writes a concept in plain PyTorch once before a helper hides it. No GPU is needed.",
        f"**Time.** About {sum(m) / 60:.0f} hours in all, in lessons of {min(m)} to {max(m)} minutes (estimates "
        "each lesson states at its top); each notebook runs on its own.",
        "## Lessons"]
    for name, nb in lessons.items():
        if course.is_appendix(Path(name)) and "## Appendices" not in parts:
            parts.append("## Appendices")
        s = summary(nb)
        goals = "\n".join(f"- {g}" for g in s["goals"])
        parts.append(f"### [{s['title']}](notebooks/{name}.ipynb)\n\n"
                     f"*About {s['minutes']} minutes · [its exercises](exercises/{name}.md)*\n\n"
                     f"{s['lead']}\n\nYou will:\n\n{goals}")
    parts += [
        "## Three ways to start",
        f"1. **In Colab**, nothing to install: [open lesson 0 in Colab]({course.colab_url(first + '.ipynb', repo)}). "
        "Every lesson page has the same button (the rocket icon at "
        "its top). The first cell installs the course (about 2 minutes).\n"
        f"2. **On Binder**, JupyterLab in the browser: [open the lessons on Binder]({course.binder_url(repo=repo)}). "
        "Starting it can take a few minutes.\n"
        "3. **On your own machine**, with Python 3.11 and about 6 GB of disk, offline once installed:\n\n"
        f"   ```bash\n   git clone {repo}.git && cd {path.split('/')[1]}\n"
        "   python3 -m venv .venv && source .venv/bin/activate\n"
        "   pip install -r requirements.txt && jupyter lab notebooks/\n   ```",
        "## Exercises",
        "Each lesson ends with exercises: its page in the menu, under the lesson, shows them. Do them in the "
        "notebook, after running the lesson: the cell after each answer checks it and says what is wrong "
        "without giving the answer away. Open questions have no check.",
        "Teaching with it: [the instructors' guide](docs/instructors.md). Developing it: the repository's "
        f"[README]({repo}#readme)."]
    return "\n\n".join(parts) + "\n"


def lesson_page(nb: nbformat.NotebookNode, name: str, fix) -> nbformat.NotebookNode:
    """The lesson up to its exercises, with a pointer to the exercises page, which the navigation
    puts under the lesson (so "next" goes from a lesson to its exercises, then to the next lesson)."""
    page = copy.deepcopy(nb)
    cells = [c for c in split_at_exercises(page)[0] if "colab" not in c.metadata.get("tags", [])]
    for cell in cells:
        if cell.cell_type == "markdown":
            cell.source = fix(BADGE.sub("", cell.source).lstrip())  # the page's launch buttons do the badges' job
    cells.append(nbformat.v4.new_markdown_cell(
        f"## Exercises\n\nThis lesson's exercises and their checks are on [their own page](../exercises/{name}.md). "
        "Do them in the notebook, after running the lesson: the launch buttons at the top of this page open it.\n\n"
        + _toctree(None, [f"Exercises <../exercises/{name}>"])))
    page.cells = cells
    page.metadata.pop("widgets", None)
    return page


def exercises_page(nb: nbformat.NotebookNode, name: str, repo: str, fix) -> str:
    """The exercises of the student copy as a Markdown page: prose, then each stub and its check."""
    student = course.student_copy(nb, name)
    cells = split_at_exercises(student)[1]
    cells[0].source = re.sub(r"\A## Exercises[^\n]*\n*", "", cells[0].source)
    markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    top = min((len(h) for h in re.findall(r"^(#+) ", markdown, re.M)), default=2)
    parts = [f"# Exercises: {title(nb)}",
             f"The exercises of [the lesson](../notebooks/{name}.ipynb), as a student copy has them: each "
             "solution is a stub that raises `NotImplementedError`, and the cell after it checks your answer. "
             "Do them in the notebook, after running the lesson: "
             f"[open it in Colab]({course.colab_url(name + '.ipynb', repo)}) or "
             f"[on Binder]({course.binder_url(name + '.ipynb', repo)})."]
    for cell in cells:
        if cell.cell_type == "markdown":
            text = re.sub(f"^#{{{top}}}", "##", cell.source, flags=re.M) if top > 2 else cell.source
            parts.append(fix(text))
        elif cell.source.strip():
            tags = cell.metadata.get("tags", [])
            label = "Check" if "check" in tags else "Your solution" if "exercise" in tags else None
            parts.append((f"*{label}:*\n\n" if label else "") + f"```python\n{cell.source.strip()}\n```")
    return "\n\n".join(p.strip() for p in parts if p.strip()) + "\n"


def stage(src: Path) -> list[str]:
    """Write every page under ``src``; return the lesson names."""
    repo = course.repository()
    shutil.rmtree(src, ignore_errors=True)
    names = [p.stem for p in course.lessons()]
    pages = dict(PAGES, **{f"notebooks/{n}.ipynb": f"notebooks/{n}.ipynb" for n in names},
                 **{f"exercises/{n}.md": f"exercises/{n}.md" for n in names})  # the home page links both
    notebooks = {n: nbformat.read(ROOT / "notebooks" / f"{n}.ipynb", as_version=4) for n in names}
    src.mkdir(parents=True)
    (src / "index.md").write_text(links(home_page(notebooks, repo), "index.md", pages, "index.md", repo) + "\n"
                                  # the appendices follow the lessons in the same list: no second caption, so
                                  # the whole menu still fits a laptop's screen (tests/browser/test_website.py)
                                  + _toctree("Lessons", [f"{_nav_title(notebooks[n])} <notebooks/{n}>" for n in names])
                                  + "\n"
                                  + _toctree("Teaching", ["docs/instructors", "docs/authoring", "docs/website"]))
    for rel, page in PAGES.items():
        (src / page).parent.mkdir(parents=True, exist_ok=True)
        (src / page).write_text(links((ROOT / rel).read_text(), rel, pages, page, repo))
    for n, nb in notebooks.items():
        lesson, exercises = f"notebooks/{n}.ipynb", f"exercises/{n}.md"
        for path in (src / lesson, src / exercises):
            path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(lesson_page(nb, n, functools.partial(links, source=lesson, pages=pages, page=lesson, repo=repo)),
                       src / lesson)
        (src / exercises).write_text(exercises_page(
            nb, n, repo, functools.partial(links, source=lesson, pages=pages, page=exercises, repo=repo)))
    return names


def _nav_title(nb: nbformat.NotebookNode) -> str:
    """A lesson's title in the navigation: its heading up to the colon (the page keeps the whole
    heading), so the list of lessons fits a laptop's screen above the teaching pages."""
    return title(nb).split(":")[0].strip()


def _toctree(caption: str | None, entries: list[str]) -> str:
    caption = f":caption: {caption}\n" if caption else ""
    return "```{toctree}\n:hidden:\n" + caption + "\n" + "\n".join(entries) + "\n```\n"


def _mathjax(dest: Path) -> None:
    """MathJax 3's tex-svg.js from the ``sphinx-mathjax-offline`` wheel (2 MB: TeX in, SVG out, the
    glyphs inside, so no web font has to load), so formulas render with no CDN."""
    package = importlib.util.find_spec("sphinx-mathjax-offline")  # its import name has hyphens
    if package is None:
        raise SystemExit("pip install -r requirements.txt: the site needs sphinx-mathjax-offline for its formulas")
    dest.mkdir(parents=True)
    shutil.copy(Path(package.submodule_search_locations[0], "static", "mathjax", "tex-svg.js"), dest)


def build(out: Path = OUT) -> Path:
    """Stage and build the site; return the path of its home page. Warnings fail the build."""
    from sphinx.cmd.build import build_main

    stage(out / "src")
    shutil.rmtree(out / "html", ignore_errors=True)
    args = ["-b", "html", "-W", "--keep-going", "-q", "-c", str(CONF), "-d", str(out / "doctrees"),
            str(out / "src"), str(out / "html")]
    if build_main(args) != 0:
        raise SystemExit(f"Sphinx failed (its warnings are above); the staged pages are in {out / 'src'}")
    _mathjax(out / "html" / "_static" / "mathjax")  # where conf.py's mathjax_path points
    return out / "html" / "index.html"


def tidy() -> list[str]:
    """Drop stored widget state (JupyterLab's "save widget state") from the lesson notebooks."""
    changed = []
    for path in course.lessons():
        nb = nbformat.read(path, as_version=4)
        if "widgets" in nb.metadata:
            del nb.metadata["widgets"]
            nbformat.write(nb, path)
            changed.append(path.name)
    return changed


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--tidy", action="store_true", help="first drop stored widget state from notebooks/")
    args = parser.parse_args(argv)
    if args.tidy:
        print("widget state removed from: " + (", ".join(tidy()) or "nothing"))
    start = time.perf_counter()
    index = build(args.out)
    print(f"built {index} in {time.perf_counter() - start:.0f} s, {size(index.parent) / 1e6:.1f} MB; "
          f"open it, or serve it: python -m http.server -d {index.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
