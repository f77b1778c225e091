"""A scripted, deterministic "model" that uses the agent tools, for tests and benches.

:class:`ScriptedResearcher` answers requests of :class:`~fathom.llm.testing.ScriptedLLMServer`
with one fixed policy, the same in both modes, so that single-shot and agent mode differ only
in what they retrieve:

- a question is split into sub-questions: one per name (``CloudNova``, ``SkyAI Cloud``: words
  with an inner capital) when it names several, else at ``, and``;
- single-shot (a request without tools): for each sub-question, the line of the given
  documents that shares most words with it (among documents naming its subject, when any)
  is echoed with its ``[n]``;
- agent mode (a request with tools): ``decompose`` when there are several sub-questions, one
  ``search`` per sub-question, then, for a question that identifies its subject by an address
  (``the company whose Slack workspace is x.slack.com``), one more ``search`` for the name
  found next to that address; then the same line picking over every passage it received.

It is no language model: it shows what the loop, the tools and verification do with a
reasonable policy, not what a real model would.
"""

from __future__ import annotations

import re
from typing import Any

from fathom.answer.followup import entities, key_terms
from fathom.llm.testing import Reply, ToolCallReply, tool_results

__all__ = ["ScriptedResearcher", "pick_lines", "sub_questions"]

_QUESTION = re.compile(r"Question: (.*?)(?:\n\nAnswer with|\Z)", re.DOTALL)
_IDENTIFIER = re.compile(r"[\w.+-]+@[\w.-]+\w|\b[\w-]+(?:\.[\w-]+){2,}\b")
_SPLIT = re.compile(r",?\s+and\s+(?=what|which|when|where|who|how|in which)", re.IGNORECASE)
_GENERIC = {"company", "companies", "platform", "lab", "give", "name", "one"}
# A fenced passage with its attributes (title, section), as the model sees it.
_PASSAGE = re.compile(r'<(document(?:-[0-9a-f]+)?) id="(\d+)"([^>]*)>\n(.*?)\n</\1>', re.DOTALL)


def documents_in(prompt: str) -> dict[int, tuple[str, str]]:
    """The fenced passages of a prompt by number: (attributes, text)."""
    return {int(n): (attributes, text) for _tag, n, attributes, text in _PASSAGE.findall(prompt)}


def _names(text: str) -> list[str]:
    """Subjects a question names: phrases with a word such as ``CloudNova`` or ``SkyAI``."""
    return [e for e in entities(text) if re.search(r"[a-z][A-Z]", e)]


def _terms(text: str) -> set[str]:
    words = {w.lower() for w in re.findall(r"[A-Za-z0-9]+", text)}
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words} - {"the", "a", "of", "and"}


def sub_questions(question: str) -> list[tuple[str, str | None]]:
    """The sub-questions of ``question``, each with the name it is about (or None)."""
    names = _names(question)
    if len(names) > 1:
        name_words = " ".join(names).split()
        predicate = [t for t in key_terms(question) if t not in name_words and t.lower() not in _GENERIC]
        return [(f"{name} {' '.join(predicate)}", name) for name in names]
    parts = [p.strip(" ,?") for p in _SPLIT.split(question) if p.strip(" ,?")]
    name = names[0] if names else None
    if len(parts) > 1:
        return [(p if name is None or name in p else f"{p} {name}", name) for p in parts]
    return [(question, name)]


def pick_lines(question: str, passages: dict[int, tuple[str, str]]) -> list[tuple[int, str]]:
    """For each sub-question, the passage line that shares most words with it, and its passage
    (among passages whose text, title or section names the sub-question's subject, if any)."""
    identifiers = _IDENTIFIER.findall(question)
    # Words of the line that holds the identifying address say who, not what is asked.
    exclude: set[str] = set()
    for _attributes, text in passages.values():
        for line in text.splitlines():
            if any(i in line for i in identifiers):
                exclude |= _terms(line)
    picks: list[tuple[int, str]] = []
    for sub, name in sub_questions(question):
        wanted = _terms(sub) - exclude - (_terms(name) if name else set())
        pool = {
            n: text
            for n, (attributes, text) in passages.items()
            if name and name.lower() in (attributes + text).lower()
        } or {n: text for n, (_a, text) in passages.items()}
        best: tuple[int, int, str] | None = None
        for n, text in sorted(pool.items()):
            for line in text.splitlines():
                clean = line.strip(" -*\t")
                score = len(wanted & _terms(clean))
                if clean and score and (best is None or score > best[0]):
                    best = (score, n, clean)
        if best is not None and (best[1], best[2]) not in picks:
            picks.append((best[1], best[2]))
    return picks


def _answer(question: str, passages: dict[int, tuple[str, str]]) -> Reply:
    picks = pick_lines(question, passages)
    if not picks:
        return Reply(text="Not in the documents.")
    return Reply(text="\n".join(f"{line.rstrip('.')}. [{n}]" for n, line in picks))


class ScriptedResearcher:
    """The script of a :class:`~fathom.llm.testing.ScriptedLLMServer` (see the module docstring).

    ``calls`` counts the requests answered, by kind (``answer``, ``agent``).
    """

    def __init__(self) -> None:
        self.calls: dict[str, int] = {"answer": 0, "agent": 0}

    def __call__(self, request: dict[str, Any]) -> Reply:
        user = next(m["content"] for m in request["messages"] if m["role"] == "user")
        found = _QUESTION.search(user)
        question = found.group(1).strip() if found else user
        if "tools" not in request:
            self.calls["answer"] += 1
            return _answer(question, documents_in(user))
        self.calls["agent"] += 1
        return self._agent(question, request)

    def _agent(self, question: str, request: dict[str, Any]) -> Reply:
        results = tool_results(request)
        subs = [s for s, _name in sub_questions(question)]
        if not results:
            if len(subs) > 1:
                return Reply(tool_calls=[ToolCallReply("decompose", {"sub_questions": subs})])
            return Reply(tool_calls=[ToolCallReply("search", {"query": question})])
        searches = [(args, text) for name, args, text in results if name == "search"]
        if not searches:
            return Reply(tool_calls=[ToolCallReply("search", {"query": s}) for s in subs])
        passages: dict[int, tuple[str, str]] = {}
        for _args, text in searches:
            passages.update(documents_in(text))
        identifiers = _IDENTIFIER.findall(question)
        if identifiers and len(searches) == 1:
            # A subject named only by an address: look for the name next to it, search again.
            for attributes, text in passages.values():
                if any(i in text for i in identifiers):
                    names = [n for n in _names(attributes + "\n" + text) if n not in question]
                    if names:
                        rest = _IDENTIFIER.sub("", question)
                        return Reply(tool_calls=[ToolCallReply("search", {"query": f"{names[0]} {rest}"})])
        return _answer(question, passages)
