"""`fathom erase --tenant T --user U`: a user's conversations, answers and feedback go; audited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from fathom import Fathom
from fathom.store.schema import AnswerRow, ConversationRow, FeedbackRow, TurnRow

QUESTION = "Where does Xylo-Pemberton keep the spare keys?"


def _seed(fathom: Fathom, user: str, n: int) -> None:
    with fathom.store.session() as session:
        conversation = f"c{user}{n}".ljust(32, "0")
        session.add(ConversationRow(id=conversation, tenant_id="acme", owner_user=user))
        session.flush()
        session.add(
            TurnRow(
                conversation_id=conversation,
                ordinal=0,
                question=f"{QUESTION} ({user})",
                standalone_question=f"{QUESTION} ({user})",
                answer="Under the mat.",
                citations=[],
                model="extractive",
                mode="single",
            )
        )
        answer = f"a{user}{n}".ljust(32, "0")
        session.add(AnswerRow(id=answer, tenant_id="acme", user_id=user))
        session.flush()
        session.add(
            FeedbackRow(answer_id=answer, tenant_id="acme", user_id=user, rating="down", comment="wrong")
        )


def _rows(fathom: Fathom, user: str) -> tuple[int, int, int, int]:
    with fathom.store.connection() as conn:
        conversations = conn.execute(
            select(func.count()).select_from(ConversationRow).where(ConversationRow.owner_user == user)
        ).scalar_one()
        turns = conn.execute(
            select(func.count()).select_from(TurnRow).where(TurnRow.question.contains(f"({user})"))
        ).scalar_one()
        answers = conn.execute(
            select(func.count()).select_from(AnswerRow).where(AnswerRow.user_id == user)
        ).scalar_one()
        feedback = conn.execute(
            select(func.count()).select_from(FeedbackRow).where(FeedbackRow.user_id == user)
        ).scalar_one()
    return int(conversations), int(turns), int(answers), int(feedback)


def test_erase_removes_one_users_data_and_records_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64") as fathom:
        for n in range(2):
            _seed(fathom, "alice", n)
        _seed(fathom, "bob", 0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FATHOM_")} | {"FATHOM_HOME": str(home)}
    result = subprocess.run(
        [sys.executable, "-m", "fathom", "erase", "--tenant", "acme", "--user", "alice", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "tenant": "acme",
        "user": "alice",
        "conversations": 2,
        "answers": 2,
        "feedback": 2,
    }
    with Fathom(home=home, embedder="hash:64") as fathom:
        assert _rows(fathom, "alice") == (0, 0, 0, 0)
        assert _rows(fathom, "bob") == (1, 1, 1, 1)
        (event,) = fathom.audit.events(tenant="acme", action="user.erased")
        assert event.target == "alice" and event.details == {"conversations": 2, "answers": 2, "feedback": 2}
        assert QUESTION not in json.dumps(event.to_dict())
        assert fathom.audit.verify().ok
