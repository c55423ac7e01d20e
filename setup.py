"""Build hook: copy the bundled corpus from datasets/ into the package when building a wheel.

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
        source = Path(__file__).parent / "datasets" / "bpo_tasks.csv"
        target = Path(self.build_lib) / "bpo_classify" / "data" / "bpo_tasks.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


setup(cmdclass={"build_py": BuildWithCorpus})
