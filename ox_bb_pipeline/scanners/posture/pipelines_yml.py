"""A safe parser of bitbucket-pipelines.yml into the normalised structure the posture checks read.

The file comes from untrusted repositories: its size is capped, and anchors/aliases/merge keys are
expanded only within a node budget (measured on the composed graph, before anything is built), so
a YAML bomb is refused quickly instead of exhausting memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml

MAX_BYTES = 512 * 1024  # real pipeline files are a few KB; 512 KB leaves room for generated ones
MAX_NODES = 100_000  # YAML nodes after alias and merge-key expansion
MAX_DEPTH = 64  # nesting levels
SECTIONS = ("default", "branches", "pull-requests", "tags", "bookmarks", "custom")


class PipelinesYmlError(ValueError):
    """The file is not a usable bitbucket-pipelines.yml; the message names the file and the problem."""


@dataclass(frozen=True)
class Ref:
    """A container image or pipe reference split into name, tag and digest."""

    text: str
    name: str
    tag: str | None
    digest: str | None

    @property
    def is_variable(self) -> bool:
        return "$" in self.text


@dataclass(frozen=True)
class Image:
    ref: Ref
    credentials: dict[str, str] = field(default_factory=dict)  # username/password/aws keys as written


@dataclass(frozen=True)
class Pipe:
    ref: Ref
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class Step:
    location: str  # where it sits, for evidence: "branches 'main' step 2"
    name: str | None = None
    image: Image | None = None
    script: list[str] = field(default_factory=list)  # script and after-script command lines
    pipes: list[Pipe] = field(default_factory=list)
    deployment: str | None = None
    trigger: str = "automatic"  # automatic | manual
    runs_on: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    caches: list[str] = field(default_factory=list)
    size: str | None = None

    @property
    def label(self) -> str:
        return f"step '{self.name}' ({self.location})" if self.name else f"unnamed step ({self.location})"


@dataclass
class Pipeline:
    section: str  # default | branches | pull-requests | tags | bookmarks | custom
    pattern: str | None  # branch/tag glob or custom name; None for default
    steps: list[Step] = field(default_factory=list)
    imported: str | None = None  # `import:` of a shared pipeline (its steps live elsewhere)


@dataclass
class PipelinesFile:
    path: str
    image: Image | None = None
    size: str | None = None  # options.size, the default step size
    services: dict[str, Image | None] = field(default_factory=dict)  # definitions.services
    caches: dict[str, str] = field(default_factory=dict)  # definitions.caches name -> path
    definition_steps: list[Step] = field(default_factory=list)  # definitions.steps (anchor targets)
    pipelines: list[Pipeline] = field(default_factory=list)

    def steps(self) -> Iterator[tuple[Pipeline, Step]]:
        for pipeline in self.pipelines:
            for step in pipeline.steps:
                yield pipeline, step


# -- safe loading ------------------------------------------------------------------------------------
def _expanded_size(node: yaml.Node, path: str) -> int:
    """Nodes the document would have once every alias is expanded. Aliases share composed nodes, so
    memoising by node keeps this linear while the count itself may be astronomically large."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(n: yaml.Node, depth: int) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        if id(n) in visiting:
            raise PipelinesYmlError(f"{path}: recursive YAML alias (an anchor refers to itself)")
        if depth > MAX_DEPTH:
            raise PipelinesYmlError(f"{path}: YAML nested deeper than {MAX_DEPTH} levels")
        visiting.add(id(n))
        total = 1
        if isinstance(n, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in n.value)
        elif isinstance(n, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in n.value)
        visiting.discard(id(n))
        sizes[id(n)] = total
        if total > MAX_NODES:
            raise PipelinesYmlError(
                f"{path}: YAML expands to more than {MAX_NODES:,} nodes through "
                "anchors and aliases (a YAML bomb?); refused"
            )
        return total

    return size(node, 0)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that stops at MAX_DEPTH while scanning and composing: before Python's recursion
    limit, and before the scanner's pending simple keys (one per open `[`/`{`) turn quadratic."""

    def __init__(self, stream: str, path: str) -> None:
        super().__init__(stream)
        self.path, self.depth = path, 0

    def _too_deep(self) -> PipelinesYmlError:
        return PipelinesYmlError(f"{self.path}: YAML nested deeper than {MAX_DEPTH} levels; refused")

    def fetch_flow_collection_start(self, token_class):
        if self.flow_level >= MAX_DEPTH:
            raise self._too_deep()
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self._too_deep()
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_yaml(text: str | bytes, path: str = "bitbucket-pipelines.yml"):
    """The document as plain Python data (SafeLoader), after the size, depth and expansion caps."""
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else text
    if len(raw) > MAX_BYTES:
        raise PipelinesYmlError(f"{path}: {len(raw):,} bytes is over the {MAX_BYTES:,}-byte limit; refused")
    # libyaml is ~8x faster and caps nesting itself (its composer cannot be subclassed); the
    # pure-Python fallback is bounded by _BoundedLoader.
    document = raw.decode("utf-8", "replace")
    loader = yaml.CSafeLoader(document) if hasattr(yaml, "CSafeLoader") else _BoundedLoader(document, path)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, path)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PipelinesYmlError(f"{path}: invalid YAML{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise PipelinesYmlError(f"{path}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()


# -- normalising -------------------------------------------------------------------------------------
_DIGEST = re.compile(r"@(sha256:[0-9a-fA-F]+)$")


def split_ref(text: str) -> Ref:
    """`registry:5000/team/image:tag@sha256:…` -> name, tag, digest (`docker://` pipe prefix dropped)."""
    ref = text.strip()
    body = ref.removeprefix("docker://")
    digest = None
    if match := _DIGEST.search(body):
        digest, body = match.group(1), body[: match.start()]
    name, tag = body, None
    last = body.rsplit("/", 1)[-1]
    if ":" in last:  # a colon before the last slash is a registry port, not a tag
        name, tag = body.rsplit(":", 1)
    return Ref(text=ref, name=name, tag=tag or None, digest=digest)


def _text(value) -> str | None:
    return None if value is None else str(value)


class _Normaliser:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> PipelinesYmlError:
        return PipelinesYmlError(f"{self.path}: {where}: {message}")

    def image(self, value, where: str) -> Image | None:
        if value is None:
            return None
        if isinstance(value, (str, int, float)):
            return Image(split_ref(str(value)))
        if isinstance(value, dict) and value.get("name"):
            credentials = {k: str(v) for k, v in value.items() if k in ("username", "password")}
            aws = value.get("aws")
            if isinstance(aws, dict):
                credentials |= {f"aws.{k}": str(v) for k, v in aws.items() if k in ("access-key", "secret-key")}
            return Image(split_ref(str(value["name"])), credentials)
        raise self.fail(where, "image must be a string or a mapping with a name")

    def lines(self, items, where: str) -> tuple[list[str], list[Pipe]]:
        if items is None:
            return [], []
        if not isinstance(items, list):
            raise self.fail(where, "script must be a list")
        lines, pipes = [], []
        for item in items:
            if isinstance(item, dict) and "pipe" in item:
                variables = item.get("variables") or {}
                if not isinstance(variables, dict):
                    raise self.fail(where, "pipe variables must be a mapping")
                pipes.append(
                    Pipe(
                        split_ref(str(item["pipe"])),
                        {str(k): "" if v is None else str(v) for k, v in variables.items()},
                    )
                )
            elif isinstance(item, (str, int, float, bool)):
                lines.append(str(item))
        return lines, pipes

    def step(self, value, location: str, inherited: dict | None = None) -> Step:
        if not isinstance(value, dict):
            raise self.fail(location, "a step must be a mapping")
        inherited = inherited or {}
        script, pipes = self.lines(value.get("script"), location)
        after, after_pipes = self.lines(value.get("after-script"), location)
        runs_on = value.get("runs-on") or []
        runs_on = [runs_on] if isinstance(runs_on, str) else [str(r) for r in runs_on]
        trigger = str(value.get("trigger") or inherited.get("trigger") or "automatic").lower()
        deployment = value.get("deployment") or inherited.get("deployment")
        return Step(
            location=location,
            name=_text(value.get("name")),
            image=self.image(value.get("image"), location),
            script=script + after,
            pipes=pipes + after_pipes,
            deployment=_text(deployment),
            trigger=trigger,
            runs_on=runs_on,
            services=[str(s) for s in value.get("services") or []],
            caches=[str(c) for c in value.get("caches") or []],
            size=_text(value.get("size")),
        )

    def items(self, items, where: str) -> list[Step]:
        """A pipeline's list: steps, parallel groups and stages, flattened in order."""
        if not isinstance(items, list):
            raise self.fail(where, "a pipeline must be a list of steps")
        steps: list[Step] = []

        def add(item, inherited=None):
            location = f"{where} step {len(steps) + 1}"
            if not isinstance(item, dict):
                raise self.fail(location, "each pipeline item must be a mapping")
            if "step" in item:
                steps.append(self.step(item["step"], location, inherited))
            elif "parallel" in item:
                group = item["parallel"]
                group = group.get("steps") if isinstance(group, dict) else group
                for sub in group or []:
                    add(sub, inherited)
            elif "stage" in item:
                stage = item["stage"] or {}
                # A stage's deployment and trigger apply to every step in it.
                shared = {"deployment": stage.get("deployment"), "trigger": stage.get("trigger")}
                for sub in stage.get("steps") or []:
                    add(sub, shared)
            # `variables:` (custom pipeline inputs) and unknown keys carry no steps.

        for item in items:
            add(item)
        return steps

    def file(self, data) -> PipelinesFile:
        if not isinstance(data, dict):
            raise PipelinesYmlError(f"{self.path}: the top level must be a mapping")
        options = data.get("options") or {}
        definitions = data.get("definitions") or {}
        if not isinstance(definitions, dict) or not isinstance(options, dict):
            raise PipelinesYmlError(f"{self.path}: definitions and options must be mappings")
        result = PipelinesFile(path=self.path, image=self.image(data.get("image"), "image"), size=options.get("size"))
        for name, service in (definitions.get("services") or {}).items():
            result.services[str(name)] = self.image((service or {}).get("image"), f"definitions.services.{name}")
        for name, cache in (definitions.get("caches") or {}).items():
            result.caches[str(name)] = str(cache.get("path") if isinstance(cache, dict) else cache)
        for i, item in enumerate(definitions.get("steps") or []):
            if isinstance(item, dict) and "step" in item:
                result.definition_steps.append(self.step(item["step"], f"definitions step {i + 1}"))
        pipelines = data.get("pipelines")
        if not isinstance(pipelines, dict):
            raise PipelinesYmlError(f"{self.path}: 'pipelines' is missing or not a mapping")
        for section, body in pipelines.items():
            if section not in SECTIONS:
                raise PipelinesYmlError(f"{self.path}: unknown pipelines section '{section}'")
            if section == "default":
                result.pipelines.append(Pipeline("default", None, self.items(body, "default")))
                continue
            if not isinstance(body, dict):
                raise PipelinesYmlError(f"{self.path}: pipelines.{section} must map patterns to pipelines")
            for pattern, items in body.items():
                where = f"{section} '{pattern}'"
                if isinstance(items, dict) and "import" in items:
                    result.pipelines.append(Pipeline(section, str(pattern), imported=str(items["import"])))
                else:
                    result.pipelines.append(Pipeline(section, str(pattern), self.items(items, where)))
        return result


def parse(text: str | bytes, path: str = "bitbucket-pipelines.yml") -> PipelinesFile:
    """Parse and normalise; raises PipelinesYmlError (naming `path`) on anything unusable."""
    data = load_yaml(text, path)
    try:
        return _Normaliser(path).file(data)
    except PipelinesYmlError:
        raise
    except (AttributeError, TypeError, ValueError) as exc:  # a shape the normaliser does not expect
        raise PipelinesYmlError(f"{path}: unexpected structure ({type(exc).__name__}: {exc})") from None
