"""Parse BinderHub-style `<provider>/<spec>` strings into a repository source (pure, no I/O)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from .config import Config
from .errors import SpecError
from .urlpolicy import check_clone_url

PROVIDERS = ("gh", "gl", "git", "gist")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_GIST_ID_RE = re.compile(r"^[A-Za-z0-9]+$")
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


@dataclass(frozen=True)
class RepoSource:
    """Where a repository lives and which ref was asked for, before the ref is resolved."""

    provider: str
    spec: str
    repo_url: str
    ref: str
    # How to build the persistent spec and the ref URL once the ref is a commit SHA.
    persistent_prefix: str
    ref_url_template: str

    @property
    def request(self) -> str:
        return f"v2/{self.provider}/{self.spec}"

    def persistent_request(self, sha: str) -> str:
        return f"v2/{self.provider}/{self.persistent_prefix}/{sha}"

    def ref_url(self, sha: str) -> str:
        return self.ref_url_template.format(sha=sha)


def check_ref(ref: str) -> str:
    """Refuse refs git would reject or could read as an option (git check-ref-format rules)."""
    if not ref:
        raise SpecError("the ref is empty; name a branch, tag or commit (or HEAD)")
    if (ref.startswith(("-", "/", ".")) or ref.endswith(("/", ".", ".lock")) or ".." in ref
            or "//" in ref or "@{" in ref or "/." in ref or _BAD_REF_CHARS.search(ref)
            or len(ref) > 255):
        raise SpecError(f"{ref!r} is not a valid git ref")
    return ref


def _check_name(value: str, what: str, spec: str) -> str:
    if not _NAME_RE.match(value) or value in {".", ".."}:
        raise SpecError(f"{what} {value!r} in {spec!r} may contain only letters, digits, "
                        "'-', '_' and '.'")
    return value


def _tokenize_gh(spec: str) -> tuple[str, str, str]:
    parts = spec.split("/", 2)
    if len(parts) != 3 or not all(parts):
        message = f"spec is not of the form user/repo/ref, provided: {spec!r}."
        if len(parts) == 2 and all(parts):
            message += f" Did you mean {spec + '/HEAD'!r}?"
        raise SpecError(message)
    return parts[0], parts[1], parts[2]


def parse_spec(provider_spec: str, config: Config) -> RepoSource:
    """Parse `gh/...`, `gl/...`, `git/...` or `gist/...` exactly as BinderHub reads them."""
    provider, _, spec = provider_spec.strip("/").partition("/")
    if provider not in PROVIDERS:
        raise SpecError(f"unknown provider {provider!r}; use one of {', '.join(PROVIDERS)} "
                        "(e.g. gh/owner/repo/HEAD)")
    if not spec:
        raise SpecError(f"nothing follows the provider {provider!r}; e.g. gh/owner/repo/HEAD")
    check_spec_policy(f"{provider}/{spec}", config)
    schemes = config.allowed_clone_schemes
    if provider == "gh":
        user, repo, ref = _tokenize_gh(spec)
        repo = repo.removesuffix(".git")
        _check_name(user, "owner", spec)
        _check_name(repo, "repository", spec)
        ref = check_ref(unquote(ref))
        url = check_clone_url(f"{config.github_url.rstrip('/')}/{user}/{repo}", schemes)
        return RepoSource("gh", spec, url, ref, f"{user}/{repo}", url + "/tree/{sha}")
    if provider == "gl":
        quoted_namespace, _, ref = spec.partition("/")
        namespace = unquote(quoted_namespace).strip("/")
        if not namespace or not ref or "/" not in namespace:
            raise SpecError(f"spec is not of the form <url-escaped namespace/project>/ref, "
                            f"provided: {spec!r} (e.g. gl/group%2Fproject/HEAD)")
        for part in namespace.split("/"):
            _check_name(part, "namespace part", spec)
        namespace = namespace.removesuffix(".git")
        ref = check_ref(unquote(ref))
        base = config.gitlab_url.rstrip("/")
        url = check_clone_url(f"{base}/{namespace}.git", schemes)
        return RepoSource("gl", spec, url, ref, quote(namespace, safe=""),
                          f"{base}/{namespace}/-/tree/{{sha}}")
    if provider == "git":
        quoted_url, _, ref = spec.partition("/")
        if not ref:
            raise SpecError(f"spec is not of the form <url-escaped clone URL>/ref, provided: "
                            f"{spec!r} (e.g. git/https%3A%2F%2Fexample.org%2Frepo.git/HEAD)")
        url = check_clone_url(unquote(quoted_url), schemes)
        ref = check_ref(unquote(ref))
        return RepoSource("git", spec, url, ref, quote(url, safe=""),
                          url.replace("{", "{{").replace("}", "}}"))
    parts = spec.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise SpecError(f"spec is not of the form user/gist-id[/ref], provided: {spec!r}")
    user, gist_id = _check_name(parts[0], "user", spec), parts[1]
    if not _GIST_ID_RE.match(gist_id):
        raise SpecError(f"gist id {gist_id!r} may contain only letters and digits")
    ref = check_ref(unquote(parts[2])) if len(parts) == 3 else "HEAD"
    base = config.gist_url.rstrip("/")
    url = check_clone_url(f"{base}/{gist_id}.git", schemes)
    return RepoSource("gist", spec, url, ref, f"{user}/{gist_id}",
                      f"{base}/{user}/{gist_id}/{{sha}}")


def source_from_url(url: str, ref: str, config: Config) -> RepoSource:
    """A plain clone URL plus a ref, as the `git` provider would name it."""
    return parse_spec(f"git/{quote(url, safe='')}/{quote(ref, safe='')}", config)


def check_spec_policy(provider_spec: str, config: Config) -> None:
    """Apply the operator's allow and deny lists (regular expressions, `re.search`)."""
    for pattern in config.spec_deny:
        if re.search(pattern, provider_spec):
            raise SpecError(f"{provider_spec} is not allowed on this server (deny list)")
    if config.spec_allow and not any(re.search(p, provider_spec) for p in config.spec_allow):
        raise SpecError(f"{provider_spec} is not allowed on this server (not on the allow list)")


def image_slug(repo_url: str) -> str:
    """A Docker-safe, readable, collision-free name for a repository URL."""
    readable = re.sub(r"^[a-z+]+://", "", repo_url.lower())
    readable = re.sub(r"[^a-z0-9]+", "-", readable).strip("-")[:60].strip("-")
    digest = hashlib.sha256(repo_url.encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def image_name(prefix: str, repo_url: str, tag: str) -> str:
    return f"{prefix}{image_slug(repo_url)}:{tag}"
