"""The build step pyproject.toml cannot say: compile the gettext catalogues (.po -> .mo) with Babel.

Every build (a wheel, ``pip install .``, ``pip install -e .``) compiles
``alerts/locale/*/LC_MESSAGES/dumpwatch.po`` into the ``.mo`` files the alerts read
(:mod:`alerts.i18n`); the ``.mo`` files are package data, never committed. ``make locales`` does the
same by hand. Everything else about the package is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LOCALE_DIR = Path(__file__).resolve().parent / "alerts" / "locale"


def compile_catalogues() -> list[Path]:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po in sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po")):
        with po.open("rb") as fp:
            catalog = read_po(fp, locale=po.parents[1].name, domain=po.stem)
        mo = po.with_suffix(".mo")
        with mo.open("wb") as fp:
            write_mo(fp, catalog, use_fuzzy=False)
        written.append(mo)
    return written


class BuildWithCatalogues(build_py):
    def run(self) -> None:
        for mo in compile_catalogues():
            print(f"compiled {mo.relative_to(LOCALE_DIR.parents[1])}")
        super().run()


setup(cmdclass={"build_py": BuildWithCatalogues})
