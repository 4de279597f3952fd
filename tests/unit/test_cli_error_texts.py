"""Every error text the admin command line and the admin commands write reads alike: it starts
with a capital letter (or with its subject, a JID or the bad input quoted) and has no trailing
period. Checked on the source, so a new message cannot slip past."""

from __future__ import annotations

import ast
from pathlib import Path

import chorus_presence

PACKAGE = Path(chorus_presence.__file__).parent
SOURCES = sorted(
    [*(PACKAGE / "cli").glob("*.py"), *(PACKAGE / "admin").glob("*.py"), PACKAGE / "certs.py"]
)
# The error types raised there, with the position of their text among the arguments.
TEXT_ARGUMENT = {
    "AdminError": 0,
    "AdminChannelInUse": 0,
    "ArgumentTypeError": 0,
    "CertificateError": 0,
    "CliError": 0,
    "OSError": 0,
    "Refused": 0,
    "ValueError": 0,
    "Failure": 1,
    "StanzaError": 1,
    "StreamError": 1,
}


def messages(source: str) -> list[tuple[int, ast.expr]]:
    """Each error text written as a literal or an f-string, with its line: the text argument
    of the error types above, and the "error" of the admin channel's answers."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            position = TEXT_ARGUMENT.get(name or "")
            if position is not None and len(node.args) > position:
                found.append((node.lineno, node.args[position]))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "error":
                    found.append((node.lineno, value))
    return [(line, text) for line, text in found if isinstance(text, ast.Constant | ast.JoinedStr)]


def problem(text: ast.expr) -> str | None:
    """What is wrong with one text, or None."""
    parts = text.values if isinstance(text, ast.JoinedStr) else [text]
    first, last = parts[0], parts[-1]
    if (
        isinstance(first, ast.Constant)
        and isinstance(first.value, str)
        and not (first.value[:1].isupper() or first.value[:1].isdigit())
    ):
        return "does not start with a capital letter or its subject"
    if (
        isinstance(last, ast.Constant)
        and isinstance(last.value, str)
        and last.value.rstrip().endswith(".")
    ):
        return "ends with a period"
    return None


def test_every_error_text_starts_with_a_capital_and_has_no_trailing_period() -> None:
    problems = []
    count = 0
    for path in SOURCES:
        for line, text in messages(path.read_text()):
            count += 1
            reason = problem(text)
            if reason is not None:
                problems.append(f"{path.relative_to(PACKAGE)}:{line}: {ast.unparse(text)} {reason}")
    assert problems == []
    # The walk finds the texts at all: there are dozens.
    assert count > 40


def test_the_check_catches_bad_texts() -> None:
    source = """
raise AdminError(f"no such user: {jid}")
raise CliError("The server is not running.")
raise StanzaError("bad-request", "bad group")
answer = {"ok": False, "error": "request too large"}
raise AdminError(f"{jid} is not in the roster of {owner}")
raise CliError("No such user")
"""
    found = [(line, problem(text)) for line, text in messages(source)]
    assert sorted(found) == [
        (2, "does not start with a capital letter or its subject"),
        (3, "ends with a period"),
        (4, "does not start with a capital letter or its subject"),
        (5, "does not start with a capital letter or its subject"),
        (6, None),
        (7, None),
    ]
