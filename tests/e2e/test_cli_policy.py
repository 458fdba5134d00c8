"""`genseal policy schema|lint|test|explain|replay` and the policy flags of `generate`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from safety import default_policy_path

runner = CliRunner()
FAST = ["--size", "256x256", "--steps", "2", "--seed", "7"]
POLICIES = Path(__file__).resolve().parents[2] / "policies"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    (root / "tenants").mkdir(parents=True)
    shutil.copy(default_policy_path(), root / "default.yaml")
    (root / "tenants" / "careful.yaml").write_text(
        'id: careful\nversion: "1"\nextends: default\n'
        "add:\n  - {id: review-outputs, stage: output, when: 'true', action: review}\n"
        "  - id: consent-for-portraits\n    stage: prompt\n"
        "    when: 'request.purpose == \"portrait\"'\n"
        "    action: require_consent\n    message: consent please\n",
        encoding="utf-8",
    )
    return root


def test_schema_prints_a_json_schema() -> None:
    code, stdout, _ = invoke("policy", "schema")
    assert code == 0
    schema = json.loads(stdout)
    assert schema["title"] == "genseal policy" and "rules" in schema["properties"]


def test_lint_reports_file_line_column_and_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (POLICIES / "default.yaml")
        .read_text(encoding="utf-8")
        .replace("action: flag\n    category: violence", "action: flagg\n    category: violence"),
        encoding="utf-8",
    )
    code, stdout, stderr = invoke("policy", "lint", str(broken))
    assert code == 2
    assert f"{broken}:" in stderr and "rule 'note-violent-prompt': field 'action'" in stderr
    assert "1 error(s)" in stdout

    code, stdout, _ = invoke("policy", "lint", *map(str, sorted(POLICIES.glob("*.yaml"))))
    assert code == 0, stdout
    code, stdout, _ = invoke("policy", "lint", "--json", str(broken))
    [problem] = json.loads(stdout)["problems"]
    assert (
        problem["line"] > 1 and problem["column"] == 5 and problem["rule"] == "note-violent-prompt"
    )


def test_lint_suggests_names_explains_cel_and_warns_of_yaml_booleans(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        'id: p\nversion: "1"\nrules:\n'
        "  - id: block-minors\n"
        "    when: 'findings.exists(f, f.category == \"minors\" and f.flagged)'\n"
        "    action: blok\n"
        "    mesage: denied\n"
        "  - id: note\n"
        "    when: 'true'\n"
        "    action: flag\n"
        "    reason: no\n",
        encoding="utf-8",
    )
    code, stdout, stderr = invoke("policy", "lint", str(policy))
    assert code == 2 and "Traceback" not in stderr
    lines = stderr.splitlines()
    assert (
        f"{policy}:6:5: rule 'block-minors': field 'action': Input should be 'allow', 'flag',"
        " 'blur', 'review', 'require_consent' or 'block' (got 'blok'); did you mean 'block'?"
    ) in lines
    assert (
        f"{policy}:7:5: rule 'block-minors': field 'mesage': unknown field; did you mean 'message'?"
    ) in lines
    assert (
        f"{policy}:11:13: warning: rule 'note': field 'reason': unquoted no is read as the"
        ' boolean false, not as text; quote it: "no"'
    ) in lines

    # With the schema right, the condition is compiled: its syntax error reads as a sentence.
    policy.write_text(
        policy.read_text(encoding="utf-8")
        .replace("blok", "block")
        .replace("mesage", "message")
        .replace("reason: no", 'reason: "no"'),
        encoding="utf-8",
    )
    code, stdout, stderr = invoke("policy", "lint", "--json", str(policy))
    assert code == 2
    [problem] = json.loads(stdout)["problems"]
    assert (problem["line"], problem["column"], problem["rule"]) == (5, 54, "block-minors")
    assert problem["message"] == (
        "invalid CEL condition: unexpected 'and' at column 43 (CEL writes and as &&)"
    )


def test_policy_test_passes_on_the_shipped_policies_and_fails_loudly(tmp_path: Path) -> None:
    code, stdout, _ = invoke("policy", "test", str(POLICIES))
    assert code == 0 and " 0 failed" in stdout and "PASS" in stdout

    shutil.copy(POLICIES / "default.yaml", tmp_path / "default.yaml")
    (tmp_path / "default_test.yaml").write_text(
        "cases:\n  - name: wrong on purpose\n    stage: prompt\n    findings: [sexual]\n"
        "    expect: {action: allow}\n",
        encoding="utf-8",
    )
    code, stdout, _ = invoke("policy", "test", str(tmp_path))
    assert code == 1
    assert "FAIL" in stdout and "wrong on purpose" in stdout and "action block" in stdout


def test_explain_a_case_and_a_real_prompt(genseal_home: Path, tmp_path: Path) -> None:
    case = tmp_path / "case.yaml"
    case.write_text(
        "stage: output\n"
        "findings: [{category: sexual, check: opennsfw, score: 0.7, threshold: 0.8}]\n",
        encoding="utf-8",
    )
    code, stdout, _ = invoke("policy", "explain", "--case", str(case), "--json")
    assert code == 0
    explanation = json.loads(stdout)
    assert explanation["decision"]["action"] == "review"
    rules = {r["rule"]: r for r in explanation["rules"]}
    assert rules["review-borderline-output"]["matched_by"] == [0]

    code, stdout, _ = invoke("policy", "explain", "--prompt", "a nude portrait")
    assert code == 0
    assert "block at stage prompt by rule block-sexual-prompt" in stdout
    assert "match block-sexual-prompt (block)" in stdout


def test_generate_held_for_review_exits_4_and_writes_nothing(
    genseal_home: Path, tmp_path: Path, policy_dir: Path
) -> None:
    out = tmp_path / "out"
    policy = str(policy_dir / "default.yaml")
    code, stdout, stderr = invoke(
        "generate", "a fox", *FAST, "--policy", policy, "--tenant", "careful",
        "--out", str(out), "--json",
    )  # fmt: skip
    assert code == 4, stderr
    payload = json.loads(stdout)
    assert payload["status"] == "held" and payload["held"][0]["review_id"]
    assert not out.exists() or list(out.iterdir()) == []

    code, stdout, _ = invoke(
        "generate", "a fox", *FAST, "--policy", policy, "--tenant", "careful",
        "--purpose", "portrait", "--out", str(out),
    )  # fmt: skip
    assert code == 3 and "consent please" in stdout

    # Replay the recorded decisions under the plain default policy (no overlays): the held
    # output would be released and the consent requirement gone.
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(default_policy_path(), plain / "default.yaml")
    code, stdout, _ = invoke(
        "policy", "replay", "--policy", str(plain / "default.yaml"), "--since", "2000-01-01",
        "--json",
    )  # fmt: skip
    assert code == 0
    report = json.loads(stdout)
    assert report["replayed"] == 2 and report["changed"] == 2
    assert report["by_decision"] == {"review → allow": 1, "require_consent → allow": 1}


def test_consent_flags_need_each_other(genseal_home: Path) -> None:
    code, _, stderr = invoke("generate", "a fox", "--consent-subject", "me")
    assert code == 2 and "--consent-reference" in stderr


def test_review_queue_on_the_command_line(
    genseal_home: Path, tmp_path: Path, policy_dir: Path
) -> None:
    policy = str(policy_dir / "default.yaml")
    code, stdout, _ = invoke(
        "generate", "a fox", *FAST, "--n", "2", "--policy", policy, "--tenant", "careful",
        "--out", str(tmp_path), "--json",
    )  # fmt: skip
    assert code == 4
    first, second = (h["review_id"] for h in json.loads(stdout)["held"])

    code, stdout, _ = invoke("review", "list", "--json")
    assert code == 0 and {r["id"] for r in json.loads(stdout)} == {first, second}

    out = tmp_path / "approved"
    code, stdout, stderr = invoke(
        "review", "decide", first, "--approve", "--reviewer", "ana", "--out", str(out), "--json"
    )
    assert code == 0, stderr
    path = Path(json.loads(stdout)["path"])
    assert path.parent == out and path.is_file()
    code, stdout, _ = invoke("verify", str(path), "--json")
    assert code == 0 and json.loads(stdout)["c2pa"]["state"] == "trusted"

    code, _, _ = invoke("review", "decide", second, "--reject")
    assert code == 0
    code, stdout, _ = invoke("review", "list", "--status", "all", "--json")
    assert sorted(r["status"] for r in json.loads(stdout)) == ["approved", "rejected"]
    code, _, stderr = invoke("review", "decide", second, "--approve")
    assert code == 2 and "already rejected" in stderr
