"""Partial responses: the `fields=` query parameter applied to Bitbucket-shaped documents."""

import copy

import pytest

from ox_bb_sandbox.fields import apply_fields

PR_LIST_HIDDEN = ["values.participants", "values.reviewers"]


def _pull_request(id, commit_hash):
    return {
        "type": "pullrequest",
        "id": id,
        "title": f"PR {id}",
        "state": "OPEN",
        "source": {
            "branch": {"name": f"feature/{id}"},
            "commit": {"hash": commit_hash} if commit_hash else None,
        },
        "links": {
            "self": {"href": f"https://api.example/pullrequests/{id}"},
            "html": {"href": f"https://bb.example/pull-requests/{id}"},
        },
        "participants": [
            {"user": {"nickname": "alice", "account_id": "a-1"}, "role": "REVIEWER", "approved": True},
            {"user": {"nickname": "bob", "account_id": "b-2"}, "role": "PARTICIPANT", "approved": False},
        ],
        "reviewers": [{"nickname": "alice", "account_id": "a-1"}],
    }


def pr_page():
    """A full (nothing hidden) page of pull requests as the sandbox stores it."""
    return {
        "pagelen": 2,
        "size": 3,
        "page": 1,
        "values": [_pull_request(1, "abc123"), _pull_request(2, None)],
        "next": "https://api.example/pullrequests?page=2",
    }


def repo_page():
    return {
        "pagelen": 10,
        "values": [
            {
                "slug": "api",
                "is_private": True,
                "project": {"key": "CORE", "name": "Core"},
                "mainbranch": {"name": "main", "type": "branch"},
                "owner": {"display_name": "Acme", "uuid": "{1}"},
                "links": {"html": {"href": "https://bb.example/acme/api"}, "clone": [{"name": "https", "href": "h"}]},
            }
        ],
    }


def without(doc, *paths):
    """`doc` with `values.<key>` removed from every element, for the expected side of asserts."""
    doc = copy.deepcopy(doc)
    for path in paths:
        for value in doc["values"]:
            value.pop(path.removeprefix("values."), None)
    return doc


# --- defaults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fields", [None, ""])
def test_without_fields_hidden_paths_are_dropped(fields):
    assert apply_fields(pr_page(), fields, PR_LIST_HIDDEN) == without(pr_page(), *PR_LIST_HIDDEN)


def test_without_hidden_paths_the_document_is_returned_whole():
    assert apply_fields(pr_page(), None) == pr_page()


# --- plain paths ------------------------------------------------------------------------------


def test_plain_path_keeps_only_that_field_in_every_list_element():
    assert apply_fields(pr_page(), "values.id", PR_LIST_HIDDEN) == {"values": [{"id": 1}, {"id": 2}]}


def test_plain_paths_combine_and_drop_everything_else():
    result = apply_fields(pr_page(), "values.id,values.title,next", PR_LIST_HIDDEN)
    assert result == {
        "values": [{"id": 1, "title": "PR 1"}, {"id": 2, "title": "PR 2"}],
        "next": "https://api.example/pullrequests?page=2",
    }


def test_plain_path_naming_an_object_keeps_the_whole_object():
    result = apply_fields(pr_page(), "values.source", PR_LIST_HIDDEN)
    assert result == {"values": [{"source": v["source"]} for v in pr_page()["values"]]}


def test_plain_ancestor_of_a_hidden_path_keeps_it_hidden():
    assert apply_fields(pr_page(), "values", PR_LIST_HIDDEN) == {
        "values": without(pr_page(), *PR_LIST_HIDDEN)["values"]
    }


def test_nonexistent_paths_are_ignored():
    assert apply_fields(pr_page(), "values.id,nope,values.nope.deeper", PR_LIST_HIDDEN) == {
        "values": [{"id": 1}, {"id": 2}]
    }


def test_missing_leaf_drops_the_containers_leading_to_it_but_keeps_list_elements():
    # PR 2 has no commit: its element stays (so the page keeps its length) but empty.
    result = apply_fields(pr_page(), "values.source.commit.hash", PR_LIST_HIDDEN)
    assert result == {"values": [{"source": {"commit": {"hash": "abc123"}}}, {}]}


def test_empty_page_keeps_its_empty_values_list():
    assert apply_fields({"pagelen": 10, "values": []}, "values.id", PR_LIST_HIDDEN) == {"values": []}


def test_single_object_without_envelope():
    pull_request = _pull_request(7, "def456")
    result = apply_fields(pull_request, "id,source.branch.name,links.html", ["participants", "reviewers"])
    assert result == {
        "id": 7,
        "source": {"branch": {"name": "feature/7"}},
        "links": {"html": {"href": "https://bb.example/pull-requests/7"}},
    }


def test_lists_inside_lists_are_traversed():
    doc = {"values": [{"links": {"clone": [{"name": "https", "href": "h1"}, {"name": "ssh", "href": "h2"}]}}]}
    assert apply_fields(doc, "values.links.clone.name") == {
        "values": [{"links": {"clone": [{"name": "https"}, {"name": "ssh"}]}}]
    }


# --- + and hidden paths -----------------------------------------------------------------------


def test_plus_adds_hidden_participants_to_list():
    assert apply_fields(pr_page(), "+values.participants", PR_LIST_HIDDEN) == without(pr_page(), "values.reviewers")


def test_plus_alongside_plain_paths_is_also_an_include():
    assert apply_fields(pr_page(), "values.id,+values.reviewers", PR_LIST_HIDDEN) == {
        "values": [
            {"id": 1, "reviewers": [{"nickname": "alice", "account_id": "a-1"}]},
            {"id": 2, "reviewers": [{"nickname": "alice", "account_id": "a-1"}]},
        ]
    }


def test_plain_path_naming_a_hidden_path_includes_it():
    result = apply_fields(pr_page(), "values.participants", PR_LIST_HIDDEN)
    assert result == {"values": [{"participants": v["participants"]} for v in pr_page()["values"]]}


def test_path_to_a_descendant_of_a_hidden_path_includes_just_that_descendant():
    participants = [{"user": {"nickname": "alice"}}, {"user": {"nickname": "bob"}}]
    assert apply_fields(pr_page(), "values.id,values.participants.user.nickname", PR_LIST_HIDDEN) == {
        "values": [{"id": 1, "participants": participants}, {"id": 2, "participants": participants}]
    }
    # With only `+` entries the rest of the document stays as it is.
    result = apply_fields(pr_page(), "+values.participants.user.nickname", PR_LIST_HIDDEN)
    assert result["values"][0]["participants"] == participants
    assert result["values"][0]["title"] == "PR 1"


def test_revealing_an_outer_hidden_path_does_not_reveal_a_nested_one():
    hidden = ["values.participants", "values.participants.user.account_id"]
    result = apply_fields(pr_page(), "+values.participants", hidden)
    assert result["values"][0]["participants"][0]["user"] == {"nickname": "alice"}
    result = apply_fields(pr_page(), "+values.participants,+values.participants.user.account_id", hidden)
    assert result["values"][0]["participants"][0]["user"] == {"nickname": "alice", "account_id": "a-1"}


# --- - paths ----------------------------------------------------------------------------------


def test_minus_removes_paths():
    expected = without(pr_page(), "values.links", *PR_LIST_HIDDEN)
    del expected["next"]
    assert apply_fields(pr_page(), "-values.links,-next", PR_LIST_HIDDEN) == expected


def test_minus_is_applied_last():
    assert apply_fields(pr_page(), "-values.participants,+values.participants", PR_LIST_HIDDEN) == without(
        pr_page(), *PR_LIST_HIDDEN
    )
    assert apply_fields(pr_page(), "values.id,values.title,-values.title", PR_LIST_HIDDEN) == {
        "values": [{"id": 1}, {"id": 2}]
    }


def test_minus_inside_a_kept_object():
    result = apply_fields(pr_page(), "values.links,-values.links.self", PR_LIST_HIDDEN)
    assert result == {"values": [{"links": {"html": v["links"]["html"]}} for v in pr_page()["values"]]}


def test_minus_of_a_nonexistent_path_is_ignored():
    assert apply_fields(pr_page(), "-values.nope,-nope.deeper", PR_LIST_HIDDEN) == without(pr_page(), *PR_LIST_HIDDEN)


# --- wildcards --------------------------------------------------------------------------------


def test_wildcard_matches_any_single_key():
    assert apply_fields(repo_page(), "values.*.name") == {
        "values": [{"project": {"name": "Core"}, "mainbranch": {"name": "main"}}]
    }


def test_wildcard_in_the_middle_of_a_path():
    result = apply_fields(pr_page(), "values.links.*.href", PR_LIST_HIDDEN)
    assert result == {"values": [{"links": v["links"]} for v in pr_page()["values"]]}


def test_wildcard_with_minus():
    result = apply_fields(repo_page(), "values.slug,-values.*")
    assert result == {"values": [{}]}


@pytest.mark.parametrize("fields", ["*", "**", "+*", "+**"])
def test_lone_star_means_everything_including_hidden(fields):
    assert apply_fields(pr_page(), fields, PR_LIST_HIDDEN) == pr_page()


def test_lone_star_combines_with_minus():
    assert apply_fields(pr_page(), "*,-values.links", PR_LIST_HIDDEN) == without(pr_page(), "values.links")


def test_wildcards_do_not_reveal_hidden_paths():
    assert apply_fields(pr_page(), "values.*", PR_LIST_HIDDEN) == {
        "values": without(pr_page(), *PR_LIST_HIDDEN)["values"]
    }
    # *.* keeps everything two levels deep: the values list, not the scalar pagelen/next.
    assert apply_fields(pr_page(), "*.*", PR_LIST_HIDDEN) == {"values": without(pr_page(), *PR_LIST_HIDDEN)["values"]}


def test_double_star_under_a_path_reveals_hidden_below_it():
    assert apply_fields(pr_page(), "values.**", PR_LIST_HIDDEN) == {"values": pr_page()["values"]}


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        "values..id",
        ".id",
        "values.",
        "+",
        "-",
        "++values",
        "values.id!",
        "values id",  # a "+" that was not URL-encoded arrives as a space
        " values.id",
        "values.**.id",
        "val*ues",
        "values.ïd",
    ],
)
def test_invalid_field_names_are_rejected(entry):
    with pytest.raises(ValueError) as err:
        apply_fields(pr_page(), f"values.title,{entry}", PR_LIST_HIDDEN)
    assert str(err.value) == f'Invalid field name: "{entry}"'


def test_empty_entries_are_ignored():
    assert apply_fields(pr_page(), "values.id,,", PR_LIST_HIDDEN) == {"values": [{"id": 1}, {"id": 2}]}


def test_hyphens_and_underscores_are_valid_in_names():
    doc = {"x-request-id": "r1", "merge_commit": {"hash": "h"}, "other": 1}
    assert apply_fields(doc, "x-request-id,merge_commit.hash") == {"x-request-id": "r1", "merge_commit": {"hash": "h"}}


# --- copies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [None, "values.id", "+values.participants", "-values.links", "*", "values.source,values.participants"],
)
def test_input_is_never_mutated_and_output_shares_nothing(fields):
    page = pr_page()
    result = apply_fields(page, fields, PR_LIST_HIDDEN)
    assert page == pr_page()
    for value in result.get("values", []):
        value.clear()
    result.get("values", []).clear()
    assert page == pr_page()


def test_output_containers_are_new_objects():
    page = pr_page()
    result = apply_fields(page, "*", PR_LIST_HIDDEN)
    assert result is not page
    assert result["values"] is not page["values"]
    assert result["values"][0]["participants"][0]["user"] is not page["values"][0]["participants"][0]["user"]
