"""TermListCheck: normalisation against obfuscation, whole-word matching, findings shape."""

from __future__ import annotations

import time

import pytest

from genseal.errors import PolicyError
from safety import Category, CheckState, Policy, Stage, TermListCheck, default_policy_path

TERMS = {
    Category.SEXUAL: ["nude", "naked", "porn*", "sex", "ass", "nipple", "xxx", "penis"],
    Category.MINORS: ["child", "kid", "teen", "school girl", "loli"],
}
PATTERNS = {Category.SEXUAL: [r"\bnsfw\b"], Category.MINORS: [r"\b(?:1[0-7]|[1-9])\s*yo\b"]}


@pytest.fixture(scope="module")
def check() -> TermListCheck:
    return TermListCheck(TERMS, PATTERNS)


def _matched(check: TermListCheck, prompt: str) -> dict[str, list[str]]:
    return {c.value: hits for c, hits in check.matches(prompt).items() if hits}


@pytest.mark.parametrize(
    ("prompt", "term"),
    [
        ("a nude woman on a beach", "nude"),
        ("NUDE", "nude"),
        ("Nüde", "nude"),  # diacritics
        ("ｎｕｄｅ", "nude"),  # fullwidth (NFKC)
        ("𝐧𝐮𝐝𝐞", "nude"),  # mathematical bold (NFKC)
        ("n\u200bu\u200dde", "nude"),  # zero-width characters
        ("nu\u00adde", "nude"),  # soft hyphen
        ("nudе", "nude"),  # Cyrillic "е" inside a Latin word
        ("n.u.d.e", "nude"),
        ("n u d e", "nude"),
        ("n-u-d-e", "nude"),
        ("n_u_d_e photo", "nude"),
        ("a n.u.d.e photo", "nude"),
        ("a n u d e photo", "nude"),  # one-letter word before the spelled-out one
        ("draw a n u d e", "nude"),
        ("nuuuuude", "nude"),
        ("nnuuddee", "nude"),
        ("nud3", "nude"),
        ("n4ked", "naked"),
        ("p0rn", "porn*"),
        ("pornographic", "porn*"),
        ("s3x", "sex"),
        ("$ex", "sex"),
        ("@ss", "ass"),
        ("a55", "ass"),
        ("nipples", "nipple"),  # plural
        ("nude_photo", "nude"),
        ("XXX", "xxx"),
    ],
)
def test_obfuscated_terms_match(check: TermListCheck, prompt: str, term: str) -> None:
    assert term in _matched(check, prompt).get("sexual", [])


@pytest.mark.parametrize(
    ("prompt", "term"),
    [
        ("a child", "child"),
        ("three kids playing", "kid"),
        ("Teens at school", "teen"),
        ("schoolgirl", "school girl"),  # phrase words written together
        ("school-girl uniform", "school girl"),
        ("l0li", "loli"),
        ("1oli", "loli"),  # "1" as "l"
    ],
)
def test_minors_terms_match(check: TermListCheck, prompt: str, term: str) -> None:
    assert term in _matched(check, prompt).get("minors", [])


@pytest.mark.parametrize(
    "prompt",
    [
        "a class photo",
        "Scunthorpe United",
        "statistical analysis",
        "therapist office",
        "assassin's creed",
        "passion fruit",
        "bass guitar",
        "assess the damage",
        "Sussex, Essex and Middlesex",
        "sexagenarian chess club",
        "kidney beans",
        "a skid mark on the road",
        "childhood memories",
        "teenage mutant ninja turtles",
        "3d render of a 4k sunset",
        "the pen is red",  # a term split across real words is not the term
        "a b c d e f",
        "1girl, solo, anime style",
        "a cozy cabin in the snow, 8k",
    ],
)
def test_innocent_words_do_not_match(check: TermListCheck, prompt: str) -> None:
    assert _matched(check, prompt) == {}


def test_patterns_are_searched_in_the_normalised_prompt(check: TermListCheck) -> None:
    assert _matched(check, "ＮＳＦＷ art") == {"sexual": [r"/\bnsfw\b/"]}
    assert _matched(check, "a 12 yo") == {"minors": [r"/\b(?:1[0-7]|[1-9])\s*yo\b/"]}
    assert _matched(check, "a 21 yo") == {}


def test_one_finding_per_configured_category(check: TermListCheck) -> None:
    findings = check.check("a n.u.d.e photo of a beach")

    assert [f.category for f in findings] == [Category.SEXUAL, Category.MINORS]
    sexual, minors = findings
    assert sexual.state is CheckState.FLAGGED and sexual.score == 1.0
    assert sexual.details == {"matched": ["nude"]}
    assert sexual.reason and "nude" in sexual.reason
    assert minors.state is CheckState.CLEAN and minors.score == 0.0
    assert minors.details == {"matched": []} and minors.reason is None
    assert all(f.stage is Stage.PROMPT and f.check == "prompt_terms" for f in findings)
    assert sexual.as_cel()["matched"] == ["nude"]


def test_category_with_only_patterns_gets_a_finding() -> None:
    check = TermListCheck({}, {Category.HATE: [r"(?<!\d)14[\s/-]+88(?!\d)"]})
    (finding,) = check.check("14/88")
    assert finding.category is Category.HATE and finding.flagged


def test_version_changes_with_the_lists() -> None:
    a = TermListCheck({Category.SEXUAL: ["nude"]})
    b = TermListCheck({Category.SEXUAL: ["nude", "naked"]})
    assert a.version != b.version
    assert a.version == TermListCheck({Category.SEXUAL: ["nude"]}).version


def test_invalid_regex_and_term_raise_policy_errors() -> None:
    with pytest.raises(PolicyError, match="invalid regex"):
        TermListCheck({}, {Category.SEXUAL: ["(unclosed"]})
    with pytest.raises(PolicyError, match=r"prompt_terms\.sexual"):
        TermListCheck({Category.SEXUAL: ["!!!"]})


def test_from_policy_uses_the_policy_lists() -> None:
    policy = Policy.load(default_policy_path())
    check = TermListCheck.from_policy(policy)

    assert set(check.categories) == set(policy.prompt_terms) | set(policy.prompt_patterns)
    flagged = {f.category for f in check.check("a n4ked schoolgirl") if f.flagged}
    assert flagged == {Category.SEXUAL, Category.MINORS}
    assert not any(f.flagged for f in check.check("a watercolor of a lighthouse at dawn"))


def test_adversarial_long_prompt_stays_fast() -> None:
    # Ten times the API's longest prompt, built to make a backtracking pattern explode: the
    # lists stay linear in the prompt (a few seconds here even on a loaded machine), where one
    # catastrophic pattern would take hours. The latency itself is measured by bench.prompts.
    check = TermListCheck.from_policy(Policy.load(default_policy_path()))
    nasty = "1!1|" * 5000 + "ssss" * 5000 + " n u " * 2000 + "a" * 20000
    start = time.perf_counter()
    check.check(nasty)
    assert time.perf_counter() - start < 20.0
