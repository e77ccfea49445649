"""What every checked table must satisfy, declared as data, and `validate()`, which runs it as a
Great Expectations 1.x suite in an ephemeral context and says what failed, with a few examples.

Suites are named after where the table lives: `raw/<table>` (lake/raw, one partition per
connection), `findings/<scanner>` (lake/findings, the one finding schema) and `warehouse/<model>`
(a mart in warehouse.duckdb, built by sql/<model>.sql).
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from ..findings import CATEGORIES, SEVERITIES
from ..scanners import registry
from ..warehouse.settings import FRAMEWORKS

MAX_EXAMPLES = 5
EXAMPLE_WIDTH = 120
CELL_WIDTH = 40  # one long value may not hide the key beside it
DEFAULT_MAX_ROW_COUNT_DROP = 0.5
OPEN_STATUSES = ("new", "open", "reopened")
QUEUE_STATUSES = (*OPEN_STATUSES, "resolved", "suppressed", "excluded", "correlated")
SLA_SEVERITIES = (
    "low",
    "medium",
    "high",
    "critical",
)  # always have SLA days (settings.DEFAULT_SLA_DAYS)
COMPLIANCE_STATUSES = ("pass", "fail", "not_evaluable")


@dataclass(frozen=True)
class Suite:
    """One table's expectations. Key columns are not null (unless listed in `nullable`) and
    unique together; `allowed` columns are not null and take only the listed values;
    `required_when` columns are not null on the rows whose listed columns all take one of the
    listed values; `true_columns` are computed checks (in `query`) that must hold on every row.
    `guard_row_count`: the row count may not collapse from one run to the next (see
    `row_count_floor`)."""

    name: str
    key: tuple[str, ...]
    nullable: tuple[str, ...] = ()
    allowed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    required_when: tuple[tuple[str, Mapping[str, tuple[str, ...]]], ...] = ()  # (column, {column: values})
    true_columns: tuple[str, ...] = ()
    context: tuple[str, ...] = ()  # extra columns shown beside the key in examples
    guard_row_count: bool = True
    query: str | None = None  # warehouse suites: SQL for the frame (default: the needed columns)

    @property
    def zone(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split("/", 1)[1]

    @property
    def columns(self) -> list[str]:
        """Every column the suite reads, so loaders read nothing else."""
        conditions = [c for _, where in self.required_when for c in where]
        names = [
            *self.key,
            *self.allowed,
            *(c for c, _ in self.required_when),
            *conditions,
            *self.true_columns,
            *self.context,
        ]
        return list(dict.fromkeys(names))


def _raw(
    table: str,
    *key: str,
    nullable: tuple[str, ...] = (),
    allowed: Mapping | None = None,
    guard_row_count: bool = False,
) -> Suite:
    return Suite(
        f"raw/{table}",
        key,
        nullable=nullable,
        allowed=allowed or {},
        guard_row_count=guard_row_count,
    )


# Raw tables: the keys the extract stage writes (bitbucket/tables.py). The row-count guard is on for
# tables that follow the repositories a connection sees; the others (restrictions, permissions,
# extraction problems…) may shrink to nothing for good reasons.
# fmt: off
RAW_SUITES = [
    _raw("workspaces", "workspace", guard_row_count=True),
    _raw("projects", "workspace", "project_uuid", guard_row_count=True),
    _raw("repositories", "repository_uuid", guard_row_count=True),
    _raw("branches", "repository_uuid", "branch", guard_row_count=True),
    _raw("branch_restrictions", "repository_uuid", "restriction_id"),
    _raw("branching_models", "repository_uuid", guard_row_count=True),
    _raw("default_reviewers", "repository_uuid", "user_uuid"),
    _raw("pull_requests", "repository_uuid", "pr_id", guard_row_count=True,
         allowed={"state": ("OPEN", "MERGED", "DECLINED", "SUPERSEDED")}),
    _raw("main_branch_commits", "repository_uuid", "commit", guard_row_count=True),
    _raw("pipeline_configs", "repository_uuid", guard_row_count=True),
    _raw("pipeline_variables",
         "level", "workspace", "repository_uuid", "environment", "variable_uuid",
         nullable=("repository_uuid", "environment"),
         allowed={"level": ("workspace", "repository", "deployment")}),
    _raw("pipeline_runs", "repository_uuid", "pipeline_uuid"),
    _raw("environments", "repository_uuid", "environment_uuid"),
    _raw("deploy_keys", "repository_uuid", "key_id"),
    _raw("webhooks", "level", "workspace", "repository_uuid", "hook_uuid",
         nullable=("repository_uuid",), allowed={"level": ("workspace", "repository")}),
    _raw("repository_permissions", "repository_uuid", "user_uuid"),
    _raw("extraction_status", "workspace", "repository_uuid", "table_name", "endpoint",
         nullable=("repository_uuid",),
         allowed={"status": ("forbidden", "not_found", "missing_scope", "gone", "error")}),
]
# fmt: on


def finding_suite(scanner: str, guard_row_count: bool = True) -> Suite:
    """A scanner's findings (findings.py): fingerprints unique within the partition."""
    return Suite(
        f"findings/{scanner}",
        ("finding_id",),
        context=("rule_id",),
        allowed={"base_severity": SEVERITIES, "category": CATEGORIES},
        guard_row_count=guard_row_count,
    )


def finding_suites() -> list[Suite]:
    """One suite per scanner of the registry (scanners/registry.py), read at call time."""
    return [finding_suite(s.lake_table, guard_row_count=s.guard_row_count) for s in registry.scanners()]


FINDING_SUITES = finding_suites()  # as loaded (the Dagster checks are built from it)

# Every finding belongs to an application: its repository's (application_mapping → applications),
# or, for a workspace-level settings finding (repository_uuid ''), its workspace (findings.sql).
FINDINGS_WITH_APPLICATIONS = """
SELECT f.finding_id, f.base_severity, f.category, f.application,
       a.application IS NOT NULL
           OR (f.repository_uuid = '' AND f.application = 'workspace:' || f.workspace)
           AS application_mapped
FROM findings AS f
LEFT JOIN (SELECT DISTINCT application FROM applications) AS a USING (application)
"""

WAREHOUSE_SUITES = [
    Suite(
        "warehouse/findings",
        ("finding_id",),
        allowed={"base_severity": SEVERITIES, "category": CATEGORIES},
        true_columns=("application_mapped",),
        context=("application",),
        query=FINDINGS_WITH_APPLICATIONS,
    ),
    Suite("warehouse/enriched_findings", ("finding_id",), allowed={"final_severity": SEVERITIES}),
    Suite(
        "warehouse/findings_queue",
        ("finding_id",),
        allowed={"status": QUEUE_STATUSES, "final_severity": SEVERITIES},
        required_when=(("sla_due_at", {"status": OPEN_STATUSES, "final_severity": SLA_SEVERITIES}),),
        context=("status",),
    ),
    # These two follow applications.yaml: regrouping repositories may shrink them for good reasons.
    Suite(
        "warehouse/compliance_report",
        ("application", "framework", "control_id"),
        allowed={"status": COMPLIANCE_STATUSES, "framework": tuple(FRAMEWORKS)},
        guard_row_count=False,
    ),
    Suite("warehouse/applications", ("application",), guard_row_count=False),
]

SUITES: dict[str, Suite] = {s.name: s for s in (*RAW_SUITES, *FINDING_SUITES, *WAREHOUSE_SUITES)}


def suite(name: str) -> Suite:
    """The suite of a table; a scanner registered after import has its findings suite too."""
    known = {**SUITES, **{s.name: s for s in finding_suites()}}
    if name not in known:
        raise KeyError(f"no expectation suite for table {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


def row_count_floor(previous_row_count: int | None, max_drop: float = DEFAULT_MAX_ROW_COUNT_DROP) -> int | None:
    """The fewest rows this run may have, given the previous good run's count.

    A table that had rows may not come back empty, nor lose more than `max_drop` of them (0.5:
    at least half must remain) in one run: that is what a scanner failing silently, a revoked
    scope or a truncated file looks like, and it would resolve real findings downstream. No
    previous count (a first run) or an empty previous table sets no floor; growing is always
    fine. `max_drop=1` keeps only the never-empty rule.
    """
    if not previous_row_count:
        return None
    if not 0 <= max_drop <= 1:
        raise ValueError(f"max_row_count_drop must be between 0 and 1, not {max_drop}")
    return max(1, math.ceil(previous_row_count * (1 - max_drop)))


# -- results ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FailedExpectation:
    expectation: str  # the GX expectation type, e.g. expect_column_values_to_be_unique
    column: str | None  # the column (or columns, comma-separated); None for table-level ones
    unexpected_count: int | None
    examples: tuple[str, ...]  # at most MAX_EXAMPLES, each at most EXAMPLE_WIDTH characters
    detail: str = ""  # the rule, e.g. the allowed values or the row-count bounds

    def as_dict(self) -> dict:
        return {
            "expectation": self.expectation,
            "column": self.column,
            "unexpected_count": self.unexpected_count,
            "examples": list(self.examples),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ValidationResult:
    table: str
    passed: bool
    success_percent: float
    row_count: int
    previous_row_count: int | None
    failed: tuple[FailedExpectation, ...] = ()

    def summary(self) -> str:
        if self.passed:
            return f"{self.table}: every expectation holds ({self.row_count} rows)"
        lines = [f"{self.table}: {len(self.failed)} expectation(s) failed"]
        for f in self.failed:
            where = f" on {f.column}" if f.column else ""
            count = f", {f.unexpected_count} unexpected" if f.unexpected_count is not None else ""
            examples = f", e.g. {'; '.join(f.examples)}" if f.examples else ""
            lines.append(f"- {f.expectation}{where}{count}{examples}{f' ({f.detail})' if f.detail else ''}")
        return "\n".join(lines)


# -- running GX -----------------------------------------------------------------------------------
def expectations(
    spec: Suite, previous_row_count: int | None = None, max_drop: float = DEFAULT_MAX_ROW_COUNT_DROP
) -> list:
    """The suite as GX expectation objects (imported here: GX takes seconds to import)."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    required = [c for c in spec.key if c not in spec.nullable] + list(spec.allowed) + list(spec.true_columns)
    built = [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in dict.fromkeys(required)]
    if len(spec.key) == 1:
        built.append(gxe.ExpectColumnValuesToBeUnique(column=spec.key[0]))
    elif spec.key:
        built.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(spec.key)))
    built += [gxe.ExpectColumnValuesToBeInSet(column=c, value_set=list(values)) for c, values in spec.allowed.items()]
    built += [gxe.ExpectColumnValuesToBeInSet(column=c, value_set=[True]) for c in spec.true_columns]
    for column, where in spec.required_when:
        conditions = [Column(c).is_in(list(values)) for c, values in where.items()]
        built.append(
            gxe.ExpectColumnValuesToNotBeNull(column=column, row_condition=functools.reduce(operator.and_, conditions))
        )
    floor = row_count_floor(previous_row_count, max_drop) if spec.guard_row_count else None
    if floor is not None:
        built.append(gxe.ExpectTableRowCountToBeBetween(min_value=floor))
    return built


def validate(
    table: str,
    frame: pd.DataFrame,
    previous_row_count: int | None = None,
    max_drop: float = DEFAULT_MAX_ROW_COUNT_DROP,
) -> ValidationResult:
    """Run the table's suite over `frame` in a fresh ephemeral GX context (names must be unique
    within a context, so one context per validation keeps validations independent)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    spec = suite(table)
    frame = frame.reset_index(drop=True)  # GX reports positions; examples look rows up by them
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("frame")
        .add_dataframe_asset(spec.table)
        .add_batch_definition_whole_dataframe("whole")
    )
    gx_suite = context.suites.add(
        gx.ExpectationSuite(name=spec.name, expectations=expectations(spec, previous_row_count, max_drop))
    )
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=spec.name, data=batch, suite=gx_suite))
    outcome = definition.run(
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20},
    )
    failed = tuple(_failure(spec, frame, r, previous_row_count) for r in outcome.results if not r.success)
    return ValidationResult(
        table=spec.name,
        passed=bool(outcome.success),
        success_percent=float(outcome.statistics.get("success_percent") or 0.0),
        row_count=len(frame),
        previous_row_count=previous_row_count,
        failed=failed,
    )


def _failure(spec: Suite, frame: pd.DataFrame, result, previous_row_count: int | None) -> FailedExpectation:
    config = result.expectation_config
    kwargs = config.kwargs
    details = result.result or {}
    column = kwargs.get("column") or (", ".join(kwargs["column_list"]) if kwargs.get("column_list") else None)
    error = _exception_message(result.exception_info)
    if error:
        return FailedExpectation(config.type, column, None, (), _cut(f"could not evaluate: {error}", 200))
    if config.type == "expect_table_row_count_to_be_between":
        return FailedExpectation(
            config.type,
            None,
            None,
            (),
            f"{details.get('observed_value')} rows, expected at least {kwargs['min_value']} "
            f"(previous good run: {previous_row_count})",
        )
    examples = _examples(spec, frame, column, details.get("partial_unexpected_index_list") or [])
    return FailedExpectation(config.type, column, details.get("unexpected_count"), examples, _rule(spec, kwargs))


def _exception_message(info) -> str:
    """GX reports an exception either directly or per metric it could not compute."""
    if not isinstance(info, dict):
        return ""
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "an exception")
    nested = (_exception_message(v) for v in info.values() if isinstance(v, dict))
    return next((m for m in nested if m), "")


def _rule(spec: Suite, kwargs: dict) -> str:
    if "value_set" in kwargs:
        return "allowed: " + ", ".join(map(str, kwargs["value_set"]))
    where = dict(spec.required_when).get(kwargs.get("column"))
    if where and kwargs.get("row_condition"):
        return "where " + " and ".join(f"{c} in ({', '.join(values)})" for c, values in where.items())
    return ""


def _examples(spec: Suite, frame: pd.DataFrame, column: str | None, positions: list) -> tuple[str, ...]:
    """Up to MAX_EXAMPLES distinct rows: the offending value first, then the row's key and context
    (a computed check column says nothing itself, so only the key and context show for it)."""
    shown = [c for c in (*spec.key, *spec.context) if c in frame.columns and c != column]
    if column in frame.columns and column not in spec.true_columns:
        shown.insert(0, column)
    examples: list[str] = []
    for position in positions:
        if not isinstance(position, numbers.Integral) or not 0 <= position < len(frame):
            continue
        row = frame.iloc[position]
        example = _cut(", ".join(f"{c}={_cut(_text(row[c]), CELL_WIDTH)}" for c in shown), EXAMPLE_WIDTH)
        if example not in examples:
            examples.append(example)
        if len(examples) == MAX_EXAMPLES:
            break
    return tuple(examples)


def _text(value) -> str:
    if value is None or (not isinstance(value, (list, tuple, dict)) and pd.isna(value)):
        return "null"
    return repr(value) if isinstance(value, str) else str(value)


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
