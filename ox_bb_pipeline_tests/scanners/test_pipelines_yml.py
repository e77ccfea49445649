"""bitbucket-pipelines.yml parsing: real sandbox files, anchors and merge keys, and hostile input."""

from __future__ import annotations

import random
import time

import pytest
import yaml

from ox_bb_pipeline.scanners.posture.pipelines_yml import PipelinesYmlError, parse, split_ref
from ox_bb_sandbox import content

PROFILES_WITH_PIPELINES = [
    p
    for p in content.PROFILES
    if "bitbucket-pipelines.yml" in content.render_profile(p, random.Random(1), repo_slug=p)[0]
]


@pytest.mark.parametrize("profile", PROFILES_WITH_PIPELINES)
def test_every_sandbox_pipelines_file_parses(profile):
    files, _ = content.render_profile(profile, random.Random(1), repo_slug=profile)
    parsed = parse(files["bitbucket-pipelines.yml"])
    steps = [step for _, step in parsed.steps()]
    assert parsed.image is not None and steps
    assert all(step.script or step.pipes for step in steps)


def test_anchors_aliases_merge_keys_parallel_and_stages_are_expanded():
    parsed = parse("""
image: atlassian/default-image:4
options: {size: 2x}
definitions:
  services:
    postgres: {image: "postgres:16@sha256:abc123"}
  caches:
    gomod: /go/pkg/mod
  steps:
    - step: &build
        name: Build
        image: {name: "registry.example.com:5000/team/builder:1.2", username: ci, password: $REGISTRY_PASSWORD}
        script: [make build]
        services: [postgres]
pipelines:
  pull-requests:
    'feature/*':
      - step:
          <<: *build
          name: PR build
          runs-on: [self.hosted, linux]
  branches:
    main:
      - parallel:
          steps:
            - step: *build
            - step: {name: Lint, script: [make lint]}
      - stage:
          name: Ship
          deployment: production
          trigger: manual
          steps:
            - step:
                name: Deploy
                script:
                  - pipe: atlassian/aws-s3-deploy:1.1.0
                    variables: {S3_BUCKET: site, AWS_SECRET_ACCESS_KEY: $KEY}
  custom:
    nightly:
      - variables: [{name: LEVEL}]
      - step: {name: Nightly, script: [make nightly], size: 4x}
    shared: {import: shared-pipelines:master:nightly}
""")
    assert parsed.size == "2x" and parsed.caches == {"gomod": "/go/pkg/mod"}
    assert parsed.services["postgres"].ref.digest == "sha256:abc123"
    assert [s.name for s in parsed.definition_steps] == ["Build"]
    by_name = {step.name: (pipeline, step) for pipeline, step in parsed.steps()}
    assert set(by_name) == {"PR build", "Build", "Lint", "Deploy", "Nightly"}
    pr_pipeline, pr_build = by_name["PR build"]
    assert (pr_pipeline.section, pr_pipeline.pattern) == ("pull-requests", "feature/*")
    assert pr_build.script == ["make build"] and pr_build.runs_on == ["self.hosted", "linux"]
    assert pr_build.image.ref.name == "registry.example.com:5000/team/builder" and pr_build.image.ref.tag == "1.2"
    assert pr_build.image.credentials == {"username": "ci", "password": "$REGISTRY_PASSWORD"}
    deploy = by_name["Deploy"][1]
    assert (deploy.deployment, deploy.trigger) == ("production", "manual")
    assert deploy.pipes[0].ref.name == "atlassian/aws-s3-deploy" and deploy.pipes[0].ref.tag == "1.1.0"
    assert deploy.pipes[0].variables["AWS_SECRET_ACCESS_KEY"] == "$KEY"
    assert by_name["Nightly"][1].size == "4x"
    assert any(p.imported == "shared-pipelines:master:nightly" for p in parsed.pipelines)


@pytest.mark.parametrize(
    "text, name, tag, digest",
    [
        ("node", "node", None, None),
        ("python:3.12-slim", "python", "3.12-slim", None),
        ("python:3.12-slim@sha256:0f0e", "python", "3.12-slim", "sha256:0f0e"),
        ("registry.example.com:5000/team/app", "registry.example.com:5000/team/app", None, None),
        ("docker://acme/pipe:2.0.1", "acme/pipe", "2.0.1", None),
    ],
)
def test_image_and_pipe_references_split_into_name_tag_and_digest(text, name, tag, digest):
    ref = split_ref(text)
    assert (ref.name, ref.tag, ref.digest) == (name, tag, digest)


@pytest.fixture(params=["libyaml", "pure-python"], autouse=True)
def loader(request, monkeypatch):
    """Hostile input is refused with libyaml and with PyYAML's pure-Python fallback alike."""
    if request.param == "pure-python":
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    return request.param


def _refused_quickly(text: str, fragment: str) -> str:
    started = time.perf_counter()
    with pytest.raises(PipelinesYmlError) as err:
        parse(text, "repo/bitbucket-pipelines.yml")
    assert time.perf_counter() - started < 1.0
    message = str(err.value)
    assert message.startswith("repo/bitbucket-pipelines.yml: ") and fragment in message
    return message


def test_billion_laughs_is_refused_quickly():
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        levels.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    _refused_quickly("\n".join(levels) + "\n", "YAML bomb")


def test_merge_key_fan_out_is_refused_quickly():
    lines = ["a: &a {x: 1, y: 2}"]
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur}")
        lines += [f"  k{j}: {{<<: *{prev}}}" for j in range(9)]
    _refused_quickly("\n".join(lines) + "\n", "YAML bomb")


def test_recursive_alias_is_refused():
    _refused_quickly("a: &a [*a]\n", "recursive")


def test_ten_megabyte_file_is_refused_quickly():
    _refused_quickly("# padding\n" * 1_000_000, "limit")


@pytest.mark.parametrize(
    "text",
    [
        "[" * 500_000,  # flow nesting at the size limit
        "a: " + "[" * 100 + "]" * 100 + "\n",  # balanced, just too deep
        "- " * 200_000,  # block nesting
    ],
)
def test_absurd_nesting_is_refused_quickly(text):
    _refused_quickly(text, "nest")


def test_malformed_yaml_names_the_file_and_position():
    broken = "pipelines:\n  default:\n    - step: {script: [make]\n  oops: : :\n"
    message = _refused_quickly(broken, "invalid YAML at line")
    assert "column" in message


def test_python_object_tags_are_refused():
    _refused_quickly("!!python/object/apply:os.system ['touch /tmp/pwned']\n", "invalid YAML")


@pytest.mark.parametrize(
    "text",
    [
        "pipelines: {default: [{stage: [1, 2]}]}",
        "pipelines: {default: [{parallel: 5}]}",
        "pipelines: {default: [{step: {name: 7, deployment: 1, trigger: MANUAL, script: [1, {x: y}], runs-on: 3}}]}",
        "definitions: {services: {db: 5}, caches: [a]}\npipelines: {}",
        "image: {aws: x}\npipelines: {}",
        "pipelines: {custom: {x: {import: 1}}, branches: {'*': []}}",
    ],
)
def test_odd_shapes_parse_or_fail_clearly(text):
    try:
        parse(text)
    except PipelinesYmlError as exc:
        assert str(exc).startswith("bitbucket-pipelines.yml: ")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("- just\n- a list\n", "top level must be a mapping"),
        ("image: node\n", "'pipelines' is missing"),
        ("pipelines:\n  nightly: []\n", "unknown pipelines section 'nightly'"),
        ("pipelines:\n  branches:\n    main: make build\n", "must be a list of steps"),
    ],
)
def test_structural_errors_are_clear(text, fragment):
    _refused_quickly(text, fragment)
