"""Default data locations: a source checkout keeps its own data/cache and models/; an installed package
uses the user's folders, never site-packages; QBDI_CACHE_DIR / QBDI_MODELS_DIR win everywhere."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from qbdi_utils import paths


def _layout(root: Path, *parts: str, pyproject: bool = True, git: bool = False) -> Path:
    base = root.joinpath(*parts)
    pkg = base / "qbdi_utils"
    pkg.mkdir(parents=True)
    if pyproject:
        (base / "pyproject.toml").write_text("[project]\n")
    if git:
        (base / ".git").mkdir()
    return pkg


@pytest.fixture
def place(monkeypatch):
    def put(pkg: Path):
        monkeypatch.setattr(paths, "PACKAGE_DIR", pkg)
        monkeypatch.setattr(paths, "REPO_ROOT", pkg.parent)
        monkeypatch.setattr(paths, "DATA_DIR", pkg.parent / "data")
    monkeypatch.delenv("QBDI_CACHE_DIR", raising=False)
    monkeypatch.delenv("QBDI_MODELS_DIR", raising=False)
    return put


def test_source_checkout_keeps_repository_folders(tmp_path, place):
    pkg = _layout(tmp_path, "clone")
    place(pkg)
    assert paths.in_source_checkout()
    assert paths.cache_dir() == tmp_path / "clone" / "data" / "cache"
    assert paths.models_dir() == tmp_path / "clone" / "models"


def test_checkout_inside_a_site_packages_named_folder_but_with_git(tmp_path, place):
    pkg = _layout(tmp_path, "lib", "site-packages", git=True)
    place(pkg)
    assert paths.in_source_checkout() and paths.models_dir() == pkg.parent / "models"


@pytest.mark.parametrize("pyproject", [False, True])
def test_installed_package_uses_user_folders_never_site_packages(tmp_path, place, pyproject):
    pkg = _layout(tmp_path, "venv", "lib", "python3.11", "site-packages", pyproject=pyproject)
    place(pkg)
    assert not paths.in_source_checkout()
    cache, models = paths.cache_dir(), paths.models_dir()
    assert cache == Path(platformdirs.user_cache_dir("qbdi", appauthor=False))
    assert models == Path(platformdirs.user_data_dir("qbdi", appauthor=False)) / "models"
    for p in (cache, models):
        assert "site-packages" not in p.parts and not p.is_relative_to(tmp_path)


@pytest.mark.parametrize("where", ["checkout", "installed"])
def test_environment_variables_win(tmp_path, place, monkeypatch, where):
    parts = ("clone",) if where == "checkout" else ("venv", "site-packages")
    place(_layout(tmp_path, *parts, pyproject=where == "checkout"))
    monkeypatch.setenv("QBDI_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("QBDI_MODELS_DIR", str(tmp_path / "m"))
    assert paths.cache_dir() == tmp_path / "c" and paths.models_dir() == tmp_path / "m"


def test_this_checkout_is_a_checkout():
    assert paths.in_source_checkout()
