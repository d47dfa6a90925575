"""The recordings' Debian packages: pinned versions and sha256 sums, fetched with `apt-get download` and unpacked
with `dpkg-deb -x` (never installed); OpenClonk's sounds are also taken out of their C4Group archive.

    CACHE/debs/<package>_<version>_all.deb     checked against PACKAGES' sha256 before it is used
    CACHE/unpacked/<code>/                      the package's files (a ".complete" marker once fully unpacked)
    CACHE/unpacked/OC-sound/                    OpenClonk's Sound.ocg, extracted

`package_root(cache, code)` is the folder a catalogue path (`catalogue.py`, "CODE:relative/path") is relative to.
"""

import dataclasses
import pathlib
import shutil
import subprocess

import c4group
from audiocaps_tf.data.prepared import file_sha256

__all__ = ["Package", "PACKAGES", "fetch_packages", "package_root"]


@dataclasses.dataclass(frozen=True)
class Package:
    code: str
    name: str
    version: str
    sha256: str
    licence: str
    root: str  # the sound folder inside the unpacked package


PACKAGES = {p.code: p for p in (
    Package("MG", "megaglest-data", "3.13.0-3",
            "ed4783d9fc78e201a548b266f7c30325eb16cfd58a20bf4597dd6e622f84a07e",
            "CC-BY-SA-3.0 (The Glest Team / MegaGlest Team)", "usr/share/games/megaglest"),
    Package("WN", "wesnoth-1.16-data", "1:1.16.9-1",
            "1012b964bd412a6770685e3324ae3b61e176caff7846192d1ee63d55cd621e26",
            "GPL-2+ (The Battle for Wesnoth project)", "usr/share/games/wesnoth/1.16/data/core/sounds"),
    Package("TP", "tuxpaint-stamps-default", "2022.06.04-1",
            "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34",
            "GPL-2 (Bill Kendrick and contributors)", "usr/share/tuxpaint/stamps"),
    Package("LC", "lincity-ng-data", "2.9~git20150314-5",
            "8f5e85bd42879abdc7099b035d7a3d7468eceb6b93b52a12270c28f3f3c792f9",
            "GPL-2+ (LinCity-NG developers)", "usr/share/games/lincity-ng/sounds"),
    Package("ST", "supertux-data", "0.6.3-2",
            "a6ad8865972f1dbb5e7b49f4e1b381dd16a68f3028a3502cfeaca2400285d27f",
            "GPL-3+ (SuperTux Devel Team; contributors in credits.stxt)", "usr/share/games/supertux2/sounds"),
    Package("FD", "freedroidrpg-data", "1.0-1",
            "16c3cfeb82b1ec20c98493bbe1de2e356bd1aec832845630a5a7f12e303baa2b",
            "GPL-2+ (FreedroidRPG developers)", "usr/share/freedroidrpg/data/sound/effects"),
    Package("OC", "openclonk-data", "8.1-3",
            "1505314b47196c5052caf75e870ea2cf36bdb4e1d0c7e3f133da93815b7e642f",
            "CC-BY-3.0 unless stated otherwise (per-file authors and freesound.org sources in Sound.ocg/authors.txt)",
            "usr/share/games/openclonk/Sound.ocg"),
)}

_COMPLETE = ".complete"


def _find_deb(package, debs):
    """The .deb apt-get saved for `package` (it writes an epoch's ":" as "%3a"), or None."""
    version = package.version.replace(":", "%3a")
    path = debs / f"{package.name}_{version}_all.deb"
    return path if path.exists() else None


def _download(package, debs):
    """apt-get download of the pinned version into `debs`; a RuntimeError says what to do when apt cannot."""
    debs.mkdir(parents=True, exist_ok=True)
    command = ["apt-get", "download", f"{package.name}={package.version}"]
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"apt-get is not on PATH: fetch {package.name} {package.version} (Debian bookworm) into "
                           f"{debs} yourself")
    done = subprocess.run(command, cwd=debs, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (run `apt-get update` first if the package is not found):\n"
                           f"{done.stderr.strip()}")


def _fetch(package, cache):
    """The verified .deb of `package` in CACHE/debs, downloaded when missing."""
    debs = cache / "debs"
    deb = _find_deb(package, debs)
    if deb is None:
        _download(package, debs)
        deb = _find_deb(package, debs)
        if deb is None:
            raise RuntimeError(f"apt-get download left no {package.name} {package.version} .deb in {debs}")
    found = file_sha256(deb)
    if found != package.sha256:
        raise RuntimeError(f"{deb}: sha256 {found}, expected {package.sha256} (pinned {package.name} "
                           f"{package.version}); delete the file to fetch it again")
    return deb


def _unpack(package, deb, cache):
    target = cache / "unpacked" / package.code
    if (target / _COMPLETE).exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    if package.code == "OC":  # the sounds are inside a C4Group archive
        archive = target / package.root
        extracted = target.with_name("OC-sound")
        shutil.rmtree(extracted, ignore_errors=True)
        c4group.extract_group(archive, extracted)
    (target / _COMPLETE).write_text(f"{package.name} {package.version}\n")
    return target


def package_root(cache, code):
    """The folder catalogue paths of package `code` are relative to."""
    cache = pathlib.Path(cache)
    if code == "OC":
        return cache / "unpacked" / "OC-sound"
    return cache / "unpacked" / code / PACKAGES[code].root


def fetch_packages(cache, codes=None, log=print):
    """Downloads (when missing), verifies and unpacks the packages `codes` (default all) under `cache`."""
    cache = pathlib.Path(cache)
    for code in codes or PACKAGES:
        package = PACKAGES[code]
        deb = _fetch(package, cache)
        _unpack(package, deb, cache)
        log(f"{package.name} {package.version}: verified and unpacked")
