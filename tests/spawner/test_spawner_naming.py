"""Property tests for devplane_api.naming: DNS-safe, collision-free, stable names.

The names decide which home volume a user gets back, so they are pinned (known outputs) as
well as checked for their properties over generated user and server names.
"""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st
from jupyterhub.slugs import is_valid_safe_slug

from devplane_api import naming

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# JupyterHub user names are arbitrary non-empty text (OIDC claims: emails, upper case, unicode).
user_names = st.text(min_size=1, max_size=80).filter(lambda s: s.strip() != "")
# JupyterHub 6 accepts a new named server only if it is a "safe slug": 1-30 characters,
# starting with a letter, lower-case letters, digits and single hyphens.
jh6_server_names = st.from_regex(r"\A[a-z]([a-z0-9]|-(?=[a-z0-9])){0,28}[a-z0-9]?\Z").filter(
    is_valid_safe_slug
)
# Servers created before JupyterHub 6 (allow_invalid_named_server_start) can be anything.
legacy_server_names = st.text(min_size=1, max_size=80)
server_names = st.one_of(st.just(""), jh6_server_names, legacy_server_names)


def test_known_outputs_never_change():
    # Changing any of these would hand existing users an empty home volume.
    assert naming.workspace_name("alice") == "alice"
    assert naming.workspace_name("alice", "dev") == "alice--dev"
    assert naming.workspace_name("Alice@example.com") == (
        "alice-example-com---cdbc73c2371c82a21a4ee726"
    )
    assert naming.workspace_name("alice@x.com", "1") == "alice-x-com---9293c9abc55b4cebee3c8b7c--1"
    assert naming.workspace_name("a" * 60) == "a" * 23 + "---11ee391211c6256460b6ed37"
    assert naming.pvc_name("alice", "dev") == "home-alice--dev"
    assert naming.child_name("alice") == "ws-alice"
    assert naming.child_name("alice", "hub") == "ws-alice-hub"


def test_names_of_the_older_release_never_change_either():
    # What the release before the 24-digit hash named: the spawner and the operator look
    # these up so its users keep their Workspaces and home volumes.
    assert naming.legacy_workspace_name("alice", "dev") == "alice--dev"
    assert naming.legacy_workspace_name("Alice@example.com") == "alice-example-com---cdbc73c2"
    assert naming.legacy_workspace_name("alice@x.com", "1") == "alice-x-com---9293c9ab--1"
    assert naming.legacy_workspace_name("a" * 60) == "a" * 39 + "---11ee3912"
    assert naming.legacy_pvc_name("Alice@example.com") == "home-alice-example-com---cdbc73c2"


@given(owner=user_names, server=server_names)
def test_a_name_without_a_hash_is_the_same_as_before(owner, server):
    new, old = naming.workspace_name(owner, server), naming.legacy_workspace_name(owner, server)
    assert (new == old) == ("---" not in new), (new, old)


def test_a_name_collision_cannot_be_searched_for():
    """A hashed name is all a squatter must match (its stripped part is easy: case and
    separators are free), so the hash alone must resist a search: 96 bits, about 2**83 SHA-256
    evaluations even against 10,000 names at once. 32 bits fell to a laptop in minutes."""
    for owner, server in [("Alice@example.com", ""), ("a" * 60, ""), ("alice@x.com", "1"),
                          ("bob", "x" * 60), ("Bob", "Dev Server")]:  # fmt: skip
        name = naming.workspace_name(owner, server)
        (digest,) = re.findall(r"---([0-9a-f]+)", name)
        assert len(digest) * 4 >= 96, f"{name}: a {len(digest) * 4}-bit hash can be searched"


@settings(max_examples=400)
@given(owner=user_names, server=server_names)
# Found by CI: `$` in a Python regex also matches before a final newline, so "0\n" passed for
# a valid label and was used as a name unchanged.
@example(owner="0\n", server="0")
@example(owner="alice\n", server="")
def test_every_name_is_a_short_dns_label(owner, server):
    ws = naming.workspace_name(owner, server)
    assert DNS_LABEL.fullmatch(ws) and len(ws) <= naming.MAX_NAME_LENGTH
    # Every child name built from it must still fit a 63-character DNS label.
    for child in (
        naming.pvc_name(owner, server),
        naming.child_name(ws),
        naming.child_name(ws, "opencode"),
        naming.child_name(ws, "hub"),
    ):
        assert naming.is_valid_label(child, 63), child


@given(owner=user_names, server=server_names)
def test_names_are_stable(owner, server):
    assert naming.workspace_name(owner, server) == naming.workspace_name(owner, server)
    assert naming.pvc_name(owner, server) == f"home-{naming.workspace_name(owner, server)}"


@settings(max_examples=200)
@given(pairs=st.lists(st.tuples(user_names, server_names), min_size=2, max_size=30, unique=True))
def test_distinct_inputs_get_distinct_names(pairs):
    names = [naming.workspace_name(owner, server) for owner, server in pairs]
    assert len(set(names)) == len(names), list(zip(pairs, names, strict=True))


@given(owner=user_names, server=st.one_of(jh6_server_names, legacy_server_names))
def test_default_server_never_collides_with_a_named_server(owner, server):
    # A user's default server and any named server (of anyone) are told apart by
    # construction: only named servers contain "--" outside a "---<hash>" suffix.
    assert naming.workspace_name(owner) != naming.workspace_name(owner, server)
    other = owner + "-" + server
    assert naming.workspace_name(other) != naming.workspace_name(owner, server)


@given(server=jh6_server_names)
def test_jupyterhub6_server_names_are_kept_readable(server):
    # A server name JupyterHub 6 accepts is already DNS-safe: it appears verbatim.
    assert is_valid_safe_slug(server)
    assert naming.workspace_name("alice", server) == f"alice--{server}"


@given(owner=st.from_regex(r"\A[a-z]([a-z0-9]|-(?=[a-z0-9])){0,20}\Z"))
def test_simple_user_names_are_kept_verbatim(owner):
    assert naming.workspace_name(owner) == owner


@given(owner=user_names)
def test_upper_case_and_odd_characters_are_hashed_not_merged(owner):
    lower = owner.lower()
    if lower != owner:
        # "Alice" and "alice" are different JupyterHub users and must not share a volume.
        assert naming.workspace_name(owner) != naming.workspace_name(lower)


def test_empty_owner_is_refused():
    try:
        naming.workspace_name("")
    except ValueError as e:
        assert "owner" in str(e)
    else:
        raise AssertionError("an empty owner must be refused")
