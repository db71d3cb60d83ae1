"""Hub models: a requested revision resolved to the commit that is loaded.

Provenance and locks record the commit, not the branch name: `main` moves, a commit does not.
Offline the commit comes from the local Hugging Face cache (refs/<branch> -> snapshots/<commit>),
the way transformers finds the files; online from the hub. Every failure says what to do: a
gated model without access, a revision that does not exist (or is not cached, offline), a model
that is not there, an interrupted download.
"""

from __future__ import annotations

from pathlib import Path

from harness.models import ModelUnavailableError
from harness.models.offline import hub_reachable


def _repo_folder(repo_id: str, repo_type: str = "model") -> Path:
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    return Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type=repo_type)


def cached_revisions(repo_id: str, repo_type: str = "model") -> dict[str, str]:
    """What the local hub cache holds of a repo: ref name (branch, tag) -> commit, and commits
    no ref points to -> themselves."""
    folder = _repo_folder(repo_id, repo_type)
    refs = {
        str(ref.relative_to(folder / "refs")): ref.read_text().strip()
        for ref in sorted((folder / "refs").rglob("*"))
        if ref.is_file()
    }
    referenced = set(refs.values())
    snapshots = sorted(p.name for p in (folder / "snapshots").glob("*") if p.is_dir())
    return {**refs, **{c: c for c in snapshots if c not in referenced}}


def describe(cached: dict[str, str]) -> str:
    """`main -> 1a2b3c4d5e6f, 0123...` for an error message."""
    listed = [name if name == c else f"{name} -> {c[:12]}" for name, c in cached.items()]
    return ", ".join(listed) or "nothing"


def cached_snapshot(repo_id: str, revision: str) -> Path:
    """The local snapshot folder of `revision`; else ModelUnavailableError saying what is cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except IncompleteSnapshotError as exc:
        raise ModelUnavailableError(
            f"the cached snapshot of model {repo_id!r} (revision {revision}) is incomplete, an "
            f"interrupted download ({exc}): finish it where the hub is reachable: "
            f"`hf download {repo_id} --revision {revision}`"
        ) from None
    except Exception:  # noqa: BLE001 - not cached (LocalEntryNotFoundError and kin)
        pass
    cached = cached_revisions(repo_id)
    if not cached:
        from harness.models import MODEL_ASSETS

        raise ModelUnavailableError(
            f"model {repo_id!r} (revision {revision}) is not in the local Hugging Face cache "
            f"({_repo_folder(repo_id).parent}) and the hub is unreachable: run this suite on a "
            f"machine with hub access (or `hf download {repo_id} --revision {revision}` there "
            "first, with the same HF_HOME), or use an offline asset "
            f"({', '.join(MODEL_ASSETS.names())})."
        ) from None
    raise ModelUnavailableError(
        f"model {repo_id!r} has no revision {revision!r} in the local Hugging Face cache, which "
        f"holds: {describe(cached)}. Set the model's `revision:` to one of these (a branch name "
        "or the full 40-character commit), or download it where the hub is reachable: "
        f"`hf download {repo_id} --revision {revision}`."
    ) from None


def _online_commit(repo_id: str, revision: str) -> str:
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    page = f"https://huggingface.co/{repo_id}"
    try:  # config.json is small, and fetching it is what reveals a gate
        return Path(hf_hub_download(repo_id, "config.json", revision=revision)).parent.name
    except GatedRepoError as exc:
        logged_in = exc.response is not None and exc.response.status_code == 403
        raise ModelUnavailableError(
            f"model {repo_id!r} is gated on the Hugging Face Hub and "
            + (
                "the token here has not been granted access yet: request it on "
                f"{page} (approval can take a while), then run again."
                if logged_in
                else f"no token is set here: accept its licence on {page} while logged in, then "
                "give this machine a read token (`hf auth login`, or HF_TOKEN=...) and run again."
            )
        ) from None
    except RevisionNotFoundError:
        raise ModelUnavailableError(
            f"model {repo_id!r} has no revision {revision!r} on the hub: set the model's "
            f"`revision:` to a branch, tag or full commit that exists ({page}/commits/main lists "
            "the commits)."
        ) from None
    except RepositoryNotFoundError:
        raise ModelUnavailableError(
            f"model {repo_id!r} does not exist on the hub, or is private: check the id ({page}); "
            "for a private model, log in with a token that can read it (`hf auth login`)."
        ) from None
    except LocalEntryNotFoundError:  # the hub stopped answering: what is cached still counts
        return cached_snapshot(repo_id, revision).name
    except EntryNotFoundError:  # a repo without config.json (e.g. GGUF only): ask for the commit
        sha = HfApi().model_info(repo_id, revision=revision).sha
        if not sha:
            raise ModelUnavailableError(f"the hub gave no commit for {repo_id!r}") from None
        return sha
    except HfHubHTTPError as exc:  # e.g. the hub is down (5xx): what is cached still counts
        try:
            return cached_snapshot(repo_id, revision).name
        except ModelUnavailableError:
            raise ModelUnavailableError(
                f"the hub could not give model {repo_id!r} (revision {revision}): "
                f"{' '.join(str(exc).split())[:300]}. Try again later."
            ) from None


def snapshot_commit(repo_id: str, revision: str) -> str:
    """The commit `revision` of hub model `repo_id` resolves to, here and now."""
    if hub_reachable():
        return _online_commit(repo_id, revision)
    return cached_snapshot(repo_id, revision).name


def config_folder(repo_id: str, revision: str) -> Path | None:
    """A local folder with the model's config.json (its cached snapshot; online, that one file
    is fetched when it is not cached), or None when there is none to be had."""
    try:
        folder = cached_snapshot(repo_id, revision)
    except ModelUnavailableError:
        if not hub_reachable():
            return None
        try:
            _online_commit(repo_id, revision)  # fetches config.json into the cache
            folder = cached_snapshot(repo_id, revision)
        except ModelUnavailableError:
            return None
    return folder if (folder / "config.json").is_file() else None
