"""Repository providers, one class each, as BinderHub has them: parse a spec, name the clone URL,
the persistent spec, the ref URL and the display name. Parsing is pure (no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import quote, unquote

from ..config import Config
from ..errors import SpecError
from .refs import REF_CACHE, check_ref, resolve_ref
from .urlpolicy import check_clone_url

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_GIST_ID_RE = re.compile(r"^[A-Za-z0-9]+$")


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
    def provider_spec(self) -> str:
        return f"{self.provider}/{self.spec}"

    @property
    def request(self) -> str:
        return f"v2/{self.provider}/{self.spec}"

    def persistent_request(self, sha: str) -> str:
        return f"v2/{self.provider}/{self.persistent_prefix}/{sha}"

    def ref_url(self, sha: str) -> str:
        return self.ref_url_template.format(sha=sha)


MAX_NAME = 100  # GitHub's owners have at most 39 characters, repositories 100


def _check_name(value: str, what: str, spec: str) -> str:
    if len(value) > MAX_NAME:
        raise SpecError(f"{what} in {spec[:60]!r}... is longer than {MAX_NAME} characters")
    if not _NAME_RE.match(value) or value in {".", ".."}:
        raise SpecError(
            f"{what} {value!r} in {spec!r} may contain only letters, digits, '-', '_' and '.'"
        )
    return value


def _quote_ref(ref: str, keep_slashes: bool) -> str:
    return quote(ref, safe="/" if keep_slashes else "")


def _path_of(repository: str) -> str:
    """`owner/repo` from what a person typed: a path, or a web or clone URL."""
    return re.sub(r"^https?://[^/]+/", "", repository).strip("/").removesuffix(".git")


class RepoProvider:
    """One kind of repository host. Subclasses parse their spec form and name their URLs."""

    key: ClassVar[str]  # the first part of `<provider>/<spec>`
    display_name: ClassVar[str]  # as in mybinder.org's launch events and the home page form
    example: ClassVar[str]

    def parse(self, spec: str, config: Config) -> RepoSource:
        raise NotImplementedError

    def resolve(self, source: RepoSource, config: Config, cached: bool = False) -> str:
        """The full commit SHA the source's ref names (`git ls-remote`); with `cached`, an
        answer up to `ref_cache_seconds` old may be reused."""
        access = (
            config.allowed_clone_schemes,
            config.clone_timeout,
            config.internal_hosts,
            config.git_credentials,
        )
        if cached and config.ref_cache_seconds:
            return REF_CACHE.resolve(source.repo_url, source.ref, config.ref_cache_seconds, *access)
        return resolve_ref(source.repo_url, source.ref, *access)

    def spec_from_form(self, repository: str, ref: str) -> str:
        """`<provider>/<spec>` for what a person typed in the home page form."""
        return f"{self.key}/{_path_of(repository)}/{_quote_ref(ref, keep_slashes=False)}"


class GitHubProvider(RepoProvider):
    key, display_name, example = "gh", "GitHub", "gh/owner/repo/HEAD"

    def parse(self, spec: str, config: Config) -> RepoSource:
        parts = spec.split("/", 2)
        if len(parts) != 3 or not all(parts):
            message = f"spec is not of the form user/repo/ref, provided: {spec!r}."
            if len(parts) == 2 and all(parts):
                message += f" Did you mean {spec + '/HEAD'!r}?"
            raise SpecError(message)
        user, repo, ref = parts[0], parts[1].removesuffix(".git"), parts[2]
        _check_name(user, "owner", spec)
        _check_name(repo, "repository", spec)
        url = check_clone_url(
            f"{config.github_url.rstrip('/')}/{user}/{repo}", config.allowed_clone_schemes
        )
        return RepoSource(
            self.key, spec, url, check_ref(unquote(ref)), f"{user}/{repo}", url + "/tree/{sha}"
        )

    def spec_from_form(self, repository: str, ref: str) -> str:
        return f"{self.key}/{_path_of(repository)}/{_quote_ref(ref, keep_slashes=True)}"


class GitLabProvider(RepoProvider):
    key, display_name, example = "gl", "GitLab", "gl/group%2Fproject/HEAD"

    def parse(self, spec: str, config: Config) -> RepoSource:
        quoted_namespace, _, ref = spec.partition("/")
        namespace = unquote(quoted_namespace).strip("/")
        if not namespace or not ref or "/" not in namespace:
            raise SpecError(
                f"spec is not of the form <url-escaped namespace/project>/ref, "
                f"provided: {spec!r} (e.g. {self.example})"
            )
        for part in namespace.split("/"):
            _check_name(part, "namespace part", spec)
        namespace = namespace.removesuffix(".git")
        base = config.gitlab_url.rstrip("/")
        url = check_clone_url(f"{base}/{namespace}.git", config.allowed_clone_schemes)
        persistent, ref_url = quote(namespace, safe=""), f"{base}/{namespace}/-/tree/{{sha}}"
        return RepoSource(self.key, spec, url, check_ref(unquote(ref)), persistent, ref_url)

    def spec_from_form(self, repository: str, ref: str) -> str:
        namespace = quote(_path_of(repository), safe="")
        return f"{self.key}/{namespace}/{_quote_ref(ref, keep_slashes=False)}"


class GitProvider(RepoProvider):
    key, display_name = "git", "Git"
    example = "git/https%3A%2F%2Fexample.org%2Frepo.git/HEAD"

    def parse(self, spec: str, config: Config) -> RepoSource:
        quoted_url, _, ref = spec.partition("/")
        if not ref:
            raise SpecError(
                f"spec is not of the form <url-escaped clone URL>/ref, provided: "
                f"{spec!r} (e.g. {self.example})"
            )
        url = check_clone_url(unquote(quoted_url), config.allowed_clone_schemes)
        persistent, ref_url = quote(url, safe=""), url.replace("{", "{{").replace("}", "}}")
        return RepoSource(self.key, spec, url, check_ref(unquote(ref)), persistent, ref_url)

    def spec_from_form(self, repository: str, ref: str) -> str:
        return f"{self.key}/{quote(repository, safe='')}/{_quote_ref(ref, keep_slashes=False)}"


class GistProvider(RepoProvider):
    key, display_name, example = "gist", "Gist", "gist/user/0123abcd"

    def parse(self, spec: str, config: Config) -> RepoSource:
        parts = spec.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise SpecError(f"spec is not of the form user/gist-id[/ref], provided: {spec!r}")
        user, gist_id = _check_name(parts[0], "user", spec), parts[1]
        if not _GIST_ID_RE.match(gist_id):
            raise SpecError(f"gist id {gist_id!r} may contain only letters and digits")
        ref = check_ref(unquote(parts[2])) if len(parts) == 3 else "HEAD"
        base = config.gist_url.rstrip("/")
        url = check_clone_url(f"{base}/{gist_id}.git", config.allowed_clone_schemes)
        return RepoSource(
            self.key, spec, url, ref, f"{user}/{gist_id}", f"{base}/{user}/{gist_id}/{{sha}}"
        )


PROVIDERS: dict[str, RepoProvider] = {
    provider.key: provider
    for provider in (GitHubProvider(), GitLabProvider(), GitProvider(), GistProvider())
}


def get_provider(key: str) -> RepoProvider:
    provider = PROVIDERS.get(key)
    if provider is None:
        raise SpecError(
            f"unknown provider {key!r}; use one of {', '.join(PROVIDERS)} (e.g. gh/owner/repo/HEAD)"
        )
    return provider


def parse_spec(provider_spec: str, config: Config) -> RepoSource:
    """Parse `gh/...`, `gl/...`, `git/...` or `gist/...` exactly as BinderHub reads them."""
    key, _, spec = provider_spec.strip("/").partition("/")
    provider = get_provider(key)
    if not spec:
        raise SpecError(f"nothing follows the provider {key!r}; e.g. {provider.example}")
    check_spec_policy(f"{key}/{spec}", config)
    return provider.parse(spec, config)


def source_from_url(url: str, ref: str, config: Config) -> RepoSource:
    """A plain clone URL plus a ref, as the `git` provider would name it."""
    return parse_spec(f"git/{quote(url, safe='')}/{quote(ref, safe='')}", config)


def spec_from_form(provider: str, repository: str, ref: str) -> str:
    """Turn what a person types in the home page form into `<provider>/<spec>`."""
    repository, ref = repository.strip(), (ref.strip() or "HEAD")
    chosen = get_provider(provider)
    if not repository:
        raise SpecError("enter a repository")
    return chosen.spec_from_form(repository, ref)


def check_spec_policy(provider_spec: str, config: Config) -> None:
    """Apply the operator's allow and deny lists (regular expressions, `re.search`)."""
    for pattern in config.spec_deny:
        if re.search(pattern, provider_spec):
            raise SpecError(f"{provider_spec} is not allowed on this server (deny list)")
    if config.spec_allow and not any(re.search(p, provider_spec) for p in config.spec_allow):
        raise SpecError(f"{provider_spec} is not allowed on this server (not on the allow list)")
