"""Package layout, in code because one part cannot be written in pyproject.toml: the shipped
models and presets stay at the top of the repository (one copy in git, where a clone and
an editable install read them), and the wheel carries them inside the package as
``livecomposer/_models`` and ``livecomposer/_presets`` (found by ``livecomposer.paths``).
pyproject.toml cannot add such mapped folders to the packages it finds, so the list is
made here.  Everything else about the project is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

SHIPPED = {"livecomposer._models": "models", "livecomposer._presets": "presets"}

setup(
    # models/corpus is a folder Python could import, so setuptools wants it named as a package
    packages=find_namespace_packages(include=["livecomposer*"]) + list(SHIPPED) + ["livecomposer._models.corpus"],
    package_dir=SHIPPED,
    package_data={
        "livecomposer": ["visual/static/*"],
        # checkpoints (folder with config.json + model.safetensors), the visual generator
        # (.safetensors + .json), model cards, and the parsed corpora that `train` starts from
        "livecomposer._models": ["*.md", "*.json", "*.safetensors", "*/config.json", "*/model.safetensors"],
        "livecomposer._models.corpus": ["*.npz"],
        "livecomposer._presets": ["*.yaml", "*.yml"],
    },
)
