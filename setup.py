"""The package list, computed: every folder under the four top-level package folders becomes a
package of ``newsmon`` (data folders such as ``crawlers/demo_site`` too, so that setuptools ships
their files without a warning per folder). The rest of the configuration is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

FOLDERS = {
    "newsmon": "newsmon",
    "newsmon.crawlers": "crawlers",
    "newsmon.nlp": "nlp",
    "newsmon.index": "index",
}
SKIP = ["__pycache__", "*.__pycache__", "target", "target.*", "localnode.target", "localnode.target.*"]


def packages() -> list[str]:
    found = ["newsmon.dags"]
    for name, folder in FOLDERS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_namespace_packages(where=folder, exclude=SKIP)]
    return sorted(set(found))


setup(packages=packages())
