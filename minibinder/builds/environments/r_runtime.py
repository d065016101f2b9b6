"""R environments (pure): what a repository asks for (runtime.txt `r-<version>-<date>`, install.R,
DESCRIPTION), which R it gets, and the build steps that install R, its kernel and its packages.

R comes from the Debian release of the base image (`r-base-core`, with `r-base-dev` for source
packages and Debian's IRkernel), in a layer of its own that every R repository on that base
shares. A version Debian does not have comes from `r_builds` when the operator lists one (the
exact version), else `r_fallback` decides: the nearest version of the same major with a warning,
or a clear error (which base image to start from is the environment step's decision). Packages
come from `r_package_repository` for the snapshot date in runtime.txt.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from ...errors import BuildpackError
from .pythons import Version, parse_version, show

# The R each Debian release ships (stable releases keep their major.minor).
DEBIAN_R: dict[str, Version] = {
    "buster": (3, 5),
    "bullseye": (4, 0),
    "bookworm": (4, 2),
    "trixie": (4, 5),
}
# Packages that come with R itself: never installed from a repository.
BASE_PACKAGES = frozenset(
    {
        "R",
        "base",
        "compiler",
        "datasets",
        "graphics",
        "grDevices",
        "grid",
        "methods",
        "parallel",
        "splines",
        "stats",
        "stats4",
        "tcltk",
        "tools",
        "utils",
    }
)
R_LIBRARY = "/srv/rlibs"  # the notebook user's library: install.R and the session install here
RUNNER = "minibinder-install.R"
# Written by the step that installs Debian's R packages when the repository does not answer.
FROM_DEBIAN = "/etc/minibinder/r-packages-from-debian"
_RUNTIME = re.compile(r"r-(?:(\d+)\.(\d+)(?:\.(\d+))?)?(?:-?(\d{4}-\d{2}-\d{2}))?")
_PACKAGE = re.compile(r"[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]")
_DATE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])")

# Runs an installation script; R only warns when a package fails to install, so a warning that
# says one did is turned into an error (the build fails, naming the package and R's message).
# When the R package repository did not answer, Debian's binaries were installed first (their
# names are in /etc/minibinder/r-packages-from-debian): install.packages then only checks that
# what it is asked for is there, and fails naming what is not.
RUNNER_SCRIPT = """\
# Written by minibinder: runs an R installation script; a package that does not install fails
# the build (R itself only warns).
script <- commandArgs(trailingOnly = TRUE)[[1]]
did_not_install <- paste(
  "is not available", "had non-zero exit status", "download of package .* failed",
  "cannot open URL", "unable to access index", sep = "|"
)
if (file.exists("/etc/minibinder/r-packages-from-debian")) {
  from_repository <- utils::install.packages
  from_debian <- function(pkgs, ...) {
    if ("repos" %in% names(list(...)) && is.null(list(...)$repos)) {
      return(from_repository(pkgs, ...))  # package files of the repository's own
    }
    absent <- pkgs[!nzchar(vapply(pkgs, function(p) system.file(package = p), ""))]
    if (length(absent)) {
      stop("the R package repository did not answer when this image was built, and ",
           "Debian's packages do not include ", paste(absent, collapse = ", "),
           ' (r_package_fallback = "debian")', call. = FALSE)
    }
    message("From Debian (the R package repository did not answer): ",
            paste(pkgs, collapse = ", "))
    invisible(NULL)
  }
  assign("install.packages", from_debian, envir = globalenv())
  utils::assignInNamespace("install.packages", from_debian, ns = "utils")
}
withCallingHandlers(
  source(script, echo = TRUE, max.deparse.length = Inf, keep.source = FALSE),
  warning = function(w) {
    if (grepl(did_not_install, conditionMessage(w))) {
      stop("an R package did not install: ", conditionMessage(w), call. = FALSE)
    }
  }
)
"""


@dataclass(frozen=True)
class RRequest:
    """What a repository asked for: an R version (or any), and a package snapshot date."""

    source: str  # where it was read: "runtime.txt", "install.R", "DESCRIPTION"
    text: str  # as written, for messages
    version: Version | None = None
    date: str | None = None  # YYYY-MM-DD; None: the newest packages


def parse_r_runtime(text: str, where: str) -> RRequest:
    """`r-4.1-2022-01-01`, `r-4.1.3-2022-01-01`, `r-2022-01-01` or `r-4.1`."""
    value = text.strip()
    match = _RUNTIME.fullmatch(value)
    if not match or value == "r-" or not (match.group(1) or match.group(4)):
        raise BuildpackError(
            f"{where} says {value!r}; for R write r-<version>-<YYYY-MM-DD> "
            "(for example r-4.2-2023-06-01)"
        )
    major, minor, _, date = match.groups()
    if date and not _DATE.fullmatch(date):
        raise BuildpackError(f"{where} says {value!r}: {date} is not a date (YYYY-MM-DD)")
    version = (int(major), int(minor)) if major is not None else None
    return RRequest(where, value, version, date)


@dataclass(frozen=True)
class RChoice:
    version: Version
    from_builds: str = ""  # a .deb from r_builds; empty: Debian's R
    warning: str = ""


def choose_r(
    request: RRequest, debian: Version | None, builds: dict[str, str], fallback: str
) -> RChoice:
    """The R for `request` on a base whose Debian ships `debian` (None: unknown release).

    Debian's when it matches (or nothing was asked for); the operator's r_builds entry for the
    exact version next; else `fallback` ("nearest" or "fail").
    """
    offered = {parse_version(version): url for version, url in builds.items()}
    wanted = request.version
    if debian is not None and (wanted is None or wanted == debian):
        return RChoice(debian)
    if wanted is not None and wanted in offered:
        return RChoice(wanted, offered[wanted])
    if debian is None and wanted is None:
        raise BuildpackError(
            "the base image is not a Debian release minibinder knows the R of; "
            "operators list R builds in r_builds"
        )
    candidates = ([debian] if debian else []) + sorted(offered)
    listed = ", ".join(show(v) for v in candidates) or "none"
    assert wanted is not None
    same_major = [v for v in candidates if v[0] == wanted[0]]
    if fallback == "nearest" and same_major:
        # The nearest minor; between two as near, the newer.
        chosen = min(same_major, key=lambda v: (abs(v[1] - wanted[1]), -v[1]))
        return RChoice(
            chosen,
            offered.get(chosen, "") if chosen != debian else "",
            f"WARNING: {request.source} asks for R {show(wanted)}, which this server does not "
            f"provide (it has {listed}); using R {show(chosen)} instead "
            '(r_fallback = "nearest"). Pin a provided version to silence this warning.',
        )
    raise BuildpackError(
        f"{request.source} asks for R {show(wanted)}, but this server provides only {listed}"
        + ("" if fallback == "nearest" else ' (r_fallback = "fail")')
        + "; operators add versions with r_builds"
    )


def parse_description(text: str, where: str) -> tuple[str, list[str]]:
    """A DESCRIPTION file's package name and the packages its Depends, Imports and LinkingTo
    name (R itself and its base packages left out), in order."""
    fields: dict[str, str] = {}
    last = ""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line[0] in " \t":
            if not last:
                raise BuildpackError(f"{where} line {number}: a continuation with no field")
            fields[last] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon or not re.fullmatch(r"[A-Za-z][A-Za-z0-9@/_.-]*", name):
            raise BuildpackError(f"{where} line {number}: expected `Field: value`")
        last = name
        fields[name] = value.strip()
    package = fields.get("Package", "")
    if not _PACKAGE.fullmatch(package):
        raise BuildpackError(f"{where}: the Package field is missing or not a package name")
    needed: list[str] = []
    for field_name in ("Depends", "Imports", "LinkingTo"):
        for entry in filter(None, (e.strip() for e in fields.get(field_name, "").split(","))):
            name = entry.split("(", 1)[0].strip()
            if name in BASE_PACKAGES or name in needed:
                continue
            if not _PACKAGE.fullmatch(name):
                raise BuildpackError(f"{where} {field_name}: {entry!r} is not a package name")
            needed.append(name)
    return package, needed


def install_script(packages: list[str]) -> str:
    """install.R text for a list of packages (a DESCRIPTION's dependencies)."""
    names = ", ".join(json.dumps(name) for name in packages)
    return f"install.packages(c({names}))\n"


def repository_url(template: str, codename: str, date: str | None) -> str:
    """The package repository for a snapshot date: `{codename}` and `{date}` filled in (the
    date is `latest` when runtime.txt names none)."""
    return template.replace("{codename}", codename or "bookworm").replace(
        "{date}", date or "latest"
    )


def r_layer_step(choice: RChoice) -> str:
    """The root step that installs R: the same text for every repository with the same R, so
    Docker reuses the layer across them."""
    apt = (
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        "--no-install-recommends"
    )
    if not choice.from_builds:
        install = f"{apt} r-base-core r-base-dev r-cran-irkernel"
    else:  # a build of R for /opt/R/<version>; IRkernel then comes from the package repository
        fetch = (
            "python3 -c 'import sys, urllib.request; "
            "urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "
            f"{shlex.quote(choice.from_builds)} /tmp/r.deb"
        )
        install = (
            f"{fetch} && {apt} /tmp/r.deb build-essential gfortran libzmq3-dev "
            "&& rm /tmp/r.deb "
            "&& ln -sf /opt/R/*/bin/R /opt/R/*/bin/Rscript /usr/local/bin/"
        )
    return (
        f"{install} \\\n && apt-get clean && rm -rf /var/lib/apt/lists/* \\\n"
        f" && mkdir -p {R_LIBRARY} && chown 1000:1000 {R_LIBRARY}"
    )


def site_profile_step(url: str) -> str:
    """Root step: R's site profile points install.packages at `url` (and sends the user agent
    package managers use to pick Linux binaries)."""
    lines = [
        f"options(repos = c(CRAN = {json.dumps(url)}))",
        'options(HTTPUserAgent = sprintf("R/%s R (%s)", getRversion(), paste(getRversion(), '
        'R.version["platform"], R.version["arch"], R.version["os"])))',
    ]
    quoted = " ".join(shlex.quote(line) for line in lines)
    return f"printf '%s\\n' {quoted} >> \"$(R RHOME)/etc/Rprofile.site\""


def kernel_step(from_builds: bool) -> str:
    """Root step: IRkernel registered with the Jupyter server's environment, so the launcher
    offers R (installed from the package repository into R's own library when R is not
    Debian's). HOME is root's: nothing may be left in the notebook user's home."""
    install = 'install.packages("IRkernel", lib = .Library); ' if from_builds else ""
    code = install + "IRkernel::installspec(sys_prefix = TRUE)"
    return f"HOME=/root Rscript -e {shlex.quote(code)} >/dev/null"
