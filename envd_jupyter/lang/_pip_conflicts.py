"""Refuse an environment whose pip groups disagree on a distribution they share.

Each pip group installs from the same venv root in its own branch, and the merge lays the
branches' files over each other. Two groups resolving one shared dependency (numpy, say) to
the *same* version write the same files, so neither the merge order nor the group order
matters. Two different versions would leave a mix of both versions' files, whichever order
the layers take, so the build stops at the merge with one line naming both groups.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from envd_jupyter.lang._errors import Location, PipConflictError
from envd_jupyter.lang._functions import VENV

_DIST_INFO = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)\.dist-info$")


def distributions(entries: Iterable[str]) -> dict[str, set[str]]:
    """Normalised distribution name -> versions, from site-packages entry names."""
    found: dict[str, set[str]] = {}
    for entry in entries:
        match = _DIST_INFO.match(entry)
        if match:
            name = re.sub(r"[-_.]+", "-", match["name"]).lower()
            found.setdefault(name, set()).add(match["version"])
    return found


def conflicts(merged: Mapping[str, set[str]]) -> dict[str, set[str]]:
    return {name: versions for name, versions in sorted(merged.items()) if len(versions) > 1}


def conflict_error(name: str, by_group: Mapping[Location | None, str]) -> PipConflictError:
    """One line: the distribution, each group's version and where the group was written."""
    listed = ", ".join(f"{version} ({at or 'a pip group'})" for at, version in by_group.items())
    return PipConflictError(f"pip groups install different versions of {name}: {listed}; list them in one "
                            "install.python_packages call or pin one version in both")


def site_packages_entries(ref) -> list[str]:
    """Entry names of the venv's site-packages in a gateway ref."""
    lib = [entry.path for entry in ref.read_dir(f"{VENV}/lib") if entry.path.startswith("python")]
    names: list[str] = []
    for version_dir in lib:
        names += [entry.path for entry in ref.read_dir(f"{VENV}/lib/{version_dir}/site-packages",
                                                       include="*.dist-info")]
    return names
