"""Build hook: copy the bundled corpora from datasets/ into the package when building a wheel.

The corpus lives once, in datasets/bpo_tasks.csv; an installed package needs its
own copy so that `bpo-classify train` works without the repository.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCorpus(build_py):
    def run(self) -> None:
        super().run()
        for name in ("bpo_tasks.csv", "ambiguous_tasks.csv", "not_tasks.csv"):
            target = Path(self.build_lib) / "bpo_classify" / "data" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(__file__).parent / "datasets" / name, target)


setup(cmdclass={"build_py": BuildWithCorpus})
