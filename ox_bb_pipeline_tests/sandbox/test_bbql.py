"""BBQL: filtering (`q=`) and sorting (`sort=`) as the sandbox applies them to list endpoints."""

import copy

import pytest

from ox_bb_sandbox.bbql import BBQLError, filter_items, parse, sort_items


def _pull_request(id, title, state, updated_on, branch, comment_count, participants, **extra):
    return {
        "id": id,
        "type": "pullrequest",
        "title": title,
        "state": state,
        "updated_on": updated_on,
        "source": {"branch": {"name": branch}, "repository": {"full_name": "acme/api"}},
        "destination": {"branch": {"name": "main"}},
        "comment_count": comment_count,
        "participants": [
            {"user": {"nickname": nickname}, "role": role, "approved": approved}
            for nickname, role, approved in participants
        ],
        **extra,
    }


PULL_REQUESTS = [
    _pull_request(
        1,
        "Fix login redirect",
        "OPEN",
        "2026-01-02T10:00:00.000000+00:00",
        "bugfix/login",
        3,
        [("alice", "REVIEWER", True), ("bob", "PARTICIPANT", False)],
        close_source_branch=True,
        reason=None,
    ),
    _pull_request(
        2,
        'Bump "requests" to 2.32',
        "MERGED",
        "2025-12-31T23:59:59.999999+00:00",
        "deps/requests",
        0,
        [("carol", "REVIEWER", True)],
        close_source_branch=False,
        reason="",
    ),
    _pull_request(
        3,
        "WIP: new billing API",
        "OPEN",
        "2026-01-15T08:30:00.058566+00:00",
        "feature/billing",
        12,
        [],
        close_source_branch=False,
    ),
    _pull_request(
        4,
        "Revert C:\\temp paths",
        "DECLINED",
        "2026-01-01T01:00:00+05:00",
        "revert/paths",
        1,
        [("bob", "REVIEWER", False)],
        close_source_branch=True,
        reason="superseded",
    ),
]

REPOSITORIES = [
    {
        "slug": "api",
        "project": {"key": "CORE"},
        "is_private": True,
        "size": 2048,
        "updated_on": "2026-01-10T12:00:00.123456+00:00",
        "language": "python",
    },
    {
        "slug": "web",
        "project": {"key": "FRONT"},
        "is_private": False,
        "size": 512,
        "updated_on": "2025-06-01T00:00:00+00:00",
        "language": "typescript",
    },
    {
        "slug": "infra",
        "project": {"key": "CORE"},
        "is_private": True,
        "size": 0,
        "updated_on": "2026-01-10T13:00:00+02:00",
        "language": "",
    },
    {"slug": "legacy", "project": None, "is_private": False, "size": 4096.5, "updated_on": None},
]


def pr_ids(q: str) -> list[int]:
    query = parse(q)
    return [pr["id"] for pr in PULL_REQUESTS if query.matches(pr)]


def repo_slugs(q: str) -> list[str]:
    query = parse(q)
    return [repo["slug"] for repo in REPOSITORIES if query.matches(repo)]


# --- operators --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ('state = "OPEN"', [1, 3]),
        ('state != "OPEN"', [2, 4]),
        ('state = "open"', []),  # = is case-sensitive
        ('title ~ "LOGIN"', [1]),  # ~ is case-insensitive contains
        ('title !~ "login"', [2, 3, 4]),
        ('source.branch.name ~ "feature/"', [3]),
        ("comment_count > 1", [1, 3]),
        ("comment_count >= 1", [1, 3, 4]),
        ("comment_count < 1", [2]),
        ("comment_count <= 1", [2, 4]),
        ("comment_count = 12", [3]),
        ("comment_count != 12", [1, 2, 4]),
        ("comment_count < 2.5", [2, 4]),
        ("comment_count > -1", [1, 2, 3, 4]),
        ('source.branch.name < "c"', [1]),  # strings compare lexically
        ('source.branch.name >= "feature"', [3, 4]),
    ],
)
def test_every_operator_on_pull_requests(q, expected):
    assert pr_ids(q) == expected


def test_in_matches_any_listed_value():
    assert pr_ids('state IN ("MERGED", "DECLINED")') == [2, 4]
    assert pr_ids("comment_count IN (0, 12)") == [2, 3]
    assert repo_slugs('project.key IN ("FRONT")') == ["web"]


def test_in_can_list_null():
    assert pr_ids('reason IN (null, "superseded")') == [1, 3, 4]


def test_keywords_are_case_insensitive():
    assert pr_ids('state = "OPEN" and comment_count > 5 or state in ("MERGED")') == [2, 3]


def test_keyword_lookalike_field_names_are_fields():
    query = parse("origin = 1 AND index = 2 OR android = true AND nullable = null")
    assert query.fields == {"origin", "index", "android", "nullable"}


# --- combining --------------------------------------------------------------------------------


def test_and_binds_tighter_than_or():
    # Read as: MERGED OR (OPEN AND comment_count > 100).
    assert pr_ids('state = "MERGED" OR state = "OPEN" AND comment_count > 100') == [2]


def test_parentheses_override_precedence():
    assert pr_ids('(state = "MERGED" OR state = "OPEN") AND comment_count > 100') == []
    assert pr_ids('(state = "MERGED" OR state = "OPEN") AND comment_count > 2') == [1, 3]


def test_nested_parentheses():
    assert pr_ids('((state = "OPEN") AND (comment_count > 5 OR (title ~ "login")))') == [1, 3]


def test_chains_of_and_and_or():
    assert pr_ids('state = "OPEN" AND comment_count > 1 AND title ~ "wip"') == [3]
    assert pr_ids("id = 1 OR id = 2 OR id = 4") == [1, 2, 4]


def test_any_whitespace_is_accepted():
    assert pr_ids('\n\tstate="OPEN"\n  AND\tcomment_count>=3  ') == [1, 3]


def test_long_chains_do_not_hit_the_recursion_limit():
    query = parse(" OR ".join(f"id = {n}" for n in range(1500)))
    assert query.matches({"id": 1499})


# --- values -----------------------------------------------------------------------------------


def test_quoted_strings_unescape_backslashes():
    assert pr_ids(r'title = "Bump \"requests\" to 2.32"') == [2]
    assert pr_ids(r'title ~ "C:\\temp"') == [4]


def test_string_never_equals_a_number():
    assert pr_ids('id = "1"') == []
    assert pr_ids("title = 1") == []


def test_booleans():
    assert pr_ids("close_source_branch = true") == [1, 4]
    assert pr_ids("close_source_branch = false") == [2, 3]
    assert pr_ids("close_source_branch != true") == [2, 3]
    assert repo_slugs("is_private = true AND size > 1000") == ["api"]


def test_booleans_and_numbers_do_not_mix():
    # bool is an int in Python; BBQL keeps them apart.
    assert pr_ids("close_source_branch = 1") == []
    assert repo_slugs("size = false") == []


def test_null_matches_missing_and_none():
    assert pr_ids("reason = null") == [1, 3]  # 1 has None, 3 has no key at all
    assert pr_ids("reason != null") == [2, 4]  # "" is a value, not null
    assert repo_slugs("project.key = null") == ["legacy"]  # path through a None object


def test_float_values():
    assert repo_slugs("size > 4096.4") == ["legacy"]
    assert repo_slugs("size = 4096.5") == ["legacy"]
    assert repo_slugs("size = 2048.0") == ["api"]


def test_parse_reports_every_referenced_path():
    query = parse('state = "OPEN" AND (source.branch.name ~ "fix" OR state IN ("MERGED"))')
    assert query.fields == frozenset({"state", "source.branch.name"})


# --- datetimes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("updated_on > 2026-01-01", [1, 3]),  # a date is midnight UTC
        ("updated_on >= 2026-01-02T10:00:00", [1, 3]),  # naive is UTC
        ("updated_on > 2026-01-02T10:00:00", [3]),
        ("updated_on > 2026-01-02T11:00:00+02:00", [1, 3]),  # = 09:00Z
        ("updated_on > 2026-01-02T10:00:00-01:00", [3]),  # = 11:00Z
        ("updated_on < 2026-01-01T00:00:00Z", [2, 4]),
        ("updated_on <= 2025-12-31T23:59:59.999999Z", [2, 4]),
        ("updated_on < 2025-12-31T23:59:59.999999+00:00", [4]),
        ("updated_on > 2026-01-15T08:30:00.058565Z", [3]),
        ("updated_on > 2026-01-15T08:30:00.058566Z", []),
    ],
)
def test_datetime_comparisons(q, expected):
    assert pr_ids(q) == expected


def test_datetimes_compare_as_instants_not_text():
    # PR 4's "2026-01-01T01:00:00+05:00" is 2025-12-31T20:00Z: textually later, actually earlier.
    assert pr_ids("updated_on > 2025-12-31T21:00:00Z AND updated_on < 2026-01-01T00:00:00Z") == [2]
    assert repo_slugs("updated_on < 2026-01-10T12:00:00Z") == ["web", "infra"]


def test_datetime_equality_across_offsets():
    assert pr_ids("updated_on = 2025-12-31T20:00:00Z") == [4]
    assert pr_ids("updated_on = 2026-01-02T12:00:00+02:00") == [1]


def test_quoted_iso_dates_also_compare_as_instants():
    assert pr_ids('updated_on < "2025-12-31T21:00:00Z"') == [4]


def test_datetime_against_missing_or_non_date_values_is_false():
    assert repo_slugs("updated_on > 2000-01-01") == ["api", "web", "infra"]
    assert repo_slugs("language < 2030-01-01") == []


# --- lists ------------------------------------------------------------------------------------


def test_path_through_a_list_matches_if_any_element_matches():
    assert pr_ids('participants.user.nickname = "bob"') == [1, 4]
    assert pr_ids('participants.role = "REVIEWER" AND participants.approved = true') == [1, 2]


def test_negated_operators_on_lists_mean_no_element_matches():
    # `!=` is exactly NOT `=`, so this reads "bob is not among the participants".
    assert pr_ids('participants.user.nickname != "bob"') == [2, 3]
    assert pr_ids('participants.user.nickname !~ "O"') == [3]


def test_empty_list_counts_as_null():
    assert pr_ids("participants.user.nickname = null") == [3]


# --- incomparable values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "q",
    [
        'comment_count > "abc"',
        "title > 5",
        "source > 1",
        'participants ~ "alice"',
        "comment_count ~ 3",
        "close_source_branch > false",
        "reason < 1",
    ],
)
def test_incomparable_types_are_false_not_errors(q):
    assert pr_ids(q) == []


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ('state = "OPEN" AND AND id = 1', 'Invalid query: unexpected token "AND" at position 19'),
        ('state == "OPEN"', 'Invalid query: unexpected token "=" at position 7'),
        ('state = "OPEN" id = 1', 'Invalid query: unexpected token "id" at position 15'),
        ("state IN ()", 'Invalid query: unexpected token ")" at position 10'),
        ('OR state = "OPEN"', 'Invalid query: unexpected token "OR" at position 0'),
        ("state = OPEN", 'Invalid query: unexpected token "OPEN" at position 8'),
        ('state = "OPEN" AND', "Invalid query: unexpected end of query"),
        ('(state = "OPEN"', "Invalid query: unexpected end of query"),
        ('state = "OPEN', "Invalid query: unterminated string at position 8"),
        ('state @ "OPEN"', 'Invalid query: unexpected character "@" at position 6'),
        ("updated_on > 2026-02-30", 'Invalid query: invalid datetime "2026-02-30" at position 13'),
        ("", "Invalid query: empty query"),
        ("   ", "Invalid query: empty query"),
    ],
)
def test_syntax_errors_name_the_problem(q, message):
    with pytest.raises(BBQLError) as err:
        parse(q)
    assert str(err.value) == message


def test_bbql_error_is_a_value_error():
    assert issubclass(BBQLError, ValueError)


# --- filter_items -----------------------------------------------------------------------------

PR_FILTERABLE = {"state", "title", "updated_on", "source.branch.name", "participants.user.nickname"}


@pytest.mark.parametrize("q", [None, ""])
def test_filter_without_query_is_a_no_op(q):
    result = filter_items(PULL_REQUESTS, q, PR_FILTERABLE)
    assert result == PULL_REQUESTS
    assert result is not PULL_REQUESTS


def test_filter_keeps_matching_items_in_order():
    result = filter_items(PULL_REQUESTS, 'state = "OPEN" OR source.branch.name ~ "deps"', PR_FILTERABLE)
    assert [pr["id"] for pr in result] == [1, 2, 3]


def test_filter_rejects_a_field_that_does_not_support_filtering():
    with pytest.raises(BBQLError, match=r'^Field "comment_count" does not support filtering$'):
        filter_items(PULL_REQUESTS, 'state = "OPEN" AND comment_count > 1', PR_FILTERABLE)


def test_filterable_paths_match_exactly():
    # "source.branch.name" being filterable does not make "source.branch" or "source" filterable.
    with pytest.raises(BBQLError, match=r'^Field "source.branch" does not support filtering$'):
        filter_items(PULL_REQUESTS, "source.branch = null", PR_FILTERABLE)


def test_filter_reports_syntax_errors():
    with pytest.raises(BBQLError, match="^Invalid query: "):
        filter_items(PULL_REQUESTS, 'state = "OPEN" AND', PR_FILTERABLE)


def test_filter_and_match_do_not_mutate_items():
    before = copy.deepcopy(PULL_REQUESTS)
    filter_items(PULL_REQUESTS, 'participants.user.nickname = "bob" OR updated_on > 2026-01-01', PR_FILTERABLE)
    assert PULL_REQUESTS == before


# --- sort_items -------------------------------------------------------------------------------

REPO_SORTABLE = {"slug", "size", "updated_on", "project.key"}


def slugs(items):
    return [repo["slug"] for repo in items]


def test_sort_ascending():
    assert slugs(sort_items(REPOSITORIES, "slug", REPO_SORTABLE)) == ["api", "infra", "legacy", "web"]
    assert slugs(sort_items(REPOSITORIES, "size", REPO_SORTABLE)) == ["infra", "web", "api", "legacy"]


def test_sort_descending_with_minus():
    assert slugs(sort_items(REPOSITORIES, "-slug", REPO_SORTABLE)) == ["web", "legacy", "infra", "api"]
    assert slugs(sort_items(REPOSITORIES, "-size", REPO_SORTABLE)) == ["legacy", "api", "web", "infra"]


def test_sort_datetimes_by_instant():
    # infra's 13:00+02:00 is 11:00Z, before api's 12:00Z, though its text sorts after.
    assert slugs(sort_items(REPOSITORIES, "updated_on", REPO_SORTABLE)) == ["web", "infra", "api", "legacy"]


def test_nulls_sort_last_ascending_and_first_descending():
    assert slugs(sort_items(REPOSITORIES, "project.key", REPO_SORTABLE)) == ["api", "infra", "web", "legacy"]
    assert slugs(sort_items(REPOSITORIES, "-project.key", REPO_SORTABLE)) == ["legacy", "web", "api", "infra"]


def test_sort_is_stable_in_both_directions():
    # api and infra share project.key CORE and keep their input order either way.
    ascending = sort_items(REPOSITORIES, "project.key", REPO_SORTABLE)
    descending = sort_items(REPOSITORIES, "-project.key", REPO_SORTABLE)
    assert slugs(ascending)[:2] == ["api", "infra"]
    assert slugs(descending)[2:] == ["api", "infra"]


@pytest.mark.parametrize("sort", [None, ""])
def test_no_sort_keeps_order(sort):
    result = sort_items(REPOSITORIES, sort, REPO_SORTABLE)
    assert result == REPOSITORIES
    assert result is not REPOSITORIES


@pytest.mark.parametrize(
    ("sort", "field"), [("language", "language"), ("-language", "language"), ("project", "project")]
)
def test_sort_rejects_unknown_fields(sort, field):
    with pytest.raises(BBQLError) as err:
        sort_items(REPOSITORIES, sort, REPO_SORTABLE)
    assert str(err.value) == f'Invalid sort field: "{field}"'


def test_sort_tolerates_mixed_value_types():
    items = [{"v": "b"}, {"v": 2}, {"v": None}, {"v": True}, {"v": "a"}, {"v": 1.5}, {}]
    assert [item.get("v") for item in sort_items(items, "v", {"v"})] == [True, 1.5, 2, "a", "b", None, None]


def test_sort_does_not_mutate_input():
    before = copy.deepcopy(REPOSITORIES)
    sort_items(REPOSITORIES, "-updated_on", REPO_SORTABLE)
    assert REPOSITORIES == before
